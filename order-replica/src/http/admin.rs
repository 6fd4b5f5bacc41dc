//! The admin API (token required): the controller commands of classic Raft labs.
//!
//! Every command is idempotent: asking for a state that already holds answers 200 and changes
//! nothing, so the membership driver can repeat any step after a crash.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::error::{ClientWriteError, InitializeError, LinearizableReadError, RaftError};
use openraft::{ChangeMembers, ReadPolicy};

use api::raft::{
    AddLearnerRequest, AdminResponse, ChangeMembershipRequest, InitializeRequest, RaftRole,
    RaftStatus, ReadIndex, RemoveNodesRequest, TransferLeaderRequest,
};

use super::{ApiJson, HttpError};
use crate::purchase::leader_hint;
use crate::replica::Replica;
use crate::types::{NodeId, ReplicaNode, TypeConfig};

pub fn routes() -> Router<Arc<Replica>> {
    Router::new()
        .route("/raft/status", get(status))
        .route("/raft/read-index", get(read_index))
        .route("/admin/status", get(status))
        .route("/admin/initialize", post(initialize))
        .route("/admin/admit", post(admit))
        .route("/admin/learners", post(add_learner))
        .route("/admin/membership", post(change_membership))
        .route("/admin/remove-nodes", post(remove_nodes))
        .route("/admin/transfer-leader", post(transfer_leader))
        .route("/admin/elect", post(elect))
        .route("/admin/snapshot", post(snapshot))
        .route("/admin/backup", get(backup))
}

type AdminResult = Result<Json<AdminResponse>, HttpError>;

/// The command changed the group (or this replica) as asked.
fn done(message: impl Into<String>) -> AdminResult {
    Ok(Json(AdminResponse {
        message: message.into(),
        changed: true,
    }))
}

/// What the command asks for already held; nothing changed.
fn unchanged(message: impl Into<String>) -> AdminResult {
    Ok(Json(AdminResponse {
        message: message.into(),
        changed: false,
    }))
}

async fn status(State(replica): State<Arc<Replica>>) -> Json<RaftStatus> {
    Json(replica.status())
}

/// Leader only: the index a linearizable read elsewhere must wait for.
async fn read_index(State(replica): State<Arc<Replica>>) -> Result<Json<ReadIndex>, HttpError> {
    let index = confirmed_read_index(&replica, "/raft/read-index").await?;
    Ok(Json(ReadIndex { index }))
}

/// A read index confirmed by a quorum, once this leader has applied up to it; a follower
/// answers with the leader hint for `path`.
async fn confirmed_read_index(replica: &Replica, path: &str) -> Result<u64, HttpError> {
    match replica
        .raft
        .ensure_linearizable(ReadPolicy::ReadIndex)
        .await
    {
        Ok(read) => Ok(read.index()),
        Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => {
            Err(HttpError::not_leader(leader_hint(&f), path))
        }
        Err(e) => Err(HttpError::unavailable(e.to_string())),
    }
}

/// Leader only: the group's whole state as of a committed index at or after this request
/// arrived (a read index first, as a linearizable read), serialized as a snapshot carries it.
/// Every purchase acknowledged before the request is in it. Sales go on meanwhile: the state is
/// read from one read transaction while applies commit beside it. `toystore backup` stores
/// this body as an artifact's state.
async fn backup(State(replica): State<Arc<Replica>>) -> Result<Response, HttpError> {
    let started = std::time::Instant::now();
    confirmed_read_index(&replica, "/admin/backup").await?;
    let state = replica.state.clone();
    let (bytes, summary) = tokio::task::spawn_blocking(move || state.export())
        .await
        .map_err(|e| HttpError::unavailable(format!("export failed: {e}")))?
        .map_err(|e| HttpError::unavailable(format!("cannot read the state: {e}")))?;
    tracing::info!(
        index = summary.index,
        orders = summary.orders,
        bytes = bytes.len(),
        ms = started.elapsed().as_millis() as u64,
        "state exported for a backup"
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (
                header::HeaderName::from_static(api::backup::INDEX_HEADER),
                summary.index.to_string(),
            ),
        ],
        bytes,
    )
        .into_response())
}

