//! The ToyStore operator.
//!
//! Reconcile is a pipeline (see [`reconcile`]): [`validate`] (a [`validate::ValidStore`]) →
//! [`build`] (pure, one module per kind of object) → server-side apply → one step of the
//! shared Raft membership driver on the [`order_group`] → rolling upgrade and volume clean-up
//! → [`status`]. The CRD is in [`crd`]; rounds read the watch caches of [`cache`] and publish
//! through [`events`]. [`server::run`] runs the [`controller`]s and the health and metrics
//! server on a listener the caller bound.

pub mod build;
pub mod cache;
pub mod controller;
pub mod crd;
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
    /// Where the CRD is committed, relative to the repository root: `crds/` and its copies in
    /// the Helm chart and the plain manifests (neither may reach outside its own directory).
    pub const COPIES: [&str; 3] = [
        "crds/toystore.yaml",
        "charts/toystore-operator/files/crd.yaml",
        "deploy/manifests/install/01-crd.yaml",
    ];

    /// The CRD as committed in every one of [`COPIES`].
    pub fn yaml() -> String {
        let mut crd = crate::crd::crd();
        // Helm would otherwise delete the CRD on uninstall, and with it every ToyStore and,
        // through owner references, every store's objects and volumes.
        crd.metadata.annotations =
            Some([("helm.sh/resource-policy".to_string(), "keep".to_string())].into());
        format!(
            "# Generated from the Rust types by `crdgen`; do not edit. Rewrite every copy with\n\
             # `UPDATE_CRD=1 cargo test -p operator --test crd`.\n{}",
            yaml_serde::to_string(&crd).expect("a CRD serializes to YAML")
        )
    }
}
