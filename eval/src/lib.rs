//! The evaluation harness behind `toystore eval`: the evaluation the project must be able to
//! print (docs/design.md, "Evaluation"), end to end.
//!
//! One command, on one machine, so the figures in the report are reproducible by anyone with the
//! repository: it starts local stores ([`LocalStore`] from [`launcher`], as `toystore up` does),
//! drives them with the load client ([`loadgen`]), measures what backups running next to it
//! cost ([`backup_cost`]), kills a catalog replica and then the order leader under load, runs
//! the same order workload against a three-member etcd cluster ([`etcd`]) in the same run, and
//! writes `report.md`, `results.json` and the figures ([`figures`], drawn by
//! [`loadgen::plot`] as SVG and PNG). Every load run also verifies its orders, so the evaluation
//! doubles as a correctness check under load and across a fail-over.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use api::client::{ReplicaClient, http_client};
use api::view::GroupView;
use launcher::{ClusterFile, LocalStore, ReplicaInfo, UpOptions};
use loadgen::plot;
use loadgen::{LoadError, LoadOptions, LoadReport, Phase, Progress};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::breakdown::{Breakdown, Scrape};
use crate::cpu::CpuMeter;
use crate::report::{
    Baseline, CatalogKill, CatchUp, EvalResults, Failover, Part, QueryPoint, ScalingPoint, Setup,
    SweepPoint, failover_figures, markdown, order_windows,
};

pub mod backup_cost;
pub mod breakdown;
pub mod cpu;
pub mod etcd;
pub mod figures;
pub mod report;

/// Default seconds of load per measured point: the whole evaluation then takes about three
/// minutes on a two-core machine.
pub const DEFAULT_SECONDS: f64 = 10.0;
/// The values of p of the sweep.
pub const SWEEP_P: [f64; 5] = [0.0, 0.2, 0.4, 0.6, 0.8];
/// Clients of the sweep and of the fail-over run.
pub const SWEEP_CLIENTS: usize = 5;
/// Client counts of the order scaling runs and the etcd baseline.
pub const SCALING_CLIENTS: [usize; 3] = [1, 8, 64];
/// Catalog restock interval. Local mode restocks a sold-out toy to
/// [`launcher::RESTOCK_QUANTITY`] units; checking every 50 ms keeps a toy sold out for 25 ms on
/// average, so stock barely limits even the 64-client order run (a round that finds nothing sold
/// out writes nothing).
pub const RESTOCK_INTERVAL_SECS: f64 = 0.05;
/// The store with the cache on (its directory under `DIR/data`).
const CACHE_ON: &str = "cache-on";
/// Frontend cache capacity when the cache is on.
pub const CACHE_CAPACITY: usize = 1000;
/// Order replicas of every store the evaluation starts: the smallest group that outlives the
/// fail-over run's SIGKILL.
pub const REPLICAS: u64 = 3;
/// Connections of the query-only runs, cache on and off.
pub const QUERY_CLIENTS: usize = 64;
/// Orders a paused replica misses before it is let go and timed catching up.
pub const DEFAULT_CATCH_UP_ORDERS: u64 = 100_000;
/// Clients that place those orders.
pub const CATCH_UP_CLIENTS: usize = 64;
/// How long a replica may take to catch up before the evaluation gives up on it.
pub const CATCH_UP_DEADLINE: Duration = Duration::from_secs(300);

/// What to run.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Where the report, results and plots go (data under `DIR/data`).
    pub out: PathBuf,
    /// Seconds of load per measured point.
    pub seconds: f64,
    /// Directory of the `catalog`, `order-replica` and `frontend` binaries.
    pub bin_dir: PathBuf,
    /// Keep the stores' data directories afterwards (by default only their logs are kept).
    pub keep_data: bool,
    /// Orders a paused replica misses before the catch-up measurement (0: not measured).
    pub catch_up_orders: u64,
}

