//! Applying the built objects: server-side apply with one field manager, skipped when nothing
//! changed.
//!
//! Each object carries a hash of what was applied ([`APPLIED_HASH`]), compared with the
//! controller's watch cache ([`crate::cache`]), so an unchanged object is neither read from the
//! API server nor written again. A cache one event behind only costs a repeated apply, which
//! server-side apply makes harmless.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Context, Error};
use crate::build::{FIELD_MANAGER, Objects};
use crate::cache;
use crate::hash::fnv1a;

/// Annotation holding the hash of what the operator last applied to an object.
pub const APPLIED_HASH: &str = "toystore.dev/applied-hash";

/// Applies every built object, in dependency order; stops at the first failure.
pub(super) async fn objects(ctx: &Context, ns: &str, built: &Objects) -> Result<(), Error> {
    let (client, cache) = (&ctx.client, &ctx.cache);
    one(client, &cache.config_maps, ns, &built.config_map).await?;
    for sa in &built.service_accounts {
        one(client, &cache.service_accounts, ns, sa).await?;
    }
    for svc in &built.services {
        one(client, &cache.services, ns, svc).await?;
    }
    one(client, &cache.stateful_sets, ns, &built.stateful_set).await?;
    for deployment in &built.deployments {
        one(client, &cache.deployments, ns, deployment).await?;
    }
    for pdb in &built.pod_disruption_budgets {
        one(client, &cache.pod_disruption_budgets, ns, pdb).await?;
    }
    for np in &built.network_policies {
        one(client, &cache.network_policies, ns, np).await?;
    }
    Ok(())
}

/// Server-side applies `obj` unless the cached object already carries the hash of exactly
/// this desired state.
async fn one<K>(client: &Client, cache: &Store<K>, ns: &str, obj: &K) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + 'static,
{
    let name = obj.name_any();
    let hash = fnv1a(&serde_json::to_vec(obj).expect("objects serialize"));
    if cache::get(cache, ns, &name)
        .is_some_and(|o| o.annotations().get(APPLIED_HASH) == Some(&hash))
    {
        return Ok(());
    }
    let mut desired = obj.clone();
    desired
        .annotations_mut()
        .insert(APPLIED_HASH.to_string(), hash);
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&desired),
    )
    .await
    .map_err(|source| Error::Apply {
        kind: K::kind(&()).into_owned(),
        name,
        source,
    })?;
    Ok(())
}

/// Creates `obj`; returns whether this call created it. One that exists already (made by an
/// earlier round whose status or cache had not caught up) is not an error.
pub(crate) async fn create_if_absent<K>(api: &Api<K>, obj: &K) -> Result<bool, Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
{
    match api.create(&kube::api::PostParams::default(), obj).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}
