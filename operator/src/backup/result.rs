//! What a Job of the `toystore` CLI says: still running (and what its pod waits for), or
//! ended, with the JSON result the CLI wrote as its container's termination message.
//!
//! Pure, over the Job and its pods as read from the API server, so every verdict is a table
//! test. A Job counts as succeeded only with a result that parses: the CLI writes one on
//! success, so a success without one is a failure to say so, never a silent success.

use api::backup::FailureReport;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::de::DeserializeOwned;

/// The longest piece of a termination message (a log tail) quoted in a status or event.
const QUOTE_LIMIT: usize = 600;

/// Where a CLI Job is.
#[derive(Clone, Debug, PartialEq)]
pub enum JobResult<T> {
    /// Not ended, or ended `Complete` while its pod's end (which holds the result) is not seen
    /// yet. `started`: a container of its pod runs; `waiting`: why its pod does not run yet,
    /// when that is worth telling (a missing Secret, an image that cannot be pulled, no node
    /// fits).
    Running {
        /// A container runs.
        started: bool,
        /// What the pod waits for, in words.
        waiting: Option<String>,
    },
    /// Ended with success and the result the CLI wrote.
    Succeeded {
        /// The CLI's result.
        report: T,
        /// When its container ended.
        finished: Option<Time>,
    },
    /// Ended without a result.
    Failed {
        /// `None` when the CLI reported the failure itself (a `FailureReport`); otherwise why
        /// Kubernetes ended it (`DeadlineExceeded`, `OOMKilled`, `NoResult`...).
        reason: Option<String>,
        /// What went wrong, in words: the CLI's error, or the Job's and the container's.
        message: String,
        /// When it ended.
        finished: Option<Time>,
    },
}

/// Reads `job` and its `pods` (those it owns; others are ignored). A `Complete` Job whose
/// owned pod is there but not terminated yet is still `Running` (the two come from different
/// watches); it is a `NoResult` failure only once no pod of it is left, or its result is
/// missing or does not parse.
pub fn read<T: DeserializeOwned>(job: &Job, pods: &[&Pod]) -> JobResult<T> {
    let uid = job.metadata.uid.as_deref();
    let pods: Vec<&Pod> = pods
        .iter()
        .copied()
        .filter(|p| {
            p.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| Some(o.uid.as_str()) == uid)
        })
        .collect();
    let condition = |type_: &str| {
        job.status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .find(|c| c.type_ == type_ && c.status == "True")
    };
    let terminated = pods.iter().find_map(|p| terminated(p));
    if let Some(complete) = condition("Complete") {
        if terminated.is_none() && !pods.is_empty() {
            // The Job and its pods come from different watches: its `Complete` can arrive
            // before its pod's end, which holds the result. Still waiting for that.
            return running(&pods);
        }
        let finished = terminated
            .and_then(|t| t.finished_at.clone())
            .or_else(|| job.status.as_ref()?.completion_time.clone())
            .or_else(|| complete.last_transition_time.clone());
        let Some(message) = terminated.and_then(|t| t.message.as_deref()) else {
            return JobResult::Failed {
                reason: Some("NoResult".into()),
                message: "the Job succeeded but left no result to read (its pod is gone, or the command wrote none)".into(),
                finished,
            };
        };
        return match serde_json::from_str(message.trim()) {
            Ok(report) => JobResult::Succeeded { report, finished },
            Err(e) => JobResult::Failed {
                reason: Some("NoResult".into()),
                message: format!(
                    "the Job succeeded but its result does not parse ({e}): {}",
                    quote(message)
                ),
                finished,
            },
        };
    }
    if let Some(failed) = condition("Failed") {
        let finished = terminated
            .and_then(|t| t.finished_at.clone())
            .or_else(|| failed.last_transition_time.clone());
        let reported = terminated
            .and_then(|t| t.message.as_deref())
            .and_then(|m| serde_json::from_str::<FailureReport>(m.trim()).ok());
        if let Some(report) = reported {
            return JobResult::Failed {
                reason: None,
                message: report.error,
                finished,
            };
        }
        let job_reason = failed.reason.clone().unwrap_or_else(|| "JobFailed".into());
        let mut message = failed
            .message
            .clone()
            .unwrap_or_else(|| "the Job failed".into());
        let mut reason = job_reason;
        if let Some(t) = terminated {
            let why = t.reason.clone().unwrap_or_else(|| "Error".into());
            message.push_str(&format!(
                "; its container ended: {why} (exit code {})",
                t.exit_code
            ));
            if let Some(tail) = t.message.as_deref().filter(|m| !m.trim().is_empty()) {
                message.push_str(&format!(": {}", quote(tail)));
            }
            if why == "OOMKilled" {
                reason = why;
            }
        } else if let Some(waiting) = pods.iter().find_map(|p| waiting(p)) {
            message.push_str(&format!("; its pod never ran: {waiting}"));
        }
        return JobResult::Failed {
            reason: Some(reason),
            message,
            finished,
        };
    }
    running(&pods)
}

