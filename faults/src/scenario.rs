//! Scenarios: one kind of fault, repeated while the clients work, then healing and the checks.

use std::fmt;
use std::time::{Duration, Instant};

use history::{Recorder, Violation, check_all};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

use crate::net::Net;
use crate::target::{Target, TargetOptions, catalog_name};
use crate::workload::{self, OpCounts, Workload};

/// A kind of fault a scenario repeats; each has a name for the soak command ([`Fault::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL the leader, restart it a little later; again and again.
    LeaderKills,
    /// SIGKILL one or two random replicas (two of three is a lost quorum), restart them.
    RandomKills,
    /// SIGSTOP the leader for a while (it wakes up deposed), then SIGCONT.
    PauseLeader,
    /// SIGSTOP a follower for a while, then SIGCONT.
    PauseFollower,
    /// SIGKILL one catalog replica or all of them, restart them.
    CatalogKill,
    /// SIGSTOP one catalog replica or all of them, then SIGCONT.
    CatalogPause,
    /// SIGKILL every replica and every catalog at once, restart them.
    AllDown,
    /// A follower loses its data directory and comes back empty.
    LostVolume,
    /// A replica's disk fills up; freed at the end (needs root for a small filesystem).
    DiskFull,
    /// The leader is cut from everyone: peers, catalogs, frontends (network namespaces).
    IsolateLeader,
    /// The leader is cut from the other replicas only; clients and catalogs still reach it.
    LeaderCutFromPeers,
    /// A follower is cut from the other replicas: a minority on its own.
    SplitMinority,
    /// The leader stops hearing the followers, who still hear it (one-way loss).
    OneWay,
    /// Every replica loses 30 % of what the others send it.
    RandomLoss,
    /// One catalog replica or all of them cut from every order replica (and sometimes from
    /// the frontends too): their view of the inventory stops, and no purchase may notice.
    CatalogPartition,
}

impl Fault {
    /// Every fault: the soak command's mix when it is given none.
    pub const ALL: [Fault; 15] = [
        Fault::LeaderKills,
        Fault::RandomKills,
        Fault::PauseLeader,
        Fault::PauseFollower,
        Fault::CatalogKill,
        Fault::CatalogPause,
        Fault::AllDown,
        Fault::LostVolume,
        Fault::DiskFull,
        Fault::IsolateLeader,
        Fault::LeaderCutFromPeers,
        Fault::SplitMinority,
        Fault::OneWay,
        Fault::RandomLoss,
        Fault::CatalogPartition,
    ];

    /// Whether it needs network namespaces.
    pub fn is_network(self) -> bool {
        matches!(
            self,
            Fault::IsolateLeader
                | Fault::LeaderCutFromPeers
                | Fault::SplitMinority
                | Fault::OneWay
                | Fault::RandomLoss
                | Fault::CatalogPartition
        )
    }

    /// Whether it is done to the catalogs only. Purchases do not go through a catalog, so
    /// under these faults every purchase must get a definite answer.
    pub fn is_catalog(self) -> bool {
        matches!(
            self,
            Fault::CatalogKill | Fault::CatalogPause | Fault::CatalogPartition
        )
    }

