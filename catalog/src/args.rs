//! The catalog's command line: [`api::settings::Catalog`], every flag and `CATALOG_*` variable
//! (written once, there, for the operator and the launcher too), and how it resolves into the
//! [`Settings`] the catalog runs with.

use std::time::Duration;

use api::settings::Catalog;
use clap::Parser;

use crate::server::Settings;

/// The ToyStore catalog: a stateless service over the order group. It serves the toys from its
/// view of the group's inventory, relays the group's changes as a long-poll change feed,
/// defines the toys at a store's first start and restocks sold-out toys through the group.
#[derive(Debug, Clone, Parser)]
#[command(name = "catalog", version = api::VERSION)]
pub struct Args {
    /// Every setting (see [`Catalog`]).
    #[command(flatten)]
    pub settings: Catalog,
}

impl TryFrom<&Catalog> for Settings {
    type Error = String;

    /// The catalog's settings, with the defaults of the settings not given; fails without a
    /// cluster token.
    fn try_from(given: &Catalog) -> Result<Self, String> {
        let token = servicekit::read_token(given.token.clone(), given.token_file.as_deref())?
            .ok_or("a cluster token is required: --token or --token-file")?;
        if given.order_replicas.is_empty() {
            return Err("--order-replicas is required".into());
        }
        if given.order_replicas.iter().any(|u| u.trim().is_empty()) {
            return Err("--order-replicas must not contain empty URLs".into());
        }
        Ok(Settings {
            order_replicas: given.order_replicas.clone(),
            products_file: given.products.clone(),
            restock_interval: Duration::from_secs_f64(
                given
                    .restock_interval_secs
                    .unwrap_or(Catalog::DEFAULT_RESTOCK_INTERVAL_SECS),
            ),
            restock_quantity: given
                .restock_quantity
                .unwrap_or(Catalog::DEFAULT_RESTOCK_QUANTITY),
            token,
        })
    }
}
