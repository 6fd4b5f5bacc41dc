//! The evaluation's results and the Markdown report made from them.
//!
//! Kept apart from the code that runs the evaluation ([`crate::run`]) so that what the report
//! says can be checked without starting a store: [`EvalResults`] is plain data (also written as
//! `results.json`), and [`markdown`] and [`failover_figures`] are pure functions of it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use loadgen::stats::{LatencyHistogram, WorkloadResult};

use crate::backup_cost::BackupCost;
use crate::breakdown::Breakdown;
use crate::cpu::CpuUse;
use loadgen::{KindReport, RequestKind, TimedSample, Verification};

/// A part of the evaluation that either ran or was skipped with a reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part<T> {
    /// It ran; here is what it measured.
    Measured(T),
    /// It did not run, for this reason.
    Skipped(String),
}

/// How and where the evaluation ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    /// Logical CPUs of the machine.
    pub cores: usize,
    /// CPU model, when known.
    pub cpu: Option<String>,
    /// Kernel release, when known.
    pub kernel: Option<String>,
    /// Order replicas of each store (one Raft group).
    pub replicas: u64,
    /// Seconds of load per measured point.
    pub seconds_per_point: f64,
    /// Clients of the p sweep and the fail-over run.
    pub sweep_clients: usize,
    /// Catalog restock interval, seconds.
    pub restock_interval_secs: f64,
    /// Frontend cache capacity when the cache is on.
    pub cache_capacity: usize,
    /// Where the stores kept their data.
    pub data_dir: String,
}

/// One point of the p sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Whether the frontend cache was on.
    pub cache: bool,
    /// Probability of ordering a toy in stock.
    pub p: f64,
    /// The run's queries: rate, latency, failures by cause.
    pub query: KindReport,
    /// The run's orders; the sold-out answers among them are correct answers, not failures.
    pub order: KindReport,
    /// The read-back check of the run.
    pub verification: Verification,
}

/// Queries only, at many connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryPoint {
    /// Whether the frontend cache was on.
    pub cache: bool,
    /// Concurrent clients.
    pub clients: usize,
    /// The run's queries: rate, latency, failures by cause.
    pub query: KindReport,
}

/// A replica that missed many orders (paused with SIGSTOP) becoming current again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatchUp {
    /// Id of the follower paused (never the leader, so the group goes on without it).
    pub replica: u64,
    /// Purchases placed while it was paused (acknowledged or sold out: each is one entry).
    pub orders: u64,
    /// The leader's commit index when the replica was let go.
    pub target_index: u64,
    /// Entries it had not applied when it first answered after being let go (`None`: it never
    /// answered).
    pub entries_behind: Option<u64>,
    /// From SIGCONT until it had applied up to `target_index`, seconds; `None` if it had not
    /// within the deadline.
    pub secs: Option<f64>,
    /// Whether it had to catch up by installing a snapshot: the leader had purged its log past
    /// the last entry the replica held when it was paused.
    pub by_snapshot: bool,
    /// The read-back check of the orders placed while it was paused.
    pub verification: Verification,
}

/// One point of the order scaling runs (orders only, no queries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingPoint {
    /// Concurrent clients.
    pub clients: usize,
    /// The run's orders: rate, latency, sold-out answers, failures by cause.
    pub order: KindReport,
    /// The read-back check of the run.
    pub verification: Verification,
    /// Where the CPU went during the run.
    #[serde(default)]
    pub cpu: Option<CpuUse>,
}

/// Orders around the kill, in one time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Start of the bucket, seconds relative to the kill (negative: before it), by send time.
    pub t_secs: f64,
    /// Acknowledged orders sent in the bucket.
    pub acked: u64,
    /// Failed orders sent in the bucket.
    pub failed: u64,
    /// Acknowledgements received in the bucket (whenever the order was sent).
    pub completed: u64,
    /// Median latency of the acknowledged ones, ms.
    pub p50_ms: f64,
    /// Largest latency of the acknowledged ones, ms.
    pub max_ms: f64,
}

/// The fail-over run: SIGKILL of the order leader under load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failover {
    /// Id of the replica that led when it was killed.
    pub killed_replica: u64,
    /// Its process id, to match the kill with the store's logs.
    pub killed_pid: u32,
    /// Seconds into the run the kill happened.
    pub kill_at_secs: f64,
    /// Length of the run, seconds.
    pub run_secs: f64,
    /// From the kill to the acknowledgement that ended the outage, ms (see
    /// [`failover_figures`]).
    pub time_to_next_ack_ms: Option<f64>,
    /// The outage: the longest gap between acknowledgements around the kill, ms.
    pub ack_gap_ms: Option<f64>,
    /// From the kill to the first acknowledgement of an order sent after the kill, ms.
    pub first_new_order_ack_ms: Option<f64>,
    /// The run's orders, across the fail-over: rate, slowest answer, failures by cause.
    pub order: KindReport,
    /// The leader afterwards, if one was found.
    pub new_leader: Option<u64>,
    /// The new leader's term, which shows how many elections the fail-over took.
    pub new_term: Option<u64>,
    /// The read-back check of the run (after the fail-over).
    pub verification: Verification,
    /// Latency over time, 100 ms buckets by send time.
    pub timeline: Vec<TimelinePoint>,
}

/// Acknowledged orders in a stretch of a run (by acknowledgement time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderWindow {
    /// Length of the stretch, seconds.
    pub secs: f64,
    /// Orders acknowledged in it.
    pub acked: u64,
    /// Acknowledged orders per second.
    pub per_sec: f64,
    /// Orders that ended in it without an acknowledgement (sold out, or failed).
    pub not_acked: u64,
    /// Median latency of the acknowledged ones, ms.
    pub p50_ms: f64,
    /// Largest latency of the acknowledged ones, ms.
    pub max_ms: f64,
}

/// A catalog replica SIGKILLed under order load: purchases are one command of the order group
/// and must not notice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogKill {
    /// The catalog process killed (its launcher name).
    pub killed: String,
    /// Its process id, to match the kill with the store's logs.
    pub killed_pid: u32,
    /// Catalog replicas running before the kill.
    pub catalogs: usize,
    /// Seconds into the run the kill happened.
    pub kill_at_secs: f64,
    /// Length of the run, seconds.
    pub run_secs: f64,
    /// Orders acknowledged before the kill.
    pub before: OrderWindow,
    /// Orders acknowledged after it.
    pub after: OrderWindow,
    /// The orders of the whole run; `result.errors` are the purchases that failed (must be 0).
    pub order: KindReport,
    /// The read-back check of the run.
    pub verification: Verification,
}

