//! The change feed relayed to the frontends as a long-poll: `GET /changes?after=V&wait_ms=W`.
//!
//! Long-polling over plain HTTP/1 works through every proxy and needs no connection state on
//! the server: a subscriber asks for the changes after the last version it has seen, gets them
//! at once if there are any, or else the request waits until the view moves past `after` (or
//! `wait_ms` passes). Versions are the order group's, so a frontend may ask any catalog replica
//! and a subscriber further behind than the catalog's window is told `reset: true`, with the
//! whole inventory, and resynchronises.
//!
//! The subscription to the version watch is taken before the view is read, and `wait_for`
//! checks the current value first, so a change landing between the read and the wait is never
//! missed.

use std::time::Duration;

use api::catalog::ChangeBatch;
use serde::Deserialize;

use crate::state::Catalog;

/// Default time a long-poll waits for a change.
pub const DEFAULT_WAIT_MS: u64 = 25_000;
/// Longest time a long-poll may wait.
pub const MAX_WAIT_MS: u64 = 30_000;

/// Query of `GET /changes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    /// Last version the subscriber has seen (0 = none).
    pub after: u64,
    /// How long to wait for a change, in milliseconds (default [`DEFAULT_WAIT_MS`]).
    pub wait_ms: Option<u64>,
}

impl ChangesQuery {
    /// The wait, or a message for a 400 when it exceeds [`MAX_WAIT_MS`].
    pub fn wait(&self) -> Result<Duration, String> {
        let ms = self.wait_ms.unwrap_or(DEFAULT_WAIT_MS);
        if ms > MAX_WAIT_MS {
            return Err(format!("wait_ms must be at most {MAX_WAIT_MS}, got {ms}"));
        }
        Ok(Duration::from_millis(ms))
    }
}

/// Answers a long-poll: changes after `after` at once if any (or a reset), else waits up to
/// `wait` for the view to move past `after` and answers with what is there then (possibly
/// nothing). A shutting-down server answers waiting polls at once.
pub async fn long_poll(catalog: &Catalog, after: u64, wait: Duration) -> ChangeBatch {
    let mut version = catalog.view.subscribe();
    let mut shutdown = catalog.shutdown_receiver();
    let batch = catalog.view.changes(after);
    if batch.reset || !batch.events.is_empty() || wait.is_zero() || *shutdown.borrow() {
        return batch;
    }
    let _waiting = catalog.metrics.feed_waiter();
    tokio::select! {
        _ = tokio::time::timeout(wait, version.wait_for(|v| *v > after)) => {}
        _ = shutdown.wait_for(|down| *down) => {}
    }
    catalog.view.changes(after)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use api::catalog::{ChangeEvent, Product};

    use super::*;

    fn catalog() -> Arc<Catalog> {
        Catalog::new(vec!["http://127.0.0.1:1".into()], "t".into())
    }

    fn change(version: u64) -> ChangeBatch {
        ChangeBatch {
            events: vec![ChangeEvent {
                version,
                product: Product {
                    name: "Tux".into(),
                    price: 1.0,
                    quantity: 9,
                    version,
                },
            }],
            version,
            reset: false,
            snapshot: None,
            defined: true,
        }
    }

    #[test]
    fn wait_defaults_and_is_bounded() {
        let q = |wait_ms| ChangesQuery { after: 0, wait_ms };
        assert_eq!(q(None).wait(), Ok(Duration::from_millis(DEFAULT_WAIT_MS)));
        assert_eq!(q(Some(0)).wait(), Ok(Duration::ZERO));
        assert!(q(Some(MAX_WAIT_MS + 1)).wait().is_err());
    }

    /// Waits until `n` polls are waiting, so a change wakes them rather than precedes them.
    async fn until_waiting(cat: &Catalog, n: i64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while cat.metrics.feed_waiters() != n {
            assert!(Instant::now() < deadline, "{n} polls never started waiting");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_waiting_poll_wakes_on_a_change() {
        let cat = catalog();
        cat.view.apply(change(1));
        let poll = tokio::spawn({
            let cat = cat.clone();
            async move { long_poll(&cat, 1, Duration::from_secs(20)).await }
        });
        until_waiting(&cat, 1).await;
        cat.view.apply(change(3));
        let batch = tokio::time::timeout(Duration::from_secs(5), poll)
            .await
            .expect("the poll answers promptly after the change")
            .unwrap();
        assert_eq!(batch.version, 3);
        assert_eq!(batch.events.len(), 1);
    }

    #[tokio::test]
    async fn a_poll_times_out_empty_and_shutdown_releases_waiters() {
        let cat = catalog();
        let batch = long_poll(&cat, 0, Duration::from_millis(50)).await;
        assert!(!batch.reset && batch.events.is_empty());

        let poll = tokio::spawn({
            let cat = cat.clone();
            async move { long_poll(&cat, 0, Duration::from_secs(30)).await }
        });
        until_waiting(&cat, 1).await;
        cat.begin_shutdown();
        let batch = tokio::time::timeout(Duration::from_secs(5), poll)
            .await
            .expect("shutdown releases the poll")
            .unwrap();
        assert!(batch.events.is_empty());
        assert_eq!(cat.metrics.feed_waiters(), 0);
    }
}
