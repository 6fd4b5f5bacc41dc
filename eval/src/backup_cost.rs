//! What a backup costs under load (issue 20): purchases/s and latency of an orders-only load
//! with and without `toystore backup` running back to back against the same store.
//!
//! The runs, in this order, on one store with a sizable state: a load without backups, the same
//! load while backups run one after another (each started as soon as the previous one exits,
//! until the load ends), and the load without backups again; "without" is the mean of the two
//! runs around the one with backups, so that a store that slows down as it grows does not pass
//! for the backups' cost. Each backup is the real command as a child process (`toystore backup
//! --data-dir ... --to file:///...`), as an operator would run it next to the store.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use api::backup::{BackupReport, FailureReport};
use launcher::LocalStore;
use loadgen::{KindReport, LoadOptions, LoadReport, Phase, Verification};
use serde::{Deserialize, Serialize};

use crate::report::Part;
use crate::{Ctx, EvalError, io};

/// Clients of every run of the part.
pub const BACKUP_COST_CLIENTS: usize = 8;
/// The store name the backups record in their manifests.
pub const BACKUP_STORE_NAME: &str = "eval";

/// One orders-only run of the part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRun {
    /// The run's orders: rate, latency, sold-out answers, failures by cause.
    pub order: KindReport,
    /// The read-back check of the run.
    pub verification: Verification,
}

impl From<LoadReport> for OrderRun {
    fn from(r: LoadReport) -> Self {
        Self {
            order: r.order,
            verification: r.verification,
        }
    }
}

/// The backups taken during the run with backups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupFigures {
    /// Backups completed (the last one may end a moment after the load).
    pub completed: usize,
    /// Each backup's duration as it reported it (export and write), ms.
    pub millis: Vec<u64>,
    /// Their mean, ms.
    pub mean_ms: f64,
    /// The longest, ms.
    pub max_ms: u64,
    /// Size of the last backup's state object, bytes.
    pub bytes: u64,
    /// Orders in the last backup.
    pub orders: u64,
    /// The committed index the last backup is as of.
    pub index: u64,
}

impl BackupFigures {
    /// The figures of the backups `reports` (in the order taken); `None` without any.
    pub fn from_reports(reports: &[BackupReport]) -> Option<Self> {
        let last = reports.last()?;
        let millis: Vec<u64> = reports.iter().map(|r| r.millis).collect();
        Some(Self {
            completed: reports.len(),
            mean_ms: millis.iter().sum::<u64>() as f64 / millis.len() as f64,
            max_ms: millis.iter().copied().max().unwrap_or(0),
            millis,
            bytes: last.manifest.data.size,
            orders: last.manifest.state.orders,
            index: last.manifest.state.index,
        })
    }
}

/// Purchases/s, p50 and p99 (ms) of a run, or the mean of several.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// Acknowledged purchases per second.
    pub per_sec: f64,
    /// Median purchase latency, ms.
    pub p50_ms: f64,
    /// 99th percentile purchase latency, ms.
    pub p99_ms: f64,
}

impl Rates {
    /// The figures of one run.
    pub fn of(run: &OrderRun) -> Self {
        let r = &run.order.result;
        Self {
            per_sec: r.throughput,
            p50_ms: r.latency.p50_ms,
            p99_ms: r.latency.p99_ms,
        }
    }

    /// The mean of two runs' figures.
    pub fn mean(a: Self, b: Self) -> Self {
        Self {
            per_sec: (a.per_sec + b.per_sec) / 2.0,
            p50_ms: (a.p50_ms + b.p50_ms) / 2.0,
            p99_ms: (a.p99_ms + b.p99_ms) / 2.0,
        }
    }
}

/// The part's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupCost {
    /// Concurrent clients of every run.
    pub clients: usize,
    /// The run without backups, before the one with.
    pub before: OrderRun,
    /// The run with backups back to back.
    pub with_backups: OrderRun,
    /// The run without backups, after the one with.
    pub after: OrderRun,
    /// The backups of the run with backups.
    pub backups: BackupFigures,
    /// Without backups: the mean of `before` and `after`.
    pub without: Rates,
    /// With backups: `with_backups`'s figures.
    pub with: Rates,
}