impl CatalogKill {
    /// Purchases of the run that failed (timeouts, 5xx, ...; not sold out).
    pub fn failed_purchases(&self) -> u64 {
        self.order.result.errors
    }
}

/// The etcd baseline: the scaling runs' order workload as plain etcd writes, the yardstick of
/// the order figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// The version of the `etcd` measured, since its write path changes between releases.
    pub version: String,
    /// One result per client count.
    pub results: Vec<WorkloadResult>,
    /// Where the CPU went, per client count.
    #[serde(default)]
    pub cpu: Vec<CpuUse>,
}

/// Everything the evaluation measured (`results.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResults {
    /// The machine and the configuration, without which no figure compares with another run's.
    pub setup: Setup,
    /// Query and order latency against p, cache on and off.
    pub sweep: Vec<SweepPoint>,
    /// Queries only at many connections, cache on and off.
    pub queries: Vec<QueryPoint>,
    /// Orders only at 1, 8, 64 clients.
    pub scaling: Vec<ScalingPoint>,
    /// Where a purchase's time goes, from the run with the fewest clients.
    pub breakdown: Part<Breakdown>,
    /// A paused replica catching up.
    pub catch_up: Part<CatchUp>,
    /// Orders with and without backups running.
    #[serde(default = "not_measured")]
    pub backup_cost: Part<BackupCost>,
    /// SIGKILL of the leader.
    pub failover: Part<Failover>,
    /// SIGKILL of a catalog replica under order load.
    #[serde(default = "not_measured")]
    pub catalog_kill: Part<CatalogKill>,
    /// The same order workload as plain etcd writes.
    pub etcd: Part<Baseline>,
    /// Wall-clock seconds of the whole evaluation.
    pub total_secs: f64,
}

fn not_measured<T>() -> Part<T> {
    Part::Skipped("not measured by this version of the evaluation".into())
}

impl EvalResults {
    /// Every read-back check of the evaluation.
    pub fn verifications(&self) -> Vec<&Verification> {
        let mut v: Vec<&Verification> = self.sweep.iter().map(|s| &s.verification).collect();
        v.extend(self.scaling.iter().map(|s| &s.verification));
        if let Part::Measured(c) = &self.catch_up {
            v.push(&c.verification);
        }
        if let Part::Measured(b) = &self.backup_cost {
            v.extend(b.verifications());
        }
        if let Part::Measured(f) = &self.failover {
            v.push(&f.verification);
        }
        if let Part::Measured(k) = &self.catalog_kill {
            v.push(&k.verification);
        }
        v
    }

    /// Acknowledged orders checked, and checks that failed.
    pub fn verification_totals(&self) -> (u64, usize) {
        let all = self.verifications();
        (
            all.iter().map(|v| v.checked).sum(),
            all.iter().filter(|v| !v.passed()).count(),
        )
    }
}

/// How long after the kill [`failover_figures`] looks for the outage.
pub const OUTAGE_WINDOW: Duration = Duration::from_secs(15);

/// The fail-over figures from a run's request timeline and the moment of the kill (both
/// relative to the start of the run).
///
/// Orders the old leader had finished before it died may still be acknowledged a moment after
/// the kill, so "the next acknowledgement" is not the first one after the kill but the one that
/// ends the outage: the longest gap between consecutive acknowledgements that ends within
/// [`OUTAGE_WINDOW`] after the kill (the gap may start before the kill). Returns the time from
/// the kill to the end of that gap, the gap's length, the time from the kill to the first
/// acknowledgement of an order sent after the kill, and 100 ms buckets of order latency by send
/// time.
pub fn failover_figures(
    timeline: &[TimedSample],
    kill: Duration,
) -> (Option<f64>, Option<f64>, Option<f64>, Vec<TimelinePoint>) {
    let orders: Vec<&TimedSample> = timeline
        .iter()
        .filter(|s| s.kind == RequestKind::Order)
        .collect();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut acks: Vec<Duration> = orders
        .iter()
        .filter(|s| s.ok)
        .map(|s| s.sent + s.latency)
        .collect();
    acks.sort();
    let prev = acks.iter().rev().find(|&&t| t <= kill).copied();
    let after: Vec<Duration> = acks
        .iter()
        .copied()
        .filter(|&t| t > kill && t <= kill + OUTAGE_WINDOW)
        .collect();
    // Each acknowledgement after the kill with the one before it (or the kill, if none).
    let outage = after
        .iter()
        .enumerate()
        .map(|(i, &end)| {
            let start = if i == 0 {
                prev.unwrap_or(kill)
            } else {
                after[i - 1]
            };
            (end - start, end)
        })
        .max_by_key(|(gap, _)| *gap);
    let next_ack = outage.map(|(_, end)| ms(end - kill));
    let gap = outage.map(|(gap, _)| ms(gap));
    let first_new = orders
        .iter()
        .filter(|s| s.ok && s.sent >= kill)
        .map(|s| s.sent + s.latency)
        .min()
        .map(|t| ms(t - kill));

    const BUCKET_NANOS: i128 = 100_000_000;
    let bucket =
        |t: Duration| (t.as_nanos() as i128 - kill.as_nanos() as i128).div_euclid(BUCKET_NANOS);
    // Per bucket: latencies of acknowledged orders sent, failed orders sent, acknowledgements
    // received.
    let mut buckets: BTreeMap<i128, (LatencyHistogram, u64, u64)> = BTreeMap::new();
    for s in &orders {
        let entry = buckets.entry(bucket(s.sent)).or_default();
        if s.ok {
            entry.0.record(s.latency);
        } else {
            entry.1 += 1;
        }
        if s.ok {
            buckets.entry(bucket(s.sent + s.latency)).or_default().2 += 1;
        }
    }
    // Every bucket from the first to the last, so silences show as zero acknowledgements.
    let first = buckets.keys().next().copied().unwrap_or(0);
    let last = buckets.keys().next_back().copied().unwrap_or(-1);
    let points = (first..=last)
        .map(|b| {
            let (latencies, failed, completed) = buckets.remove(&b).unwrap_or_default();
            let stats = latencies.stats();
            TimelinePoint {
                t_secs: (b * BUCKET_NANOS) as f64 / 1e9,
                acked: stats.count,
                failed,
                completed,
                p50_ms: stats.p50_ms,
                max_ms: stats.max_ms,
            }
        })
        .collect();
    (next_ack, gap, first_new, points)
}