async fn initialize(
    State(replica): State<Arc<Replica>>,
    ApiJson(req): ApiJson<InitializeRequest>,
) -> AdminResult {
    if req.members.is_empty() {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "members must not be empty",
        ));
    }
    validate_members(&req.members)?;
    let status = replica.status();
    if status.initialized {
        return same_founding_members(&status, &req.members);
    }
    if !req.members.iter().any(|m| m.id == replica.id) {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            format!("replica {} is not one of the members", replica.id),
        ));
    }
    // A founding member: admitted before its first vote can be asked for.
    replica
        .admit("initialize")
        .map_err(|e| HttpError::unavailable(format!("cannot record admission: {e}")))?;
    let nodes: BTreeMap<NodeId, ReplicaNode> = req
        .members
        .iter()
        .map(|m| (m.id, ReplicaNode::of(m)))
        .collect();
    match replica.raft.initialize(nodes).await {
        Ok(()) => done(format!("initialized with {} members", req.members.len())),
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
            same_founding_members(&replica.status(), &req.members)
        }
        Err(RaftError::APIError(e @ InitializeError::NotInMembers(_))) => {
            Err(HttpError::new(StatusCode::BAD_REQUEST, e.to_string()))
        }
        Err(e) => Err(HttpError::unavailable(e.to_string())),
    }
}

/// The answer to `initialize` on an initialized replica: 200 when it asks for the voters the
/// group has (a repeated or resumed formation), 409 naming them when it asks for others, so a
/// caller never mistakes an ignored member list for its own.
fn same_founding_members(status: &RaftStatus, asked: &[api::raft::Member]) -> AdminResult {
    let mut voters: Vec<&api::raft::MemberInfo> =
        status.members.iter().filter(|m| m.voter).collect();
    voters.sort_by_key(|m| m.id);
    let mut asked: Vec<&api::raft::Member> = asked.iter().collect();
    asked.sort_by_key(|m| m.id);
    let same = voters.len() == asked.len()
        && voters.iter().zip(&asked).all(|(v, a)| {
            v.id == a.id && v.url == a.url && (a.raft_url.is_none() || a.raft_url == v.raft_url)
        });
    if same {
        return unchanged("already initialized with these members; nothing changed");
    }
    let held: Vec<String> = voters
        .iter()
        .map(|v| format!("{} at {}", v.id, v.url))
        .collect();
    Err(HttpError::new(
        StatusCode::CONFLICT,
        format!(
            "already initialized with other voters: {}; nothing changed",
            held.join(", ")
        ),
    ))
}

/// Lets this replica take part in the group. Called by a leader that is about to add it as a
/// learner; idempotent.
async fn admit(State(replica): State<Arc<Replica>>) -> AdminResult {
    if replica.identity.is_admitted() {
        return unchanged("already admitted; nothing changed");
    }
    replica
        .admit("a leader adding it as a learner")
        .map_err(|e| HttpError::unavailable(format!("cannot record admission: {e}")))?;
    done(format!("replica {} admitted", replica.id))
}

async fn add_learner(
    State(replica): State<Arc<Replica>>,
    ApiJson(req): ApiJson<AddLearnerRequest>,
) -> AdminResult {
    let member = req.member;
    validate_members(std::slice::from_ref(&member))?;
    let node = ReplicaNode::of(&member);
    let known = replica
        .status()
        .members
        .into_iter()
        .find(|m| m.id == member.id);
    if known.is_none() {
        // Only the leader adds members; ask before touching the learner.
        leader_only(&replica, "/admin/learners")?;
        // A new member (or one whose old identity was removed) is admitted first, so that
        // it accepts the entries the leader is about to send.
        let learner = api::client::ReplicaClient::new(
            replica.http.clone(),
            &member.url,
            Some(replica.token.clone()),
        );
        learner.admit().await.map_err(|e| {
            HttpError::unavailable(format!(
                "could not admit replica {} at {}: {e}",
                member.id, member.url
            ))
        })?;
    }
    let result = match known {
        Some(k) if same_address(&k, &member) && !req.wait_caught_up => {
            return leader_only(&replica, "/admin/learners").map(|_| {
                Json(AdminResponse {
                    message: format!("{} is already a member", member.id),
                    changed: false,
                })
            });
        }
        Some(k) if !same_address(&k, &member) && k.voter => {
            // A voter keeps its address: re-addressing it to a wrong one would leave a voter
            // that counts for quorum but receives nothing. The driver moves a voter by taking
            // it out of the voters first.
            return Err(HttpError::new(
                StatusCode::CONFLICT,
                format!(
                    "{} is a voter at {}; change the voters before giving it another address",
                    member.id, k.url
                ),
            ));
        }
        Some(k) if !same_address(&k, &member) => {
            // A learner that moved: update its address.
            leader_only(&replica, "/admin/learners")?;
            let change = ChangeMembers::SetNodes(BTreeMap::from([(member.id, node)]));
            replica.raft.change_membership(change, true).await
        }
        _ => {
            replica
                .raft
                .add_learner(member.id, node, req.wait_caught_up)
                .await
        }
    };
    write_result(
        result,
        "/admin/learners",
        format!("{} added at {}", member.id, member.url),
    )
}

