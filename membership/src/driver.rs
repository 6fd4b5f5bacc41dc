//! Acting: observing the replicas and carrying out steps through their admin API.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use api::client::{ClientError, ReplicaClient, http_client};
use api::raft::{
    AddLearnerRequest, ChangeMembershipRequest, InitializeRequest, Member, NodeId,
    RemoveNodesRequest, TransferLeaderRequest,
};

use crate::step::{Step, next_step};
use api::view::GroupView;

/// Errors of the driver.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// An admin call failed.
    #[error("{step:?} failed: {source}")]
    Step {
        /// The step that failed.
        step: Box<Step>,
        /// Why.
        source: ClientError,
    },
    /// The membership did not converge in time.
    #[error("membership did not converge within {0:?}; last step: {1:?}")]
    Timeout(Duration, Box<Step>),
}

/// Drives the order group's membership through the replicas' admin API.
#[derive(Debug, Clone)]
pub struct MembershipDriver {
    http: reqwest::Client,
    token: Option<String>,
}

impl MembershipDriver {
    /// A driver that authenticates with the cluster `token`.
    pub fn new(token: Option<String>) -> Self {
        Self::with_client(http_client(Duration::from_secs(10)), token)
    }

    /// A driver reusing `http` (and its connection pool), for callers that drive many groups.
    pub fn with_client(http: reqwest::Client, token: Option<String>) -> Self {
        Self { http, token }
    }

    fn client(&self, url: &str) -> ReplicaClient {
        ReplicaClient::new(self.http.clone(), url, self.token.clone())
    }

    /// Reads the status of every desired member and of every member any of them knows.
    pub async fn observe(&self, desired: &[Member]) -> GroupView {
        let mut urls: BTreeMap<NodeId, String> =
            desired.iter().map(|m| (m.id, m.url.clone())).collect();
        let mut obs = GroupView::default();
        while let Some((id, url)) = urls
            .iter()
            .find(|(id, _)| !obs.statuses.contains_key(id))
            .map(|(i, u)| (*i, u.clone()))
        {
            let status = self.client(&url).status().await.map_err(|e| e.to_string());
            if let Ok(s) = &status {
                for m in &s.members {
                    urls.entry(m.id).or_insert_with(|| m.url.clone());
                }
            }
            obs.statuses.insert(id, status);
        }
        obs
    }

    /// Performs one step; returns whether it changed the group (false: a repeat of a step
    /// that had already taken effect, which every admin call answers with "nothing changed").
    pub async fn execute(&self, step: &Step) -> Result<bool, DriverError> {
        let fail = |source| DriverError::Step {
            step: Box::new(step.clone()),
            source,
        };
        let answer = match step {
            Step::Done | Step::Wait(_) => return Ok(false),
            Step::Initialize { members } => {
                let req = InitializeRequest {
                    members: members.clone(),
                };
                // Each call is idempotent: a member initialized before answers "nothing changed".
                let mut changed = false;
                for m in members {
                    changed |= self
                        .client(&m.url)
                        .initialize(&req)
                        .await
                        .map_err(fail)?
                        .changed;
                }
                return Ok(changed);
            }
            Step::AddLearner { leader, member } => {
                let req = AddLearnerRequest {
                    member: member.clone(),
                    wait_caught_up: false,
                };
                self.client(leader).add_learner(&req).await
            }
            Step::TransferLeader { leader, to } => {
                let req = TransferLeaderRequest { to: *to };
                self.client(leader).transfer_leader(&req).await
            }
            Step::ChangeVoters { leader, voters } => {
                let req = ChangeMembershipRequest {
                    voters: voters.clone(),
                    retain_as_learners: false,
                };
                self.client(leader).change_membership(&req).await
            }
            Step::RemoveNodes { leader, ids } => {
                let req = RemoveNodesRequest { ids: ids.clone() };
                self.client(leader).remove_nodes(&req).await
            }
        };
        Ok(answer.map_err(fail)?.changed)
    }

    /// One round: observe, decide, act. Returns the step it took.
    pub async fn reconcile_once(&self, desired: &[Member]) -> Result<Step, DriverError> {
        let obs = self.observe(desired).await;
        let step = next_step(&obs, desired);
        self.execute(&step).await?;
        Ok(step)
    }

    /// Repeats rounds until the membership is as desired or `timeout` passes. Failed steps are
    /// retried: they are idempotent, and most failures are a leader change under way.
    pub async fn converge(&self, desired: &[Member], timeout: Duration) -> Result<(), DriverError> {
        let start = Instant::now();
        let mut last = Step::Wait("not started".into());
        while start.elapsed() < timeout {
            match self.reconcile_once(desired).await {
                Ok(Step::Done) => return Ok(()),
                Ok(step) => {
                    // Waiting is the normal state while a group forms or a learner catches
                    // up: only the steps that change something are news.
                    if let Step::Wait(why) = &step {
                        tracing::debug!(why, "membership waiting");
                    } else {
                        tracing::info!(?step, "membership step");
                    }
                    let pause = if matches!(step, Step::Wait(_)) {
                        200
                    } else {
                        50
                    };
                    last = step;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "membership step failed; will observe again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        Err(DriverError::Timeout(timeout, Box::new(last)))
    }
}