impl BackupCost {
    /// The results of the three runs and the backups; the figures are derived here so that
    /// `results.json` carries them too.
    pub fn new(
        clients: usize,
        [before, with_backups, after]: [OrderRun; 3],
        backups: BackupFigures,
    ) -> Self {
        Self {
            clients,
            without: Rates::mean(Rates::of(&before), Rates::of(&after)),
            with: Rates::of(&with_backups),
            before,
            with_backups,
            after,
            backups,
        }
    }

    /// The read-back checks of the three runs.
    pub fn verifications(&self) -> [&Verification; 3] {
        [
            &self.before.verification,
            &self.with_backups.verification,
            &self.after.verification,
        ]
    }
}

/// `toystore backup` as a child process against one local store.
struct Backups {
    /// The `toystore` binary.
    toystore: PathBuf,
    /// The store's data directory (its cluster.json and token).
    store_dir: PathBuf,
    /// The artifacts go to `DIR/artifacts`, the result files to `DIR/results`.
    dir: PathBuf,
}

impl Backups {
    fn artifacts(&self) -> PathBuf {
        self.dir.join("artifacts")
    }

    fn results(&self) -> PathBuf {
        self.dir.join("results")
    }

    fn create_dirs(&self) -> Result<(), EvalError> {
        for d in [self.artifacts(), self.results()] {
            std::fs::create_dir_all(&d).map_err(io(format!("creating {}", d.display())))?;
        }
        Ok(())
    }

    /// Backups one after another until `done`; the first failure ends them.
    async fn until(&self, done: &AtomicBool) -> Result<Vec<BackupReport>, String> {
        let mut reports = Vec::new();
        while !done.load(Ordering::Relaxed) {
            let n = reports.len() + 1;
            let report = self
                .take(n)
                .await
                .map_err(|e| format!("backup {n} failed: {e}"))?;
            reports.push(report);
        }
        Ok(reports)
    }

    /// Backup number `n`, as `eval-<n>`.
    async fn take(&self, n: usize) -> Result<BackupReport, String> {
        let name = format!("eval-{n}");
        let result_file = self.results().join(format!("{name}.json"));
        let output = tokio::process::Command::new(&self.toystore)
            .arg("backup")
            .arg("--data-dir")
            .arg(&self.store_dir)
            .arg("--to")
            .arg(file_url(&self.artifacts()))
            .args(["--store", BACKUP_STORE_NAME, "--name", &name])
            .arg("--result-file")
            .arg(&result_file)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("running {}: {e}", self.toystore.display()))?;
        let written = std::fs::read(&result_file).unwrap_or_default();
        outcome(&written, output.status.success(), &output.stderr)
    }
}

/// A `file://` URL of an absolute directory.
fn file_url(dir: &Path) -> String {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    format!("file://{}", dir.display())
}

/// A backup's outcome from its result file (`written`), whether it exited successfully, and
/// its standard error (for when it wrote no result).
fn outcome(written: &[u8], success: bool, stderr: &[u8]) -> Result<BackupReport, String> {
    if success && let Ok(report) = serde_json::from_slice::<BackupReport>(written) {
        return Ok(report);
    }
    if let Ok(failure) = serde_json::from_slice::<FailureReport>(written) {
        return Err(failure.error);
    }
    let stderr = String::from_utf8_lossy(stderr);
    let tail: Vec<&str> = stderr.trim().lines().rev().take(3).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "{} without a readable result{}",
        if success {
            "exited successfully"
        } else {
            "exited with a failure"
        },
        if tail.is_empty() {
            String::new()
        } else {
            format!(": {}", tail.join(" / "))
        }
    ))
}

