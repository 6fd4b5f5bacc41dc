//! The ToyStoreBackup controller against kube-rs's mocked API server (tower-test): each
//! scenario scripts exactly the requests a round must send, in order, answers them, and fails
//! on anything else; every request must be granted by `rbac::rules()`.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus, Pod,
    PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::Client;
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::Reporter;
use serde_json::{Value, json};

use operator::backup::reconcile;
use operator::build::{self, SCHEDULED_LABEL};
use operator::cache::Caches;
use operator::crd::{
    BackupPhase, ToyStore, ToyStoreBackup, ToyStoreBackupSpec, ToyStoreBackupStatus,
};
use operator::events::Events;
use operator::metrics::Metrics;
use operator::order_group::HttpOrderGroup;
use operator::rbac::{self, Access};
use operator::reconcile::{Context, Memory};

const NS: &str = "shop";
const STORE: &str = "/apis/toystore.dev/v1alpha1/namespaces/shop/toystores/toys";
const BACKUP_STATUS: &str =
    "/apis/toystore.dev/v1alpha1/namespaces/shop/toystorebackups/nightly/status";
const JOBS: &str = "/apis/batch/v1/namespaces/shop/jobs";
const JOB: &str = "/apis/batch/v1/namespaces/shop/jobs/nightly-backup";
const PODS: &str = "/api/v1/namespaces/shop/pods";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/shop/events";

/// One expected request and the canned answer.
struct Expect {
    method: Method,
    path: &'static str,
    status: u16,
    body: Value,
}

fn expect(method: Method, path: &'static str, status: u16, body: Value) -> Expect {
    Expect {
        method,
        path,
        status,
        body,
    }
}

fn not_found(method: Method, path: &'static str) -> Expect {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "reason": "NotFound", "code": 404, "message": "not found"});
    expect(method, path, 404, body)
}

/// What a round sent: every POST and PATCH with its body, and the round's next action.
struct Sent {
    writes: Vec<(Method, String, Value)>,
    action: Action,
}

impl Sent {
    /// The status the round wrote.
    fn status(&self) -> ToyStoreBackupStatus {
        let (_, _, body) = self
            .writes
            .iter()
            .find(|(m, p, _)| m == Method::PATCH && p == BACKUP_STATUS)
            .expect("a status write");
        serde_json::from_value(body["status"].clone()).unwrap()
    }

    /// The one Event the round created: (type, reason, note).
    fn event(&self) -> (String, String, String) {
        let events: Vec<&Value> = self
            .writes
            .iter()
            .filter(|(m, p, _)| m == Method::POST && p == EVENTS)
            .map(|(_, _, b)| b)
            .collect();
        assert_eq!(events.len(), 1, "one event");
        let field = |k: &str| events[0][k].as_str().unwrap().to_string();
        (field("type"), field("reason"), field("note"))
    }

    /// The body of the POST to `path`.
    fn created(&self, path: &str) -> &Value {
        &self
            .writes
            .iter()
            .find(|(m, p, _)| m == Method::POST && p == path)
            .expect("a POST")
            .2
    }
}

/// One round of `backup` against the script.
async fn round(backup: &ToyStoreBackup, script: Vec<Expect>) -> Sent {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, NS);
    let ctx = Arc::new(Context {
        client: client.clone(),
        events: Events::new(client, Reporter::from("toystore-operator")),
        group: Arc::new(HttpOrderGroup::default()),
        metrics: Arc::new(Metrics::default()),
        default_storage_class: None,
        cache: Caches::new().0,
        memory: Arc::new(Memory::default()),
    });
    let total = script.len();
    let server = tokio::spawn(async move {
        let mut writes = Vec::new();
        for (i, e) in script.into_iter().enumerate() {
            let (req, send) = handle.next_request().await.expect("a request");
            let path = req.uri().path().to_string();
            assert_granted(&req);
            assert_eq!(
                (req.method(), path.as_str()),
                (&e.method, e.path),
                "request {} of {total} is not the expected one",
                i + 1
            );
            let method = req.method().clone();
            if method == Method::PATCH || method == Method::POST {
                let sent = req.into_body().collect().await.unwrap().to_bytes();
                writes.push((method, path, serde_json::from_slice(&sent).unwrap()));
            }
            let body = serde_json::to_vec(&e.body).unwrap();
            send.send_response(
                Response::builder()
                    .status(e.status)
                    .body(Body::from(body))
                    .unwrap(),
            );
        }
        (handle, writes)
    });
    let action = tokio::time::timeout(
        Duration::from_secs(10),
        reconcile(Arc::new(backup.clone()), ctx),
    )
    .await
    .expect("the round sent a request the script did not expect (or hung)")
    .expect("the round succeeds");
    let (handle, writes) = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the round sent fewer requests than scripted")
        .unwrap();
    drop(handle);
    Sent { writes, action }
}

