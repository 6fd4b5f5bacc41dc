//! Handing leadership away from a leader that cannot reach the catalog.
//!
//! Only the leader asks the catalog for stock. When the link between the two is cut while a
//! follower still reaches the catalog, every purchase would wait out the catalog patience and
//! fail for as long as the cut lasts. So when a take fails because the catalog is unreachable,
//! the leader asks its voters whether *they* reach it (`GET /admin/stock-reachable`) and hands
//! leadership to the most caught-up one that does. It tries at most once per
//! [`MIN_INTERVAL`], so a catalog that is down for everyone causes no churn of leaders.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use api::client::ReplicaClient;
use api::raft::RaftRole;

use crate::replica::Replica;

/// Shortest time between two hand-over attempts.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// When this replica last tried to hand leadership away for the catalog's sake.
#[derive(Debug, Default)]
pub struct LastAttempt(Mutex<Option<Instant>>);

impl LastAttempt {
    /// Whether an attempt may start now (and records it).
    fn start(&self) -> bool {
        let mut last = self.0.lock().unwrap();
        if last.is_some_and(|t| t.elapsed() < MIN_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

/// Called when a take failed because the catalog is unreachable: if this replica leads and
/// another voter reaches the catalog, hands leadership to the most caught-up such voter.
pub async fn away_from_cut_catalog(replica: &Replica) {
    let status = replica.status();
    if status.role != RaftRole::Leader || !replica.handover.start() {
        return;
    }
    if replica.stock.reachable().await {
        return; // a passing hiccup: the catalog answers again
    }
    let mut best: Option<(u64, u64)> = None;
    for m in status
        .members
        .iter()
        .filter(|m| m.voter && m.id != replica.id)
    {
        let client = ReplicaClient::new(replica.http.clone(), &m.url, Some(replica.token.clone()));
        let reaches = tokio::time::timeout(Duration::from_secs(2), client.stock_reachable())
            .await
            .is_ok_and(|r| r.is_ok_and(|r| r.reachable));
        let matched = m.matched_index.unwrap_or(0);
        if reaches && best.is_none_or(|(_, b)| matched > b) {
            best = Some((m.id, matched));
        }
    }
    let Some((to, _)) = best else {
        tracing::warn!("the catalog is unreachable from this leader and from every voter asked");
        return;
    };
    tracing::warn!(
        to,
        "the catalog is unreachable from this leader but not from replica {to}; handing \\
         leadership over"
    );
    if let Err(e) = replica.raft.trigger().transfer_leader(to).await {
        tracing::warn!(error = %e, "leadership transfer failed");
    }
}
