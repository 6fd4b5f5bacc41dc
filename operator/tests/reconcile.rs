//! Reconcile against kube-rs's mocked API server (tower-test): each scenario scripts exactly
//! the requests the operator must send, in order, and fails on anything else.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodCondition, PodStatus};
use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde_json::{Value, json};

use api::membership::{Observation, Step};
use api::raft::{Member, MemberInfo, NodeId, RaftRole, RaftStatus};
use operator::crd::{ToyStore, ToyStoreSpec};
use operator::membership::{BoxFuture, OrderGroup};
use operator::metrics::Metrics;
use operator::objects::{self, BuildInputs, Objects};
use operator::rbac::{self, Access};
use operator::reconcile::{APPLIED_HASH, Context, FINALIZER, fnv1a, reconcile};
use operator::status::{StatusInput, build_status};

const NS: &str = "shop";

/// The order group as a script: a fixed observation; executed steps are recorded.
struct FakeGroup {
    obs: Observation,
    executed: Mutex<Vec<Step>>,
}

impl OrderGroup for FakeGroup {
    fn observe<'a>(
        &'a self,
        _token: &'a str,
        _desired: &'a [Member],
    ) -> BoxFuture<'a, Observation> {
        Box::pin(async move { self.obs.clone() })
    }
    fn execute<'a>(&'a self, _token: &'a str, step: &'a Step) -> BoxFuture<'a, Result<(), String>> {
        self.executed.lock().unwrap().push(step.clone());
        Box::pin(async { Ok(()) })
    }
}

/// One expected request and the canned answer.
struct Expect {
    method: Method,
    path: String,
    status: u16,
    body: Value,
}

fn expect(method: Method, path: impl Into<String>, status: u16, body: Value) -> Expect {
    Expect {
        method,
        path: path.into(),
        status,
        body,
    }
}

fn not_found(method: Method, path: impl Into<String>) -> Expect {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "reason": "NotFound", "code": 404, "message": "not found"});
    expect(method, path, 404, body)
}

/// Runs one reconcile against the script; returns what the group executed.
async fn run(store: ToyStore, group: FakeGroup, script: Vec<Expect>) -> Vec<Step> {
    run_capturing(store, group, script).await.0
}

/// [`run`], also returning the path and JSON body of every PATCH the operator sent.
async fn run_capturing(
    store: ToyStore,
    group: FakeGroup,
    script: Vec<Expect>,
) -> (Vec<Step>, Vec<(String, Value)>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, NS);
    let group = Arc::new(group);
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client, Reporter::from("toystore-operator")),
        group: group.clone(),
        metrics: Arc::new(Metrics::default()),
        default_storage_class: Some("operator-default".into()),
    });
    let total = script.len();
    let server = tokio::spawn(async move {
        let mut patches = Vec::new();
        for (i, e) in script.into_iter().enumerate() {
            let (req, send) = handle.next_request().await.expect("a request");
            let path = req.uri().path().to_string();
            assert_granted(&req);
            // A path ending in '/' matches any name below it (generated event names).
            let shown = if e.path.ends_with('/') && path.starts_with(&e.path) {
                e.path.as_str()
            } else {
                path.as_str()
            };
            assert_eq!(
                (req.method(), shown),
                (&e.method, e.path.as_str()),
                "request {} of {total} is not the expected one (query: {:?})",
                i + 1,
                req.uri().query()
            );
            if req.method() == Method::PATCH {
                let sent = req.into_body().collect().await.unwrap().to_bytes();
                patches.push((path.clone(), serde_json::from_slice(&sent).unwrap()));
            }
            let body = serde_json::to_vec(&e.body).unwrap();
            send.send_response(
                Response::builder()
                    .status(e.status)
                    .body(Body::from(body))
                    .unwrap(),
            );
        }
        patches
    });
    let result = tokio::time::timeout(Duration::from_secs(10), reconcile(Arc::new(store), ctx))
        .await
        .expect("reconcile sent a request the script did not expect (or hung)");
    result.expect("reconcile succeeds");
    let patches = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("reconcile sent fewer requests than scripted")
        .unwrap();
    (group.executed.lock().unwrap().clone(), patches)
}

/// Fails unless [`rbac::rules`] (what the chart and manifests grant) allow `req`.
fn assert_granted(req: &Request<Body>) {
    let apply = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/apply-patch+yaml");
    let query = req.uri().query().unwrap_or("");
    let needed = Access::of_request(req.method().as_str(), req.uri().path(), query, apply)
        .expect("a resource request");
    for access in needed {
        assert!(
            rbac::allows(&rbac::rules(), &access),
            "{} {} needs {access:?}, which rbac::rules() does not grant",
            req.method(),
            req.uri()
        );
    }
}