/// Fails unless [`rbac::rules`] allow `req`.
fn assert_granted(req: &Request<Body>) {
    let apply = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/apply-patch+yaml");
    let query = req.uri().query().unwrap_or("");
    for access in Access::of_request(req.method().as_str(), req.uri().path(), query, apply)
        .expect("a resource request")
    {
        assert!(
            rbac::allows(&rbac::rules(), &access),
            "{} {} needs {access:?}, which rbac::rules() does not grant",
            req.method(),
            req.uri()
        );
    }
}

/// The store `toys`, backing up to S3 with credentials (or not at all).
fn store(with_backup: bool) -> Value {
    let mut spec = json!({"image": "ghcr.io/toystore/toystore:0.1.0", "orders": {"replicas": 3}});
    if with_backup {
        spec["backup"] = json!({
            "destination": {"url": "s3://backups/prod", "credentialsSecret": "backup-s3"},
            "retention": {"keep": 3}
        });
    }
    let mut s: ToyStore = ToyStore::new("toys", serde_json::from_value(spec).unwrap());
    s.metadata.namespace = Some(NS.into());
    s.metadata.uid = Some("store-uid".into());
    serde_json::to_value(s).unwrap()
}

/// The ToyStoreBackup `nightly` of `toys`, with `status`.
fn backup(status: Option<ToyStoreBackupStatus>) -> ToyStoreBackup {
    let mut b = ToyStoreBackup::new(
        "nightly",
        ToyStoreBackupSpec {
            store: "toys".into(),
        },
    );
    b.metadata.namespace = Some(NS.into());
    b.metadata.uid = Some("backup-uid".into());
    b.metadata.generation = Some(1);
    b.status = status;
    b
}

/// A backup whose Job was created.
fn started() -> ToyStoreBackup {
    backup(Some(ToyStoreBackupStatus {
        phase: Some(BackupPhase::Pending),
        job: Some("nightly-backup".into()),
        started_at: Some(Time("2025-03-10T03:00:00Z".parse().unwrap())),
        ..ToyStoreBackupStatus::default()
    }))
}

/// The backup's Job as the API server returns it: owned by the backup, with `condition`.
fn job(condition: Option<(&str, &str)>) -> Value {
    job_of("backup-uid", condition)
}

/// A Job `nightly-backup` controlled by the ToyStoreBackup of uid `owner`, with `condition`.
fn job_of(owner: &str, condition: Option<(&str, &str)>) -> Value {
    let job = Job {
        metadata: ObjectMeta {
            name: Some("nightly-backup".into()),
            namespace: Some(NS.into()),
            uid: Some("job-uid".into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "toystore.dev/v1alpha1".into(),
                kind: "ToyStoreBackup".into(),
                name: "nightly".into(),
                uid: owner.into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        status: Some(JobStatus {
            conditions: condition.map(|(type_, reason)| {
                vec![JobCondition {
                    type_: type_.into(),
                    status: "True".into(),
                    reason: Some(reason.into()),
                    message: Some("Job has reached the specified backoff limit".into()),
                    ..JobCondition::default()
                }]
            }),
            ..JobStatus::default()
        }),
        ..Job::default()
    };
    serde_json::to_value(job).unwrap()
}

/// The list of the Job's one pod, in `state`.
fn pods(state: ContainerState) -> Value {
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some("nightly-backup-x7k2p".into()),
            namespace: Some(NS.into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "Job".into(),
                name: "nightly-backup".into(),
                uid: "job-uid".into(),
                controller: Some(true),
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
    };
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [pod]})
}

