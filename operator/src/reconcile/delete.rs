//! Deletion of a store, guarded by a finalizer.
//!
//! Owned objects go with the ToyStore through their owner references; the order replicas'
//! volumes, found by label, are deleted here before the finalizer is removed, so deleting a
//! store leaves nothing of it behind.

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::memory::{delete_once, store_key};
use super::report::publish;
use super::volumes::order_claims;
use super::{Context, Error};
use crate::crd::ToyStore;

/// Finalizer the operator puts on every ToyStore.
pub const FINALIZER: &str = "toystore.dev/cleanup";

/// Deletes the order replicas' volumes and forgets the store.
pub(super) async fn cleanup(store: &ToyStore, ctx: &Context) -> Result<Action, Error> {
    let ns = store.namespace().ok_or(Error::NoNamespace)?;
    if !ctx.cache.ready().await {
        return Err(Error::CacheNotReady);
    }
    for pvc in order_claims(ctx, store, &ns) {
        if !ctx.memory.is_deleting(&pvc.metadata) {
            delete_once(ctx, &ns, pvc.as_ref()).await?;
        }
    }
    let note = "volumes deleted";
    publish(ctx, store, EventType::Normal, "Deleted", "Cleanup", note).await;
    ctx.memory.forget(&store_key(store));
    Ok(Action::await_change())
}
