//! The cluster token: the secret the order replicas and the operator share for Raft and admin
//! calls, one per store.
//!
//! Its Secret is created, never applied, so a token is generated exactly once and never rotated
//! by accident, and it is remembered ([`super::Memory`]), so it is read once per process.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};

use super::memory::store_key;
use super::{Context, Error};
use crate::build::{self, TOKEN_KEY};
use crate::crd::ToyStore;
use crate::validate::ValidStore;

/// The store's Raft token, its Secret created on first use.
pub(super) async fn ensure(
    store: &ToyStore,
    valid: &ValidStore,
    ctx: &Context,
) -> Result<String, Error> {
    let key = store_key(store);
    if let Some(token) = ctx.memory.token(&key) {
        return Ok(token);
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &valid.namespace);
    let name = build::token_secret_name(&valid.name);
    let secret = match secrets.get_opt(&name).await? {
        Some(s) => s,
        None => create(&secrets, valid, &name).await?,
    };
    let token = read(&secret).ok_or_else(|| Error::BadSecret(name.clone()))?;
    ctx.memory.remember_token(&key, &token);
    Ok(token)
}

/// Creates the Secret with a new random token; an earlier operator instance that created it
/// meanwhile wins.
async fn create(secrets: &Api<Secret>, valid: &ValidStore, name: &str) -> Result<Secret, Error> {
    let token = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    match secrets
        .create(&PostParams::default(), &build::token_secret(valid, &token))
        .await
    {
        Ok(s) => Ok(s),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(secrets.get(name).await?),
        Err(e) => Err(e.into()),
    }
}

/// The token a Secret holds, from `data` or (not yet encoded by the API server) `stringData`.
fn read(secret: &Secret) -> Option<String> {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(TOKEN_KEY))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(TOKEN_KEY))
                .map(|s| s.as_bytes().to_vec())
        })?;
    Some(String::from_utf8_lossy(&bytes).trim().to_string())
}
