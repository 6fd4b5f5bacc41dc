//! The settings: the ConfigMap every pod reads its environment from, the hash that rolls a
//! component's pods when its settings change, and the cluster token Secret.
//!
//! The ConfigMap `{store}-config` holds every non-secret setting under the environment
//! variable its binary reads (`ORDER_*`, `CATALOG_*`, `FRONTEND_*`): each is a field of the
//! binary's settings in [`api::settings`], which names the variable and is what the binary
//! parses, so the two sides cannot drift (`tests/env_contract.rs` checks the result against
//! the binaries' parsers). Every container takes the whole ConfigMap with `envFrom`; a binary
//! ignores the other components' variables. Settings that differ per pod (the Raft id, the
//! advertised URL) or name paths inside the pod are set in the container's own `env` by the
//! component's module.
//!
//! The token Secret is apart from the build: its value is generated once by the reconciler
//! (randomness is not pure) and never rebuilt from the spec.

use std::collections::BTreeMap;

use api::settings::{self, CommandLine};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::metadata::metadata;
use super::names::{self, Component};
use crate::hash::fnv1a;
use crate::validate::ValidStore;

/// Key of the cluster token in the token Secret.
pub const TOKEN_KEY: &str = "token";
/// Pod template annotation holding the hash of the settings the component reads.
pub const CONFIG_HASH_ANNOTATION: &str = "toystore.dev/config-hash";
/// How long a frontend keeps retrying an order (across leader changes, with the same
/// idempotency key) before it answers 503: the design's 10 s.
pub const FRONTEND_ORDER_DEADLINE_MS: u64 = 10_000;

/// The log format of every pod: one JSON object a line, for the cluster's log collector.
const LOG_FORMAT: &str = "json";

/// How long a frontend serves on, unready, after SIGTERM: endpoints and load balancers need a
/// few seconds to stop sending clients to a terminating pod.
const FRONTEND_SHUTDOWN_DELAY_MS: u64 = 5000;

/// Every non-secret setting, by the component whose binary reads it, each keyed by its
/// environment variable.
#[derive(Debug)]
pub(super) struct Config(BTreeMap<Component, BTreeMap<String, String>>);

impl Config {
    /// The settings `component` reads.
    pub(super) fn of(&self, component: Component) -> &BTreeMap<String, String> {
        &self.0[&component]
    }

