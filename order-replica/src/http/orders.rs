//! The client API: `POST /orders` and `GET /orders/{number}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::ReadPolicy;
use openraft::error::{LinearizableReadError, RaftError};

use api::ReplicaClient;
use api::orders::{self as wire, Data, Order, PlaceOrder, PlacedOrder, validate_idempotency_key};

use super::{ApiJson, HttpError};
use crate::purchase::{self, PurchaseError, leader_hint};
use crate::record::{OrderRecord, OrderStatus, RejectReason};
use crate::replica::Replica;

pub fn routes() -> Router<Arc<Replica>> {
    Router::new()
        .route("/orders", post(place_order))
        .route("/orders/{number}", get(get_order))
        .route("/orders/by-key/{key}", get(get_order_by_key))
}

async fn place_order(
    State(replica): State<Arc<Replica>>,
    headers: HeaderMap,
    ApiJson(order): ApiJson<PlaceOrder>,
) -> Result<Json<Data<PlacedOrder>>, HttpError> {
    let bad = |msg: String| {
        replica.metrics.order_outcome("bad_request");
        HttpError::new(StatusCode::BAD_REQUEST, msg)
    };
    let quantity = order.validate().map_err(bad)?;
    let key = servicekit::idempotency_key(&headers).inspect_err(|_| {
        replica.metrics.order_outcome("bad_request");
    })?;
    let start = Instant::now();
    let result = purchase::place(&replica, key, order.name, quantity).await;
    replica
        .metrics
        .order_duration(start.elapsed().as_secs_f64());
    let record = match result {
        Ok(r) => r,
        Err(PurchaseError::NotLeader(hint)) => {
            replica.metrics.order_outcome("redirected");
            return Err(HttpError::not_leader(hint, "/orders"));
        }
        Err(PurchaseError::Unavailable(msg)) => {
            replica.metrics.order_outcome("failed");
            return Err(HttpError::unavailable(msg));
        }
        Err(e @ PurchaseError::KeyReused { .. }) => {
            replica.metrics.order_outcome("key_reused");
            return Err(HttpError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                e.to_string(),
            ));
        }
    };
    match record.status {
        OrderStatus::Confirmed { number } => {
            replica.metrics.order_outcome("confirmed");
            Ok(Json(Data {
                data: PlacedOrder {
                    order_number: number,
                    version: record.version,
                },
            }))
        }
        OrderStatus::Rejected(ref reason) => {
            replica.metrics.order_outcome("rejected");
            let (status, message) = refusal(reason, &record);
            Err(HttpError::new(status, message))
        }
    }
}

async fn get_order(
    State(replica): State<Arc<Replica>>,
    Path(number): Path<String>,
) -> Result<Json<Data<Order>>, HttpError> {
    let number = servicekit::order_number(&number)?;
    linearizable_barrier(&replica).await?;
    let record = replica
        .state
        .order_by_number(number)
        .map_err(|e| HttpError::unavailable(format!("cannot read orders: {e}")))?
        .ok_or_else(|| HttpError::new(StatusCode::NOT_FOUND, format!("no order {number}")))?;
    Ok(Json(Data {
        data: Order {
            number,
            name: record.name,
            quantity: record.quantity,
        },
    }))
}

/// The order placed with an idempotency key, whatever its status (linearizable).
async fn get_order_by_key(
    State(replica): State<Arc<Replica>>,
    Path(key): Path<String>,
) -> Result<Json<Data<wire::OrderRecord>>, HttpError> {
    validate_idempotency_key(&key).map_err(|m| HttpError::new(StatusCode::BAD_REQUEST, m))?;
    linearizable_barrier(&replica).await?;
    let record = replica
        .state
        .order_by_key(&key)
        .map_err(|e| HttpError::unavailable(format!("cannot read orders: {e}")))?
        .ok_or_else(|| HttpError::new(StatusCode::NOT_FOUND, format!("no order with key {key}")))?;
    Ok(Json(Data {
        data: to_wire(&record),
    }))
}

/// The status code and message a refused purchase is answered with.
fn refusal(reason: &RejectReason, order: &OrderRecord) -> (StatusCode, String) {
    match reason {
        RejectReason::OutOfStock => (
            StatusCode::CONFLICT,
            format!("not enough {} in stock for {}", order.name, order.quantity),
        ),
        RejectReason::UnknownProduct => (
            StatusCode::NOT_FOUND,
            format!("no toy named {:?}", order.name),
        ),
    }
}

/// A stored record as `GET /orders/by-key/{key}` shows it.
fn to_wire(record: &OrderRecord) -> wire::OrderRecord {
    let status = match &record.status {
        OrderStatus::Confirmed { number } => wire::OrderStatus::Confirmed { number: *number },
        OrderStatus::Rejected(reason) => {
            let (code, reason) = refusal(reason, record);
            wire::OrderStatus::Rejected {
                code: code.as_u16(),
                reason,
            }
        }
    };
    wire::OrderRecord {
        key: record.key.clone(),
        name: record.name.clone(),
        quantity: record.quantity,
        status,
    }
}

/// Waits until this replica's state machine reflects every write acknowledged before the call.
///
/// The leader confirms its leadership with a quorum (read index). A follower asks the leader for
/// its read index and waits until it has applied that far, so every replica serves
/// linearizable reads.
async fn linearizable_barrier(replica: &Replica) -> Result<(), HttpError> {
    let forward = match replica
        .raft
        .ensure_linearizable(ReadPolicy::ReadIndex)
        .await
    {
        Ok(_) => return Ok(()),
        Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => f,
        Err(e) => {
            return Err(HttpError::unavailable(format!(
                "cannot serve a linearizable read: {e}"
            )));
        }
    };
    let leader = leader_hint(&forward)
        .ok_or_else(|| HttpError::unavailable("no leader known for a linearizable read"))?;
    let client = ReplicaClient::new(
        replica.http.clone(),
        leader.url,
        Some(replica.token.clone()),
    );
    let index = client
        .read_index()
        .await
        .map_err(|e| HttpError::unavailable(format!("leader read index: {e}")))?;
    replica
        .raft
        .wait(Some(Duration::from_secs(5)))
        .applied_index_at_least(Some(index.index), "linearizable read")
        .await
        .map_err(|e| HttpError::unavailable(format!("catching up for a read: {e}")))?;
    Ok(())
}
