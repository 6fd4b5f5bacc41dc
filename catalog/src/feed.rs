//! The change feed as a long-poll: `GET /changes?after=V&wait_ms=W`.
//!
//! Long-polling over plain HTTP/1 works through every proxy and needs no connection state on
//! the server: a subscriber asks for the events after the last version it has seen, gets them
//! at once if there are any, or else the request waits until a commit raises the version watch
//! (or `wait_ms` passes) and is answered then. Because versions are dense and persisted, a
//! subscriber can tell a gap (its version is older than the retained events, or from before a
//! reset of the catalog's data) and the answer says `reset: true` so it resynchronises.
//!
//! The subscription to the watch is taken before the store is read, and `wait_for` checks the
//! current value first, so a commit landing between the read and the wait is never missed.

use std::time::Duration;

use api::catalog::ChangeBatch;
use serde::Deserialize;

use crate::service::{Catalog, CatalogError};

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

/// Answers a long-poll: events after `after` at once if any (or a reset), else waits up to
/// `wait` for a commit and answers with what is there then (possibly nothing). A shutting-down
/// server answers waiting polls at once.
pub async fn long_poll(
    catalog: &Catalog,
    after: u64,
    wait: Duration,
) -> Result<ChangeBatch, CatalogError> {
    let mut version = catalog.subscribe();
    let mut shutdown = catalog.shutdown_receiver();
    let batch = catalog.changes_now(after).await?;
    if batch.reset || !batch.events.is_empty() || wait.is_zero() || *shutdown.borrow() {
        return Ok(batch);
    }
    let _waiting = catalog.metrics().feed_waiter();
    tokio::select! {
        _ = tokio::time::timeout(wait, version.wait_for(|v| *v > after)) => {}
        _ = shutdown.wait_for(|down| *down) => {}
    }
    catalog.changes_now(after).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use api::catalog::TakeRequest;

    use super::*;
    use crate::seed::SeedProduct;
    use crate::store::Store;

    async fn catalog(dir: &std::path::Path) -> Arc<Catalog> {
        let seed = vec![SeedProduct {
            name: "Tux".into(),
            price: 1.0,
            quantity: 10,
        }];
        Catalog::open(dir.to_path_buf(), seed).await.unwrap()
    }

    fn take(key: &str) -> TakeRequest {
        TakeRequest {
            key: key.into(),
            name: "Tux".into(),
            quantity: 1,
        }
    }

    #[test]
    fn wait_defaults_and_is_bounded() {
        let q = |wait_ms| ChangesQuery { after: 0, wait_ms };
        assert_eq!(q(None).wait(), Ok(Duration::from_millis(DEFAULT_WAIT_MS)));
        assert_eq!(q(Some(0)).wait(), Ok(Duration::ZERO));
        assert_eq!(
            q(Some(MAX_WAIT_MS)).wait(),
            Ok(Duration::from_millis(MAX_WAIT_MS))
        );
        assert!(q(Some(MAX_WAIT_MS + 1)).wait().is_err());
    }

    /// Waits until `n` polls are waiting, so a change wakes them rather than precedes them.
    async fn until_waiting(cat: &Catalog, n: i64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while cat.metrics().feed_waiters() != n {
            assert!(Instant::now() < deadline, "{n} polls never started waiting");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_waiting_poll_wakes_on_a_take() {
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog(dir.path()).await;
        let poll = tokio::spawn({
            let cat = cat.clone();
            async move { long_poll(&cat, 0, Duration::from_secs(20)).await }
        });
        until_waiting(&cat, 1).await;
        let started = Instant::now();
        cat.take(take("k1")).await.unwrap();
        let batch = tokio::time::timeout(Duration::from_secs(5), poll)
            .await
            .expect("the poll answers promptly after the take")
            .unwrap()
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!batch.reset);
        assert_eq!(batch.version, 1);
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.events[0].product.quantity, 9);
    }

    #[tokio::test]
    async fn a_poll_times_out_empty_and_shutdown_releases_waiters() {
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog(dir.path()).await;
        let batch = long_poll(&cat, 0, Duration::from_millis(50)).await.unwrap();
        assert!(!batch.reset && batch.events.is_empty());
        assert_eq!(batch.version, 0);

        let poll = tokio::spawn({
            let cat = cat.clone();
            async move { long_poll(&cat, 0, Duration::from_secs(30)).await }
        });
        until_waiting(&cat, 1).await;
        cat.begin_shutdown();
        let batch = tokio::time::timeout(Duration::from_secs(5), poll)
            .await
            .expect("shutdown releases the poll")
            .unwrap()
            .unwrap();
        assert!(batch.events.is_empty());
        assert_eq!(cat.metrics().feed_waiters(), 0);
    }

    #[tokio::test]
    async fn gaps_and_future_versions_answer_reset_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let seed = vec![SeedProduct {
            name: "Tux".into(),
            price: 1.0,
            quantity: 10,
        }];
        let cat = Catalog::open_store(move || Store::open_with_retention(&path, 2), seed)
            .await
            .unwrap();
        for i in 0..4 {
            cat.take(take(&format!("k{i}"))).await.unwrap();
        }
        for after in [0, 1, 5, 100] {
            let batch = tokio::time::timeout(
                Duration::from_secs(5),
                long_poll(&cat, after, Duration::from_secs(30)),
            )
            .await
            .expect("a reset is answered at once")
            .unwrap();
            assert!(batch.reset, "after={after}");
            assert!(batch.events.is_empty());
            assert_eq!(batch.version, 4);
        }
        let batch = long_poll(&cat, 2, Duration::from_secs(30)).await.unwrap();
        assert!(!batch.reset);
        assert_eq!(
            batch.events.iter().map(|e| e.version).collect::<Vec<_>>(),
            [3, 4]
        );
    }
}
