//! Logging set-up shared by every binary.

/// Sets up `tracing` logs, `text` or `json`, filtered by `RUST_LOG` (default `default_filter`).
pub fn init_tracing(format: &str, default_filter: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        "json" => builder.json().init(),
        "text" => builder.init(),
        other => return Err(format!("unknown log format {other:?} (text or json)")),
    }
    Ok(())
}