fn store(replicas: i32) -> ToyStore {
    let spec: ToyStoreSpec = serde_json::from_value(json!({
        "image": "ghcr.io/toystore/toystore:0.1.0",
        "orders": {"replicas": replicas},
    }))
    .unwrap();
    let mut s = ToyStore::new("toys", spec);
    s.metadata = ObjectMeta {
        name: Some("toys".into()),
        namespace: Some(NS.into()),
        uid: Some("5f0c8b8e-0000-4000-8000-000000000001".into()),
        generation: Some(1),
        finalizers: Some(vec![FINALIZER.into()]),
        ..Default::default()
    };
    s
}

fn url(id: NodeId) -> String {
    format!("http://toys-orders-{id}.toys-orders.shop.svc:7000")
}

/// A healthy group: `voters` (and `learners`), leader `leader`, everyone caught up.
fn group(voters: &[NodeId], learners: &[NodeId], leader: NodeId) -> Observation {
    let members: Vec<MemberInfo> = voters
        .iter()
        .map(|v| (*v, true))
        .chain(learners.iter().map(|l| (*l, false)))
        .map(|(id, voter)| MemberInfo {
            id,
            url: url(id),
            voter,
            matched_index: Some(50),
        })
        .collect();
    let statuses = members
        .iter()
        .map(|m| {
            let role = match (m.id == leader, m.voter) {
                (true, _) => RaftRole::Leader,
                (false, true) => RaftRole::Follower,
                (false, false) => RaftRole::Learner,
            };
            let status = RaftStatus {
                id: m.id,
                url: url(m.id),
                role,
                term: 4,
                leader: Some(leader),
                last_log_index: Some(50),
                commit_index: Some(50),
                applied_index: Some(50),
                snapshot_index: None,
                purged_index: None,
                initialized: true,
                members: members.clone(),
                joint: false,
                recovered_torn_bytes: 0,
                admitted: true,
                data_id: None,
            };
            (m.id, Ok(status))
        })
        .collect();
    Observation { statuses }
}

fn fresh(ids: &[NodeId]) -> Observation {
    let statuses = ids
        .iter()
        .map(|id| {
            let s = RaftStatus {
                id: *id,
                url: url(*id),
                role: RaftRole::Learner,
                term: 0,
                leader: None,
                last_log_index: None,
                commit_index: None,
                applied_index: None,
                snapshot_index: None,
                purged_index: None,
                initialized: false,
                members: vec![],
                joint: false,
                recovered_torn_bytes: 0,
                admitted: true,
                data_id: None,
            };
            (*id, Ok(s))
        })
        .collect();
    Observation { statuses }
}

fn token_secret(s: &ToyStore) -> Value {
    serde_json::to_value(objects::token_secret(s, "t0k3n")).unwrap()
}

/// An object as the API server holds it after the operator applied it.
fn applied<K: Serialize + Resource + Clone>(obj: &K) -> Value {
    let hash = fnv1a(&serde_json::to_vec(obj).unwrap());
    let mut o = obj.clone();
    o.annotations_mut().insert(APPLIED_HASH.into(), hash);
    serde_json::to_value(o).unwrap()
}

/// `(kind path, name, desired object)` for every object of a build, in apply order.
fn objects_in_order(b: &Objects) -> Vec<(String, String, Value)> {
    fn entry<K: Serialize + Resource + Clone>(collection: &str, o: &K) -> (String, String, Value) {
        (collection.to_string(), o.name_any(), applied(o))
    }
    let mut v = vec![entry("api/v1/namespaces/shop/configmaps", &b.config_map)];
    v.extend(
        b.service_accounts
            .iter()
            .map(|o| entry("api/v1/namespaces/shop/serviceaccounts", o)),
    );
    v.extend(
        b.services
            .iter()
            .map(|o| entry("api/v1/namespaces/shop/services", o)),
    );
    v.extend(
        b.stateful_sets
            .iter()
            .map(|o| entry("apis/apps/v1/namespaces/shop/statefulsets", o)),
    );
    v.push(entry(
        "apis/apps/v1/namespaces/shop/deployments",
        &b.deployment,
    ));
    v.push(entry(
        "apis/policy/v1/namespaces/shop/poddisruptionbudgets",
        &b.pod_disruption_budget,
    ));
    v.extend(b.network_policies.iter().map(|o| {
        entry(
            "apis/networking.k8s.io/v1/namespaces/shop/networkpolicies",
            o,
        )
    }));
    v
}

