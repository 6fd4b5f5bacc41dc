//! Committing commands through Raft on the leader: a purchase (one command: key lookup, stock
//! check, decrement and the next order number, applied atomically by the state machine), and
//! the inventory commands (define, restock). See docs/design.md, "Stock and orders".
//!
//! A purchase is idempotent by key, so a client retry, a concurrent duplicate request or a
//! retry at a new leader all reach the one outcome the key was first given.

use openraft::error::{ClientWriteError, ForwardToLeader, RaftError};

use api::LeaderHint;

use crate::replica::Replica;
use crate::types::{Command, CommandResult, OrderRecord, TypeConfig};

/// Why a command did not reach an outcome.
#[derive(Debug, thiserror::Error)]
pub enum PurchaseError {
    /// This replica is not the leader.
    #[error("not the leader")]
    NotLeader(Option<LeaderHint>),
    /// The outcome could not be reached now (no quorum, a storage failure); the same key may
    /// be retried.
    #[error("order service unavailable: {0}")]
    Unavailable(String),
    /// The idempotency key was used before for a different purchase; nothing was changed.
    #[error(
        "Idempotency-Key {key} was used for {first_quantity} x {first_name}; a key names one \
         purchase, so another purchase needs another key"
    )]
    KeyReused {
        /// The idempotency key sent again.
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

/// Places an order and returns its record (confirmed, or refused with a reason). A key already
/// used for another toy or quantity is refused ([`PurchaseError::KeyReused`]), as payment APIs
/// do: answering the first purchase's outcome would tell the client it bought what it did not.
pub async fn place(
    replica: &Replica,
    key: String,
    name: String,
    quantity: u32,
) -> Result<OrderRecord, PurchaseError> {
    let started = std::time::Instant::now();
    let result = commit(
        replica,
        Command::Purchase {
            key,
            name: name.clone(),
            quantity,
        },
    )
    .await?;
    replica
        .metrics
        .purchase_step("commit", started.elapsed().as_secs_f64());
    let CommandResult::Order(record) = result else {
        return Err(PurchaseError::Unavailable(format!(
            "a purchase answered {result:?}"
        )));
    };
    if record.name != name || record.quantity != quantity {
        return Err(PurchaseError::KeyReused {
            key: record.key,
            first_name: record.name,
            first_quantity: record.quantity,
        });
    }
    Ok(record)
}

/// Commits `cmd` through Raft and returns what applying it on this leader returned.
pub async fn commit(replica: &Replica, cmd: Command) -> Result<CommandResult, PurchaseError> {
    match replica.raft.client_write(cmd).await {
        Ok(resp) => Ok(resp.data),
        Err(RaftError::APIError(
            ClientWriteError::ForwardToLeader(f) | ClientWriteError::LogEntryDiscarded(f),
        )) => Err(PurchaseError::NotLeader(leader_hint(&f))),
        Err(e) => Err(PurchaseError::Unavailable(e.to_string())),
    }
}