/// The acknowledged orders of a run before and after a moment (`kill`, since the start of the
/// run), by acknowledgement time, over a run of `run` in all.
pub fn order_windows(
    timeline: &[TimedSample],
    kill: Duration,
    run: Duration,
) -> (OrderWindow, OrderWindow) {
    let mut windows = [
        (LatencyHistogram::default(), 0u64),
        (LatencyHistogram::default(), 0u64),
    ];
    for s in timeline.iter().filter(|s| s.kind == RequestKind::Order) {
        let w = &mut windows[usize::from(s.sent + s.latency >= kill)];
        if s.ok {
            w.0.record(s.latency);
        } else {
            w.1 += 1;
        }
    }
    let secs = [kill.as_secs_f64(), run.saturating_sub(kill).as_secs_f64()];
    let [before, after] = [0, 1].map(|i| {
        let stats = windows[i].0.stats();
        OrderWindow {
            secs: secs[i],
            acked: stats.count,
            per_sec: if secs[i] > 0.0 {
                stats.count as f64 / secs[i]
            } else {
                0.0
            },
            not_acked: windows[i].1,
            p50_ms: stats.p50_ms,
            max_ms: stats.max_ms,
        }
    });
    (before, after)
}

/// A time that may not have been measured, in the report's "n/a" rather than a made-up 0.
fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.0} ms"))
}

/// The failed requests of a run by cause ("2× 503, 1× timeout"), since a bare count would not
/// say whether the store or the client gave up.
fn failures(k: &KindReport) -> String {
    let list: Vec<String> = k
        .errors_by_status
        .iter()
        .map(|(status, n)| format!("{n}× {status}"))
        .collect();
    if list.is_empty() {
        "0".into()
    } else {
        list.join(", ")
    }
}

/// `a / b` to two places, or "n/a" where the baseline measured nothing to divide by.
fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "n/a".into()
    }
}

/// The Markdown report (`report.md`): one section per part of the evaluation, in the order
/// they ran, each saying what it measured or why it was skipped.
pub fn markdown(r: &EvalResults) -> String {
    let mut out = String::from("# ToyStore evaluation\n\n");
    let _ = writeln!(
        out,
        "Printed by `toystore eval` in {:.0} s.\n",
        r.total_secs
    );
    for section in [
        setup_section(r),
        sweep_section(r),
        queries_section(r),
        scaling_section(r),
        breakdown_section(&r.breakdown),
        catch_up_section(&r.catch_up),
        backup_cost_section(&r.backup_cost, r.setup.seconds_per_point),
        failover_section(r),
        catalog_kill_section(r),
        etcd_section(r),
        cpu_section(r),
    ] {
        out.push_str(&section);
    }
    out.push_str("Raw figures: [results.json](results.json).\n");
    out
}

/// "Setup": the machine, the store's configuration and the load, without which no figure can
/// be compared with another run's; and the read-back totals, so that fast figures from a run
/// that lost orders cannot pass unnoticed.
fn setup_section(r: &EvalResults) -> String {
    let s = &r.setup;
    let (checked, failed) = r.verification_totals();
    let mut out = String::from("## Setup\n\n");
    let _ = writeln!(
        out,
        "- Machine: {} logical CPUs{}{}; every process on this one machine, over loopback.",
        s.cores,
        s.cpu.as_ref().map_or(String::new(), |c| format!(" ({c})")),
        s.kernel
            .as_ref()
            .map_or(String::new(), |k| format!(", Linux {k}"))
    );
    let _ = writeln!(
        out,
        "- Store: local mode (`toystore up`): {} order replicas (Raft; their state machine holds \
         the stock and the orders), a catalog (stateless: it follows the order group's change \
         stream, serves the queries and restocks through the group) and one frontend. \
         **fsync on**: every Raft log append is `fdatasync`ed before it counts (state-machine \
         applies are not: the log is the durability, docs/design.md); the catalog keeps no \
         data. Data under `{}`.",
        s.replicas, s.data_dir
    );
    let _ = writeln!(
        out,
        "- Each point: {:.0} s of closed-loop load by `toystore load` sessions (each client one \
         request at a time). Restock every {} s. Cache on = LRU of {} entries, off = capacity 0.",
        s.seconds_per_point, s.restock_interval_secs, s.cache_capacity
    );
    let _ = writeln!(
        out,
        "- Correctness: after every run each acknowledged order was read back and compared: \
         {checked} orders checked, {}.\n",
        if failed == 0 {
            "all matched".to_string()
        } else {
            format!("**{failed} runs FAILED verification** (see results.json)")
        }
    );
    out
}

/// "Query and order latency against p": the mixed workload the store is built for, where the
/// share of orders decides whether the cache or the order group sets the pace.
fn sweep_section(r: &EvalResults) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Query and order latency against p ({} clients)\n",
        r.setup.sweep_clients
    );
    out.push_str(
        "A session queries a random toy and, if it is in stock, orders one with probability p.\n\n\
         | cache | p | queries/s | query p50 ms | query p99 ms | orders/s | order p50 ms | order p99 ms | sold out | errors |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for pt in &r.sweep {
        let (q, o) = (&pt.query.result, &pt.order.result);
        // No orders (p = 0): no order latency to show.
        let order_ms = |v: f64| {
            if o.ops == 0 {
                "–".to_string()
            } else {
                format!("{v:.2}")
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.0} | {} | {} | {} | {} |",
            if pt.cache { "on" } else { "off" },
            pt.p,
            q.throughput,
            q.latency.p50_ms,
            q.latency.p99_ms,
            o.throughput,
            order_ms(o.latency.p50_ms),
            order_ms(o.latency.p99_ms),
            pt.order.sold_out,
            match (failures(&pt.query).as_str(), failures(&pt.order).as_str()) {
                ("0", "0") => "0".to_string(),
                (q, o) => format!("query: {q}; order: {o}"),
            }
        );
    }
    out.push_str("\n![query and order latency against p](latency_vs_p.svg)\n\n");
    out
}

/// "Queries at many connections": what the frontend cache buys when reads alone load the
/// store; empty when the evaluation did not run them.
fn queries_section(r: &EvalResults) -> String {
    let mut out = String::new();
    if r.queries.is_empty() {
        return out;
    }
    out.push_str("## Queries at many connections, cache on and off\n\n");
    out.push_str(
        "Queries only (p = 0): each client reads one toy at a time through the frontend.\n\n\
         | cache | clients | queries/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|\n",
    );
    for q in &r.queries {
        let res = &q.query.result;
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {} |",
            if q.cache { "on" } else { "off" },
            q.clients,
            res.throughput,
            res.latency.p50_ms,
            res.latency.p99_ms,
            failures(&q.query)
        );
    }
    out.push('\n');
    out
}

