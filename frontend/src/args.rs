//! The frontend's command line: [`api::settings::Frontend`], every flag and `FRONTEND_*`
//! variable (written once, there, for the operator and the launcher too), and how it resolves
//! into the [`Settings`] a frontend runs with.

use std::time::Duration;

use anyhow::bail;
use api::settings::Frontend;
use clap::Parser;

use crate::Settings;

/// The ToyStore frontend: public REST API, product cache and storefront page.
#[derive(Debug, Clone, Parser)]
#[command(name = "frontend", version = api::VERSION, about)]
pub struct Args {
    /// Every setting (see [`Frontend`]).
    #[command(flatten)]
    pub settings: Frontend,
}

impl TryFrom<&Frontend> for Settings {
    type Error = anyhow::Error;

    /// The frontend's settings, with the defaults of the settings not given.
    fn try_from(given: &Frontend) -> anyhow::Result<Self> {
        for (flag, urls) in [
            ("--order-replicas", &given.order_replicas),
            ("--catalog-url", &given.catalog_url),
        ] {
            if urls.is_empty() {
                bail!("{flag} is required");
            }
            if urls.iter().any(|u| u.trim().is_empty()) {
                bail!("{flag} must not contain empty URLs");
            }
        }
        let ms = |value: Option<u64>, default| Duration::from_millis(value.unwrap_or(default));
        Ok(Settings {
            catalog_urls: given.catalog_url.clone(),
            order_replicas: given.order_replicas.clone(),
            cache_capacity: given
                .cache_capacity
                .unwrap_or(Frontend::DEFAULT_CACHE_CAPACITY),
            order_deadline: ms(given.order_deadline_ms, Frontend::DEFAULT_ORDER_DEADLINE_MS),
            shutdown_delay: ms(given.shutdown_delay_ms, Frontend::DEFAULT_SHUTDOWN_DELAY_MS),
        })
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
        assert!(Settings::try_from(&args.settings).is_err());
    }
}
