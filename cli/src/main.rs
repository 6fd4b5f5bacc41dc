//! `toystore`: run the store locally, load it, evaluate it.
//!
//! Only argument parsing and wiring: `up` is [`launcher`], `load` is [`loadgen`], `eval` is
//! [`eval`]. `main` sets up logging and hands each subcommand to its `run_*` function.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod backup;

use eval::EvalOptions;
use launcher::{LocalStore, UpOptions};
use loadgen::{LoadOptions, LoadReport, Progress};

/// ToyStore on one machine.
#[derive(Debug, Parser)]
#[command(name = "toystore", version = api::VERSION, about)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

/// The subcommands; each variant's doc comment is its `--help`.
#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start the whole store (catalog, order replicas, frontend) as local processes and keep
    /// it running until Ctrl-C.
    Up(UpArgs),
    /// The lab client: concurrent sessions query a random toy and, if it is in stock, order it
    /// with probability p; then every acknowledged order is read back and checked. Exits
    /// non-zero when the check fails or, with --max-errors, too many requests failed.
    Load(LoadArgs),
    /// The evaluation, end to end on local stores: query and order latency against p with the
    /// cache on and off, order throughput at 1, 8 and 64 clients, fail-over after a SIGKILL of
    /// the leader, and the etcd baseline. Writes report.md, results.json and the figures (SVG and PNG).
    Eval(EvalArgs),
    /// Back up a store: its order group's state as of one committed index, taken through the
    /// leader while sales go on, written with a manifest (store, time, index, sizes, SHA-256)
    /// to an object store or a directory. `toystore backup verify URL` checks an artifact.
    Backup(backup::BackupArgs),
    /// Seed one new order-replica data directory from a backup (what the operator's restore
    /// Job runs; locally, use `toystore up --restore-from URL`).
    Restore(backup::RestoreArgs),
}

/// The flags of `toystore up`, a struct of their own so that [`run_up`] takes them whole.
/// (The subcommand's help is the doc comment of its `Cmd` variant, which wins over this one.)
#[derive(Debug, clap::Args)]
struct UpArgs {
    /// Where all data, logs and `cluster.json` live. Reusing it resumes with all data.
    #[arg(long, default_value = "toystore-data")]
    data_dir: PathBuf,
    /// The frontend's (storefront's) port; the other services take free ports.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Catalog restock interval, seconds (more than 0, at most 86400).
    #[arg(long, default_value_t = 10.0, value_parser = restock_interval)]
    restock_interval: f64,
    /// Frontend cache capacity; 0 turns the cache off.
    #[arg(long, default_value_t = 1000)]
    cache_capacity: usize,
    /// Number of order replicas (odd, 1-9).
    #[arg(long, default_value_t = 3, value_parser = odd_replicas)]
    replicas: u64,
    /// Restart children that die unexpectedly.
    #[arg(long)]
    supervise: bool,
    /// Create the store from this backup (URL as `toystore backup` printed it); --data-dir must
    /// be new. The store starts with the backup's orders and stock.
    #[arg(long, value_name = "URL")]
    restore_from: Option<String>,
}

/// The flags of `toystore load`, taken whole by [`run_load`].
#[derive(Debug, clap::Args)]
struct LoadArgs {
    /// The frontend (public API) URL; `http://` is assumed when no scheme is given.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_parser = base_url)]
    url: String,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    clients: u64,
    /// Run for this many seconds (default 10 when --iterations is not given).
    #[arg(long, conflicts_with = "iterations")]
    duration: Option<f64>,
    /// Run this many sessions per client instead of a fixed time.
    #[arg(long)]
    iterations: Option<u64>,
    /// Probability of ordering a toy that is in stock.
    #[arg(long, default_value_t = 0.5)]
    p: f64,
    /// Seed of the sessions' random choices (random when absent).
    #[arg(long)]
    seed: Option<u64>,
    /// Skip the query: every session just orders a random toy.
    #[arg(long)]
    orders_only: bool,
    /// Write load.json (full report), load.csv (one row per request type) and the
    /// latency-over-time chart (latency_over_time.svg and .png) here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit non-zero when more than this many requests failed (sold-out and unknown-toy
    /// answers are not failures). Unlimited when absent.
    #[arg(long)]
    max_errors: Option<u64>,
}