/// "Order throughput and latency": the cost of one Raft commit per purchase as clients are
/// added, the figures the etcd baseline is compared with.
fn scaling_section(r: &EvalResults) -> String {
    let mut out = String::from("## Order throughput and latency (orders only)\n\n");
    out.push_str(
        "Each client orders one unit of a random toy, one order at a time, through the frontend. \
         Every order is one Raft commit: the Purchase command, which the order group applies \
         atomically (key lookup, stock check, decrement, the next order number); no catalog is \
         on the way.\n\n\
         | clients | orders | orders/s | p50 ms | p90 ms | p99 ms | max ms | sold out | errors |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for pt in &r.scaling {
        let o = &pt.order.result;
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
            pt.clients,
            o.ops,
            o.throughput,
            o.latency.p50_ms,
            o.latency.p90_ms,
            o.latency.p99_ms,
            o.latency.max_ms,
            pt.order.sold_out,
            failures(&pt.order)
        );
    }
    out.push_str("\n![order scaling](order_scaling.svg)\n\n");
    out
}

/// "Where a purchase's time goes": which layer to make cheaper, which the end-to-end latency
/// alone cannot say.
fn breakdown_section(breakdown: &Part<Breakdown>) -> String {
    let mut out = String::from("## Where a purchase's time goes\n\n");
    let b = match breakdown {
        Part::Skipped(reason) => {
            let _ = writeln!(out, "breakdown: skipped: {reason}\n");
            return out;
        }
        Part::Measured(b) => b,
    };
    let _ = writeln!(
        out,
        "Means over the {}-client run ({} purchases), from the client's timing and the \
         services' own histograms (`/metrics`): each row is what one layer adds around \
         the one inside it.\n",
        b.clients, b.purchases
    );
    out.push_str("| hop | mean ms | share |\n|---|---|---|\n");
    for (hop, ms) in b.hops() {
        let _ = writeln!(
            out,
            "| {hop} | {} | {} |",
            ms.map_or("n/a".into(), |v| format!("{v:.2}")),
            ms.map_or("n/a".into(), |v| format!(
                "{:.0} %",
                100.0 * v / b.client_ms
            ))
        );
    }
    let _ = writeln!(
        out,
        "| **purchase, as the client saw it** | **{:.2}** | 100 % |\n",
        b.client_ms
    );
    out
}

/// "Catch-up": how long a replica that fell far behind takes to count again, which bounds how
/// long the group runs with one failure to spare.
fn catch_up_section(catch_up: &Part<CatchUp>) -> String {
    let mut out = String::from("## Catch-up: a replica that missed many orders\n\n");
    let c = match catch_up {
        Part::Skipped(reason) => {
            let _ = writeln!(out, "catch-up: skipped: {reason}\n");
            return out;
        }
        Part::Measured(c) => c,
    };
    let _ = writeln!(
        out,
        "Replica {} was paused (SIGSTOP) while {} purchases were placed without it, \
         then let go (SIGCONT) and timed until it had applied the leader's commit index \
         at that moment ({}).\n",
        c.replica, c.orders, c.target_index
    );
    out.push_str("| figure | value |\n|---|---|\n");
    let behind = c
        .entries_behind
        .map_or("unknown (it never answered)".into(), |n| n.to_string());
    let _ = writeln!(out, "| entries behind when let go | {behind} |");
    let _ = writeln!(
        out,
        "| time to become current | {} |",
        c.secs
            .map_or("not current within the deadline".into(), |s| format!(
                "{s:.2} s"
            ))
    );
    let _ = writeln!(
        out,
        "| by snapshot | {} |",
        if c.by_snapshot {
            "yes"
        } else {
            "no (log only)"
        }
    );
    let _ = writeln!(
        out,
        "| orders read back | {} of {} match |\n",
        c.verification.matched, c.verification.checked
    );
    out
}

/// "Backup cost under load": what a backup running next to the store takes from purchases,
/// and what a backup of a sizable state takes.
fn backup_cost_section(part: &Part<BackupCost>, seconds: f64) -> String {
    let mut out = String::from("## Backup cost under load\n\n");
    let c = match part {
        Part::Skipped(reason) => {
            let _ = writeln!(out, "backup cost: not measured: {reason}\n");
            return out;
        }
        Part::Measured(c) => c,
    };
    let (b, w, with) = (&c.backups, &c.without, &c.with);
    let _ = writeln!(
        out,
        "{} clients ordering (orders only) on the cache-on store after the earlier runs ({} \
         orders in the last backup); three runs of {seconds:.0} s in this order: without \
         backups, with `toystore backup` run back to back (each to a `file://` directory on \
         the same disk, started as soon as the previous one exited), without again. \
         \"Without\" is the mean of the two runs without ({:.0} and {:.0} purchases/s, p99 \
         {:.2} and {:.2} ms).\n",
        c.clients,
        b.orders,
        c.before.order.result.throughput,
        c.after.order.result.throughput,
        c.before.order.result.latency.p99_ms,
        c.after.order.result.latency.p99_ms
    );
    out.push_str(
        "| | without backups (mean of 2 runs) | with backups | with / without |\n\
         |---|---|---|---|\n",
    );
    let _ = writeln!(
        out,
        "| purchases/s | {:.0} | {:.0} | {} |",
        w.per_sec,
        with.per_sec,
        ratio(with.per_sec, w.per_sec)
    );
    for (name, a, bk) in [
        ("p50", w.p50_ms, with.p50_ms),
        ("p99", w.p99_ms, with.p99_ms),
    ] {
        let _ = writeln!(out, "| {name} ms | {a:.2} | {bk:.2} | {} |", ratio(bk, a));
    }
    let _ = writeln!(
        out,
        "| failed purchases (without: first + second run) | {} + {} | {} | |\n",
        c.before.order.result.errors,
        c.after.order.result.errors,
        c.with_backups.order.result.errors
    );
    out.push_str("| backups | value |\n|---|---|\n");
    let _ = writeln!(
        out,
        "| completed during the run (the last may end just after it) | {} |",
        b.completed
    );
    let _ = writeln!(
        out,
        "| duration, mean / max | {:.0} / {} ms |",
        b.mean_ms, b.max_ms
    );
    let _ = writeln!(out, "| state size (last backup) | {} bytes |", b.bytes);
    let _ = writeln!(
        out,
        "| orders in the last backup | {} (as of index {}) |\n",
        b.orders, b.index
    );
    out
}