fn running() -> ContainerState {
    ContainerState {
        running: Some(ContainerStateRunning::default()),
        ..ContainerState::default()
    }
}

fn ended(exit_code: i32, message: &str) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code,
            message: Some(message.into()),
            finished_at: Some(Time("2025-03-10T03:00:09Z".parse().unwrap())),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    }
}

fn event() -> Expect {
    expect(
        Method::POST,
        EVENTS,
        201,
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "eventTime": null, "reportingController": "x", "reportingInstance": "x", "action": "a", "reason": "r", "type": "Normal"}),
    )
}

fn status_write() -> Expect {
    expect(
        Method::PATCH,
        BACKUP_STATUS,
        200,
        serde_json::to_value(backup(None)).unwrap(),
    )
}

#[tokio::test]
async fn a_backup_creates_its_job_once_running_the_cli_against_every_replica() {
    let script = vec![
        not_found(Method::GET, JOB),
        expect(Method::GET, STORE, 200, store(true)),
        expect(Method::POST, JOBS, 201, job(None)),
        status_write(),
    ];
    let sent = round(&backup(None), script).await;
    let created = sent.created(JOBS);
    assert_eq!(created["metadata"]["name"], "nightly-backup");
    let owner = &created["metadata"]["ownerReferences"][0];
    assert_eq!(
        (&owner["kind"], &owner["name"], &owner["uid"]),
        (
            &json!("ToyStoreBackup"),
            &json!("nightly"),
            &json!("backup-uid")
        )
    );
    assert_eq!(created["spec"]["backoffLimit"], 0);
    let pod = &created["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let c = &pod["containers"][0];
    assert_eq!(c["command"], json!(["toystore"]));
    let replicas = (0..3)
        .map(|i| format!("http://toys-orders-{i}.toys-orders.shop.svc:7000"))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        c["args"],
        json!([
            "backup",
            "--replicas",
            replicas,
            "--token-file",
            "/var/run/toystore/token",
            "--to",
            "s3://backups/prod/toys",
            "--store",
            "toys",
            "--name",
            "nightly",
            "--result-file",
            "/dev/termination-log"
        ]),
        "by hand: no --keep"
    );
    assert_eq!(
        c["envFrom"],
        json!([{"secretRef": {"name": "backup-s3", "optional": false}}])
    );
    assert_eq!(c["terminationMessagePolicy"], "FallbackToLogsOnError");
    assert_eq!(
        c["volumeMounts"][0],
        json!({"name": "token", "mountPath": "/var/run/toystore", "readOnly": true})
    );
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        build::token_secret_name("toys")
    );
    let status = sent.status();
    assert_eq!(status.phase, Some(BackupPhase::Pending));
    assert_eq!(status.job.as_deref(), Some("nightly-backup"));
    assert!(status.started_at.is_some());
    assert_eq!(sent.action, Action::requeue(Duration::from_secs(10)));

    // Its pod runs: Running, and the Job is not created again.
    let script = vec![
        expect(Method::GET, JOB, 200, job(None)),
        expect(Method::GET, PODS, 200, pods(running())),
        status_write(),
    ];
    let sent = round(&started(), script).await;
    assert_eq!(sent.status().phase, Some(BackupPhase::Running));
}

#[tokio::test]
async fn a_scheduled_backup_of_a_store_with_a_retention_passes_keep() {
    let mut b = backup(None);
    b.metadata.labels = Some([(SCHEDULED_LABEL.to_string(), "true".to_string())].into());
    let script = vec![
        not_found(Method::GET, JOB),
        expect(Method::GET, STORE, 200, store(true)),
        expect(Method::POST, JOBS, 201, job(None)),
        status_write(),
    ];
    let sent = round(&b, script).await;
    let args = sent.created(JOBS)["spec"]["template"]["spec"]["containers"][0]["args"].clone();
    let args: Vec<String> = serde_json::from_value(args).unwrap();
    let keep = args.iter().position(|a| a == "--keep").expect("--keep");
    assert_eq!(args[keep + 1], "3");
    // Its own folder: --keep prunes the scheduled artifacts only, never one made by hand.
    let to = args.iter().position(|a| a == "--to").expect("--to");
    assert_eq!(args[to + 1], "s3://backups/prod/toys/scheduled");
}

