//! The catalog's command line and environment: every setting it starts with.
//!
//! Each flag can also come from a `CATALOG_*` environment variable, which is how the operator
//! configures the catalog in Kubernetes (a ConfigMap and the container's `env`). This struct
//! is that contract's one definition: the operator's tests parse every variable it writes
//! through [`Args`], so a misspelt or dropped variable fails a test instead of a pod.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::server::Settings;

/// The ToyStore catalog: a stateless service over the order group. It serves the toys from its
/// view of the group's inventory, relays the group's changes as a long-poll change feed,
/// defines the toys at a store's first start and restocks sold-out toys through the group.
#[derive(Debug, Clone, Parser)]
#[command(name = "catalog", version = api::VERSION)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "CATALOG_LISTEN", default_value = "127.0.0.1:7100")]
    pub listen: SocketAddr,
    /// Seed list of order replica URLs, comma-separated; the rest is learned.
    #[arg(
        long,
        env = "CATALOG_ORDER_REPLICAS",
        value_delimiter = ',',
        required = true
    )]
    pub order_replicas: Vec<String>,
    /// JSON array of {"name", "price", "quantity"} defining the toys at a store's first start
    /// only (default: twelve built-in toys, 300 to 4,000 of each).
    #[arg(long, env = "CATALOG_PRODUCTS")]
    pub products: Option<PathBuf>,
    /// Seconds between restock rounds (fractions allowed).
    #[arg(long, env = "CATALOG_RESTOCK_INTERVAL_SECS", default_value_t = 10.0, value_parser = parse_interval)]
    pub restock_interval_secs: f64,
    /// Stock a sold-out toy is restocked to.
    #[arg(long, env = "CATALOG_RESTOCK_QUANTITY", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub restock_quantity: u32,
    /// The cluster token: the order group's change stream and inventory commands need it.
    #[arg(long, env = "CATALOG_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the cluster token (e.g. a mounted Secret); used when --token is not given.
    #[arg(long, env = "CATALOG_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "CATALOG_LOG_FORMAT", default_value = "text",
          value_parser = ["text", "json"])]
    pub log_format: String,
}

impl Args {
    /// The catalog's settings; fails without a cluster token.
    pub fn settings(&self) -> Result<Settings, String> {
        let token = servicekit::read_token(self.token.clone(), self.token_file.as_deref())?
            .ok_or("a cluster token is required: --token or --token-file")?;
        if self.order_replicas.iter().any(|u| u.trim().is_empty()) {
            return Err("--order-replicas must not contain empty URLs".into());
        }
        Ok(Settings {
            listen: self.listen,
            order_replicas: self.order_replicas.clone(),
            products_file: self.products.clone(),
            restock_interval: Duration::from_secs_f64(self.restock_interval_secs),
            restock_quantity: self.restock_quantity,
            token,
        })
    }
}

/// Accepts a positive, finite number of seconds up to one day.
fn parse_interval(s: &str) -> Result<f64, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "must be more than 0 and at most 86400 seconds, got {s}"
        ));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restock_interval_is_positive_and_at_most_a_day() {
        assert_eq!(parse_interval("0.5"), Ok(0.5));
        assert_eq!(parse_interval("86400"), Ok(86_400.0));
        for bad in ["0", "-1", "86401", "inf", "NaN", "soon"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}