/// A Job not ended (or whose result is not in yet): whether a container of `pods` runs, and
/// what one waits for.
fn running<T>(pods: &[&Pod]) -> JobResult<T> {
    let started = pods.iter().any(|p| {
        p.status
            .iter()
            .flat_map(|s| s.container_statuses.iter().flatten())
            .any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
    });
    JobResult::Running {
        started,
        waiting: pods.iter().find_map(|p| waiting(p)),
    }
}

/// The first terminated container state of `pod`.
fn terminated(pod: &Pod) -> Option<&ContainerStateTerminated> {
    pod.status
        .as_ref()?
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.terminated.as_ref())
}

/// Why `pod` does not run, when it is something a person must know: a container waiting for
/// anything but its ordinary start, or the pod not scheduled.
fn waiting(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let container = status
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref())
        .filter(|w| {
            !matches!(
                w.reason.as_deref(),
                None | Some("ContainerCreating" | "PodInitializing")
            )
        })
        .map(|w| {
            let reason = w.reason.clone().unwrap_or_default();
            match &w.message {
                Some(m) => format!("{reason}: {m}"),
                None => reason,
            }
        });
    container.or_else(|| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            .map(|c| {
                let reason = c.reason.clone().unwrap_or_else(|| "Unschedulable".into());
                match &c.message {
                    Some(m) => format!("{reason}: {m}"),
                    None => reason,
                }
            })
    })
}

/// `text` trimmed, cut to [`QUOTE_LIMIT`] characters (its end: a log's tail says most).
fn quote(text: &str) -> String {
    let text = text.trim();
    let count = text.chars().count();
    if count <= QUOTE_LIMIT {
        return text.to_string();
    }
    let tail: String = text.chars().skip(count - QUOTE_LIMIT).collect();
    format!("...{tail}")
}

/// `n` as the `i64` a status field holds (saturating: a count past `i64::MAX` shows as it).
pub fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
pub(crate) mod tests {
    use api::backup::BackupReport;
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateWaiting, ContainerStatus,
        PodCondition, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    use k8s_openapi::jiff::Timestamp;
    use serde_json::json;

    use super::*;

    /// A BackupReport as `toystore backup` writes it.
    pub(crate) fn report_json() -> serde_json::Value {
        json!({
            "url": "s3://bucket/shop/nightly",
            "manifest": {
                "artifactFormat": 1,
                "store": "shop",
                "createdAt": "2025-03-10T03:00:05Z",
                "toystoreVersion": "0.1.0",
                "state": {"storageFormat": 1, "index": 1234, "term": 3, "orders": 1000,
                          "refused": 7, "products": 12},
                "data": {"object": "state.json", "size": 52000, "sha256": "ab12"}
            },
            "millis": 840
        })
    }

