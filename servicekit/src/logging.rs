//! Logging set-up shared by every binary.
//!
//! Logs go to stderr, where a supervisor (kubelet, `toystore up`, a test harness) collects them;
//! stdout stays free for what a command prints as its result. Colours only on a terminal, so
//! log files hold plain text.
//!
//! Repeated lines are rate-limited per call site ([`RateLimit`]): a peer that is down makes
//! openraft warn on every heartbeat, dozens of times a second, which would bury everything
//! else. Each call site may log [`BURST`] lines per [`WINDOW`]; what it logged beyond that is
//! counted and summarised once per window ("N similar lines suppressed").

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::{Event, Metadata};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Lines one call site may log per [`WINDOW`] before the rest are suppressed.
pub const BURST: u32 = 5;
/// How long a call site's [`BURST`] lasts; its suppressed lines are summarised once per window.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Sets up `tracing` logs on stderr, `text` or `json`, filtered by `RUST_LOG` (default
/// `default_filter`) and rate-limited per call site.
pub fn init_tracing(format: &str, default_filter: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let fmt: Box<dyn Layer<_> + Send + Sync> = match format {
        "json" => fmt.json().boxed(),
        "text" => fmt.boxed(),
        other => return Err(format!("unknown log format {other:?} (text or json)")),
    };
    let limit = RateLimit::new(BURST, WINDOW);
    limit.report_suppressed();
    // The level filter is global, so that the rate limiter counts only events that would be
    // written (debug events it never sees).
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt.with_filter(limit))
        .try_init()
        .map_err(|e| e.to_string())
}

/// What one call site logged in the current window.
#[derive(Debug)]
struct Window {
    start: Instant,
    passed: u32,
    suppressed: u64,
    site: &'static Metadata<'static>,
}

/// A filter that lets each call site log `burst` events per `window` and counts the rest.
#[derive(Debug, Clone)]
pub struct RateLimit {
    burst: u32,
    window: Duration,
    sites: Arc<Mutex<HashMap<Identifier, Window>>>,
}

impl RateLimit {
    /// A limit of `burst` events per `window` per call site.
    pub fn new(burst: u32, window: Duration) -> Self {
        Self {
            burst,
            window,
            sites: Arc::default(),
        }
    }

    /// Whether an event of `site` may be logged now (and counts it either way).
    pub fn admit(&self, site: &'static Metadata<'static>) -> bool {
        let mut sites = self.sites.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let w = sites.entry(site.callsite()).or_insert(Window {
            start: now,
            passed: 0,
            suppressed: 0,
            site,
        });
        if now.duration_since(w.start) >= self.window && w.suppressed == 0 {
            w.start = now;
            w.passed = 0;
        }
        if w.passed < self.burst {
            w.passed += 1;
            true
        } else {
            w.suppressed += 1;
            false
        }
    }

    /// Takes the suppression counts of windows that have ended, and starts them anew.
    pub fn take_suppressed(&self) -> Vec<(&'static Metadata<'static>, u64)> {
        let mut sites = self.sites.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        sites
            .values_mut()
            .filter(|w| w.suppressed > 0 && now.duration_since(w.start) >= self.window)
            .map(|w| {
                let n = std::mem::take(&mut w.suppressed);
                w.start = now;
                w.passed = 0;
                (w.site, n)
            })
            .collect()
    }

    /// Starts a thread that logs, once per window, how many lines each call site had
    /// suppressed. (A filter cannot log from inside the dispatch of the event it drops.)
    fn report_suppressed(&self) {
        let limit = self.clone();
        let spawned = std::thread::Builder::new()
            .name("log-rate-limit".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(limit.window);
                    for (site, n) in limit.take_suppressed() {
                        tracing::warn!(
                            suppressed = n,
                            target = site.target(),
                            at = %format!("{}:{}", site.file().unwrap_or("?"), site.line().unwrap_or(0)),
                            "similar log lines suppressed in the last {:?}",
                            limit.window
                        );
                    }
                }
            });
        if let Err(e) = spawned {
            eprintln!("cannot start the log rate limiter's reporter: {e}");
        }
    }
}

impl<S> Filter<S> for RateLimit {
    fn enabled(&self, _meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _cx: &Context<'_, S>) -> bool {
        self.admit(event.metadata())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> &'static Metadata<'static> {
        struct Site;
        static META: Metadata<'static> = tracing::metadata! {
            name: "test",
            target: "servicekit::logging::tests",
            level: tracing::Level::WARN,
            fields: &[],
            callsite: &Site,
            kind: tracing::metadata::Kind::EVENT,
        };
        impl tracing::callsite::Callsite for Site {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &Metadata<'_> {
                &META
            }
        }
        &META
    }

    #[test]
    fn a_burst_passes_and_the_rest_is_counted_then_reported_once() {
        let limit = RateLimit::new(3, Duration::from_millis(50));
        let passed = (0..100).filter(|_| limit.admit(site())).count();
        assert_eq!(passed, 3);
        assert!(
            limit.take_suppressed().is_empty(),
            "nothing to report before the window ends"
        );
        std::thread::sleep(Duration::from_millis(60));
        let report = limit.take_suppressed();
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].1, 97);
        // A new window: the site may log again.
        assert!(limit.admit(site()));
    }
}