    /// Its name, as the soak command takes it.
    pub fn name(self) -> &'static str {
        match self {
            Fault::LeaderKills => "leader-kills",
            Fault::RandomKills => "random-kills",
            Fault::PauseLeader => "pause-leader",
            Fault::PauseFollower => "pause-follower",
            Fault::CatalogKill => "catalog-kill",
            Fault::CatalogPause => "catalog-pause",
            Fault::AllDown => "all-down",
            Fault::LostVolume => "lost-volume",
            Fault::DiskFull => "disk-full",
            Fault::IsolateLeader => "isolate-leader",
            Fault::LeaderCutFromPeers => "leader-cut-from-peers",
            Fault::SplitMinority => "split-minority",
            Fault::OneWay => "one-way",
            Fault::RandomLoss => "random-loss",
            Fault::CatalogPartition => "catalog-partition",
        }
    }

    /// The fault called `name`.
    pub fn parse(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// What a scenario did and found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The fault the scenario repeated.
    pub fault: Fault,
    /// The seed of the clients' and the faults' choices.
    pub seed: u64,
    /// The faults done, in order, with the time since the start.
    pub faults: Vec<String>,
    /// Why the fault could not be done at all (a disk-full scenario without root): the
    /// clients then worked against a healthy store, and the report proves nothing about the
    /// fault.
    pub skipped: Option<String>,
    /// What the clients did.
    pub ops: OpCounts,
    /// Orders confirmed in the final state.
    pub orders: usize,
    /// Units sold and units restocked, over every toy, as the first replica's books say.
    pub books: (u64, u64),
    /// What the checkers found (empty: every property held).
    pub violations: Vec<Violation>,
    /// Where the store's data and logs were kept, when a property failed.
    pub kept: Option<std::path::PathBuf>,
}

impl Report {
    /// Whether every property held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.ops;
        writeln!(
            f,
            "{} (seed {}): {} faults; {} confirmed, {} refused, {} unknown ({} purchases), {} \
             reads; {} orders in the final state, {} units sold, {} restocked; {}",
            self.fault.name(),
            self.seed,
            self.faults.len(),
            o.confirmed,
            o.refused,
            o.unknown,
            o.failed_purchases,
            o.reads,
            self.orders,
            self.books.0,
            self.books.1,
            if self.passed() {
                "every property held".to_string()
            } else {
                format!("{} VIOLATIONS", self.violations.len())
            }
        )?;
        for fault in &self.faults {
            writeln!(f, "  fault: {fault}")?;
        }
        if let Some(why) = &self.skipped {
            writeln!(f, "  skipped: the fault was not done: {why}")?;
        }
        for v in &self.violations {
            writeln!(f, "  VIOLATION {v}")?;
        }
        if let Some(dir) = &self.kept {
            writeln!(
                f,
                "  the store's data and logs are kept in {}",
                dir.display()
            )?;
        }
        Ok(())
    }
}

/// Runs `fault` for `duration` against a fresh store while `clients` clients work, heals the
/// store, and checks the history against what it holds.
pub async fn run(
    fault: Fault,
    seed: u64,
    duration: Duration,
    clients: usize,
) -> anyhow::Result<Report> {
    run_with(fault, seed, duration, clients, None).await
}

/// [`run`] with the service binaries taken from `bin_dir` (`None`: the workspace's).
pub async fn run_with(
    fault: Fault,
    seed: u64,
    duration: Duration,
    clients: usize,
    bin_dir: Option<std::path::PathBuf>,
) -> anyhow::Result<Report> {
    let options = TargetOptions {
        small_disks: fault == Fault::DiskFull,
        network: fault.is_network(),
        bin_dir,
        ..TargetOptions::default()
    };
    let mut target = Target::start(&options).await?;
    let toys = target
        .store
        .catalog_client()
        .products(0)
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect();
    let recorder = Recorder::new();
    let (stop, stopped) = watch::channel(false);
    let load = tokio::spawn(workload::run(
        Workload {
            clients,
            frontends: target.frontends(),
            toys,
            seed,
        },
        recorder.clone(),
        stopped,
    ));
    let injected = inject(&mut target, fault, seed, duration).await?;
    let _ = stop.send(true);
    let keys = load.await?;
    target.heal().await?;
    let state = target.final_state(&keys).await?;
    let events = recorder.events();
    let violations = check_all(&events, &state);
    let orders = state.reference().map_or(0, |r| r.by_number.len());
    let books = state.audits.values().next().map_or((0, 0), |a| {
        a.products
            .iter()
            .fold((0, 0), |(s, r), p| (s + p.sold, r + p.restocked))
    });
    let kept = (!violations.is_empty()).then(|| target.keep());
    Ok(Report {
        fault,
        seed,
        faults: injected.log,
        skipped: injected.skipped,
        ops: OpCounts::of(&events),
        orders,
        books,
        violations,
        kept,
    })
}

