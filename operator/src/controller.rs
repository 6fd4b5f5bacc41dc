//! The controllers: one per watched namespace (or one for all), each watching ToyStores and
//! the objects they own, running [`reconcile`] until shutdown.

use std::future::Future;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::runtime::controller::Controller;
use kube::runtime::watcher;
use kube::{Api, Client, Resource};

use crate::crd::ToyStore;
use crate::reconcile::{Context, error_policy, reconcile};

/// The namespaces to watch: the non-empty entries of `listed`, or `[None]` (all namespaces)
/// when there are none.
pub fn watched(listed: &[String]) -> Vec<Option<String>> {
    let named: Vec<Option<String>> = listed
        .iter()
        .map(|ns| ns.trim())
        .filter(|ns| !ns.is_empty())
        .map(|ns| Some(ns.to_string()))
        .collect();
    if named.is_empty() { vec![None] } else { named }
}

/// Runs the controllers of `namespaces` (see [`watched`]) until `shutdown` completes.
/// A namespaced watch needs only namespaced permissions, so a list of namespaces runs with
/// Roles in those namespaces and no ClusterRole.
pub async fn run(
    client: Client,
    namespaces: &[Option<String>],
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let controllers = namespaces.iter().map(|ns| {
        let ns = ns.as_deref();
        let mut stopped = stopped.clone();
        let stopped = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        Controller::new(scoped::<ToyStore>(&client, ns), watcher::Config::default())
            .owns(
                scoped::<StatefulSet>(&client, ns),
                watcher::Config::default(),
            )
            .owns(
                scoped::<Deployment>(&client, ns),
                watcher::Config::default(),
            )
            .owns(scoped::<Service>(&client, ns), watcher::Config::default())
            .owns(scoped::<ConfigMap>(&client, ns), watcher::Config::default())
            .graceful_shutdown_on(stopped)
            .run(reconcile, error_policy, ctx.clone())
            .boxed()
    });
    futures_util::stream::select_all(controllers)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}

/// An Api over one namespace, or all of them.
fn scoped<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_listed_namespace_means_all() {
        assert_eq!(watched(&[]), vec![None]);
        assert_eq!(watched(&["".into(), " ".into()]), vec![None]);
        assert_eq!(
            watched(&["a".into(), " b ".into()]),
            vec![Some("a".into()), Some("b".into())]
        );
    }
}
