//! The order side of the purchase protocol (docs/design.md, "The purchase protocol"), run by
//! the leader.
//!
//! 1. commit `Pending{key, name, quantity}` (a known key returns its outcome instead);
//! 2. ask the [`StockKeeper`](crate::stock::StockKeeper) to take the stock for that key;
//! 3. commit `Resolve{key, outcome}`; confirmation assigns the next order number.
//!
//! Every step is idempotent by key, so a client retry, a concurrent duplicate request or a new
//! leader finishing its predecessor's work ([`resolve_pending_orders`]) all converge on one
//! outcome per key.

use openraft::async_runtime::WatchReceiver;
use std::sync::Arc;
use std::time::Duration;

use openraft::ReadPolicy;
use openraft::ServerState;
use openraft::error::{ClientWriteError, ForwardToLeader, RaftError};

use api::LeaderHint;

use crate::replica::Replica;
use crate::types::{Command, CommandResult, OrderRecord, OrderStatus, TypeConfig};

/// Why a purchase did not reach an outcome.
#[derive(Debug, thiserror::Error)]
pub enum PurchaseError {
    /// This replica is not the leader.
    #[error("not the leader")]
    NotLeader(Option<LeaderHint>),
    /// The outcome could not be reached now (no quorum, stock keeper down, storage failure);
    /// the same key may be retried.
    #[error("order service unavailable: {0}")]
    Unavailable(String),
    /// The idempotency key was used before for a different purchase; nothing was changed.
    #[error(
        "Idempotency-Key {key} was used for {first_quantity} x {first_name}; a key names one \
         purchase, so another purchase needs another key"
    )]
    KeyReused {
        /// The key.
        key: String,
        /// The toy it was first used for.
        first_name: String,
        /// The quantity it was first used for.
        first_quantity: u32,
    },
}

/// The leader a `ForwardToLeader` error names, if it names one.
pub fn leader_hint(f: &ForwardToLeader<TypeConfig>) -> Option<LeaderHint> {
    Some(LeaderHint {
        id: f.leader_id?,
        url: f.leader_node.as_ref()?.addr.clone(),
    })
}

/// Places an order and returns its final record (confirmed or rejected). A key already used
/// for another toy or quantity is refused ([`PurchaseError::KeyReused`]), as payment APIs do:
/// answering the first purchase's outcome would tell the client it bought what it did not.
pub async fn place(
    replica: &Replica,
    key: String,
    name: String,
    quantity: u32,
) -> Result<OrderRecord, PurchaseError> {
    let started = std::time::Instant::now();
    let record = commit(
        replica,
        Command::Pending {
            key,
            name: name.clone(),
            quantity,
        },
    )
    .await?;
    replica
        .metrics
        .purchase_step("pending", started.elapsed().as_secs_f64());
    if record.name != name || record.quantity != quantity {
        return Err(PurchaseError::KeyReused {
            key: record.key,
            first_name: record.name,
            first_quantity: record.quantity,
        });
    }
    match record.status {
        OrderStatus::Pending => resolve(replica, &record).await,
        _ => Ok(record),
    }
}

/// Steps 2 and 3 for a pending order.
pub async fn resolve(
    replica: &Replica,
    record: &OrderRecord,
) -> Result<OrderRecord, PurchaseError> {
    let started = std::time::Instant::now();
    let outcome = match replica
        .stock
        .take(&record.key, &record.name, record.quantity)
        .await
    {
        Ok(outcome) => outcome,
        Err(e) => {
            crate::handover::away_from_cut_catalog(replica).await;
            return Err(PurchaseError::Unavailable(e.to_string()));
        }
    };
    replica
        .metrics
        .purchase_step("take", started.elapsed().as_secs_f64());
    let started = std::time::Instant::now();
    let resolved = commit(
        replica,
        Command::Resolve {
            key: record.key.clone(),
            outcome,
        },
    )
    .await;
    replica
        .metrics
        .purchase_step("resolve", started.elapsed().as_secs_f64());
    resolved
}

async fn commit(replica: &Replica, cmd: Command) -> Result<OrderRecord, PurchaseError> {
    match replica.raft.client_write(cmd).await {
        Ok(resp) => match resp.data {
            CommandResult::Order(record) => Ok(record),
            CommandResult::UnknownKey(key) => Err(PurchaseError::Unavailable(format!(
                "resolve for unknown key {key}"
            ))),
            CommandResult::None => Err(PurchaseError::Unavailable(
                "command produced no order".into(),
            )),
        },
        Err(RaftError::APIError(
            ClientWriteError::ForwardToLeader(f) | ClientWriteError::LogEntryDiscarded(f),
        )) => Err(PurchaseError::NotLeader(leader_hint(&f))),
        Err(e) => Err(PurchaseError::Unavailable(e.to_string())),
    }
}

/// Runs for the replica's lifetime. While this replica is leader it resolves every pending
/// order: the ones a previous leader left (at once, when it takes over) and the ones whose
/// client gave up while the stock keeper was unreachable (every second after that).
pub async fn resolve_pending_orders(replica: Arc<Replica>) {
    let mut metrics = replica.raft.metrics();
    let mut clean_term = None;
    // An interval, not a sleep in the select: metrics change many times a second (every
    // commit, every heartbeat round), and a sleep started anew each time would never end.
    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    every_second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (leader, term) = {
            let m = metrics.borrow_watched();
            (m.state == ServerState::Leader, m.current_term)
        };
        if leader && clean_term != Some(term) {
            // A new term: resolve what the predecessor left, as soon as possible.
            if resolve_all_pending(&replica).await {
                clean_term = Some(term);
            }
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = every_second.tick() => {
                if leader {
                    resolve_all_pending(&replica).await;
                }
            }
        }
    }
}

/// Resolves every pending order; true when none is left.
async fn resolve_all_pending(replica: &Replica) -> bool {
    // Cheap check first (it runs every second); a failed read falls through to the full scan,
    // which reports the error, rather than being taken for "nothing pending".
    if matches!(replica.state.pending_count(), Ok(0)) {
        return true;
    }
    // A read index makes sure this leader has applied everything committed before its term.
    if let Err(e) = replica
        .raft
        .ensure_linearizable(ReadPolicy::ReadIndex)
        .await
    {
        tracing::debug!(error = %e, "not ready to resolve inherited orders");
        return false;
    }
    let pending = match replica.state.pending_orders() {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot read pending orders");
            return false;
        }
    };
    let mut all = true;
    for record in pending {
        match resolve(replica, &record).await {
            Ok(r) => tracing::info!(key = %r.key, status = ?r.status, "resolved pending order"),
            Err(e) => {
                tracing::warn!(key = %record.key, error = %e, "order still pending");
                all = false;
            }
        }
    }
    all
}