    pub(crate) fn job(condition: Option<(&str, &str)>) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("nightly-backup".into()),
                uid: Some("job-uid".into()),
                ..ObjectMeta::default()
            },
            status: Some(JobStatus {
                conditions: condition.map(|(type_, reason)| {
                    vec![JobCondition {
                        type_: type_.into(),
                        status: "True".into(),
                        reason: Some(reason.into()),
                        message: Some(format!("{reason} happened")),
                        last_transition_time: Some(Time(Timestamp::UNIX_EPOCH)),
                        ..JobCondition::default()
                    }]
                }),
                ..JobStatus::default()
            }),
            ..Job::default()
        }
    }

    pub(crate) fn pod(owner: &str, state: ContainerState) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("nightly-backup-x1".into()),
                owner_references: Some(vec![OwnerReference {
                    uid: owner.into(),
                    kind: "Job".into(),
                    ..OwnerReference::default()
                }]),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: "backup".into(),
                    state: Some(state),
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    pub(crate) fn ended(exit_code: i32, reason: &str, message: &str) -> ContainerState {
        ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code,
                reason: Some(reason.into()),
                message: Some(message.into()),
                finished_at: Some(Time("2025-03-10T03:00:06Z".parse().unwrap())),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        }
    }

    #[test]
    fn a_success_is_the_parsed_report() {
        let pod = pod("job-uid", ended(0, "Completed", &report_json().to_string()));
        match read::<BackupReport>(&job(Some(("Complete", "CompletionsReached"))), &[&pod]) {
            JobResult::Succeeded { report, finished } => {
                assert_eq!(report.manifest.state.index, 1234);
                assert_eq!(
                    finished,
                    Some(Time("2025-03-10T03:00:06Z".parse().unwrap()))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_success_without_a_readable_report_is_a_failure() {
        let complete = job(Some(("Complete", "CompletionsReached")));
        let garbage = pod("job-uid", ended(0, "Completed", "done!"));
        let gone: [&Pod; 0] = [];
        let other_jobs = pod(
            "another-uid",
            ended(0, "Completed", &report_json().to_string()),
        );
        for pods in [vec![&garbage], gone.to_vec(), vec![&other_jobs]] {
            match read::<BackupReport>(&complete, &pods) {
                JobResult::Failed { reason, .. } => assert_eq!(reason.as_deref(), Some("NoResult")),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_complete_job_whose_pod_has_not_ended_yet_is_still_running() {
        // The Job's watch can deliver `Complete` before the pod's watch its terminated state.
        let complete = job(Some(("Complete", "CompletionsReached")));
        let still_running = pod(
            "job-uid",
            ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..ContainerState::default()
            },
        );
        assert_eq!(
            read::<BackupReport>(&complete, &[&still_running]),
            JobResult::Running {
                started: true,
                waiting: None
            }
        );
        // Once the pod's end is in, the result is read.
        let ended_pod = pod("job-uid", ended(0, "Completed", &report_json().to_string()));
        assert!(matches!(
            read::<BackupReport>(&complete, &[&ended_pod]),
            JobResult::Succeeded { .. }
        ));
        // A terminated pod without a message is no result, not a wait.
        let mut silent = pod("job-uid", ended(0, "Completed", ""));
        silent
            .status
            .as_mut()
            .unwrap()
            .container_statuses
            .as_mut()
            .unwrap()[0]
            .state
            .as_mut()
            .unwrap()
            .terminated
            .as_mut()
            .unwrap()
            .message = None;
        match read::<BackupReport>(&complete, &[&silent]) {
            JobResult::Failed { reason, .. } => assert_eq!(reason.as_deref(), Some("NoResult")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failure_reported_by_the_cli_is_its_error() {
        let message = json!({"error": "no leader: every replica refused the token"}).to_string();
        let pod = pod("job-uid", ended(1, "Error", &message));
        let result = read::<BackupReport>(&job(Some(("Failed", "BackoffLimitExceeded"))), &[&pod]);
        assert_eq!(
            result,
            JobResult::Failed {
                reason: None,
                message: "no leader: every replica refused the token".into(),
                finished: Some(Time("2025-03-10T03:00:06Z".parse().unwrap())),
            }
        );
    }

    #[test]
    fn a_failure_without_a_report_names_the_job_and_the_container() {
        let crashed = pod("job-uid", ended(137, "OOMKilled", "exporting state\n"));
        match read::<BackupReport>(&job(Some(("Failed", "BackoffLimitExceeded"))), &[&crashed]) {
            JobResult::Failed {
                reason, message, ..
            } => {
                assert_eq!(reason.as_deref(), Some("OOMKilled"));
                assert!(
                    message.contains("OOMKilled (exit code 137): exporting state"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        let mut stuck = pod("job-uid", ContainerState::default());
        stuck
            .status
            .as_mut()
            .unwrap()
            .container_statuses
            .as_mut()
            .unwrap()[0]
            .state = Some(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("CreateContainerConfigError".into()),
                message: Some("secret \"s3\" not found".into()),
            }),
            ..ContainerState::default()
        });
        let running = read::<BackupReport>(&job(None), &[&stuck]);
        assert_eq!(
            running,
            JobResult::Running {
                started: false,
                waiting: Some("CreateContainerConfigError: secret \"s3\" not found".into()),
            }
        );
        match read::<BackupReport>(&job(Some(("Failed", "DeadlineExceeded"))), &[&stuck]) {
            JobResult::Failed {
                reason, message, ..
            } => {
                assert_eq!(reason.as_deref(), Some("DeadlineExceeded"));
                assert_eq!(
                    message,
                    "DeadlineExceeded happened; its pod never ran: CreateContainerConfigError: secret \"s3\" not found"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_running_job_says_whether_it_started_and_what_it_waits_for() {
        let running = pod(
            "job-uid",
            ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..ContainerState::default()
            },
        );
        assert_eq!(
            read::<BackupReport>(&job(None), &[&running]),
            JobResult::Running {
                started: true,
                waiting: None
            }
        );
        let mut unscheduled = pod("job-uid", ContainerState::default());
        let status = unscheduled.status.as_mut().unwrap();
        status.container_statuses = None;
        status.conditions = Some(vec![PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            reason: Some("Unschedulable".into()),
            message: Some("0/3 nodes are available".into()),
            ..PodCondition::default()
        }]);
        assert_eq!(
            read::<BackupReport>(&job(None), &[&unscheduled]),
            JobResult::Running {
                started: false,
                waiting: Some("Unschedulable: 0/3 nodes are available".into())
            }
        );
    }

    #[test]
    fn long_texts_are_cut() {
        let long = "x".repeat(5000);
        assert_eq!(quote(&long).chars().count(), QUOTE_LIMIT + 3);
    }

    #[test]
    fn counts_past_i64_saturate() {
        assert_eq!(saturating_i64(1234), 1234);
        assert_eq!(saturating_i64(u64::MAX), i64::MAX);
    }
}