/// The BackupReport `toystore backup` leaves as its termination message.
fn report() -> Value {
    json!({
        "url": "s3://backups/prod/toys/nightly",
        "manifest": {
            "artifactFormat": 1, "store": "toys", "createdAt": "2025-03-10T03:00:05Z",
            "toystoreVersion": "0.1.0",
            "state": {"storageFormat": 1, "index": 1234, "term": 3, "orders": 1000,
                      "refused": 7, "products": 12},
            "data": {"object": "state.json", "size": 52000,
                     "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
        },
        "millis": 840
    })
}

#[tokio::test]
async fn a_completed_job_records_the_report_from_the_termination_message() {
    let report = report();
    let script = vec![
        expect(
            Method::GET,
            JOB,
            200,
            job(Some(("Complete", "CompletionsReached"))),
        ),
        expect(Method::GET, PODS, 200, pods(ended(0, &report.to_string()))),
        status_write(),
        event(),
    ];
    let sent = round(&started(), script).await;
    let status = sent.status();
    assert_eq!(status.phase, Some(BackupPhase::Completed));
    assert_eq!(
        status.url.as_deref(),
        Some("s3://backups/prod/toys/nightly")
    );
    assert_eq!(
        (status.index, status.term, status.orders, status.size),
        (Some(1234), Some(3), Some(1000), Some(52000))
    );
    assert_eq!(
        status.sha256.as_deref(),
        Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
    );
    assert_eq!(
        status.started_at,
        Some(Time("2025-03-10T03:00:00Z".parse().unwrap()))
    );
    assert_eq!(
        status.completed_at,
        Some(Time("2025-03-10T03:00:09Z".parse().unwrap()))
    );
    let c = &status.conditions[0];
    assert_eq!(
        (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
        ("Completed", "True", "BackupCompleted")
    );
    let (type_, reason, note) = sent.event();
    assert_eq!(
        (type_.as_str(), reason.as_str()),
        ("Normal", "BackupCompleted")
    );
    assert!(note.contains("index 1234"), "{note}");
    assert_eq!(sent.action, Action::await_change());

    // Ended: never run again, not even read.
    let done = backup(Some(status));
    let sent = round(&done, vec![]).await;
    assert_eq!(sent.action, Action::await_change());
}

#[tokio::test]
async fn a_failure_report_fails_the_backup_with_a_warning_naming_the_error() {
    let failure = json!({"error": "no leader: every order replica refused the cluster token"});
    let script = vec![
        expect(
            Method::GET,
            JOB,
            200,
            job(Some(("Failed", "BackoffLimitExceeded"))),
        ),
        expect(Method::GET, PODS, 200, pods(ended(1, &failure.to_string()))),
        status_write(),
        event(),
    ];
    let sent = round(&started(), script).await;
    let status = sent.status();
    assert_eq!(status.phase, Some(BackupPhase::Failed));
    assert!(status.url.is_none(), "no artifact without a report");
    let c = &status.conditions[0];
    assert_eq!(
        (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
        ("Completed", "False", "BackupFailed")
    );
    assert_eq!(
        c.message,
        "no leader: every order replica refused the cluster token"
    );
    let (type_, reason, note) = sent.event();
    assert_eq!(
        (type_.as_str(), reason.as_str(), note.as_str()),
        (
            "Warning",
            "BackupFailed",
            "no leader: every order replica refused the cluster token"
        )
    );
}

#[tokio::test]
async fn a_job_that_succeeded_without_a_report_is_not_a_completed_backup() {
    let script = vec![
        expect(
            Method::GET,
            JOB,
            200,
            job(Some(("Complete", "CompletionsReached"))),
        ),
        expect(Method::GET, PODS, 200, pods(ended(0, "done"))),
        status_write(),
        event(),
    ];
    let sent = round(&started(), script).await;
    assert_eq!(sent.status().phase, Some(BackupPhase::Failed));
    assert_eq!(sent.event().1, "NoResult");
}

#[tokio::test]
async fn a_store_without_spec_backup_fails_the_backup_with_the_reason() {
    let script = vec![
        not_found(Method::GET, JOB),
        expect(Method::GET, STORE, 200, store(false)),
        status_write(),
        event(),
    ];
    let sent = round(&backup(None), script).await;
    let status = sent.status();
    assert_eq!(status.phase, Some(BackupPhase::Failed));
    assert!(status.job.is_none(), "no Job was created");
    let c = &status.conditions[0];
    assert_eq!(c.reason, "BackupNotConfigured");
    assert!(c.message.contains("has no spec.backup"), "{}", c.message);
    let (type_, reason, _) = sent.event();
    assert_eq!(
        (type_.as_str(), reason.as_str()),
        ("Warning", "BackupNotConfigured")
    );
}

#[tokio::test]
async fn a_backup_of_a_missing_store_fails() {
    let script = vec![
        not_found(Method::GET, JOB),
        not_found(Method::GET, STORE),
        status_write(),
        event(),
    ];
    let sent = round(&backup(None), script).await;
    assert_eq!(sent.status().conditions[0].reason, "StoreNotFound");
    assert_eq!(
        sent.status().message.as_deref(),
        Some("ToyStore toys does not exist in namespace shop")
    );
}

#[tokio::test]
async fn a_job_deleted_before_it_ended_fails_the_backup_instead_of_running_it_twice() {
    let script = vec![not_found(Method::GET, JOB), status_write(), event()];
    let sent = round(&started(), script).await;
    assert_eq!(sent.status().phase, Some(BackupPhase::Failed));
    assert_eq!(sent.event().1, "JobDeleted");
}

#[tokio::test]
async fn a_backup_whose_job_runs_follows_the_job_even_once_its_store_is_gone() {
    // "Back up, then delete": the store is gone (or invalid, or without spec.backup) while
    // the Job runs. The round never reads the store once the Job exists: any GET of it would
    // fail the script.
    let script = vec![
        expect(Method::GET, JOB, 200, job(None)),
        expect(Method::GET, PODS, 200, pods(running())),
        status_write(),
    ];
    let sent = round(&started(), script).await;
    assert_eq!(sent.status().phase, Some(BackupPhase::Running));
    assert_eq!(sent.action, Action::requeue(Duration::from_secs(10)));
    // Its status write had not landed (no status.job): the Job controlled by it still decides.
    let script = vec![
        expect(Method::GET, JOB, 200, job(None)),
        expect(Method::GET, PODS, 200, pods(running())),
        status_write(),
    ];
    let sent = round(&backup(None), script).await;
    assert_eq!(sent.status().phase, Some(BackupPhase::Running));
    // The Job completes: the backup completes from its result, with the artifact's URL.
    let script = vec![
        expect(
            Method::GET,
            JOB,
            200,
            job(Some(("Complete", "CompletionsReached"))),
        ),
        expect(
            Method::GET,
            PODS,
            200,
            pods(ended(0, &report().to_string())),
        ),
        status_write(),
        event(),
    ];
    let sent = round(&started(), script).await;
    let status = sent.status();
    assert_eq!(status.phase, Some(BackupPhase::Completed));
    assert_eq!(
        status.url.as_deref(),
        Some("s3://backups/prod/toys/nightly")
    );
    assert_eq!(sent.event().1, "BackupCompleted");
}

#[tokio::test]
async fn a_stale_job_of_an_earlier_backup_of_the_same_name_records_nothing() {
    // An earlier ToyStoreBackup `nightly` (another uid) left a completed Job, not yet
    // garbage-collected: its result is not this backup's.
    let stale = || {
        expect(
            Method::GET,
            JOB,
            200,
            job_of(
                "earlier-backup-uid",
                Some(("Complete", "CompletionsReached")),
            ),
        )
    };
    let script = vec![stale(), expect(Method::GET, STORE, 200, store(true))];
    let sent = round(&backup(None), script).await;
    assert!(
        sent.writes.is_empty(),
        "no Job created, no status, no event: {:?}",
        sent.writes
    );
    assert_eq!(sent.action, Action::requeue(Duration::from_secs(10)));
    // Nor once this backup's own Job was created and is gone: it waits, never completes.
    let sent = round(&started(), vec![stale()]).await;
    assert!(sent.writes.is_empty(), "{:?}", sent.writes);
    assert_eq!(sent.action, Action::requeue(Duration::from_secs(10)));
}
