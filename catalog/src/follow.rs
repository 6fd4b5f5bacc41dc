//! Keeping the view current: long-polls of the order group's change stream.
//!
//! Any replica serves the stream from what it has applied, so the catalog reads from one and
//! moves to the next when it fails. A replica cut off from the group answers nothing new while
//! purchases go on elsewhere; so an empty answer while the leader has applied further also
//! moves the catalog on. The view only moves forward ([`crate::view::View::apply`]), so
//! changing replicas never takes it back in time.

use std::sync::Arc;
use std::time::Duration;

use api::client::{ReplicaClient, http_client};

use crate::state::Catalog;

/// How long one long-poll of the stream waits for a change.
pub const POLL_WAIT: Duration = Duration::from_secs(5);

/// Follows the change stream for the catalog's lifetime.
pub async fn run(catalog: Arc<Catalog>) {
    let http = http_client(POLL_WAIT + Duration::from_secs(5));
    let mut at = 0usize;
    let mut backoff = Duration::from_millis(50);
    let mut failing = false;
    loop {
        let urls = catalog.group.urls();
        let url = urls[at % urls.len()].clone();
        let replica = ReplicaClient::new(http.clone(), &url, Some(catalog.token.clone()));
        let after = catalog.view.version();
        // Until the view holds a first answer, ask without waiting: a group with no toys yet
        // has no change to wait for, and the toys are defined only once the view is synced.
        let wait = if catalog.view.is_synced() {
            POLL_WAIT
        } else {
            Duration::ZERO
        };
        match replica.inventory_changes(after, wait).await {
            Ok(batch) => {
                if failing {
                    tracing::info!(%url, "reading the change stream again");
                    failing = false;
                }
                backoff = Duration::from_millis(50);
                let outcome = if batch.reset {
                    "reset"
                } else if batch.events.is_empty() {
                    "empty"
                } else {
                    "changes"
                };
                catalog.metrics.stream_answer(outcome);
                let behind =
                    batch.events.is_empty() && !batch.reset && leader_ahead(&catalog, &batch);
                catalog.view.apply(batch);
                if behind {
                    at += 1;
                }
            }
            Err(e) => {
                catalog.metrics.stream_answer("error");
                if !failing {
                    tracing::warn!(%url, error = %e, "change stream unavailable; trying the next replica");
                    failing = true;
                }
                at += 1;
                catalog.group.refresh().await;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Whether the leader (as last seen) has applied further than an empty answer went: the
/// replica that gave it is behind.
fn leader_ahead(catalog: &Catalog, batch: &api::catalog::ChangeBatch) -> bool {
    catalog
        .group
        .leader_applied_index()
        .is_some_and(|applied| applied > batch.version)
}