/// For each desired object: a GET answered with `existing` (by name) or 404, then a PATCH
/// exactly when the stored hash differs from the desired one.
fn apply_script(desired: &Objects, existing: Option<&Objects>) -> Vec<Expect> {
    let old: BTreeMap<String, Value> = existing
        .map(|e| {
            objects_in_order(e)
                .into_iter()
                .map(|(c, n, v)| (format!("/{c}/{n}"), v))
                .collect()
        })
        .unwrap_or_default();
    let mut script = Vec::new();
    for (collection, name, value) in objects_in_order(desired) {
        let path = format!("/{collection}/{name}");
        match old.get(&path) {
            Some(o)
                if o["metadata"]["annotations"][APPLIED_HASH]
                    == value["metadata"]["annotations"][APPLIED_HASH] =>
            {
                script.push(expect(Method::GET, &path, 200, o.clone()));
            }
            Some(o) => {
                script.push(expect(Method::GET, &path, 200, o.clone()));
                script.push(expect(Method::PATCH, &path, 200, value));
            }
            None => {
                script.push(not_found(Method::GET, &path));
                script.push(expect(Method::PATCH, &path, 200, value));
            }
        }
    }
    script
}

fn build(s: &ToyStore, order_replicas: i32) -> Objects {
    objects::build(
        s,
        &BuildInputs {
            order_replicas,
            storage_class: None,
        },
    )
}

fn orders_sts(s: &ToyStore, replicas: i32) -> Value {
    let mut sts: StatefulSet = build(s, replicas).stateful_sets[0].clone();
    sts.status = Some(StatefulSetStatus {
        replicas,
        update_revision: Some("rev-1".into()),
        current_revision: Some("rev-1".into()),
        ..Default::default()
    });
    serde_json::to_value(sts).unwrap()
}

fn order_pods(s: &ToyStore, n: i32, revision: &str) -> Value {
    let items: Vec<Pod> = (0..n)
        .map(|i| Pod {
            metadata: ObjectMeta {
                name: Some(objects::order_pod_name(s, i)),
                namespace: Some(NS.into()),
                labels: Some(BTreeMap::from([(
                    "controller-revision-hash".into(),
                    revision.into(),
                )])),
                ..Default::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
}

fn pvcs(s: &ToyStore, n: i32) -> Value {
    let items: Vec<PersistentVolumeClaim> = (0..n)
        .map(|i| PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(objects::order_pvc_name(s, i)),
                namespace: Some(NS.into()),
                ..Default::default()
            },
            ..Default::default()
        })
        .collect();
    json!({"kind": "PersistentVolumeClaimList", "apiVersion": "v1", "metadata": {}, "items": items})
}

const STORE: &str = "/apis/toystore.dev/v1alpha1/namespaces/shop/toystores/toys";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/shop/events";
const SECRET: &str = "/api/v1/namespaces/shop/secrets/toys-raft-token";
const ORDERS_STS: &str = "/apis/apps/v1/namespaces/shop/statefulsets/toys-orders";
const PODS: &str = "/api/v1/namespaces/shop/pods";
const PVCS: &str = "/api/v1/namespaces/shop/persistentvolumeclaims";

fn event() -> Expect {
    expect(
        Method::POST,
        EVENTS,
        201,
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "eventTime": null, "reportingController": "x", "reportingInstance": "x", "action": "a", "reason": "r", "type": "Normal"}),
    )
}

/// A repeated event (same reason and action): the recorder updates the event series.
fn repeated_event() -> Expect {
    let mut e = event();
    e.method = Method::PATCH;
    e.path = format!("{EVENTS}/");
    e
}

fn status_patch(s: &ToyStore) -> Expect {
    expect(
        Method::PATCH,
        format!("{STORE}/status"),
        200,
        serde_json::to_value(s).unwrap(),
    )
}

/// The status a previous round wrote for this observation.
fn with_status(mut s: ToyStore, obs: &Observation) -> ToyStore {
    let input = StatusInput {
        obs,
        step: &Step::Done,
        rolling: false,
        initialized: true,
        problem: None,
    };
    s.status = Some(build_status(&s, &input, Timestamp::UNIX_EPOCH));
    s
}

