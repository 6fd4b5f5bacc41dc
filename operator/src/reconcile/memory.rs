//! What the operator remembers between rounds, and the one way it deletes.
//!
//! Deletes are never repeated: an object that has a deletion timestamp, or whose UID this
//! process already deleted (the cache may not show the timestamp yet), is skipped
//! ([`Memory::is_deleting`]), and [`delete_once`] records every UID it deleted.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Mutex;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, ObjectMeta};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::{Context, Error};
use crate::crd::ToyStore;

/// What the operator remembers between rounds, per store (by UID). Lost on restart, which
/// only costs one more read or one possibly repeated event.
#[derive(Debug, Default)]
pub struct Memory {
    /// Each store's Raft token. The Secret is created once and never changed, so it is read
    /// once per process instead of every round (and the operator needs no list/watch of
    /// Secrets, which would expose every Secret of the namespace).
    tokens: Mutex<HashMap<String, String>>,
    /// The leader each store's last `LeaderChanged` event named.
    leaders: Mutex<HashMap<String, String>>,
    /// UIDs of pods and claims this process deleted: a cache that does not show the deletion
    /// yet must not cause a second DELETE. Deletions are rare (upgrades, scale-down), so the
    /// set stays small.
    deleted: Mutex<HashSet<String>>,
}

impl Memory {
    /// The token read or created for the store `key`, if any.
    pub(super) fn token(&self, key: &str) -> Option<String> {
        self.tokens.lock().expect("memory lock").get(key).cloned()
    }

    /// Remembers the store `key`'s token.
    pub(super) fn remember_token(&self, key: &str, token: &str) {
        self.tokens
            .lock()
            .expect("memory lock")
            .insert(key.to_string(), token.to_string());
    }

    /// Records `leader` as the last one announced for the store `key`; answers whether it
    /// differs from the one announced before (by this process, or else `recorded` in the
    /// store's status before it started).
    pub(super) fn leader_changed(
        &self,
        key: &str,
        recorded: Option<&String>,
        leader: &str,
    ) -> bool {
        let mut leaders = self.leaders.lock().expect("memory lock");
        let last = leaders.get(key).or(recorded).cloned();
        leaders.insert(key.to_string(), leader.to_string());
        last.as_deref() != Some(leader)
    }

    /// Forgets the store `key` (it is gone). Deleted UIDs stay: they are unique anyway.
    pub(super) fn forget(&self, key: &str) {
        self.tokens.lock().expect("memory lock").remove(key);
        self.leaders.lock().expect("memory lock").remove(key);
    }

    /// Whether `meta`'s object is being deleted, or was deleted by this process already.
    pub(super) fn is_deleting(&self, meta: &ObjectMeta) -> bool {
        meta.deletion_timestamp.is_some()
            || meta
                .uid
                .as_ref()
                .is_some_and(|uid| self.deleted.lock().expect("memory lock").contains(uid))
    }
}

/// The key a store is remembered by: its UID (or namespace/name for a hand-built one).
pub(super) fn store_key(store: &ToyStore) -> String {
    store.uid().unwrap_or_else(|| {
        format!(
            "{}/{}",
            store.namespace().unwrap_or_default(),
            store.name_any()
        )
    })
}

/// Deletes `obj` once: remembers its UID so a lagging cache does not cause a second DELETE.
pub(super) async fn delete_once<K>(ctx: &Context, ns: &str, obj: &K) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    match api.delete(&obj.name_any(), &DeleteParams::default()).await {
        Ok(_) => {}
        // Already gone: the goal of the delete.
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    if let Some(uid) = obj.uid() {
        ctx.memory.deleted.lock().expect("memory lock").insert(uid);
    }
    Ok(())
}