/// What can stop the evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The options make no sense.
    #[error("invalid evaluation options: {0}")]
    Options(String),
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done ("writing DIR/report.md"), since an OS error alone names no
        /// file.
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A local store did not start.
    #[error("starting the local store ({name}): {source:#}")]
    Store {
        /// The store's name (its directory under `DIR/data`), or the restart that failed.
        name: String,
        /// The launcher's error, with its causes.
        source: anyhow::Error,
    },
    /// A load run failed (not a verification failure: those are in the results).
    #[error("load run ({what}): {source}")]
    Load {
        /// The run's name as the progress lines print it ("warm-up", "fail-over", ...).
        what: String,
        /// The load generator's error.
        source: LoadError,
    },
    /// A backup taken under load failed: a fault of the store, not a figure to skip.
    #[error("backup cost: {0}")]
    Backup(String),
    /// Encoding the results failed.
    #[error("encoding results: {0}")]
    Encode(#[from] serde_json::Error),
    /// Drawing a figure failed.
    #[error(transparent)]
    Plot(#[from] loadgen::plot::PlotError),
}

/// What the evaluation produced.
#[derive(Debug, Clone)]
pub struct EvalOutcome {
    /// `DIR/report.md`.
    pub report: PathBuf,
    /// Everything measured.
    pub results: EvalResults,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> EvalError {
    let what = what.into();
    move |source| EvalError::Io { what, source }
}

/// Runs the whole evaluation. `say` gets one line per step; `progress` the load client's
/// progress while a run is going on.
pub async fn run(
    opts: &EvalOptions,
    say: &dyn Fn(&str),
    progress: &dyn Fn(&Progress),
) -> Result<EvalOutcome, EvalError> {
    if !(opts.seconds.is_finite() && opts.seconds >= 0.5) {
        return Err(EvalError::Options(format!(
            "--seconds must be at least 0.5, got {}",
            opts.seconds
        )));
    }
    let started = Instant::now();
    let data = opts.out.join("data");
    if data.exists() {
        std::fs::remove_dir_all(&data).map_err(io(format!("clearing {}", data.display())))?;
    }
    std::fs::create_dir_all(&data).map_err(io(format!("creating {}", data.display())))?;
    let point = Duration::from_secs_f64(opts.seconds);
    let ctx = Ctx {
        opts,
        say,
        progress,
        point,
    };

    // Store 1: cache on. The p sweep, queries at many connections, the order scaling runs
    // (with the breakdown of one purchase), the catch-up of a paused replica, orders with and
    // without backups (after the catch-up: the store then holds its orders), a catalog replica
    // killed under order load, then the fail-over (last: it kills a replica of this store).
    let mut sweep = Vec::new();
    let mut queries = Vec::new();
    let mut store = ctx.up(CACHE_ON, CACHE_CAPACITY).await?;
    let on = async {
        sweep.extend(ctx.sweep(&store, true).await?);
        queries.push(ctx.queries(&store, true).await?);
        let (scaling, breakdown) = ctx.scaling(&store).await?;
        let catch_up = ctx.catch_up(&store).await?;
        let backup_cost = ctx.backup_cost(&store, &data.join(CACHE_ON)).await?;
        let catalog_kill = ctx.catalog_kill(&mut store).await?;
        let failover = ctx.failover(&store).await?;
        let parts = (catch_up, backup_cost, catalog_kill, failover);
        Ok::<_, EvalError>((scaling, breakdown, parts))
    }
    .await;
    say("stopping the cache-on store");
    store.stop().await;
    let (scaling, breakdown, (catch_up, backup_cost, catalog_kill, failover)) = on?;

    // Store 2: cache off, the same sweep and query runs.
    let mut store = ctx.up("cache-off", 0).await?;
    let off = async {
        let sweep = ctx.sweep(&store, false).await?;
        let query = ctx.queries(&store, false).await?;
        Ok::<_, EvalError>((sweep, query))
    }
    .await;
    say("stopping the cache-off store");
    store.stop().await;
    let (off_sweep, off_query) = off?;
    sweep.extend(off_sweep);
    queries.push(off_query);

    // The baseline, with no store running.
    say("etcd baseline: starting a three-member etcd cluster");
    let etcd = match etcd_baseline(&data.join("etcd"), &SCALING_CLIENTS, point).await {
        Ok(b) => {
            for r in &b.results {
                say(&format!(
                    "etcd {} clients: {:.0} puts/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
                    r.clients, r.throughput, r.latency.p50_ms, r.latency.p99_ms, r.errors
                ));
            }
            for c in &b.cpu {
                say(&format!("etcd {} clients: {}", c.clients, cpu::summary(c)));
            }
            Part::Measured(b)
        }
        Err(reason) => {
            say(&format!("etcd baseline: skipped: {reason}"));
            Part::Skipped(reason)
        }
    };

    if !opts.keep_data {
        remove_data_keep_logs(&data);
    }
    let results = EvalResults {
        setup: setup(opts, &data),
        sweep,
        queries,
        scaling,
        breakdown,
        catch_up,
        backup_cost,
        failover,
        catalog_kill,
        etcd,
        total_secs: started.elapsed().as_secs_f64(),
    };
    let report = write_outputs(&opts.out, &results)?;
    Ok(EvalOutcome { report, results })
}

/// The etcd baseline: the one place that calls [`crate::etcd`]. Any failure (no etcd, which the
/// reason says how to install; cannot start it; a workload error) becomes the reason the report
/// gives for skipping it.
async fn etcd_baseline(
    dir: &Path,
    clients: &[usize],
    duration: Duration,
) -> Result<Baseline, String> {
    use crate::etcd::{EtcdCluster, find_binary, put_workload};
    let bin = find_binary().map_err(|e| e.to_string())?;
    let cluster = EtcdCluster::start_with(&bin, dir)
        .await
        .map_err(|e| e.to_string())?;
    let endpoints = cluster.endpoints();
    let mut results = Vec::new();
    let mut cpu = Vec::new();
    let mut failure = None;
    // A short warm-up, as for the store: connections, first elections of the cluster's leases.
    let _ = put_workload(&endpoints, 4, Duration::from_secs(1)).await;
    for &n in clients {
        let meter = CpuMeter::start(
            n,
            vec![
                ("client".into(), vec![cpu::own_pid()]),
                ("etcd members".into(), cluster.pids()),
            ],
        );
        match put_workload(&endpoints, n, duration).await {
            Ok(r) => {
                cpu.push(meter.finish(r.ops));
                results.push(r);
            }
            Err(e) => {
                failure = Some(format!("{n} clients: {e}"));
                break;
            }
        }
    }
    let version = cluster.version().to_string();
    cluster.stop().await;
    match failure {
        Some(reason) => Err(reason),
        None => Ok(Baseline {
            version,
            results,
            cpu,
        }),
    }
}

/// The shared parts of every step.
struct Ctx<'a> {
    opts: &'a EvalOptions,
    say: &'a dyn Fn(&str),
    progress: &'a dyn Fn(&Progress),
    point: Duration,
}

impl Ctx<'_> {
    async fn up(&self, name: &str, cache_capacity: usize) -> Result<LocalStore, EvalError> {
        (self.say)(&format!(
            "starting a local store ({name}): catalog, {REPLICAS} order replicas, frontend"
        ));
        let store = LocalStore::up(UpOptions {
            data_dir: self.opts.out.join("data").join(name),
            port: 0,
            replicas: REPLICAS,
            restock_interval_secs: RESTOCK_INTERVAL_SECS,
            cache_capacity,
            bin_dir: self.opts.bin_dir.clone(),
            restore_from: None,
        })
        .await
        .map_err(|source| EvalError::Store {
            name: name.into(),
            source,
        })?;
        // Warm-up: connections, the cache, the first Raft batches. Not recorded.
        self.load(
            "warm-up",
            LoadOptions {
                clients: SWEEP_CLIENTS,
                duration: Some(Duration::from_secs(1)),
                p: 0.5,
                ..self.options(&store)
            },
        )
        .await?;
        Ok(store)
    }

    /// When a kill run kills (a third of a point, at least 2 s in) and how long it runs (a
    /// point, at least 8 s, after the kill).
    fn kill_timing(&self) -> (Duration, Duration) {
        let kill_after = Duration::from_secs_f64((self.point.as_secs_f64() / 3.0).max(2.0));
        (
            kill_after,
            kill_after + self.point.max(Duration::from_secs(8)),
        )
    }

    /// Orders only for `run_for`, with every answer's time kept, for a run around a kill.
    fn timed_orders(&self, store: &LocalStore, run_for: Duration) -> LoadOptions {
        LoadOptions {
            p: 1.0,
            orders_only: true,
            timeline: true,
            duration: Some(run_for),
            ..self.options(store)
        }
    }

    fn options(&self, store: &LocalStore) -> LoadOptions {
        LoadOptions {
            url: store.cluster().frontend.clone(),
            clients: SWEEP_CLIENTS,
            duration: Some(self.point),
            iterations: None,
            p: 0.5,
            seed: None,
            orders_only: false,
            timeline: false,
        }
    }

    async fn load(&self, what: &str, opts: LoadOptions) -> Result<LoadReport, EvalError> {
        self.load_observed(what, opts, &|_| {}).await
    }

    /// [`load`](Self::load), with `observe` also called on every progress report.
    async fn load_observed(
        &self,
        what: &str,
        opts: LoadOptions,
        observe: &(dyn Fn(&Progress) + Sync),
    ) -> Result<LoadReport, EvalError> {
        let report = loadgen::run(&opts, |p: &Progress| {
            observe(p);
            (self.progress)(p)
        })
        .await
        .map_err(|source| EvalError::Load {
            what: what.into(),
            source,
        })?;
        let (q, o) = (&report.query, &report.order);
        let mut line = format!("{what}: ");
        if !opts.orders_only {
            line.push_str(&format!(
                "{:.0} queries/s (p50 {:.2} ms), ",
                q.result.throughput,
                q.latency().p50_ms
            ));
        }
        line.push_str(&format!(
            "{:.0} orders/s (p50 {:.2} ms, p99 {:.2} ms), {} sold out, {} errors",
            o.result.throughput,
            o.latency().p50_ms,
            o.latency().p99_ms,
            o.sold_out,
            report.errors()
        ));
        if !report.verification.passed() {
            line.push_str(&format!("\n{}", report.verification.summary()));
        }
        (self.say)(&line);
        Ok(report)
    }

    async fn sweep(&self, store: &LocalStore, cache: bool) -> Result<Vec<SweepPoint>, EvalError> {
        let mut points = Vec::new();
        for p in SWEEP_P {
            let what = format!("cache {}, p = {p}", if cache { "on" } else { "off" });
            let r = self
                .load(
                    &what,
                    LoadOptions {
                        p,
                        ..self.options(store)
                    },
                )
                .await?;
            points.push(SweepPoint {
                cache,
                p,
                query: r.query,
                order: r.order,
                verification: r.verification,
            });
        }
        Ok(points)
    }

    /// Queries only (p = 0) at [`QUERY_CLIENTS`] connections.
    async fn queries(&self, store: &LocalStore, cache: bool) -> Result<QueryPoint, EvalError> {
        let what = format!(
            "cache {}, queries only, {QUERY_CLIENTS} clients",
            if cache { "on" } else { "off" }
        );
        let r = self
            .load(
                &what,
                LoadOptions {
                    clients: QUERY_CLIENTS,
                    p: 0.0,
                    ..self.options(store)
                },
            )
            .await?;
        Ok(QueryPoint {
            cache,
            clients: QUERY_CLIENTS,
            query: r.query,
        })
    }

    /// The order scaling runs, and the breakdown of a purchase from the first (fewest clients)
    /// from the services' metrics scraped around it.
    async fn scaling(
        &self,
        store: &LocalStore,
    ) -> Result<(Vec<ScalingPoint>, Part<Breakdown>), EvalError> {
        let cluster = store.cluster();
        let mut points = Vec::new();
        let mut breakdown = Part::Skipped("no order run".to_string());
        for clients in SCALING_CLIENTS {
            let before = scrape_store(cluster).await;
            // CPU of the load only: the meter stops when the read-back starts.
            let meter = Mutex::new(CpuMeter::start(clients, store_roles(cluster).await));
            let r = self
                .load_observed(
                    &format!("orders only, {clients} clients"),
                    LoadOptions {
                        clients,
                        p: 1.0,
                        orders_only: true,
                        ..self.options(store)
                    },
                    &|p| {
                        if p.phase == Phase::ReadBack {
                            meter.lock().expect("meter lock").stop();
                        }
                    },
                )
                .await?;
            if clients == SCALING_CLIENTS[0] {
                breakdown = match (before, scrape_store(cluster).await) {
                    (Ok((fb, rb)), Ok((fa, ra))) => Part::Measured(Breakdown::from_scrapes(
                        clients,
                        r.order.latency().mean_ms,
                        (&fb, &fa),
                        (&rb, &ra),
                    )),
                    (Err(e), _) | (_, Err(e)) => Part::Skipped(e),
                };
            }
            let cpu = meter
                .into_inner()
                .expect("meter lock")
                .finish(r.order.result.ops);
            (self.say)(&cpu::summary(&cpu));
            points.push(ScalingPoint {
                clients,
                cpu: Some(cpu),
                order: r.order,
                verification: r.verification,
            });
        }
        Ok((points, breakdown))
    }

    /// Pauses a follower (SIGSTOP), places [`EvalOptions::catch_up_orders`] orders without it,
    /// lets it go (SIGCONT) and times it until it has applied everything the leader had
    /// committed at that moment.
    async fn catch_up(&self, store: &LocalStore) -> Result<Part<CatchUp>, EvalError> {
        let orders = self.opts.catch_up_orders;
        if orders == 0 {
            return Ok(Part::Skipped("--catch-up-orders 0".into()));
        }
        let cluster = store.cluster().clone();
        let (leader, _) = match find_leader(&cluster, None, Duration::from_secs(10)).await {
            Ok(found) => found,
            Err(reason) => return Ok(Part::Skipped(reason)),
        };
        let Some(follower) = cluster.order.iter().find(|r| r.id != leader.id).cloned() else {
            return Ok(Part::Skipped("no follower".into()));
        };
        let Some(pid) = follower.pid.map(|p| Pid::from_raw(p as i32)) else {
            return Ok(Part::Skipped(format!("no pid for replica {}", follower.id)));
        };
        let (leader_client, follower_client) = match (
            replica_client(&cluster, &leader),
            replica_client(&cluster, &follower),
        ) {
            (Ok(l), Ok(f)) => (l, f),
            (Err(e), _) | (_, Err(e)) => return Ok(Part::Skipped(e)),
        };
        // What it holds when paused: if the leader purges past that, only a snapshot can bring
        // it back (a snapshot index that moves says less: it also builds its own).
        let held_before = match follower_client.status().await {
            Ok(s) => s.last_log_index,
            Err(e) => return Ok(Part::Skipped(format!("replica {}: {e}", follower.id))),
        };
        if let Err(e) = signal::kill(pid, Signal::SIGSTOP) {
            return Ok(Part::Skipped(format!("SIGSTOP of pid {pid}: {e}")));
        }
        (self.say)(&format!(
            "catch-up: replica {} paused (SIGSTOP); {orders} orders from {CATCH_UP_CLIENTS} \
             clients without it",
            follower.id
        ));
        let load = self
            .load(
                "catch-up orders",
                LoadOptions {
                    clients: CATCH_UP_CLIENTS,
                    p: 1.0,
                    orders_only: true,
                    iterations: Some(orders.div_ceil(CATCH_UP_CLIENTS as u64)),
                    duration: None,
                    ..self.options(store)
                },
            )
            .await;
        let leader_status = leader_client.status().await;
        let resumed = Instant::now();
        // Let it go whatever happened, so the fail-over and the stop find it running.
        let _ = signal::kill(pid, Signal::SIGCONT);
        let report = load?;
        let (target, leader_purged) = match leader_status {
            Ok(s) => match s.commit_index {
                Some(index) => (index, s.purged_index),
                None => return Ok(Part::Skipped("the leader reports no commit index".into())),
            },
            Err(e) => return Ok(Part::Skipped(format!("leader status: {e}"))),
        };
        let behind_at = |applied: Option<u64>| target.saturating_sub(applied.unwrap_or(0));
        let mut behind = None;
        let secs = loop {
            if let Ok(s) = follower_client.status().await {
                behind.get_or_insert(behind_at(s.applied_index));
                if s.applied_index.is_some_and(|a| a >= target) {
                    break Some(resumed.elapsed().as_secs_f64());
                }
            }
            if resumed.elapsed() > CATCH_UP_DEADLINE {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let catch_up = CatchUp {
            replica: follower.id,
            orders: report.order.result.ops + report.order.sold_out,
            target_index: target,
            entries_behind: behind,
            secs,
            by_snapshot: leader_purged > held_before,
            verification: report.verification,
        };
        (self.say)(&format!(
            "catch-up: replica {} was {} entries behind; {}",
            catch_up.replica,
            catch_up
                .entries_behind
                .map_or("an unknown number of".into(), |n| n.to_string()),
            match secs {
                Some(s) => format!(
                    "current after {s:.2} s{}",
                    if catch_up.by_snapshot {
                        " (by snapshot)"
                    } else {
                        ""
                    }
                ),
                None => format!("not current after {CATCH_UP_DEADLINE:?}"),
            }
        ));
        Ok(Part::Measured(catch_up))
    }

    /// SIGKILL of a catalog replica under order load: purchases are one command of the order
    /// group, so none may fail. The store gets a second catalog replica first if it runs one
    /// (as stores run them side by side), which keeps following the group and restocking;
    /// the one killed is the frontend's. Afterwards it is restarted and the extra one stopped,
    /// so the fail-over finds the store as it was.
    async fn catalog_kill(&self, store: &mut LocalStore) -> Result<Part<CatalogKill>, EvalError> {
        let second = store.store().catalog_count() < 2;
        if second && let Err(e) = store.store().start_catalog_at(1).await {
            return Ok(Part::Skipped(format!(
                "starting a second catalog replica: {e}"
            )));
        }
        let catalogs = store.store().catalog_count();
        let victim = store.store().catalog_at(0);
        let killed = victim.name().to_string();
        let Some(pid) = victim.pid() else {
            return Ok(Part::Skipped(format!("{killed} is not running")));
        };
        let (kill_after, run_for) = self.kill_timing();
        (self.say)(&format!(
            "catalog kill: {SWEEP_CLIENTS} clients ordering for {:.1} s with {catalogs} catalog \
             replicas; SIGKILL of {killed} (pid {pid}) after {:.1} s",
            run_for.as_secs_f64(),
            kill_after.as_secs_f64()
        ));
        let opts = self.timed_orders(store, run_for);
        let processes = store.store();
        let killer = async {
            tokio::time::sleep(kill_after).await;
            let at = Instant::now();
            processes.catalog_at(0).kill();
            at
        };
        let (report, killed_at) = tokio::join!(self.load("catalog kill", opts), killer);
        // The store as it was, whatever the run did: the frontend's catalog back, the extra one
        // gone.
        let restarted = store.store().start_catalog_at(0).await;
        if second {
            store
                .store()
                .catalog_at(1)
                .stop(Signal::SIGTERM, launcher::store::STOP_GRACE)
                .await;
        }
        let report = report?;
        restarted.map_err(|e| EvalError::Store {
            name: format!("restarting {killed}"),
            source: e.into(),
        })?;
        let kill_at = killed_at.saturating_duration_since(report.started);
        let run = Duration::from_secs_f64(report.elapsed_secs);
        let (before, after) = order_windows(&report.timeline, kill_at, run);
        let result = CatalogKill {
            killed,
            killed_pid: pid,
            catalogs,
            kill_at_secs: kill_at.as_secs_f64(),
            run_secs: report.elapsed_secs,
            before,
            after,
            order: report.order,
            verification: report.verification,
        };
        (self.say)(&format!(
            "catalog kill: {} purchases failed; {:.0} orders/s before the kill, {:.0} after",
            result.failed_purchases(),
            result.before.per_sec,
            result.after.per_sec
        ));
        Ok(Part::Measured(result))
    }

    async fn failover(&self, store: &LocalStore) -> Result<Part<Failover>, EvalError> {
        let cluster = store.cluster().clone();
        let leader = match find_leader(&cluster, None, Duration::from_secs(10)).await {
            Ok((leader, _)) => leader,
            Err(reason) => return Ok(Part::Skipped(reason)),
        };
        let Some(pid) = leader.pid else {
            return Ok(Part::Skipped(format!(
                "cluster.json has no pid for replica {}",
                leader.id
            )));
        };
        let (kill_after, run_for) = self.kill_timing();
        (self.say)(&format!(
            "fail-over: {SWEEP_CLIENTS} clients ordering for {:.1} s; SIGKILL of the leader \
             (replica {}, pid {pid}) after {:.1} s",
            run_for.as_secs_f64(),
            leader.id,
            kill_after.as_secs_f64()
        ));
        let opts = self.timed_orders(store, run_for);
        let killer = async {
            tokio::time::sleep(kill_after).await;
            let killed = Instant::now();
            let sent = signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            (killed, sent)
        };
        let (report, (killed, sent)) = tokio::join!(self.load("fail-over", opts), killer);
        let report = report?;
        if let Err(e) = sent {
            return Ok(Part::Skipped(format!("SIGKILL of pid {pid} failed: {e}")));
        }
        let kill_at = killed.saturating_duration_since(report.started);
        let (next_ack, gap, first_new, timeline) = failover_figures(&report.timeline, kill_at);
        let after = find_leader(&cluster, Some(leader.id), Duration::from_secs(10))
            .await
            .ok();
        let failover = Failover {
            killed_replica: leader.id,
            killed_pid: pid,
            kill_at_secs: kill_at.as_secs_f64(),
            run_secs: report.elapsed_secs,
            time_to_next_ack_ms: next_ack,
            ack_gap_ms: gap,
            first_new_order_ack_ms: first_new,
            order: report.order,
            new_leader: after.as_ref().map(|(r, _)| r.id),
            new_term: after.map(|(_, term)| term),
            verification: report.verification,
            timeline,
        };
        (self.say)(&format!(
            "fail-over: next acknowledged order {} after the kill; gap {}; {} client-visible errors",
            fmt_ms(failover.time_to_next_ack_ms),
            fmt_ms(failover.ack_gap_ms),
            failover.order.result.errors
        ));
        Ok(Part::Measured(failover))
    }
}

/// A client for `replica`'s API with the store's token.
fn replica_client(cluster: &ClusterFile, replica: &ReplicaInfo) -> Result<ReplicaClient, String> {
    let token = std::fs::read_to_string(&cluster.token_file)
        .map_err(|e| format!("reading {}: {e}", cluster.token_file.display()))?;
    Ok(ReplicaClient::new(
        http_client(Duration::from_secs(2)),
        &replica.url,
        Some(token.trim().to_string()),
    ))
}

/// The `/metrics` of the store's frontend, and of its replicas summed.
async fn scrape_store(cluster: &ClusterFile) -> Result<(Scrape, Scrape), String> {
    let http = http_client(Duration::from_secs(5));
    let get = |base: String| {
        let http = http.clone();
        async move {
            let url = format!("{}/metrics", base.trim_end_matches('/'));
            let text = async {
                http.get(&url)
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await
            };
            text.await
                .map(|t| Scrape::parse(&t))
                .map_err(|e| format!("{url}: {e}"))
        }
    };
    let frontend = get(cluster.frontend.clone()).await?;
    let mut replicas = Scrape::default();
    for r in &cluster.order {
        replicas.add(get(r.url.clone()).await?);
    }
    Ok((frontend, replicas))
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.0} ms"))
}

/// The processes of a local store by role, for [`CpuMeter`]: the load client (this process),
/// frontend, leader, followers, catalog (off the purchase path, but part of the store). Without
/// a known leader every replica counts as a follower.
async fn store_roles(cluster: &ClusterFile) -> Vec<(String, Vec<u32>)> {
    let leader = find_leader(cluster, None, Duration::from_secs(5))
        .await
        .ok()
        .map(|(r, _)| r.id);
    let pids = |leader_side: bool| {
        cluster
            .order
            .iter()
            .filter(|r| (Some(r.id) == leader) == leader_side)
            .filter_map(|r| r.pid)
            .collect()
    };
    vec![
        ("client".into(), vec![cpu::own_pid()]),
        (
            "frontend".into(),
            cluster.frontend_pid.into_iter().collect(),
        ),
        ("leader".into(), pids(true)),
        ("followers".into(), pids(false)),
        ("catalog".into(), cluster.catalog.pid.into_iter().collect()),
    ]
}

/// The leader among the replicas other than `except` (see [`GroupView`]) and its term, asked
/// through each replica's `/raft/status` with the token named in `cluster.json`.
async fn find_leader(
    cluster: &ClusterFile,
    except: Option<u64>,
    timeout: Duration,
) -> Result<(ReplicaInfo, u64), String> {
    let start = Instant::now();
    loop {
        let mut view = GroupView::default();
        for r in cluster.order.iter().filter(|r| Some(r.id) != except) {
            let status = replica_client(cluster, r)?.status().await;
            view.statuses
                .insert(r.id, status.map_err(|e| e.to_string()));
        }
        if let Some(l) = view.leader()
            && let Some(r) = cluster.order.iter().find(|r| r.id == l.id)
        {
            return Ok((r.clone(), l.term));
        }
        if start.elapsed() > timeout {
            let seen: Vec<String> = view
                .statuses
                .iter()
                .map(|(id, s)| match s {
                    Ok(s) => format!("replica {id} is {:?} in term {}", s.role, s.term),
                    Err(e) => format!("replica {id}: {e}"),
                })
                .collect();
            return Err(format!(
                "no order leader within {timeout:?} ({})",
                seen.join("; ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn setup(opts: &EvalOptions, data: &Path) -> Setup {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    Setup {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu: cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_string()),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_string()),
        replicas: REPLICAS,
        seconds_per_point: opts.seconds,
        sweep_clients: SWEEP_CLIENTS,
        restock_interval_secs: RESTOCK_INTERVAL_SECS,
        cache_capacity: CACHE_CAPACITY,
        data_dir: data.display().to_string(),
    }
}

/// Removes the stores' data (Raft logs, redb files) but keeps `*/logs/`, which is what one
/// reads when a figure looks odd.
fn remove_data_keep_logs(data: &Path) {
    let Ok(stores) = std::fs::read_dir(data) else {
        return;
    };
    for store in stores.flatten() {
        let Ok(entries) = std::fs::read_dir(store.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let keep = entry.file_name() == "logs"
                || entry.file_name() == "cluster.json"
                || path.extension().is_some_and(|e| e == "log");
            if keep {
                continue;
            }
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// Writes `report.md`, `results.json` and the figures (each as SVG and PNG); returns the
/// report's path.
pub fn write_outputs(out: &Path, results: &EvalResults) -> Result<PathBuf, EvalError> {
    let write = |name: &str, text: String| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(io(format!("writing {}", path.display())))
    };
    write("results.json", serde_json::to_string_pretty(results)?)?;
    for (name, charts) in figures::all(results) {
        write(&format!("{name}.svg"), plot::svg(&charts)?)?;
        plot::png(&charts, &out.join(format!("{name}.png")))?;
    }
    write("report.md", markdown(results))?;
    Ok(out.join("report.md"))
}