    /// Every component's settings: the ConfigMap's data.
    fn all(&self) -> BTreeMap<String, String> {
        self.0
            .values()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// The settings every pod of a component shares.
pub(super) fn config(store: &ValidStore) -> Config {
    let orders = &store.orders;
    // A seed list only: the catalogs and the frontends learn the membership from any member,
    // so it is the declared size, not the StatefulSet's size during a scale-down.
    let seeds: Vec<String> = (0..orders.replicas)
        .map(|ordinal| names::order_replica_url(&store.name, &store.namespace, ordinal))
        .collect();
    let replica = settings::OrderReplica {
        heartbeat_ms: Some(orders.heartbeat_ms),
        election_timeout_min_ms: Some(orders.election_timeout_min_ms),
        election_timeout_max_ms: Some(orders.election_timeout_max_ms),
        snapshot_threshold: Some(orders.snapshot_threshold),
        log_format: Some(LOG_FORMAT.into()),
        ..settings::OrderReplica::default()
    };
    let catalog = settings::Catalog {
        order_replicas: seeds.clone(),
        restock_interval_secs: Some(f64::from(store.catalog.restock_interval_seconds)),
        restock_quantity: Some(store.catalog.restock_quantity),
        log_format: Some(LOG_FORMAT.into()),
        ..settings::Catalog::default()
    };
    let frontend = settings::Frontend {
        catalog_url: vec![names::catalog_url(&store.name, &store.namespace)],
        order_replicas: seeds,
        // Validated: at most 1,000,000.
        cache_capacity: Some(store.frontend.cache_capacity as usize),
        // Explicit, so the store's purchase deadline is the operator's to state, not whatever
        // the binary's default becomes.
        order_deadline_ms: Some(FRONTEND_ORDER_DEADLINE_MS),
        shutdown_delay_ms: Some(FRONTEND_SHUTDOWN_DELAY_MS),
        log_format: Some(LOG_FORMAT.into()),
        ..settings::Frontend::default()
    };
    Config(BTreeMap::from([
        (Component::Orders, replica.to_env().into_iter().collect()),
        (Component::Catalog, catalog.to_env().into_iter().collect()),
        (Component::Frontend, frontend.to_env().into_iter().collect()),
    ]))
}

/// The ConfigMap `{store}-config` holding every component's `config`.
pub(super) fn config_map(store: &ValidStore, config: &Config) -> ConfigMap {
    ConfigMap {
        metadata: metadata(
            store,
            &names::config_map_name(&store.name),
            Component::Orders,
        ),
        data: Some(config.all()),
        ..ConfigMap::default()
    }
}

/// FNV-1a over the sorted `key=value` pairs of the settings one component reads, as 16 hex
/// digits.
///
/// Only that component's settings count: scaling the order group changes the frontend's seed
/// list but must not restart every order replica.
pub(super) fn config_hash(config: &BTreeMap<String, String>) -> String {
    let mut bytes = Vec::new();
    for (key, value) in config {
        // NUL separators: no key or value contains one, so the encoding is unambiguous.
        for part in [key, value] {
            bytes.extend_from_slice(part.as_bytes());
            bytes.push(0);
        }
    }
    fnv1a(&bytes)
}

/// The Secret `{store}-raft-token` holding the cluster token under [`TOKEN_KEY`].
///
/// The reconciler generates `token` once and creates this Secret only when it is missing; the
/// token is never derived from the spec, so it is not part of [`super::build`].
pub fn token_secret(store: &ValidStore, token: &str) -> Secret {
    Secret {
        metadata: metadata(
            store,
            &names::token_secret_name(&store.name),
            Component::Orders,
        ),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            TOKEN_KEY.to_string(),
            ByteString(token.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::tests::{default_spec, hashes, store};

    #[test]
    fn config_hash_changes_only_for_the_component_whose_setting_changed() {
        let base = hashes(&store(default_spec()));
        assert_eq!(base, hashes(&store(default_spec())), "deterministic");
        assert!(base.iter().all(|h| h.len() == 16));

        let mut spec = default_spec();
        spec.orders.raft.heartbeat_ms = 50;
        let raft = hashes(&store(spec));
        assert_ne!(raft[0], base[0]);
        assert_eq!(raft[1..], base[1..]);

        let mut spec = default_spec();
        spec.catalog.restock_quantity = 7;
        let restock = hashes(&store(spec));
        assert_ne!(restock[1], base[1]);
        assert_eq!([&restock[0], &restock[2]], [&base[0], &base[2]]);

        let mut spec = default_spec();
        spec.frontend.cache_capacity = 0;
        let cache = hashes(&store(spec));
        assert_ne!(cache[2], base[2]);
        assert_eq!(cache[..2], base[..2]);

        // Scaling the group changes the catalogs' and the frontends' seed list, and must not
        // roll the replicas.
        let mut spec = default_spec();
        spec.orders.replicas = 5;
        let scaled = hashes(&store(spec));
        assert_eq!(scaled[0], base[0]);
        assert_ne!(scaled[1], base[1]);
        assert_ne!(scaled[2], base[2]);

        // Settings that are not in the ConfigMap do not touch the hash.
        let mut spec = default_spec();
        spec.image = "toystore:next".into();
        spec.frontend.replicas = 4;
        spec.catalog.replicas = 3;
        assert_eq!(hashes(&store(spec)), base);
    }

    #[test]
    fn token_secret_holds_the_token_under_its_key() {
        let store = store(default_spec());
        let secret = token_secret(&store, "s3cret");
        assert_eq!(secret.metadata.name.as_deref(), Some("shop-raft-token"));
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
        assert_eq!(secret.data.unwrap()[TOKEN_KEY].0, b"s3cret");
    }
}
