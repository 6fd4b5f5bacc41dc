//! The frontend's command line and environment: every setting it starts with.
//!
//! Each flag can also come from a `FRONTEND_*` environment variable, which is how the operator
//! configures frontends in Kubernetes (a ConfigMap and the container's `env`). This struct is
//! that contract's one definition: the operator's tests parse every variable it writes through
//! [`Args`], so a misspelt or dropped variable fails a test instead of a pod.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::bail;
use clap::Parser;

use crate::Settings;

/// The ToyStore frontend: public REST API, product cache and storefront page.
#[derive(Debug, Clone, Parser)]
#[command(name = "frontend", version = api::VERSION, about)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "FRONTEND_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The catalog's base URL (in Kubernetes its Service), or several replicas' URLs,
    /// comma-separated, read in turn.
    #[arg(
        long,
        env = "FRONTEND_CATALOG_URL",
        value_delimiter = ',',
        required = true
    )]
    pub catalog_url: Vec<String>,
    /// Seed list of order replica URLs, comma-separated; the rest is learned.
    #[arg(
        long,
        env = "FRONTEND_ORDER_REPLICAS",
        value_delimiter = ',',
        required = true
    )]
    pub order_replicas: Vec<String>,
    /// Product cache capacity (entries); 0 turns the cache off.
    #[arg(long, env = "FRONTEND_CACHE_CAPACITY", default_value_t = 1000)]
    pub cache_capacity: usize,
    /// Deadline for placing an order, retries included, in milliseconds.
    #[arg(long, env = "FRONTEND_ORDER_DEADLINE_MS", default_value_t = 10_000)]
    pub order_deadline_ms: u64,
    /// On SIGTERM, keep serving this long (milliseconds) with /readyz failing before shutting
    /// down, so a load balancer or Service stops sending clients first. The operator sets it;
    /// 0 (local mode) stops at once.
    #[arg(long, env = "FRONTEND_SHUTDOWN_DELAY_MS", default_value_t = 0)]
    pub shutdown_delay_ms: u64,
    /// Log format: `text` or `json`.
    #[arg(long, env = "FRONTEND_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl Args {
    /// The frontend's settings.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        if self.order_replicas.iter().any(|u| u.trim().is_empty()) {
            bail!("--order-replicas must not contain empty URLs");
        }
        if self.catalog_url.iter().any(|u| u.trim().is_empty()) {
            bail!("--catalog-url must not contain empty URLs");
        }
        Ok(Settings {
            catalog_urls: self.catalog_url.clone(),
            order_replicas: self.order_replicas.clone(),
            cache_capacity: self.cache_capacity,
            order_deadline: Duration::from_millis(self.order_deadline_ms),
        })
    }

    /// How long to keep serving, unready, after the shutdown signal.
    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_millis(self.shutdown_delay_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_seed_url_is_refused() {
        let args = Args::try_parse_from([
            "frontend",
            "--catalog-url=http://catalog",
            "--order-replicas=http://a,,http://b",
        ])
        .unwrap();
        assert!(args.settings().is_err());
    }
}