/// The flags of `toystore eval`, taken whole by [`run_eval`].
#[derive(Debug, clap::Args)]
struct EvalArgs {
    /// Where the report, results and plots go (store data under DIR/data).
    #[arg(long, default_value = "eval-results")]
    out: PathBuf,
    /// Seconds of load per measured point.
    #[arg(long, default_value_t = eval::DEFAULT_SECONDS)]
    seconds: f64,
    /// Keep the stores' data directories (by default only their logs are kept).
    #[arg(long)]
    keep_data: bool,
    /// Orders a paused replica misses before the catch-up measurement (0: skip it).
    #[arg(long, default_value_t = eval::DEFAULT_CATCH_UP_ORDERS)]
    catch_up_orders: u64,
}

/// A one-line progress bar on stderr, redrawn in place; nothing when stderr is not a terminal.
fn show_progress(p: &Progress) {
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = write!(err, "\r{}\x1b[K", loadgen::progress_line(p));
        let _ = err.flush();
    }
}

/// Clears the progress line, if one is shown.
fn clear_progress() {
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
    }
}

/// Where the service binaries are: beside `toystore`, as `cargo build` and the image put them.
fn bin_dir() -> anyhow::Result<PathBuf> {
    Ok(std::env::current_exe()?
        .parent()
        .context("locating the toystore binary")?
        .to_path_buf())
}

/// An odd number of replicas from 1 to 9: a majority is then always well defined.
fn odd_replicas(s: &str) -> Result<u64, String> {
    let n: u64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(1..=9).contains(&n) || n.is_multiple_of(2) {
        return Err(format!(
            "must be odd and from 1 to 9 (1, 3, 5, 7 or 9), got {n}"
        ));
    }
    Ok(n)
}

/// A restock interval the catalog accepts: more than 0 and at most a day, in seconds.
fn restock_interval(s: &str) -> Result<f64, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "must be more than 0 and at most 86400 seconds, got {s}"
        ));
    }
    Ok(secs)
}

/// A base URL: `http://` is added when no scheme is given; anything else must parse.
fn base_url(s: &str) -> Result<String, String> {
    let url = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    let parsed = reqwest::Url::parse(&url).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "{s:?} must be an http:// or https:// URL with a host"
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Wiring only: the stop signal first, then logging, then the subcommand's `run_*`.
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Installed first: Ctrl-C while the store is still starting must stop it cleanly too.
    let shutdown = servicekit::shutdown_signal();
    init_logging(&args.command)?;
    match args.command {
        Cmd::Up(up) => run_up(up, shutdown).await,
        Cmd::Load(load) => run_load(load).await,
        Cmd::Eval(eval) => run_eval(eval).await,
        Cmd::Backup(args) => backup::run_backup(args).await,
        Cmd::Restore(args) => backup::run_restore(args).await,
    }
}

/// The services' own log set-up (stderr, colours only on a terminal, rate-limited), at a level
/// that suits the command: `up` narrates what it starts; `load` and `eval` print their own
/// results, so only their warnings.
fn init_logging(command: &Cmd) -> anyhow::Result<()> {
    let default_filter = match command {
        Cmd::Up(_) | Cmd::Backup(_) | Cmd::Restore(_) => "info",
        Cmd::Load(_) | Cmd::Eval(_) => "warn",
    };
    servicekit::init_tracing("text", default_filter).map_err(anyhow::Error::msg)
}

/// `toystore up`: starts the store, says where everything runs, and keeps it running until
/// `shutdown`.
async fn run_up(up: UpArgs, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let store = LocalStore::up(UpOptions {
        data_dir: up.data_dir.clone(),
        port: up.port,
        replicas: up.replicas,
        restock_interval_secs: up.restock_interval,
        cache_capacity: up.cache_capacity,
        bin_dir: bin_dir()?,
        restore_from: up.restore_from.clone(),
    })
    .await
    .context("starting the local store")?;
    print_addresses(&store, &up.data_dir);
    store.run_until(shutdown, up.supervise).await
}

/// Prints the URL of every service and where `cluster.json` is, so the user can reach them.
fn print_addresses(store: &LocalStore, data_dir: &Path) {
    let cluster = store.cluster();
    println!("catalog at {}", cluster.catalog.url);
    for r in &cluster.order {
        println!("order replica {} at {}", r.id, r.url);
    }
    println!("storefront: {}/", cluster.frontend);
    println!(
        "store ready; described in {}; Ctrl-C stops it",
        data_dir.join("cluster.json").display()
    );
}