/// "Fail-over": what clients see when the leader dies under load (the outage, the errors, the
/// orders still all there afterwards).
fn failover_section(r: &EvalResults) -> String {
    let mut out = String::from("## Fail-over: SIGKILL of the order leader\n\n");
    let f = match &r.failover {
        Part::Skipped(reason) => {
            let _ = writeln!(out, "fail-over: skipped: {reason}\n");
            return out;
        }
        Part::Measured(f) => f,
    };
    let _ = writeln!(
        out,
        "{} clients ordering; the leader (replica {}, pid {}) was killed with SIGKILL \
         {:.1} s into a {:.1} s run.\n",
        r.setup.sweep_clients, f.killed_replica, f.killed_pid, f.kill_at_secs, f.run_secs
    );
    out.push_str("| figure | value |\n|---|---|\n");
    let _ = writeln!(
        out,
        "| time from the kill to the next acknowledged order (end of the outage) | {} |",
        opt_ms(f.time_to_next_ack_ms)
    );
    let _ = writeln!(
        out,
        "| outage: longest gap between acknowledged orders | {} |",
        opt_ms(f.ack_gap_ms)
    );
    let _ = writeln!(
        out,
        "| kill to first acknowledgement of an order sent after it | {} |",
        opt_ms(f.first_new_order_ack_ms)
    );
    let _ = writeln!(out, "| client-visible errors | {} |", failures(&f.order));
    let _ = writeln!(
        out,
        "| orders acknowledged / slowest | {} / {:.0} ms |",
        f.order.result.ops, f.order.result.latency.max_ms
    );
    let _ = writeln!(
        out,
        "| new leader | {} |",
        match (f.new_leader, f.new_term) {
            (Some(id), Some(term)) => format!("replica {id} (term {term})"),
            (Some(id), None) => format!("replica {id}"),
            _ => "not found".into(),
        }
    );
    let _ = writeln!(
        out,
        "| acknowledged orders read back after the fail-over | {} of {} match |",
        f.verification.matched, f.verification.checked
    );
    out.push_str(
        "\nAcknowledgements of orders the old leader had already finished can still \
         arrive just after the kill, so the outage is measured as the longest silence \
         between acknowledgements that ends after it. The frontend retries with the same \
         idempotency key across the election, so clients see the fail-over as slow \
         answers; errors count everything but out-of-stock (409) answers.\n",
    );
    out.push_str("\n![latency over the fail-over](failover.svg)\n\n");
    out
}

/// "A catalog replica SIGKILLed under order load": purchases failed (must be 0), and the
/// purchase rate before and after the kill.
fn catalog_kill_section(r: &EvalResults) -> String {
    let mut out = String::from("## A catalog replica SIGKILLed under order load\n\n");
    let k = match &r.catalog_kill {
        Part::Skipped(reason) => {
            let _ = writeln!(out, "catalog kill: skipped: {reason}\n");
            return out;
        }
        Part::Measured(k) => k,
    };
    let _ = writeln!(
        out,
        "{} clients ordering (orders only); `{}` (pid {}, a catalog the frontend reads from; \
         {} catalog replicas were running, {}) was killed with SIGKILL {:.1} s into a {:.1} s \
         run, and restarted after it. A purchase is one command of the order group: no catalog \
         is on its way, so the kill must not fail one.\n",
        r.setup.sweep_clients,
        k.killed,
        k.killed_pid,
        k.catalogs,
        match k.catalogs {
            0 | 1 => "no other was left to restock",
            2 => "the other kept following the order group and restocking",
            _ => "the others kept following the order group and restocking",
        },
        k.kill_at_secs,
        k.run_secs
    );
    let failed = k.failed_purchases();
    let _ = writeln!(
        out,
        "**Purchases failed: {failed}**{}\n",
        if failed == 0 {
            String::new()
        } else {
            format!(
                " ({}) — a purchase depended on the catalog: this is a bug",
                failures(&k.order)
            )
        }
    );
    out.push_str(
        "| orders | before the kill | after the kill |\n\
         |---|---|---|\n",
    );
    let (b, a) = (&k.before, &k.after);
    let _ = writeln!(out, "| seconds | {:.1} | {:.1} |", b.secs, a.secs);
    let _ = writeln!(out, "| acknowledged | {} | {} |", b.acked, a.acked);
    let _ = writeln!(
        out,
        "| acknowledged per second | {:.0} | {:.0} |",
        b.per_sec, a.per_sec
    );
    let _ = writeln!(
        out,
        "| p50 / max latency | {:.2} / {:.0} ms | {:.2} / {:.0} ms |",
        b.p50_ms, b.max_ms, a.p50_ms, a.max_ms
    );
    let _ = writeln!(
        out,
        "| not acknowledged (sold out or failed) | {} | {} |",
        b.not_acked, a.not_acked
    );
    let _ = writeln!(
        out,
        "\nRate after / before: {}. Sold out over the run: {}. Acknowledged orders read back: {} \
         of {} match.\n",
        ratio(a.per_sec, b.per_sec),
        k.order.sold_out,
        k.verification.matched,
        k.verification.checked
    );
    out
}

/// "Baseline": the same workload as plain etcd writes, so that the order figures have a
/// yardstick (the cost of one Raft commit in a store people trust) instead of standing alone.
fn etcd_section(r: &EvalResults) -> String {
    let mut out = String::from("## Baseline: the same order workload as etcd writes\n\n");
    let b = match &r.etcd {
        Part::Skipped(reason) => {
            let _ = writeln!(out, "etcd baseline: skipped: {reason}\n");
            return out;
        }
        Part::Measured(b) => b,
    };
    let _ = writeln!(
        out,
        "Three etcd {} members on this machine (fsync on, etcd's default), the same \
         closed-loop clients doing one PUT of an order-like value at a time over \
         HTTP/JSON. Ratio = ToyStore / etcd (throughput: above 1 is better for ToyStore; \
         latency: below 1 is better).\n",
        b.version
    );
    out.push_str(
        "| clients | etcd puts/s | etcd p50 ms | etcd p99 ms | ToyStore orders/s | throughput ratio | p50 ratio | p99 ratio |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for e in &b.results {
        let Some(t) = r.scaling.iter().find(|pt| pt.clients == e.clients) else {
            continue;
        };
        let t = &t.order.result;
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.2} | {:.2} | {:.0} | {} | {} | {} |",
            e.clients,
            e.throughput,
            e.latency.p50_ms,
            e.latency.p99_ms,
            t.throughput,
            ratio(t.throughput, e.throughput),
            ratio(t.latency.p50_ms, e.latency.p50_ms),
            ratio(t.latency.p99_ms, e.latency.p99_ms)
        );
    }
    out.push_str(
        "\nAn etcd PUT is one Raft commit of a key; a ToyStore order is one Raft commit \
         too (the Purchase command) behind a frontend hop, so a ratio near 1 means the \
         same cost per commit; what separates them is the frontend hop, HTTP/JSON and \
         the state machine's apply.\n\n",
    );
    out
}