#[tokio::test]
async fn a_new_store_first_gets_the_finalizer() {
    let mut s = store(3);
    s.metadata.finalizers = None;
    let script = vec![expect(
        Method::PATCH,
        STORE,
        200,
        serde_json::to_value(&s).unwrap(),
    )];
    let executed = run(
        s,
        FakeGroup {
            obs: fresh(&[0, 1, 2]),
            executed: Mutex::default(),
        },
        script,
    )
    .await;
    assert!(executed.is_empty());
}

#[tokio::test]
async fn create_makes_the_token_every_object_and_initializes_the_group_once() {
    let s = store(3);
    let mut script = vec![
        not_found(Method::GET, SECRET),
        expect(
            Method::POST,
            "/api/v1/namespaces/shop/secrets",
            201,
            token_secret(&s),
        ),
        not_found(Method::GET, ORDERS_STS),
    ];
    script.extend(apply_script(&build(&s, 3), None));
    script.push(event()); // Initialized
    script.push(status_patch(&s));
    let (executed, patches) = run_capturing(
        s,
        FakeGroup {
            obs: fresh(&[0, 1, 2]),
            executed: Mutex::default(),
        },
        script,
    )
    .await;
    assert!(matches!(&executed[..], [Step::Initialize { members, .. }] if members.len() == 3));

    // A new store whose spec names no storage class gets the operator's default on both
    // StatefulSets (the steady-state test shows an existing store keeps its own).
    let classes: Vec<&Value> = patches
        .iter()
        .filter(|(path, _)| path.contains("/statefulsets/"))
        .map(|(_, sts)| &sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"])
        .collect();
    assert_eq!(
        classes,
        [&json!("operator-default"), &json!("operator-default")]
    );
}

#[tokio::test]
async fn steady_state_reads_but_writes_nothing() {
    let obs = group(&[0, 1, 2], &[], 0);
    let s = with_status(store(3), &obs);
    let mut script = vec![
        expect(Method::GET, SECRET, 200, token_secret(&s)),
        expect(Method::GET, ORDERS_STS, 200, orders_sts(&s, 3)),
    ];
    let built = build(&s, 3);
    script.extend(apply_script(&built, Some(&built)));
    script.push(expect(Method::GET, PODS, 200, order_pods(&s, 3, "rev-1")));
    script.push(expect(Method::GET, PVCS, 200, pvcs(&s, 3)));
    assert!(
        script.iter().all(|e| e.method == Method::GET),
        "the script itself has no writes"
    );
    let executed = run(
        s,
        FakeGroup {
            obs,
            executed: Mutex::default(),
        },
        script,
    )
    .await;
    assert!(
        executed.is_empty(),
        "no membership step in steady state: {executed:?}"
    );
}

#[tokio::test]
async fn scale_up_grows_the_statefulset_then_adds_a_learner() {
    let obs = group(&[0, 1, 2], &[], 0);
    let old = with_status(store(3), &obs);
    let mut s = old.clone();
    s.spec.orders.replicas = 5;
    s.metadata.generation = Some(2);
    let mut script = vec![
        expect(Method::GET, SECRET, 200, token_secret(&s)),
        expect(Method::GET, ORDERS_STS, 200, orders_sts(&old, 3)),
    ];
    let desired = build(&s, 5);
    script.extend(apply_script(&desired, Some(&build(&old, 3))));
    assert!(
        script
            .iter()
            .any(|e| e.method == Method::PATCH && e.path == ORDERS_STS),
        "the orders StatefulSet grows"
    );
    script.push(event()); // MemberAdded
    script.push(status_patch(&s));
    let executed = run(
        s,
        FakeGroup {
            obs,
            executed: Mutex::default(),
        },
        script,
    )
    .await;
    assert!(matches!(&executed[..], [Step::AddLearner { member, .. }] if member.id == 3));
}

#[tokio::test]
async fn scale_down_changes_voters_before_shrinking_the_statefulset() {
    let obs = group(&[0, 1, 2, 3, 4], &[], 0);
    let old = with_status(store(5), &obs);
    let mut s = old.clone();
    s.spec.orders.replicas = 3;
    s.metadata.generation = Some(2);
    let mut script = vec![
        expect(Method::GET, SECRET, 200, token_secret(&s)),
        expect(Method::GET, ORDERS_STS, 200, orders_sts(&old, 5)),
    ];
    // Members 3 and 4 still vote: the StatefulSet keeps 5 pods this round.
    let desired = build(&s, 5);
    script.extend(apply_script(&desired, Some(&build(&old, 5))));
    assert!(
        !script
            .iter()
            .any(|e| e.method == Method::PATCH && e.path == ORDERS_STS),
        "the orders StatefulSet must not shrink while its members vote"
    );
    script.push(event()); // MembershipChanged
    script.push(status_patch(&s));
    let executed = run(
        s,
        FakeGroup {
            obs,
            executed: Mutex::default(),
        },
        script,
    )
    .await;
    assert!(
        matches!(&executed[..], [Step::ChangeVoters { voters, .. }] if voters == &vec![0, 1, 2])
    );
}

#[tokio::test]
async fn after_members_left_the_statefulset_shrinks_and_their_volumes_go() {
    let obs = group(&[0, 1, 2], &[], 0);
    let old = store(5);
    let mut s = with_status(store(3), &obs);
    s.metadata.generation = Some(2);
    let mut script = vec![
        expect(Method::GET, SECRET, 200, token_secret(&s)),
        expect(Method::GET, ORDERS_STS, 200, orders_sts(&old, 5)),
    ];
    script.extend(apply_script(&build(&s, 3), Some(&build(&s, 5))));
    assert!(
        script
            .iter()
            .any(|e| e.method == Method::PATCH && e.path == ORDERS_STS)
    );
    script.push(expect(Method::GET, PODS, 200, order_pods(&s, 3, "rev-1")));
    script.push(expect(Method::GET, PVCS, 200, pvcs(&s, 5)));
    for i in [3, 4] {
        let path = format!("{PVCS}/{}", objects::order_pvc_name(&s, i));
        script.push(expect(
            Method::DELETE,
            path,
            200,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        ));
        script.push(if i == 3 { event() } else { repeated_event() }); // VolumeDeleted
    }
    script.push(status_patch(&s)); // observedGeneration 2
    let executed = run(
        s,
        FakeGroup {
            obs,
            executed: Mutex::default(),
        },
        script,
    )
    .await;
    assert!(executed.is_empty());
}

#[tokio::test]
async fn deletion_removes_the_volumes_then_the_finalizer() {
    let mut s = store(3);
    s.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        Timestamp::UNIX_EPOCH,
    ));
    let mut script = vec![expect(Method::GET, PVCS, 200, pvcs(&s, 3))];
    for i in 0..3 {
        let path = format!("{PVCS}/{}", objects::order_pvc_name(&s, i));
        script.push(expect(
            Method::DELETE,
            path,
            200,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        ));
    }
    script.push(expect(Method::GET, PVCS, 200, pvcs(&s, 0))); // catalog volumes: none left
    script.push(event()); // Deleted
    let mut done = s.clone();
    done.metadata.finalizers = None;
    script.push(expect(
        Method::PATCH,
        STORE,
        200,
        serde_json::to_value(&done).unwrap(),
    ));
    let executed = run(
        s,
        FakeGroup {
            obs: group(&[0, 1, 2], &[], 0),
            executed: Mutex::default(),
        },
        script,
    )
    .await;
    assert!(executed.is_empty());
}