async fn change_membership(
    State(replica): State<Arc<Replica>>,
    ApiJson(req): ApiJson<ChangeMembershipRequest>,
) -> AdminResult {
    let voters: BTreeSet<NodeId> = req.voters.iter().copied().collect();
    if voters.is_empty() {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "voters must not be empty",
        ));
    }
    let status = leader_only(&replica, "/admin/membership")?;
    if !status.joint && status.voters().into_iter().collect::<BTreeSet<_>>() == voters {
        return unchanged("voters already as asked; nothing changed");
    }
    let result = replica
        .raft
        .change_membership(
            ChangeMembers::ReplaceAllVoters(voters.clone()),
            req.retain_as_learners,
        )
        .await;
    write_result(
        result,
        "/admin/membership",
        format!("voters are now {voters:?}"),
    )
}

async fn remove_nodes(
    State(replica): State<Arc<Replica>>,
    ApiJson(req): ApiJson<RemoveNodesRequest>,
) -> AdminResult {
    let status = leader_only(&replica, "/admin/remove-nodes")?;
    let present: BTreeSet<NodeId> = req
        .ids
        .iter()
        .copied()
        .filter(|id| status.members.iter().any(|m| m.id == *id))
        .collect();
    if present.is_empty() {
        return unchanged("none of them is a member; nothing changed");
    }
    if let Some(v) = present.iter().find(|id| status.voters().contains(id)) {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            format!("{v} is a voter; change the voters first"),
        ));
    }
    let result = replica
        .raft
        .change_membership(ChangeMembers::RemoveNodes(present.clone()), false)
        .await;
    write_result(
        result,
        "/admin/remove-nodes",
        format!("removed {present:?}"),
    )
}

async fn transfer_leader(
    State(replica): State<Arc<Replica>>,
    ApiJson(req): ApiJson<TransferLeaderRequest>,
) -> AdminResult {
    let status = leader_only(&replica, "/admin/transfer-leader")?;
    if req.to == replica.id {
        return unchanged("already the leader");
    }
    if !status.voters().contains(&req.to) {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            format!("{} is not a voter", req.to),
        ));
    }
    replica
        .raft
        .trigger()
        .transfer_leader(req.to)
        .await
        .map_err(|e| HttpError::unavailable(e.to_string()))?;
    // Wait briefly for the hand-over so the caller sees its effect; it observes again anyway.
    let _ = replica
        .raft
        .wait(Some(Duration::from_secs(3)))
        .current_leader(req.to, "leadership transfer")
        .await;
    done(format!("leadership handed to {}", req.to))
}

async fn elect(State(replica): State<Arc<Replica>>) -> AdminResult {
    replica
        .raft
        .trigger()
        .elect(false)
        .await
        .map_err(|e| HttpError::unavailable(e.to_string()))?;
    done("election started")
}

async fn snapshot(State(replica): State<Arc<Replica>>) -> AdminResult {
    replica
        .raft
        .trigger()
        .snapshot()
        .await
        .map_err(|e| HttpError::unavailable(e.to_string()))?;
    done("snapshot requested")
}

/// Whether a known member is reached where `member` says.
fn same_address(known: &api::raft::MemberInfo, member: &api::raft::Member) -> bool {
    known.url == member.url && known.raft_url == member.raft_url
}

/// Refuses members whose URL is not an absolute `http(s)://host[:port]` base URL: a voter
/// re-addressed to garbage stops receiving entries while it still counts for quorum.
fn validate_members(members: &[api::raft::Member]) -> Result<(), HttpError> {
    for m in members {
        if let Err(why) = m.check() {
            return Err(HttpError::new(
                StatusCode::BAD_REQUEST,
                format!("member {}: {why}", m.id),
            ));
        }
    }
    Ok(())
}

/// The status, if this replica is the leader; otherwise a redirect to the leader.
fn leader_only(replica: &Replica, path: &str) -> Result<RaftStatus, HttpError> {
    let status = replica.status();
    if status.role == RaftRole::Leader {
        return Ok(status);
    }
    let hint = status
        .leader_url()
        .zip(status.leader)
        .map(|(url, id)| api::LeaderHint {
            id,
            url: url.to_string(),
        });
    Err(HttpError::not_leader(hint, path))
}

fn write_result<T>(
    result: Result<T, RaftError<TypeConfig, ClientWriteError<TypeConfig>>>,
    path: &str,
    message: String,
) -> AdminResult {
    match result {
        Ok(_) => done(message),
        Err(RaftError::APIError(
            ClientWriteError::ForwardToLeader(f) | ClientWriteError::LogEntryDiscarded(f),
        )) => Err(HttpError::not_leader(leader_hint(&f), path)),
        Err(RaftError::APIError(e)) => Err(HttpError::new(StatusCode::CONFLICT, e.to_string())),
        Err(e) => Err(HttpError::unavailable(e.to_string())),
    }
}