/// "Where the CPU goes": CPU per purchase and per etcd put, by process, and the throughput
/// the machine's cores allow when they are all busy.
fn cpu_section(r: &EvalResults) -> String {
    let etcd: &[CpuUse] = match &r.etcd {
        Part::Measured(b) => &b.cpu,
        Part::Skipped(_) => &[],
    };
    let store: Vec<&CpuUse> = r.scaling.iter().filter_map(|p| p.cpu.as_ref()).collect();
    if store.is_empty() {
        return String::new();
    }
    let mut out = String::from("## Where the CPU goes\n\n");
    let _ = writeln!(
        out,
        "CPU time (user + system, from `/proc`) of every process during the order runs, per \
         successful operation; busy cores are the whole machine's ({} logical CPUs). The load \
         client runs inside `toystore eval` and is counted as `client`. The catalog is not on \
         a purchase's way, but it follows every change of the order group and restocks, so \
         its CPU counts as part of the store's.\n",
        r.setup.cores
    );
    out.push_str(
        "| clients | system | ops/s | busy cores | CPU ms/op | by process, CPU ms/op |\n\
         |---|---|---|---|---|---|\n",
    );
    for s in &store {
        cpu_row(&mut out, "ToyStore", s);
        if let Some(e) = etcd.iter().find(|e| e.clients == s.clients) {
            cpu_row(&mut out, "etcd", e);
        }
    }
    let notes: Vec<String> = store
        .iter()
        .filter_map(|s| {
            let e = etcd.iter().find(|e| e.clients == s.clients)?;
            Some(cpu_note(s, e, r.setup.cores))
        })
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        out.push_str(&notes.join("\n"));
        out.push('\n');
    }
    out.push('\n');
    out
}

/// One row of the CPU table: a system's rate, busy cores and CPU per operation, by process,
/// so that the processes to make cheaper stand out.
fn cpu_row(out: &mut String, system: &str, c: &CpuUse) {
    let by: Vec<String> = c
        .roles
        .iter()
        .map(|r| format!("{} {:.3}", r.role, r.ms_per_op))
        .collect();
    let _ = writeln!(
        out,
        "| {} | {system} | {:.0} | {:.2} | {:.3} | {} |",
        c.clients,
        c.ops as f64 / c.wall_secs.max(1e-9),
        c.machine_busy_cores,
        c.total_ms_per_op,
        by.join(" · ")
    );
}

/// CPU milliseconds per operation of the processes playing any of `roles`.
fn role_ms(c: &CpuUse, roles: &[&str]) -> f64 {
    c.roles
        .iter()
        .filter(|r| roles.contains(&r.role.as_str()))
        .map(|r| r.ms_per_op)
        .sum()
}

