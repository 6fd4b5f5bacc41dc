//! A client for the whole order group: finds the leader and hides fail-over.
//!
//! It starts from seed URLs and, with the cluster token, learns the membership and the leader
//! from every replica's `/raft/status` ([`GroupClient::refresh`]), so a group that grows needs no
//! restart of its clients. The leader it believes in is the one with the highest term: a deposed
//! leader cut off by a partition, or a replica whose Raft stopped, still names itself, but with
//! an older term or a `shutdown` role.
//!
//! A request goes to the leader; a redirect names the new one; a refused connection, a timeout
//! or a 503 makes it ask every replica at once instead of waiting for the next periodic refresh.
//! Each attempt is bounded by a timeout of the order of the election timeout, so a paused leader
//! costs about an election, not a whole request deadline. Retries keep the idempotency key, so
//! a purchase happens at most once however often it is sent.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::client::{ClientError, ReplicaClient, http_client};
use crate::orders::{Order, OrderNumber, OrderRecord, PlaceOrder};
use crate::raft::{RaftRole, RaftStatus};

/// Default bound of one attempt: one and a half times the default maximum election timeout
/// (1 s), so a leader that stopped answering costs about an election, not a deadline.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
/// Longest pause between attempts while no leader is known: an election is typically over in
/// well under a second, and every replica is asked again before each attempt.
const MAX_BACKOFF: Duration = Duration::from_millis(100);
/// How long a status query may take during a refresh.
const STATUS_TIMEOUT: Duration = Duration::from_millis(800);

/// The leader a client believes in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KnownLeader {
    url: String,
    term: u64,
}

/// A client for the order group. See the module documentation.
#[derive(Debug)]
pub struct GroupClient {
    http: reqwest::Client,
    status_http: reqwest::Client,
    seeds: Vec<String>,
    urls: Mutex<Vec<String>>,
    token: Option<String>,
    leader: Mutex<Option<KnownLeader>>,
    refreshing: tokio::sync::Mutex<()>,
    deadline: Duration,
}

impl GroupClient {
    /// A client for the replicas at `urls`, giving up on a request after `deadline`; each
    /// attempt is bounded by [`DEFAULT_ATTEMPT_TIMEOUT`].
    pub fn new(urls: Vec<String>, token: Option<String>, deadline: Duration) -> Self {
        Self::with_attempt_timeout(urls, token, deadline, DEFAULT_ATTEMPT_TIMEOUT)
    }

    /// [`new`](Self::new) with another bound for one attempt.
    pub fn with_attempt_timeout(
        urls: Vec<String>,
        token: Option<String>,
        deadline: Duration,
        attempt: Duration,
    ) -> Self {
        assert!(
            !urls.is_empty(),
            "a group client needs at least one replica URL"
        );
        Self {
            http: http_client(attempt),
            status_http: http_client(STATUS_TIMEOUT),
            seeds: urls.clone(),
            urls: Mutex::new(urls),
            token,
            leader: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            deadline,
        }
    }

    /// The replica URLs currently known (seeds plus learned members).
    pub fn urls(&self) -> Vec<String> {
        self.urls.lock().unwrap().clone()
    }

    /// The leader's URL, if known.
    pub fn leader(&self) -> Option<String> {
        self.leader.lock().unwrap().as_ref().map(|l| l.url.clone())
    }

    /// Asks every known replica for its status at once (needs the token) and adopts the newest
    /// view: the membership of the highest term, and as leader the replica that says it leads
    /// in the highest term (or, if none answered as leader, the leader a replica of that term
    /// names). Returns whether some replica answered. Concurrent calls share one round.
    pub async fn refresh(&self) -> bool {
        let _round = self.refreshing.lock().await;
        let asks = self.urls().into_iter().map(|url| {
            let client = ReplicaClient::new(self.status_http.clone(), url, self.token.clone());
            async move { client.status().await.ok() }
        });
        let statuses: Vec<RaftStatus> = join_all(asks).await.into_iter().flatten().collect();
        let Some(newest) = newest_view(&statuses) else {
            return false;
        };
        let mut urls = self.seeds.clone();
        for m in &newest.members {
            if !urls.contains(&m.url) {
                urls.push(m.url.clone());
            }
        }
        *self.urls.lock().unwrap() = urls;
        let leader = elected_leader(&statuses);
        let mut known = self.leader.lock().unwrap();
        // A view older than what a successful request already showed changes nothing.
        if leader.is_some() || known.as_ref().is_none_or(|k| k.term <= newest.term) {
            *known = leader;
        }
        true
    }

    /// Places an order, retrying with the same key across leader changes until the deadline.
    pub async fn place_order(
        &self,
        key: &str,
        order: &PlaceOrder,
    ) -> Result<OrderNumber, ClientError> {
        self.with_leader(true, |c| {
            let order = order.clone();
            let key = key.to_string();
            async move { c.place_order(&key, &order).await }
        })
        .await
    }

    /// Reads an order (linearizable) from whichever replica answers.
    pub async fn get_order(&self, number: OrderNumber) -> Result<Order, ClientError> {
        self.with_leader(false, |c| async move { c.get_order(number).await })
            .await
    }

    /// The order placed with `key`, whatever its status (linearizable).
    pub async fn order_by_key(&self, key: &str) -> Result<OrderRecord, ClientError> {
        self.with_leader(false, |c| async move { c.order_by_key(key).await })
            .await
    }

