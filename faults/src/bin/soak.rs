//! `soak`: runs fault scenarios for a long time (a seedable mix), printing each one's faults,
//! operation counts and verdict. Exits non-zero when any property was violated.
//!
//! ```sh
//! cargo run --release -p faults --bin soak -- --minutes 30 --seed 7
//! ```

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use faults::Fault;

/// Fault scenarios against real ToyStore processes, for as long as asked.
#[derive(Debug, Parser)]
struct Args {
    /// How long to run, in minutes.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Seed of the scenario mix and of every scenario (printed, so a run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds of faults per scenario.
    #[arg(long, default_value_t = 60)]
    scenario_seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Only these faults (names as printed; default: all).
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("warn")
        .init();
    let faults: Vec<Fault> = if args.faults.is_empty() {
        Fault::ALL.to_vec()
    } else {
        args.faults
            .iter()
            .map(|n| Fault::parse(n).with_context(|| format!("unknown fault {n:?}")))
            .collect::<anyhow::Result<_>>()?
    };
    // The services built beside this binary (`cargo build --release -p faults -p order-replica
    // -p catalog -p frontend --bins`); never a build of its own in the middle of a run.
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("the soak binary lives in a directory")?
        .to_path_buf();
    for name in ["catalog", "order-replica", "frontend"] {
        anyhow::ensure!(
            bin_dir.join(name).exists(),
            "{} is missing: build it with `cargo build --release -p order-replica -p catalog \
             -p frontend --bins`",
            bin_dir.join(name).display()
        );
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    println!(
        "soak: seed {seed}, {} minutes, faults {:?}",
        args.minutes,
        faults.iter().map(|f| f.name()).collect::<Vec<_>>()
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let end = Instant::now() + Duration::from_secs_f64(args.minutes * 60.0);
    let (mut runs, mut failed, mut confirmed) = (0, 0, 0);
    while Instant::now() < end {
        let fault = *faults.choose(&mut rng).expect("some fault");
        let scenario_seed = rng.random();
        let report = faults::scenario::run_with(
            fault,
            scenario_seed,
            Duration::from_secs(args.scenario_seconds),
            args.clients,
            Some(bin_dir.clone()),
        )
        .await
        .with_context(|| format!("scenario {} (seed {scenario_seed})", fault.name()))?;
        print!("{report}");
        runs += 1;
        confirmed += report.ops.confirmed;
        failed += usize::from(!report.passed());
    }
    println!("soak: {runs} scenarios, {confirmed} acknowledged orders, {failed} with violations");
    anyhow::ensure!(failed == 0, "{failed} scenarios violated a property");
    Ok(())
}