impl Ctx<'_> {
    /// The part: see the [module](self). `store_dir` is `store`'s data directory; the artifacts
    /// go under `DIR/data/backup-cost` and are deleted afterwards unless the data is kept.
    pub(crate) async fn backup_cost(
        &self,
        store: &LocalStore,
        store_dir: &Path,
    ) -> Result<Part<BackupCost>, EvalError> {
        let toystore = self.opts.bin_dir.join("toystore");
        if !toystore.is_file() {
            return Ok(Part::Skipped(format!("no {}", toystore.display())));
        }
        let backups = Backups {
            toystore,
            store_dir: store_dir.to_path_buf(),
            dir: self.opts.out.join("data").join("backup-cost"),
        };
        backups.create_dirs()?;
        (self.say)(&format!(
            "backup cost: {BACKUP_COST_CLIENTS} clients ordering, without backups, with backups \
             back to back (to {}), without again",
            file_url(&backups.artifacts())
        ));
        let part = self.backup_cost_runs(store, &backups).await;
        // Removed now, not with the rest of the data at the end: they are many copies of the
        // whole state.
        if !self.opts.keep_data
            && let Err(e) = std::fs::remove_dir_all(&backups.dir)
        {
            (self.say)(&format!(
                "backup cost: cannot remove {}: {e}",
                backups.dir.display()
            ));
        }
        let part = part?;
        (self.say)(&match &part {
            Part::Measured(c) => summary(c),
            Part::Skipped(reason) => format!("backup cost: not measured: {reason}"),
        });
        Ok(part)
    }

    async fn backup_cost_runs(
        &self,
        store: &LocalStore,
        backups: &Backups,
    ) -> Result<Part<BackupCost>, EvalError> {
        let opts = || LoadOptions {
            clients: BACKUP_COST_CLIENTS,
            p: 1.0,
            orders_only: true,
            ..self.options(store)
        };
        let before = self.load("backup cost: without backups", opts()).await?;
        let (with, reports) = self.load_with_backups(opts(), backups).await;
        let with = with?;
        let after = self
            .load("backup cost: without backups, again", opts())
            .await?;
        let figures = match reports.map(|r| BackupFigures::from_reports(&r)) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(Part::Skipped("no backup completed".into())),
            // The three runs' read-back checks are lost with it: the evaluation fails instead.
            Err(e) => return Err(EvalError::Backup(e)),
        };
        let runs = [before.into(), with.into(), after.into()];
        Ok(Part::Measured(BackupCost::new(
            BACKUP_COST_CLIENTS,
            runs,
            figures,
        )))
    }

    /// The load `opts` with backups back to back until its load phase ends (not its read-back).
    async fn load_with_backups(
        &self,
        opts: LoadOptions,
        backups: &Backups,
    ) -> (
        Result<LoadReport, EvalError>,
        Result<Vec<BackupReport>, String>,
    ) {
        let done = AtomicBool::new(false);
        let load = async {
            let observe = |p: &loadgen::Progress| {
                if p.phase == Phase::ReadBack {
                    done.store(true, Ordering::Relaxed);
                }
            };
            let r = self
                .load_observed("backup cost: with backups", opts, &observe)
                .await;
            done.store(true, Ordering::Relaxed);
            r
        };
        tokio::join!(load, backups.until(&done))
    }
}

