//! Logging set-up shared by every binary.
//!
//! Logs go to stderr, where a supervisor (kubelet, `toystore up`, a test harness) collects them;
//! stdout stays free for what a command prints as its result. Colours only on a terminal, so
//! log files hold plain text.

use std::io::IsTerminal;

/// Sets up `tracing` logs on stderr, `text` or `json`, filtered by `RUST_LOG` (default
/// `default_filter`).
pub fn init_tracing(format: &str, default_filter: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        "json" => builder.json().init(),
        "text" => builder.init(),
        other => return Err(format!("unknown log format {other:?} (text or json)")),
    }
    Ok(())
}
