//! The order replicas' volumes: found by label, deleted once their replica has left the group.
//!
//! The StatefulSet keeps the claims of pods it removes on scale-down (its retention policy is
//! `whenScaled: Retain`), so the operator deletes them itself, and only once the StatefulSet is
//! back at the declared size: a claim above it then belongs to a member that left the group.
//! They are the only volumes a store has: the catalog and the frontends are stateless.

use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;

use super::memory::delete_once;
use super::report::announce;
use super::{Context, Error};
use crate::build::{self, Component};
use crate::cache;
use crate::crd::ToyStore;
use crate::order_group::ordinal_of;

/// The cached volume claims of `store`'s order replicas, by name.
pub(super) fn order_claims(
    ctx: &Context,
    store: &ToyStore,
    ns: &str,
) -> Vec<Arc<PersistentVolumeClaim>> {
    let selector = build::selector_labels(&store.name_any(), Component::Orders);
    cache::labelled(&ctx.cache.persistent_volume_claims, ns, &selector)
}

/// Deletes the volumes of order replicas beyond the `declared` count: they have left the group
/// and their pods are gone (the StatefulSet is already at the declared size).
pub(super) async fn delete_departed(
    store: &ToyStore,
    declared: i32,
    ctx: &Context,
    ns: &str,
) -> Result<(), Error> {
    for pvc in order_claims(ctx, store, ns) {
        let name = pvc.name_any();
        if ordinal_of(&name).is_some_and(|o| o >= declared)
            && !ctx.memory.is_deleting(&pvc.metadata)
        {
            delete_once(ctx, ns, pvc.as_ref()).await?;
            let note = format!("deleted volume {name} of a replica that left the group");
            announce(ctx, store, "VolumeDeleted", "ScaleDown", &note).await;
        }
    }
    Ok(())
}
