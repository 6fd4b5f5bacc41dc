//! Raft status and admin requests of the order group.

use serde::{Deserialize, Serialize};

/// Raft node id of an order replica.
pub type NodeId = u64;

/// What a replica is doing in the group right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RaftRole {
    /// Accepts writes and replicates them.
    Leader,
    /// Voting member following a leader.
    Follower,
    /// Voting member asking for votes.
    Candidate,
    /// Non-voting member receiving the log.
    Learner,
    /// Not (yet) part of any membership, or shut down.
    Shutdown,
}

/// One member of the group as the membership config lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Raft node id.
    pub id: NodeId,
    /// Base URL of the replica's client API (orders, status, admin).
    pub url: String,
    /// Base URL of its peer listener, where Raft RPC goes (`None`: the client URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_url: Option<String>,
    /// Whether the member votes (false: learner).
    pub voter: bool,
    /// The highest log index known replicated to it (known only on the leader).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_index: Option<u64>,
}

/// `GET /raft/status`: one replica's view of the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftStatus {
    /// This replica's id.
    pub id: NodeId,
    /// The URL this replica advertises for itself.
    pub url: String,
    /// The URL of its peer listener (Raft RPC), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_url: Option<String>,
    /// This replica's role.
    pub role: RaftRole,
    /// Current term.
    pub term: u64,
    /// The leader this replica knows of.
    pub leader: Option<NodeId>,
    /// Index of the last entry in the local log.
    pub last_log_index: Option<u64>,
    /// Highest index known committed.
    pub commit_index: Option<u64>,
    /// Highest index applied to the state machine.
    pub applied_index: Option<u64>,
    /// Last index covered by the current snapshot.
    pub snapshot_index: Option<u64>,
    /// Last index removed from the log by compaction.
    pub purged_index: Option<u64>,
    /// Whether this replica holds the group's membership (from its log or a snapshot). A stored
    /// vote alone does not count: a leader's first heartbeat leaves one on an empty replica.
    pub initialized: bool,
    /// Whether this replica takes part in the group. A replica whose data directory is new
    /// refuses every Raft RPC (no votes, no entries) until it is admitted: by `initialize` as a
    /// founding member, or by a leader adding it as a learner. A wiped voter therefore never
    /// helps elect a leader; the membership driver removes it and adds it again.
    pub admitted: bool,
    /// Whether the store's inventory (its toys) has been defined in the group; a store is ready
    /// only after that.
    pub inventory_defined: bool,
    /// Identity of the data directory, written when the directory was created: a new value
    /// means the replica's volume is not the one it had before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_id: Option<String>,
    /// Membership as this replica knows it, ordered by id.
    pub members: Vec<MemberInfo>,
    /// Whether the membership is in a joint (changing) configuration.
    pub joint: bool,
    /// Bytes of a torn tail cut from the log when the store was opened, if any.
    pub recovered_torn_bytes: u64,
}

impl RaftStatus {
    /// The voter ids of the membership this replica knows.
    pub fn voters(&self) -> Vec<NodeId> {
        self.members
            .iter()
            .filter(|m| m.voter)
            .map(|m| m.id)
            .collect()
    }

    /// The URL of the leader, if this replica knows it and the leader is a member.
    pub fn leader_url(&self) -> Option<&str> {
        let leader = self.leader?;
        self.members
            .iter()
            .find(|m| m.id == leader)
            .map(|m| m.url.as_str())
    }
}

/// `GET /group` (no token): one replica's read-only view of the group, enough for a client
/// to find the leader and the members, and nothing that changes the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// This replica's id.
    pub id: NodeId,
    /// The URL this replica advertises for itself.
    pub url: String,
    /// This replica's role.
    pub role: RaftRole,
    /// Current term.
    pub term: u64,
    /// The leader this replica knows of.
    pub leader: Option<NodeId>,
    /// The members (client URLs), ordered by id.
    pub members: Vec<GroupMember>,
    /// Highest index applied to the state machine.
    pub applied_index: Option<u64>,
    /// Whether the store's inventory has been defined in the group.
    pub inventory_defined: bool,
}

/// A member as [`GroupInfo`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    /// Raft node id.
    pub id: NodeId,
    /// Base URL of its client API.
    pub url: String,
    /// Whether it votes.
    pub voter: bool,
}

