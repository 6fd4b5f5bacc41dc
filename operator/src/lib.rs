//! The ToyStore operator.
//!
//! Reconcile is a pipeline (see [`reconcile`]): [`validate`] (a [`validate::ValidStore`]) →
//! [`build`] (pure, one module per kind of object) → server-side apply → one step of the
//! shared Raft membership driver on the [`order_group`] → rolling upgrade and volume clean-up
//! → [`status`]. The CRD is in [`crd`]; rounds read the watch caches of [`cache`] and publish
//! through [`events`]. [`server::run`] runs the [`controller`]s and the health and metrics
//! server on a listener the caller bound. Backups ([`crd::ToyStoreBackup`]) have a controller
//! of their own, [`backup`]; a store's schedule, retention and restore are steps of its round.

pub mod backup;
pub mod build;
pub mod cache;
pub mod controller;
pub mod crd;
pub mod cron;
pub mod events;
pub mod hash;
pub mod metrics;
pub mod order_group;
pub mod rbac;
pub mod reconcile;
pub mod server;
pub mod status;
pub mod validate;

/// CRD generation, shared by the `crdgen` binary and the freshness test.
pub mod crdgen {
    /// Where the CRDs are committed, relative to the repository root: `crds/` and its copies in
    /// the Helm chart and the plain manifests (neither may reach outside its own directory).
    /// One file holds both (ToyStore, then ToyStoreBackup), so every way of installing one
    /// installs the other: the operator needs both.
    pub const COPIES: [&str; 3] = [
        "crds/toystore.yaml",
        "charts/toystore-operator/files/crd.yaml",
        "deploy/manifests/install/01-crd.yaml",
    ];

    /// The CRDs as committed in every one of [`COPIES`]: a YAML stream of two documents.
    pub fn yaml() -> String {
        let mut out = String::from(
            "# Generated from the Rust types by `crdgen`; do not edit. Rewrite every copy with\n\
             # `UPDATE_CRD=1 cargo test -p operator --test crd`.\n",
        );
        for (i, mut crd) in [crate::crd::crd(), crate::crd::backup_crd()]
            .into_iter()
            .enumerate()
        {
            // Helm would otherwise delete the CRDs on uninstall, and with them every ToyStore
            // (through owner references, every store's objects and volumes) and every record
            // of a backup.
            crd.metadata.annotations =
                Some([("helm.sh/resource-policy".to_string(), "keep".to_string())].into());
            if i > 0 {
                out.push_str("---\n");
            }
            out.push_str(&yaml_serde::to_string(&crd).expect("a CRD serializes to YAML"));
        }
        out
    }
}