/// `toystore load`: runs the load, prints (and writes) its report, and fails as the flags ask.
async fn run_load(load: LoadArgs) -> anyhow::Result<()> {
    let (out, max_errors) = (load.out.clone(), load.max_errors);
    let opts = load_options(load)?;
    let report = loadgen::run(&opts, show_progress).await;
    clear_progress();
    let report = report.context("running the load")?;
    print!("{}", report.table());
    if let Some(dir) = out {
        let written = report
            .write(&dir)
            .with_context(|| format!("writing results to {}", dir.display()))?;
        println!("results: {written}");
    }
    check_load(&report, max_errors)
}

/// The load generator's options from the flags; a duration that is no time is refused here,
/// before anything is sent.
fn load_options(load: LoadArgs) -> anyhow::Result<LoadOptions> {
    let duration = load
        .duration
        .map(|d| {
            Duration::try_from_secs_f64(d)
                .map_err(|_| anyhow::anyhow!("--duration must be a number of seconds ≥ 0"))
        })
        .transpose()?;
    Ok(LoadOptions {
        url: load.url,
        clients: load.clients as usize,
        duration,
        iterations: load.iterations,
        p: load.p,
        seed: load.seed,
        orders_only: load.orders_only,
        timeline: false,
    })
}

/// The exit status of a load run: an order that did not read back as placed always fails it,
/// failed requests only beyond `--max-errors`.
fn check_load(report: &LoadReport, max_errors: Option<u64>) -> anyhow::Result<()> {
    if !report.verification.passed() {
        anyhow::bail!(
            "verification failed: {} of {} acknowledged orders did not read back as placed",
            report.verification.checked - report.verification.matched,
            report.verification.checked
        );
    }
    if let Some(max) = max_errors
        && report.errors() > max
    {
        anyhow::bail!(
            "{} requests failed, more than --max-errors {max}",
            report.errors()
        );
    }
    Ok(())
}

/// `toystore eval`: runs the evaluation with its progress on the terminal, and fails when any
/// load run's read-back did.
async fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    let opts = eval_options(args)?;
    let say = |line: &str| {
        clear_progress();
        println!("{line}");
    };
    let outcome = eval::run(&opts, &say, &show_progress).await;
    clear_progress();
    let outcome = outcome.context("running the evaluation")?;
    println!("report: {}", outcome.report.display());
    let (checked, failed) = outcome.results.verification_totals();
    if failed > 0 {
        anyhow::bail!(
            "{failed} load runs failed verification ({checked} orders checked); see {}",
            outcome.report.display()
        );
    }
    Ok(())
}

/// The evaluation's options from the flags; the output directory is made and made absolute
/// first, so that one that cannot be written fails before any store starts.
fn eval_options(args: EvalArgs) -> anyhow::Result<EvalOptions> {
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let out = out
        .canonicalize()
        .with_context(|| format!("resolving {}", out.display()))?;
    Ok(EvalOptions {
        out,
        seconds: args.seconds,
        bin_dir: bin_dir()?,
        keep_data: args.keep_data,
        catch_up_orders: args.catch_up_orders,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_checked_before_anything_starts() {
        for ok in ["1", "3", "9"] {
            assert!(odd_replicas(ok).is_ok(), "{ok}");
        }
        for bad in ["0", "2", "4", "11", "-1", "three"] {
            assert!(odd_replicas(bad).is_err(), "{bad}");
        }
        assert_eq!(restock_interval("0.5"), Ok(0.5));
        for bad in ["0", "-1", "86401", "NaN", "inf"] {
            assert!(restock_interval(bad).is_err(), "{bad}");
        }
        assert_eq!(
            base_url("127.0.0.1:18080").unwrap(),
            "http://127.0.0.1:18080"
        );
        assert_eq!(
            base_url("https://shop.example/").unwrap(),
            "https://shop.example"
        );
        assert!(base_url("ftp://x").is_err());
        assert!(base_url("http://").is_err());
    }

    #[test]
    fn the_command_calls_itself_toystore() {
        use clap::CommandFactory;
        let cmd = Args::command();
        assert_eq!(cmd.get_name(), "toystore");
        assert!(cmd.render_version().starts_with("toystore "));
    }
}