/// Does `fault` again and again for `duration`; returns what it did.
async fn inject(
    target: &mut Target,
    fault: Fault,
    seed: u64,
    duration: Duration,
) -> anyhow::Result<Injected> {
    let mut injector = Injector {
        ids: target.replicas(),
        target,
        rng: StdRng::seed_from_u64(seed),
        start: Instant::now(),
        done: Injected::default(),
    };
    // Let the clients get going first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut round = 0u64;
    while injector.start.elapsed() < duration {
        round += 1;
        let pause = Duration::from_millis(injector.rng.random_range(300..1200));
        match fault {
            Fault::LeaderKills => injector.kill_leader(pause).await?,
            Fault::RandomKills => injector.kill_random_replicas(pause).await?,
            Fault::PauseLeader | Fault::PauseFollower => {
                injector.pause_replica(fault, pause).await;
            }
            Fault::CatalogKill => injector.kill_catalogs(round, pause).await?,
            Fault::CatalogPause => injector.pause_catalogs(round, pause).await,
            Fault::AllDown => injector.kill_everything(pause).await?,
            Fault::LostVolume => injector.lose_a_volume().await?,
            Fault::CatalogPartition => injector.partition_catalogs(round, pause).await?,
            Fault::IsolateLeader
            | Fault::LeaderCutFromPeers
            | Fault::SplitMinority
            | Fault::OneWay
            | Fault::RandomLoss => injector.cut_replicas(fault, pause).await?,
            Fault::DiskFull => injector.fill_a_disk(duration).await,
        }
        tokio::time::sleep(pause).await;
    }
    Ok(injector.done)
}

/// What [`inject`] did, for the report.
#[derive(Debug, Default)]
struct Injected {
    /// The faults done, each with the time since the start.
    log: Vec<String>,
    /// Why the fault could not be done at all, if it could not.
    skipped: Option<String>,
}

/// The state of one scenario's fault injection, so that each kind of fault is a method of its
/// own that draws from the same seeded choices and writes to the same log.
struct Injector<'a> {
    target: &'a mut Target,
    /// The replica ids, fixed for the scenario.
    ids: Vec<u64>,
    /// Every random choice of the faults, so that a seed replays the same scenario.
    rng: StdRng,
    start: Instant,
    done: Injected,
}