/// The note comparing the store (`s`) with etcd (`e`) at one client count: replicas against
/// members, since that is the like-for-like cost of a commit, and, where the cores were busy,
/// the rate the CPU allows, against the rate etcd reached.
fn cpu_note(s: &CpuUse, e: &CpuUse, cores: usize) -> String {
    let mut note = format!(
        "- {} clients: the order replicas spent {:.3} ms per purchase (one Raft entry each), \
         etcd's members {:.3} ms per put",
        s.clients,
        role_ms(s, &["leader", "followers"]),
        role_ms(e, &["etcd members"])
    );
    if s.roles.iter().any(|r| r.role == "catalog") {
        let _ = write!(
            note,
            "; the catalog, off the purchase path, {:.3} ms per purchase",
            role_ms(s, &["catalog"])
        );
    }
    // The ceiling holds only where the CPU is what limits throughput: all the cores'
    // time divided by what a purchase costs, against the rate etcd reached.
    let etcd_rate = e.ops as f64 / e.wall_secs.max(1e-9);
    if s.machine_busy_cores >= 0.9 * cores as f64 && s.total_ms_per_op > 0.0 && etcd_rate > 0.0 {
        let ceiling = cores as f64 * 1000.0 / s.total_ms_per_op;
        let _ = write!(
            note,
            "; with the cores {:.0} % busy, all {} of them could do at most {ceiling:.0} \
             purchases/s at this cost, {:.2}× the rate etcd reached",
            100.0 * s.machine_busy_cores / cores as f64,
            cores,
            ceiling / etcd_rate
        );
    }
    note.push('.');
    note
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cpu::RoleCpu;
    use loadgen::stats::LatencyStats;

    fn kind(ops: u64, p50: f64) -> KindReport {
        KindReport {
            result: WorkloadResult {
                clients: 5,
                ops,
                errors: 0,
                seconds: 1.0,
                throughput: ops as f64,
                latency: LatencyStats {
                    count: ops,
                    p50_ms: p50,
                    p99_ms: p50 * 2.0,
                    ..Default::default()
                },
            },
            ..Default::default()
        }
    }

    pub(crate) fn results() -> EvalResults {
        EvalResults {
            setup: Setup {
                cores: 2,
                cpu: None,
                kernel: None,
                replicas: 3,
                seconds_per_point: 8.0,
                sweep_clients: 5,
                restock_interval_secs: 0.2,
                cache_capacity: 1000,
                data_dir: "/tmp/x".into(),
            },
            sweep: vec![SweepPoint {
                cache: true,
                p: 0.2,
                query: kind(1000, 0.5),
                order: kind(100, 6.0),
                verification: Verification {
                    checked: 100,
                    matched: 100,
                    mismatches: vec![],
                },
            }],
            queries: vec![QueryPoint {
                cache: false,
                clients: 64,
                query: kind(3000, 20.0),
            }],
            scaling: vec![ScalingPoint {
                clients: 8,
                order: kind(2000, 4.0),
                verification: Verification::default(),
                cpu: None,
            }],
            breakdown: Part::Skipped("no metrics".into()),
            backup_cost: Part::Skipped("no toystore binary".into()),
            catch_up: Part::Measured(CatchUp {
                replica: 2,
                orders: 1000,
                target_index: 2100,
                entries_behind: Some(2000),
                secs: Some(1.5),
                by_snapshot: true,
                verification: Verification::default(),
            }),
            failover: Part::Skipped("no leader".into()),
            catalog_kill: Part::Skipped("no catalog".into()),
            etcd: Part::Skipped("etcd is not installed".into()),
            total_secs: 100.0,
        }
    }

    #[test]
    fn report_has_the_tables_and_says_what_was_skipped() {
        let md = markdown(&results());
        assert!(
            md.contains("| on | 0.2 | 1000 | 0.50 | 1.00 | 100 | 6.00 | 12.00 | 0 | 0 |"),
            "{md}"
        );
        assert!(md.contains("| 8 | 2000 | 2000 |"), "{md}");
        assert!(md.contains("etcd baseline: skipped: etcd is not installed"));
        assert!(md.contains("fail-over: skipped: no leader"));
        assert!(
            md.contains("| off | 64 | 3000 | 20.00 | 40.00 | 0 |"),
            "{md}"
        );
        assert!(md.contains("breakdown: skipped: no metrics"));
        assert!(md.contains("| time to become current | 1.50 s |"), "{md}");
        assert!(md.contains("| entries behind when let go | 2000 |"), "{md}");
        assert!(md.contains("100 orders checked, all matched"));
        assert!(md.contains("fsync on"));
        assert!(md.contains("catalog kill: skipped: no catalog"), "{md}");
    }

    /// [`results`] with an etcd baseline at 8 clients: 4000 puts/s, p50 2 ms, p99 4 ms.
    pub(crate) fn results_with_etcd() -> EvalResults {
        let mut etcd = kind(4000, 2.0).result;
        etcd.clients = 8;
        EvalResults {
            etcd: Part::Measured(Baseline {
                version: "3.4.23".into(),
                results: vec![etcd],
                cpu: Vec::new(),
            }),
            ..results()
        }
    }

    fn cpu(clients: usize, ops: u64, roles: &[(&str, f64)], busy: f64) -> CpuUse {
        let roles: Vec<RoleCpu> = roles
            .iter()
            .map(|&(role, ms)| RoleCpu {
                role: role.into(),
                cpu_secs: ms * ops as f64 / 1000.0,
                ms_per_op: ms,
            })
            .collect();
        CpuUse {
            clients,
            ops,
            wall_secs: 1.0,
            total_ms_per_op: roles.iter().map(|r| r.ms_per_op).sum(),
            roles,
            machine_busy_cores: busy,
        }
    }

    #[test]
    fn report_says_where_the_cpu_goes_and_the_throughput_it_allows() {
        let mut r = results_with_etcd();
        r.scaling[0].cpu = Some(cpu(
            8,
            2000,
            &[("client", 0.1), ("leader", 0.8), ("catalog", 0.1)],
            2.0,
        ));
        if let Part::Measured(b) = &mut r.etcd {
            // 4000 puts in 2 s: etcd reached 2000/s, the most two cores allow a purchase that
            // costs 1 ms of CPU.
            let mut etcd = cpu(8, 4000, &[("client", 0.1), ("etcd members", 0.4)], 1.9);
            etcd.wall_secs = 2.0;
            b.cpu.push(etcd);
        }
        let md = markdown(&r);
        assert!(
            md.contains(
                "| 8 | ToyStore | 2000 | 2.00 | 1.000 | client 0.100 · leader 0.800 · catalog \
                 0.100 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| 8 | etcd | 2000 | 1.90 | 0.500 | client 0.100 · etcd members 0.400 |"),
            "{md}"
        );
        assert!(
            md.contains(
                "- 8 clients: the order replicas spent 0.800 ms per purchase (one Raft entry each), \
                 etcd's members 0.400 ms per put; the catalog, off the purchase path, 0.100 ms \
                 per purchase; with the cores 100 % busy, all 2 of them could do at most 2000 \
                 purchases/s at this cost, 1.00× the rate etcd reached."
            ),
            "{md}"
        );
        // Where the cores were not busy, no bound is claimed.
        r.scaling[0].cpu.as_mut().unwrap().machine_busy_cores = 1.0;
        assert!(!markdown(&r).contains("could do at most"));
        // Without CPU figures there is no section.
        assert!(!markdown(&results_with_etcd()).contains("Where the CPU goes"));
    }

    #[test]
    fn report_prints_ratios_to_etcd() {
        let md = markdown(&results_with_etcd());
        assert!(
            md.contains("| 8 | 4000 | 2.00 | 4.00 | 2000 | 0.50 | 2.00 | 2.00 |"),
            "{md}"
        );
    }

    #[test]
    fn failover_figures_from_a_timeline() {
        let ms = Duration::from_millis;
        let order = |sent: u64, latency: u64, ok: bool| TimedSample {
            sent: ms(sent),
            latency: ms(latency),
            kind: RequestKind::Order,
            ok,
        };
        let timeline = vec![
            order(900, 5, true),   // acked at 905
            order(995, 6, true),   // finished by the old leader, acked at 1001, after the kill
            order(990, 700, true), // in flight at the kill (1000), acked at 1690
            order(1695, 5, true),  // sent after the kill, acked at 1700
            order(1700, 3, false), // an error
            TimedSample {
                sent: ms(1000),
                latency: ms(1),
                kind: RequestKind::Query,
                ok: true,
            },
        ];
        let (next, gap, first_new, points) = failover_figures(&timeline, ms(1000));
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-6;
        assert!(close(next, 690.0), "{next:?}");
        assert!(close(gap, 689.0), "{gap:?}");
        assert!(close(first_new, 700.0), "{first_new:?}");
        // Buckets -1 (sent 900..1000) through 7 (sent 1700..1800), silent ones included.
        assert_eq!(points.len(), 9);
        assert!((points[0].t_secs + 0.1).abs() < 1e-9);
        assert_eq!((points[0].acked, points[0].completed), (3, 1));
        // Within the latency histogram's precision (0.1 %).
        assert!(
            (points[0].max_ms - 700.0).abs() <= 0.7,
            "{}",
            points[0].max_ms
        );
        assert_eq!(
            (points[1].acked, points[1].completed),
            (0, 1),
            "the ack at 1001"
        );
        assert!(
            points[2..7]
                .iter()
                .all(|p| p.acked + p.completed + p.failed == 0)
        );
        let figures = |p: &TimelinePoint| (p.acked, p.failed, p.completed);
        assert_eq!(figures(&points[7]), (1, 0, 1), "sent 1695; the ack at 1690");
        assert_eq!(
            figures(&points[8]),
            (0, 1, 1),
            "the failure; the ack at 1700"
        );
        assert_eq!(failover_figures(&[], ms(1)).0, None);
    }

    fn catalog_kill(failed: u64) -> CatalogKill {
        let mut order = kind(3000, 3.0);
        order.result.errors = failed;
        if failed > 0 {
            order.errors_by_status.insert("503".into(), failed);
        }
        order.sold_out = 4;
        CatalogKill {
            killed: "catalog".into(),
            killed_pid: 4242,
            catalogs: 2,
            kill_at_secs: 3.0,
            run_secs: 11.0,
            before: OrderWindow {
                secs: 3.0,
                acked: 900,
                per_sec: 300.0,
                not_acked: 1,
                p50_ms: 3.0,
                max_ms: 20.0,
            },
            after: OrderWindow {
                secs: 8.0,
                acked: 2480,
                per_sec: 310.0,
                not_acked: 3,
                p50_ms: 2.9,
                max_ms: 25.0,
            },
            order,
            verification: Verification {
                checked: 3380,
                matched: 3380,
                mismatches: vec![],
            },
        }
    }

    #[test]
    fn report_shows_the_catalog_kill_and_its_failed_purchases() {
        let mut r = results();
        r.catalog_kill = Part::Measured(catalog_kill(0));
        let md = markdown(&r);
        assert!(
            md.contains("## A catalog replica SIGKILLed under order load"),
            "{md}"
        );
        assert!(md.contains("**Purchases failed: 0**\n"), "{md}");
        assert!(
            md.contains(
                "`catalog` (pid 4242, a catalog the frontend reads from; 2 catalog \
                 replicas were running, the other kept following"
            ),
            "{md}"
        );
        assert!(
            md.contains("| acknowledged per second | 300 | 310 |"),
            "{md}"
        );
        assert!(
            md.contains("| p50 / max latency | 3.00 / 20 ms | 2.90 / 25 ms |"),
            "{md}"
        );
        assert!(
            md.contains("| not acknowledged (sold out or failed) | 1 | 3 |"),
            "{md}"
        );
        assert!(md.contains("Rate after / before: 1.03."), "{md}");
        // Its read-back counts with the others.
        assert!(md.contains("3480 orders checked, all matched"), "{md}");
        // A failed purchase is called what it is.
        r.catalog_kill = Part::Measured(catalog_kill(2));
        let md = markdown(&r);
        assert!(
            md.contains("**Purchases failed: 2** (2× 503) — a purchase depended on the catalog"),
            "{md}"
        );
    }

    #[test]
    fn report_shows_the_backup_cost() {
        let mut r = results();
        assert!(
            markdown(&r).contains("backup cost: not measured: no toystore binary"),
            "{}",
            markdown(&r)
        );
        let mut cost = crate::backup_cost::tests::backup_cost();
        cost.before.order.result.errors = 1;
        cost.after.order.result.errors = 2;
        cost.with_backups.order.result.errors = 3;
        r.backup_cost = Part::Measured(cost);
        let md = markdown(&r);
        assert!(md.contains("## Backup cost under load"), "{md}");
        assert!(md.contains("(50000 orders in the last backup)"), "{md}");
        assert!(
            md.contains("(1000 and 1200 purchases/s, p99 10.00 and 12.00 ms)"),
            "{md}"
        );
        assert!(md.contains("| purchases/s | 1100 | 800 | 0.73 |"), "{md}");
        assert!(md.contains("| p50 ms | 4.00 | 5.00 | 1.25 |"), "{md}");
        assert!(md.contains("| p99 ms | 11.00 | 22.00 | 2.00 |"), "{md}");
        assert!(
            md.contains("| failed purchases (without: first + second run) | 1 + 2 | 3 | |"),
            "{md}"
        );
        assert!(md.contains("the last may end just after it) | 3 |"), "{md}");
        assert!(
            md.contains("| duration, mean / max | 700 / 900 ms |"),
            "{md}"
        );
        assert!(
            md.contains("| state size (last backup) | 4000000 bytes |"),
            "{md}"
        );
        assert!(
            md.contains("| orders in the last backup | 50000 (as of index 50010) |"),
            "{md}"
        );
        // Its three read-backs count with the others (100 from the sweep).
        assert!(md.contains("3100 orders checked, all matched"), "{md}");
    }

    #[test]
    fn results_without_a_backup_cost_still_read() {
        let mut json = serde_json::to_value(results()).unwrap();
        json.as_object_mut().unwrap().remove("backup_cost");
        let r: EvalResults = serde_json::from_value(json).unwrap();
        assert!(matches!(r.backup_cost, Part::Skipped(_)));
    }

    #[test]
    fn results_without_a_catalog_kill_still_read() {
        let mut json = serde_json::to_value(results()).unwrap();
        json.as_object_mut().unwrap().remove("catalog_kill");
        let r: EvalResults = serde_json::from_value(json).unwrap();
        assert!(matches!(r.catalog_kill, Part::Skipped(_)));
    }

    #[test]
    fn order_windows_split_a_run_at_the_kill() {
        let ms = Duration::from_millis;
        let order = |sent: u64, latency: u64, ok: bool| TimedSample {
            sent: ms(sent),
            latency: ms(latency),
            kind: RequestKind::Order,
            ok,
        };
        let timeline = vec![
            order(0, 10, true),
            order(500, 30, true),
            order(990, 20, true), // acknowledged at 1010, after the kill
            order(1100, 5, false),
            order(1500, 10, true),
            TimedSample {
                sent: ms(100),
                latency: ms(1),
                kind: RequestKind::Query,
                ok: true,
            },
        ];
        let (before, after) = order_windows(&timeline, ms(1000), ms(3000));
        assert_eq!((before.acked, before.not_acked), (2, 0));
        assert_eq!((after.acked, after.not_acked), (2, 1));
        assert!((before.secs - 1.0).abs() < 1e-9 && (after.secs - 2.0).abs() < 1e-9);
        assert!((before.per_sec - 2.0).abs() < 1e-9, "{before:?}");
        assert!((after.per_sec - 1.0).abs() < 1e-9, "{after:?}");
        assert!((before.max_ms - 30.0).abs() <= 0.1, "{before:?}");
        let (_, empty) = order_windows(&[], ms(1000), ms(1000));
        assert_eq!(
            (empty.acked, empty.not_acked, empty.per_sec, empty.secs),
            (0, 0, 0.0, 0.0)
        );
    }

    /// The report describes the store as it is: one Raft commit per purchase, no catalog on
    /// its way; nothing of the protocol it replaced.
    #[test]
    fn report_says_nothing_of_the_old_purchase_protocol() {
        let mut r = results_with_etcd();
        r.scaling[0].cpu = Some(cpu(8, 2000, &[("client", 0.1), ("leader", 0.9)], 2.0));
        r.catalog_kill = Part::Measured(catalog_kill(0));
        r.breakdown = Part::Measured(Breakdown {
            clients: 1,
            purchases: 100,
            client_ms: 5.0,
            frontend_ms: Some(4.0),
            leader_ms: Some(3.0),
            commit_ms: Some(2.5),
        });
        let md = markdown(&r);
        for stale in [
            "Pending",
            "Resolve",
            "stock take",
            "take at the catalog",
            "two Raft commits",
            "two per purchase",
            "redb",
            "1/2",
        ] {
            assert!(
                !md.contains(stale),
                "the report still says {stale:?}:\n{md}"
            );
        }
        assert!(md.contains("Every order is one Raft commit"), "{md}");
        assert!(
            md.contains(
                "| leader: commit of the Purchase command (append, replicate, majority fsync, \
                 apply) | 2.50 | 50 % |"
            ),
            "{md}"
        );
    }
}