    /// Runs `call` against the leader, following redirects and retrying retryable errors.
    /// A write that succeeded proves its replica leads: it is remembered as the leader.
    async fn with_leader<T, F, Fut>(&self, write: bool, call: F) -> Result<T, ClientError>
    where
        F: Fn(ReplicaClient) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let start = Instant::now();
        let mut backoff = Duration::from_millis(20);
        let mut next = 0usize;
        loop {
            let known = self.leader.lock().unwrap().clone();
            let url = match &known {
                Some(l) => l.url.clone(),
                None => {
                    let urls = self.urls.lock().unwrap();
                    urls[next % urls.len()].clone()
                }
            };
            let client = ReplicaClient::new(self.http.clone(), url.clone(), self.token.clone());
            let err = match call(client).await {
                Ok(v) => {
                    if write && known.is_none() {
                        *self.leader.lock().unwrap() = Some(KnownLeader { url, term: 0 });
                    }
                    return Ok(v);
                }
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => e,
            };
            if start.elapsed() >= self.deadline {
                return Err(ClientError::Deadline(
                    self.deadline,
                    format!("{url}: {err}"),
                ));
            }
            match &err {
                ClientError::NotLeader { leader: Some(hint) } if hint.url != url => {
                    *self.leader.lock().unwrap() = Some(KnownLeader {
                        url: hint.url.clone(),
                        term: known.map_or(0, |k| k.term),
                    });
                    continue;
                }
                _ => {}
            }
            // The leader we believed in failed: ask everyone now rather than guess.
            self.forget_leader(&url);
            if self.token.is_some()
                && self.refresh().await
                && self.leader().is_some_and(|l| l != url)
            {
                continue;
            }
            next += 1;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Forgets the leader if it is still `url` (another request may have learned a new one).
    fn forget_leader(&self, url: &str) {
        let mut known = self.leader.lock().unwrap();
        if known.as_ref().is_some_and(|l| l.url == url) {
            *known = None;
        }
    }
}

/// The status of the highest term among live replicas (a stopped replica's view is ignored).
fn newest_view(statuses: &[RaftStatus]) -> Option<&RaftStatus> {
    statuses
        .iter()
        .filter(|s| s.role != RaftRole::Shutdown)
        .max_by_key(|s| (s.term, s.role == RaftRole::Leader))
}

/// The leader of the highest term: a replica that says it leads, else the leader that the
/// newest follower names.
fn elected_leader(statuses: &[RaftStatus]) -> Option<KnownLeader> {
    let newest = newest_view(statuses)?;
    let leading = statuses
        .iter()
        .filter(|s| s.role == RaftRole::Leader)
        .max_by_key(|s| s.term);
    match leading {
        Some(l) if l.term >= newest.term => Some(KnownLeader {
            url: l.url.clone(),
            term: l.term,
        }),
        _ => newest.leader_url().map(|url| KnownLeader {
            url: url.to_string(),
            term: newest.term,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::MemberInfo;

    fn status(id: u64, role: RaftRole, term: u64, leader: Option<u64>) -> RaftStatus {
        RaftStatus {
            id,
            url: format!("http://r{id}"),
            raft_url: None,
            role,
            term,
            leader,
            last_log_index: Some(10),
            commit_index: Some(10),
            applied_index: Some(10),
            snapshot_index: None,
            purged_index: None,
            initialized: true,
            admitted: true,
            inventory_defined: false,
            data_id: None,
            members: (1..=3)
                .map(|i| MemberInfo {
                    id: i,
                    url: format!("http://r{i}"),
                    raft_url: None,
                    voter: true,
                    matched_index: None,
                })
                .collect(),
            joint: false,
            recovered_torn_bytes: 0,
        }
    }

    fn leader_url(statuses: &[RaftStatus]) -> Option<String> {
        elected_leader(statuses).map(|l| l.url)
    }

    #[test]
    fn the_leader_of_the_highest_term_wins() {
        // Replica 1 was deposed by a partition but still says it leads, in term 3.
        let statuses = [
            status(1, RaftRole::Leader, 3, Some(1)),
            status(2, RaftRole::Leader, 4, Some(2)),
            status(3, RaftRole::Follower, 4, Some(2)),
        ];
        assert_eq!(leader_url(&statuses), Some("http://r2".into()));
        // Whatever order they answered in.
        let reversed: Vec<_> = statuses.iter().rev().cloned().collect();
        assert_eq!(leader_url(&reversed), Some("http://r2".into()));
    }

    #[test]
    fn a_stopped_replica_is_never_the_leader() {
        // Raft stopped on a full disk: role shutdown, still naming itself leader.
        let statuses = [
            status(1, RaftRole::Shutdown, 9, Some(1)),
            status(2, RaftRole::Follower, 5, Some(3)),
        ];
        assert_eq!(leader_url(&statuses), Some("http://r3".into()));
        assert_eq!(
            leader_url(&[status(1, RaftRole::Shutdown, 9, Some(1))]),
            None
        );
    }

    #[test]
    fn an_old_leader_is_not_preferred_over_a_newer_followers_view() {
        // The newest term is 6, whose leader (3) did not answer; 1 still leads term 5.
        let statuses = [
            status(1, RaftRole::Leader, 5, Some(1)),
            status(2, RaftRole::Follower, 6, Some(3)),
        ];
        assert_eq!(leader_url(&statuses), Some("http://r3".into()));
        // An election under way in a newer term: no leader known yet.
        let statuses = [
            status(1, RaftRole::Leader, 5, Some(1)),
            status(2, RaftRole::Candidate, 6, None),
        ];
        assert_eq!(leader_url(&statuses), None);
    }
}