impl GroupInfo {
    /// The URL of the leader, if this replica knows it and the leader is a member.
    pub fn leader_url(&self) -> Option<&str> {
        let leader = self.leader?;
        self.members
            .iter()
            .find(|m| m.id == leader)
            .map(|m| m.url.as_str())
    }
}

impl From<&RaftStatus> for GroupInfo {
    fn from(s: &RaftStatus) -> Self {
        Self {
            id: s.id,
            url: s.url.clone(),
            role: s.role,
            term: s.term,
            leader: s.leader,
            members: s
                .members
                .iter()
                .map(|m| GroupMember {
                    id: m.id,
                    url: m.url.clone(),
                    voter: m.voter,
                })
                .collect(),
            applied_index: s.applied_index,
            inventory_defined: s.inventory_defined,
        }
    }
}

/// A member to be: id and base URLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Member {
    /// Raft node id.
    pub id: NodeId,
    /// Base URL of its client API, e.g. `http://order-1.order:7000`.
    pub url: String,
    /// Base URL of its peer listener for Raft RPC, e.g. `http://order-1.order:7001` (`None`:
    /// Raft RPC goes to `url`). A listener of its own keeps Raft traffic from being starved by
    /// client connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_url: Option<String>,
}

impl Member {
    /// A member whose Raft RPC goes to its client URL.
    pub fn at(id: NodeId, url: impl Into<String>) -> Self {
        Self {
            id,
            url: url.into(),
            raft_url: None,
        }
    }

    /// Checks both URLs (see [`check_member_url`]).
    pub fn check(&self) -> Result<(), String> {
        check_member_url(&self.url)?;
        if let Some(raft) = &self.raft_url {
            check_member_url(raft)?;
        }
        Ok(())
    }
}

/// `POST /admin/initialize`: the first membership of a brand-new group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitializeRequest {
    /// The initial voters.
    pub members: Vec<Member>,
}

/// `POST /admin/learners`: add a non-voting member (or update its address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddLearnerRequest {
    /// The learner to add.
    pub member: Member,
    /// Wait until the learner has caught up with the leader's log before answering.
    #[serde(default)]
    pub wait_caught_up: bool,
}

/// `POST /admin/membership`: set the voters to exactly this set; others become learners or leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeMembershipRequest {
    /// Ids that must be voters afterwards. Each must already be a member.
    pub voters: Vec<NodeId>,
    /// Keep removed voters as learners (true) or drop them from the group (false).
    #[serde(default)]
    pub retain_as_learners: bool,
}

/// `POST /admin/remove-nodes`: drop non-voting members from the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveNodesRequest {
    /// Ids to remove; none of them may be a voter.
    pub ids: Vec<NodeId>,
}

/// `POST /admin/transfer-leader`: hand leadership to another voter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferLeaderRequest {
    /// The voter that should become leader.
    pub to: NodeId,
}

/// Answer to admin commands: what happened, and whether it changed the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminResponse {
    /// What happened, for people reading logs.
    pub message: String,
    /// Whether this call changed something (false: the state asked for already held). A
    /// replica that does not say is taken to have changed something.
    #[serde(default = "changed_by_default")]
    pub changed: bool,
}

fn changed_by_default() -> bool {
    true
}

/// `GET /raft/read-index` (leader only): the log index a linearizable read must wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadIndex {
    /// Apply up to this index before reading.
    pub index: u64,
}

/// Checks that `url` can address a replica: an absolute `http://` or `https://` URL with a
/// host, and nothing after the authority but an optional `/`.
pub fn check_member_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url:?} must start with http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{url:?} must not carry credentials"));
    }
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "{url:?} must be a base URL (scheme, host and port only)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_urls() {
        for ok in [
            "http://127.0.0.1:7001",
            "http://shop-orders-0.shop-orders.shop.svc:7000/",
            "https://r1:443",
        ] {
            assert_eq!(check_member_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "not a url",
            "",
            "127.0.0.1:7001",
            "ftp://r1:21",
            "http://",
            "http://u:p@r1:7000",
            "http://r1:7000/raft",
            "http://r1:7000?x=1",
        ] {
            assert!(check_member_url(bad).is_err(), "{bad}");
        }
    }
}