/// The part's line on the terminal.
fn summary(c: &BackupCost) -> String {
    let b = &c.backups;
    format!(
        "backup cost: {:.0} purchases/s (p99 {:.2} ms) with backups, {:.0} (p99 {:.2} ms) \
         without; {} backups of {} orders ({} bytes), mean {:.0} ms, max {} ms",
        c.with.per_sec,
        c.with.p99_ms,
        c.without.per_sec,
        c.without.p99_ms,
        b.completed,
        b.orders,
        b.bytes,
        b.mean_ms,
        b.max_ms
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use api::backup::{Manifest, StateObject, StateSummary};
    use loadgen::stats::{LatencyStats, WorkloadResult};

    pub(crate) fn backup_report(millis: u64, orders: u64, size: u64) -> BackupReport {
        BackupReport {
            url: format!("file:///tmp/b/eval-{millis}"),
            manifest: Manifest {
                artifact_format: 1,
                store: "eval".into(),
                created_at: "2026-01-01T00:00:00Z".into(),
                toystore_version: "0.1.0".into(),
                state: StateSummary {
                    storage_format: 1,
                    index: orders + 10,
                    term: 1,
                    orders,
                    refused: 0,
                    products: 10,
                },
                data: StateObject {
                    object: "state.json".into(),
                    size,
                    sha256: "00".into(),
                },
            },
            millis,
        }
    }

    pub(crate) fn run(per_sec: f64, p50: f64, p99: f64) -> OrderRun {
        OrderRun {
            order: KindReport {
                result: WorkloadResult {
                    clients: 8,
                    ops: per_sec as u64,
                    errors: 0,
                    seconds: 1.0,
                    throughput: per_sec,
                    latency: LatencyStats {
                        count: per_sec as u64,
                        p50_ms: p50,
                        p99_ms: p99,
                        ..Default::default()
                    },
                },
                ..Default::default()
            },
            verification: Verification {
                checked: per_sec as u64,
                matched: per_sec as u64,
                mismatches: vec![],
            },
        }
    }

    /// Without backups 1000 and 1200 purchases/s (p99 10 and 12 ms), with 800 (p99 22 ms);
    /// three backups of 500, 700 and 900 ms, the last of 50,000 orders in 4,000,000 bytes.
    pub(crate) fn backup_cost() -> BackupCost {
        let reports = [
            backup_report(500, 49_000, 3_900_000),
            backup_report(700, 49_500, 3_950_000),
            backup_report(900, 50_000, 4_000_000),
        ];
        BackupCost::new(
            8,
            [
                run(1000.0, 4.0, 10.0),
                run(800.0, 5.0, 22.0),
                run(1200.0, 4.0, 12.0),
            ],
            BackupFigures::from_reports(&reports).unwrap(),
        )
    }

    #[test]
    fn figures_of_the_backups_and_the_runs() {
        let c = backup_cost();
        let b = &c.backups;
        assert_eq!((b.completed, b.max_ms), (3, 900));
        assert!((b.mean_ms - 700.0).abs() < 1e-9, "{b:?}");
        assert_eq!((b.orders, b.bytes, b.index), (50_000, 4_000_000, 50_010));
        assert_eq!(b.millis, [500, 700, 900]);
        let w = c.without;
        assert!((w.per_sec - 1100.0).abs() < 1e-9 && (w.p99_ms - 11.0).abs() < 1e-9);
        assert!((c.with.per_sec - 800.0).abs() < 1e-9 && (c.with.p99_ms - 22.0).abs() < 1e-9);
        assert_eq!(c.verifications().map(|v| v.checked), [1000, 800, 1200]);
        assert_eq!(BackupFigures::from_reports(&[]), None);
    }

    #[test]
    fn a_backup_outcome_from_its_result_file() {
        let report = backup_report(5, 10, 100);
        let written = serde_json::to_vec(&report).unwrap();
        assert_eq!(outcome(&written, true, b""), Ok(report));
        let failure = br#"{"error": "no order leader within 60 s"}"#;
        assert_eq!(
            outcome(failure, false, b"log line"),
            Err("no order leader within 60 s".into())
        );
        assert_eq!(
            outcome(b"", false, b"a\nb\nc\nd\n"),
            Err("exited with a failure without a readable result: b / c / d".into())
        );
        assert_eq!(
            outcome(b"", true, b""),
            Err("exited successfully without a readable result".into())
        );
    }

    #[test]
    fn backups_go_to_a_file_url() {
        assert_eq!(file_url(Path::new("/tmp/x/b")), "file:///tmp/x/b");
    }
}
