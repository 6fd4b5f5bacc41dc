//! A client for the whole order group: finds the leader and hides fail-over.
//!
//! It starts from seed URLs and learns the membership and the leader from every replica's
//! read-only `/group` view ([`GroupClient::refresh`], no token needed), so a group that grows
//! needs no restart of its clients. The leader it believes in is the [`GroupView`]'s.
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
use crate::inventory::{DefineRequest, DefineResponse, RestockRequest, RestockResponse};
use crate::orders::{Order, OrderNumber, OrderRecord, PlaceOrder, PlacedOrder};
use crate::raft::{GroupInfo, RaftRole};
use crate::view::GroupView;

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
    /// The newest view the last refresh adopted.
    view: Mutex<Option<GroupInfo>>,
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
            view: Mutex::new(None),
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

    /// Whether the leader's view, as of the last refresh, says the inventory is defined (a
    /// store is ready only then).
    pub fn inventory_defined(&self) -> bool {
        self.view
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|v| v.inventory_defined)
    }

    /// How far the leader had applied, as of the last refresh.
    pub fn leader_applied_index(&self) -> Option<u64> {
        self.view
            .lock()
            .unwrap()
            .as_ref()
            .filter(|v| v.role == RaftRole::Leader)
            .and_then(|v| v.applied_index)
    }

    /// Asks every known replica for its read-only view at once and adopts the newest: the
    /// membership and the leader of the [`GroupView`] of their answers.
    /// Returns whether some replica answered. Concurrent calls share one round.
    pub async fn refresh(&self) -> bool {
        let _round = self.refreshing.lock().await;
        let asks = self.urls().into_iter().map(|url| {
            let client = ReplicaClient::new(self.status_http.clone(), url, None);
            async move { client.group_info().await.ok() }
        });
        let view = GroupView::of_answers(join_all(asks).await.into_iter().flatten());
        let Some(newest) = view.newest() else {
            return false;
        };
        let mut urls = self.seeds.clone();
        for m in &newest.members {
            if !urls.contains(&m.url) {
                urls.push(m.url.clone());
            }
        }
        *self.urls.lock().unwrap() = urls;
        let leader = view.leader_url().map(|(url, term)| KnownLeader {
            url: url.to_string(),
            term,
        });
        *self.view.lock().unwrap() = Some(view.leader().unwrap_or(newest).clone());
        let newest_term = newest.term;
        let mut known = self.leader.lock().unwrap();
        // A view older than what a successful request already showed changes nothing.
        if leader.is_some() || known.as_ref().is_none_or(|k| k.term <= newest_term) {
            *known = leader;
        }
        true
    }

    /// Places an order, retrying with the same key across leader changes until the deadline.
    pub async fn place_order(
        &self,
        key: &str,
        order: &PlaceOrder,
    ) -> Result<PlacedOrder, ClientError> {
        self.with_leader(true, |c| {
            let order = order.clone();
            let key = key.to_string();
            async move { c.place_order(&key, &order).await }
        })
        .await
    }

    /// Defines the toys not defined yet (needs the token); repeating it changes nothing.
    pub async fn define(&self, req: &DefineRequest) -> Result<DefineResponse, ClientError> {
        self.with_leader(true, |c| async move { c.define(req).await })
            .await
    }

    /// Restocks a toy if its stock is as the request says (needs the token).
    pub async fn restock(&self, req: &RestockRequest) -> Result<RestockResponse, ClientError> {
        self.with_leader(true, |c| async move { c.restock(req).await })
            .await
    }

    /// The group's state for a backup, from the leader (needs the token): as of a committed
    /// index at or after the call, so every purchase acknowledged before it is in it.
    pub async fn backup_state(&self) -> Result<Vec<u8>, ClientError> {
        self.with_leader(true, |c| async move { c.backup_state().await })
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
            if self.refresh().await && self.leader().is_some_and(|l| l != url) {
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