impl Injector<'_> {
    /// Logs `what` with the time since the start, so the report shows when each fault happened.
    fn note(&mut self, what: impl Into<String>) {
        let at = self.start.elapsed().as_secs_f64();
        self.done.log.push(format!("{at:>6.1}s {}", what.into()));
    }

    /// [`Fault::LeaderKills`]: the leader dies without a word and comes back a little later.
    async fn kill_leader(&mut self, pause: Duration) -> anyhow::Result<()> {
        if let Some(leader) = self.target.leader().await {
            self.target.kill_replica(leader);
            self.note(format!("SIGKILL leader {leader}"));
            tokio::time::sleep(pause).await;
            self.target.restart_replica(leader).await?;
            self.note(format!("restarted {leader}"));
        }
        Ok(())
    }

    /// [`Fault::RandomKills`]: one or two replicas die; two of three is a lost quorum.
    async fn kill_random_replicas(&mut self, pause: Duration) -> anyhow::Result<()> {
        let n = self.rng.random_range(1..=2);
        let victims: Vec<u64> = self
            .ids
            .choose_multiple(&mut self.rng, n)
            .copied()
            .collect();
        for &v in &victims {
            self.target.kill_replica(v);
        }
        self.note(format!("SIGKILL {victims:?}"));
        tokio::time::sleep(pause).await;
        for &v in &victims {
            self.target.restart_replica(v).await?;
        }
        self.note(format!("restarted {victims:?}"));
        Ok(())
    }

    /// [`Fault::PauseLeader`] and [`Fault::PauseFollower`]: a replica stops for a while and
    /// wakes up with an old view of the group.
    async fn pause_replica(&mut self, fault: Fault, pause: Duration) {
        let leader = self.target.leader().await;
        let victim = match (fault, leader) {
            (Fault::PauseLeader, Some(l)) => Some(l),
            (Fault::PauseFollower, Some(l)) => self.ids.iter().copied().find(|id| *id != l),
            _ => None,
        };
        if let Some(v) = victim {
            self.target.pause_replica(v);
            self.note(format!("SIGSTOP {v}"));
            tokio::time::sleep(pause * 2).await;
            self.target.resume_replica(v);
            self.note(format!("SIGCONT {v}"));
        }
    }

    /// [`Fault::CatalogKill`]: catalog replicas die and restart from the group's change stream.
    async fn kill_catalogs(&mut self, round: u64, pause: Duration) -> anyhow::Result<()> {
        let victims = catalog_victims(self.target, &mut self.rng, round);
        for &i in &victims {
            self.target.kill_catalog(i);
        }
        self.note(format!("SIGKILL {}", catalog_names(&victims)));
        tokio::time::sleep(pause * 2).await;
        for &i in &victims {
            self.target.restart_catalog(i).await?;
        }
        self.note(format!("restarted {}", catalog_names(&victims)));
        Ok(())
    }

    /// [`Fault::CatalogPause`]: catalog replicas stop for a while, their view of the inventory
    /// frozen.
    async fn pause_catalogs(&mut self, round: u64, pause: Duration) {
        let victims = catalog_victims(self.target, &mut self.rng, round);
        for &i in &victims {
            self.target.pause_catalog(i);
        }
        self.note(format!("SIGSTOP {}", catalog_names(&victims)));
        tokio::time::sleep(pause * 2).await;
        for &i in &victims {
            self.target.resume_catalog(i);
        }
        self.note(format!("SIGCONT {}", catalog_names(&victims)));
    }

    /// [`Fault::AllDown`]: the whole store dies at once, so everything acknowledged must come
    /// back from the disks.
    async fn kill_everything(&mut self, pause: Duration) -> anyhow::Result<()> {
        self.target.kill_everything();
        self.note("SIGKILL every replica and every catalog");
        tokio::time::sleep(pause).await;
        for &id in &self.ids {
            self.target.restart_replica(id).await?;
        }
        self.target.restart_catalogs().await?;
        self.note("restarted everything");
        Ok(())
    }

    /// [`Fault::LostVolume`]: a follower comes back empty and the membership driver replaces it.
    async fn lose_a_volume(&mut self) -> anyhow::Result<()> {
        if let Some(leader) = self.target.leader().await
            && let Some(&v) = self.ids.iter().find(|id| **id != leader)
        {
            self.target.lose_volume(v).await?;
            self.note(format!("replica {v} lost its data directory"));
            self.target.store.converge(&self.ids).await?;
            self.note(format!("replica {v} replaced by the membership driver"));
        }
        Ok(())
    }

    /// [`Fault::CatalogPartition`]: catalog replicas stop hearing the order group (and
    /// sometimes the frontends stop hearing them), which no purchase may notice.
    async fn partition_catalogs(&mut self, round: u64, pause: Duration) -> anyhow::Result<()> {
        let victims = catalog_victims(self.target, &mut self.rng, round);
        let from_frontends = self.rng.random_bool(0.5);
        let net = network(self.target);
        for &i in &victims {
            for &id in &self.ids {
                net.cut(&catalog_name(i), &format!("replica-{id}"))?;
            }
            if from_frontends {
                net.cut(&catalog_name(i), "outside")?;
            }
        }
        self.note(format!(
            "{} cut from every replica{}",
            catalog_names(&victims),
            if from_frontends {
                " and from the frontends"
            } else {
                ""
            }
        ));
        tokio::time::sleep(pause * 3).await;
        network(self.target).heal()?;
        self.note("network healed");
        Ok(())
    }

    /// The faults between order replicas ([`Fault::IsolateLeader`], ...), each around the
    /// leader of the moment; none while the group has no leader.
    async fn cut_replicas(&mut self, fault: Fault, pause: Duration) -> anyhow::Result<()> {
        let Some(leader) = self.target.leader().await else {
            return Ok(());
        };
        let what = self.cut_around(fault, leader)?;
        self.note(what);
        tokio::time::sleep(pause * 3).await;
        network(self.target).heal()?;
        self.note("network healed");
        Ok(())
    }

    /// Cuts the network as `fault` does around `leader`; returns what it did, for the log.
    fn cut_around(&mut self, fault: Fault, leader: u64) -> anyhow::Result<String> {
        let net = network(self.target);
        let ids = &self.ids;
        let name = |id: u64| format!("replica-{id}");
        let others: Vec<u64> = ids.iter().copied().filter(|i| *i != leader).collect();
        Ok(match fault {
            Fault::IsolateLeader => {
                for &o in &others {
                    net.cut(&name(leader), &name(o))?;
                }
                for i in 0..self.target.catalogs() {
                    net.cut(&name(leader), &catalog_name(i))?;
                }
                net.cut(&name(leader), "outside")?;
                format!("leader {leader} isolated")
            }
            Fault::LeaderCutFromPeers => {
                for &o in &others {
                    net.cut(&name(leader), &name(o))?;
                }
                format!("leader {leader} cut from its peers")
            }
            Fault::SplitMinority => {
                let f = *others.choose(&mut self.rng).expect("a follower");
                for &o in ids.iter().filter(|i| **i != f) {
                    net.cut(&name(f), &name(o))?;
                }
                format!("follower {f} cut from the other replicas")
            }
            Fault::OneWay => {
                for &o in &others {
                    net.drop_from(&name(leader), &name(o))?;
                }
                format!("leader {leader} hears no follower (they hear it)")
            }
            _ => {
                for &a in ids {
                    for &b in ids.iter().filter(|b| **b != a) {
                        net.lose_from(&name(a), &name(b), 0.3)?;
                    }
                }
                "30 % loss between every pair of replicas".to_string()
            }
        })
    }

    /// [`Fault::DiskFull`]: one replica's disk fills up and stays full until healing. Where no
    /// replica has a disk of its own to fill, the scenario runs without the fault and says so.
    async fn fill_a_disk(&mut self, duration: Duration) {
        let v = *self.ids.choose(&mut self.rng).expect("replicas");
        match self.target.fill_disk(v) {
            Ok(()) => self.note(format!("disk of replica {v} full")),
            Err(why) => self.done.skipped = Some(why),
        }
        // Once is enough: the disk stays full until healing.
        tokio::time::sleep(duration.saturating_sub(self.start.elapsed())).await;
    }
}

/// The network of a network scenario, where every process runs in a namespace of its own.
fn network(target: &Target) -> &Net {
    target
        .net
        .as_ref()
        .expect("network scenarios run in namespaces")
}

/// The catalog replicas a catalog fault hits in its `round`-th time (from 1): one at random,
/// then all of them, in turn (so even a short run does both).
fn catalog_victims(target: &Target, rng: &mut StdRng, round: u64) -> Vec<usize> {
    let n = target.catalogs();
    if round.is_multiple_of(2) {
        (0..n).collect()
    } else {
        vec![rng.random_range(0..n.max(1))]
    }
}

/// The catalog replicas `victims` by name, as the log says them.
fn catalog_names(victims: &[usize]) -> String {
    let names: Vec<String> = victims.iter().map(|i| catalog_name(*i)).collect();
    names.join(" and ")
}
