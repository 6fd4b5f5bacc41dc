//! The load client behind `toystore load`: it measures the store and checks it at the same time.
//!
//! N concurrent sessions each query a random toy (`GET /products/{name}`) and, when it is in
//! stock, buy one with probability p (`POST /orders` with the session's own idempotency key).
//! Every request's latency is recorded by type (query, order, lookup). A load run is also a
//! correctness check: when the sessions are done, every order the store acknowledged is read
//! back (`GET /orders/{number}`) and compared with what was asked for. That comparison is the pure
//! function [`verify`], kept apart from the network so it can be tested with corrupted answers.
//!
//! Modules: `run` (the sessions and the read-back, over the network), [`stats`] (the one
//! definition of latency figures), `verify` (the read-back check), `report` (figures per request
//! type, the table, `load.json` and `load.csv`), `over_time` (latency and answers per time slice,
//! the latency-over-time chart), `progress` (the live progress line), [`plot`] (line charts as
//! SVG and PNG, shared with the evaluation).

use std::path::PathBuf;
use std::time::Duration;

use api::client::ClientError;

mod over_time;
pub mod plot;
mod progress;
mod report;
mod run;
pub mod stats;
mod verify;

pub use over_time::{MAX_SLICES, OverTime, Slice, SliceFigures};
pub use progress::{Phase, Progress, progress_line};
pub use report::{
    CHART_FILE, CSV_FILE, JSON_FILE, KindReport, LoadReport, RequestKind, TimedSample, Written,
};
pub use run::{failure_label, run};
pub use verify::{Mismatch, PlacedOrder, ReadBack, Verification, verify};

/// How long a run lasts when neither a duration nor a number of iterations is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// How long one request may take before it counts as a timeout. Longer than the frontend's own
/// order deadline (10 s), so a slow fail-over shows as a slow answer, not as a client timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The frontend's base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// Concurrent sessions.
    pub clients: usize,
    /// Stop starting sessions after this long.
    pub duration: Option<Duration>,
    /// Sessions per client (takes precedence over `duration` when both are set).
    pub iterations: Option<u64>,
    /// Probability of ordering a toy that is in stock.
    pub p: f64,
    /// Seed of the sessions' random choices (toy, buy or not); random when absent.
    pub seed: Option<u64>,
    /// Skip the query: every session just orders a random toy (order throughput runs).
    pub orders_only: bool,
    /// Keep every request of the load phase in [`LoadReport::timeline`] (for latency-over-time
    /// figures). Off by default: a run otherwise keeps no per-request data but the orders it
    /// must read back, whatever its length.
    pub timeline: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8080".into(),
            clients: 5,
            duration: None,
            iterations: None,
            p: 0.5,
            seed: None,
            orders_only: false,
            timeline: false,
        }
    }
}

/// What can stop a load run from producing a report.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The options make no sense.
    #[error("invalid load options: {0}")]
    Options(String),
    /// The toy list could not be fetched.
    #[error("listing the toys at {url}: {source}")]
    Toys {
        /// The frontend asked (`GET /products`).
        url: String,
        /// Why.
        source: ClientError,
    },
    /// The store lists no toys, so there is nothing to query.
    #[error("the store at {0} lists no toys")]
    NoToys(String),
    /// A session task died.
    #[error("a load session failed: {0}")]
    Task(String),
    /// Writing results failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file that could not be written.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Encoding results failed.
    #[error("encoding results: {0}")]
    Encode(#[from] serde_json::Error),
    /// Drawing the latency-over-time chart failed.
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
}