#[tokio::test]
async fn invalid_spec_is_reported_and_nothing_is_applied() {
    let mut s = store(3);
    s.spec.orders.replicas = 4; // slipped past the schema
    let script = vec![event(), status_patch(&s)];
    let executed = run(
        s,
        FakeGroup {
            obs: fresh(&[0, 1, 2]),
            executed: Mutex::default(),
        },
        script,
    )
    .await;
    assert!(executed.is_empty());
}

#[tokio::test]
async fn a_group_that_lost_its_state_is_not_initialized_again() {
    let obs = fresh(&[0, 1, 2]);
    let mut s = store(3);
    s.status = Some(operator::crd::ToyStoreStatus {
        initialized: true,
        ..Default::default()
    });
    let mut script = vec![
        expect(Method::GET, SECRET, 200, token_secret(&s)),
        expect(Method::GET, ORDERS_STS, 200, orders_sts(&s, 3)),
    ];
    let built = build(&s, 3);
    script.extend(apply_script(&built, Some(&built)));
    script.push(event()); // GroupLostState warning
    script.push(status_patch(&s));
    let executed = run(
        s,
        FakeGroup {
            obs,
            executed: Mutex::default(),
        },
        script,
    )
    .await;
    assert!(
        executed.is_empty(),
        "must not initialize twice: {executed:?}"
    );
}
