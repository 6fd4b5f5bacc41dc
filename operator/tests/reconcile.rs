//! Reconcile against kube-rs's mocked API server (tower-test): each scenario scripts exactly
//! the requests the operator must send, in order, and fails on anything else. The watch caches
//! a round reads are filled by the test, as the controller's watches would fill them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;
use kube::client::Body;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde_json::{Value, json};
use tower_test::mock::Handle;

use api::raft::{Member, MemberInfo, NodeId, RaftRole, RaftStatus};
use api::view::GroupView;
use membership::Step;
use operator::build::{self, BuildInputs, Component, Objects};
use operator::cache::{CacheWriters, Caches};
use operator::crd::{ToyStore, ToyStoreBackup, ToyStoreSpec, ToyStoreStatus};
use operator::events::Events;
use operator::hash::fnv1a;
use operator::metrics::Metrics;
use operator::order_group::{BoxFuture, OrderGroup};
use operator::rbac::{self, Access};
use operator::reconcile::{APPLIED_HASH, Context, Error, FINALIZER, Memory, reconcile};
use operator::status::{Restore, StatusInput, build_status};
use operator::validate::{ValidStore, validate};

const NS: &str = "shop";

/// The order group as a script: the observation (changeable between rounds); executed steps
/// are recorded.
#[derive(Default)]
struct FakeGroup {
    obs: Mutex<GroupView>,
    executed: Mutex<Vec<Step>>,
    /// Steps answer "nothing changed" (they had already taken effect).
    unchanged: std::sync::atomic::AtomicBool,
}

impl OrderGroup for FakeGroup {
    fn observe<'a>(&'a self, _token: &'a str, _desired: &'a [Member]) -> BoxFuture<'a, GroupView> {
        let obs = self.obs.lock().unwrap().clone();
        Box::pin(async move { obs })
    }
    fn execute<'a>(
        &'a self,
        _token: &'a str,
        step: &'a Step,
    ) -> BoxFuture<'a, Result<bool, String>> {
        self.executed.lock().unwrap().push(step.clone());
        let changed = !self.unchanged.load(std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move { Ok(changed) })
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

/// What the cluster's watches show: the caches of one round.
#[derive(Default, Clone)]
struct Cluster {
    /// Objects as the operator applied them (carrying their applied hash).
    applied: Option<Objects>,
    /// The orders StatefulSet's status, if it exists.
    orders_status: Option<StatefulSetStatus>,
    pods: Vec<Pod>,
    claims: Vec<PersistentVolumeClaim>,
    /// Jobs as the watch shows them (a store's restore Job).
    jobs: Vec<Job>,
    /// Every ToyStoreBackup.
    backups: Vec<ToyStoreBackup>,
}

/// Replaces a cache's content with `objects` (a watch's initial list).
fn fill<K>(writer: &mut Writer<K>, objects: Vec<K>)
where
    K: Resource<DynamicType = ()> + Clone,
{
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(o));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
}

/// `obj` as the API server holds it after the operator applied it.
fn applied<K: Serialize + Resource + Clone>(obj: &K) -> K {
    let hash = fnv1a(&serde_json::to_vec(obj).unwrap());
    let mut o = obj.clone();
    o.annotations_mut().insert(APPLIED_HASH.into(), hash);
    o.meta_mut().namespace = Some(NS.into());
    o
}

fn all_applied<K: Serialize + Resource + Clone>(objs: &[K]) -> Vec<K> {
    objs.iter().map(applied).collect()
}

impl Cluster {
    fn load(&self, w: &mut CacheWriters) {
        let b = self.applied.clone();
        fill(
            &mut w.config_maps,
            b.iter().map(|b| applied(&b.config_map)).collect(),
        );
        fill(
            &mut w.service_accounts,
            b.iter()
                .flat_map(|b| all_applied(&b.service_accounts))
                .collect(),
        );
        fill(
            &mut w.services,
            b.iter().flat_map(|b| all_applied(&b.services)).collect(),
        );
        let sets: Vec<StatefulSet> = b
            .iter()
            .map(|b| StatefulSet {
                status: self.orders_status.clone(),
                ..applied(&b.stateful_set)
            })
            .collect();
        fill(&mut w.stateful_sets, sets);
        fill(
            &mut w.deployments,
            b.iter().flat_map(|b| all_applied(&b.deployments)).collect(),
        );
        fill(
            &mut w.pod_disruption_budgets,
            b.iter()
                .flat_map(|b| all_applied(&b.pod_disruption_budgets))
                .collect(),
        );
        fill(
            &mut w.network_policies,
            b.iter()
                .flat_map(|b| all_applied(&b.network_policies))
                .collect(),
        );
        fill(&mut w.pods, self.pods.clone());
        fill(&mut w.persistent_volume_claims, self.claims.clone());
        fill(&mut w.jobs, self.jobs.clone());
        fill(&mut w.backups, self.backups.clone());
    }
}

/// One operator process against the mocked API server: rounds share its memory and events.
struct Harness {
    ctx: Arc<Context>,
    writers: CacheWriters,
    group: Arc<FakeGroup>,
    handle: Option<Handle<Request<Body>, Response<Body>>>,
}

/// What one round sent.
struct Sent {
    /// Path and JSON body of every POST and PATCH, in order.
    writes: Vec<(Method, String, Value)>,
}

impl Sent {
    /// The bodies of the Events the round created.
    fn created_events(&self) -> Vec<&Value> {
        self.writes
            .iter()
            .filter(|(m, p, _)| m == Method::POST && p == EVENTS)
            .map(|(_, _, b)| b)
            .collect()
    }

    /// The notes of the Events the round created.
    fn event_notes(&self) -> Vec<&str> {
        self.created_events()
            .iter()
            .map(|e| e["note"].as_str().unwrap())
            .collect()
    }

    /// The status the round wrote, if any.
    fn status(&self) -> Option<ToyStoreStatus> {
        self.writes
            .iter()
            .find(|(m, p, _)| m == Method::PATCH && p == &format!("{STORE}/status"))
            .map(|(_, _, b)| serde_json::from_value(b["status"].clone()).unwrap())
    }
}

impl Harness {
    fn new(obs: GroupView) -> Self {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, NS);
        let group = Arc::new(FakeGroup {
            obs: Mutex::new(obs),
            ..Default::default()
        });
        let (cache, writers) = Caches::new();
        let ctx = Arc::new(Context {
            client: client.clone(),
            events: Events::new(client, Reporter::from("toystore-operator")),
            group: group.clone(),
            metrics: Arc::new(Metrics::default()),
            default_storage_class: Some("operator-default".into()),
            cache,
            memory: Arc::new(Memory::default()),
        });
        Harness {
            ctx,
            writers,
            group,
            handle: Some(handle),
        }
    }

    fn observe(&self, obs: GroupView) {
        *self.group.obs.lock().unwrap() = obs;
    }

    fn executed(&self) -> Vec<Step> {
        std::mem::take(&mut *self.group.executed.lock().unwrap())
    }

    /// One round of `store` with the caches showing `cluster`; the script must match exactly.
    async fn round(&mut self, store: &ToyStore, cluster: &Cluster, script: Vec<Expect>) -> Sent {
        let (result, sent) = self.try_round(store, cluster, script).await;
        result.expect("reconcile succeeds");
        sent
    }

    /// [`Harness::round`], returning the round's result too.
    async fn try_round(
        &mut self,
        store: &ToyStore,
        cluster: &Cluster,
        script: Vec<Expect>,
    ) -> (Result<(), Error>, Sent) {
        cluster.load(&mut self.writers);
        let mut handle = self.handle.take().expect("one round at a time");
        let total = script.len();
        let server = tokio::spawn(async move {
            let mut writes = Vec::new();
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
                let method = req.method().clone();
                if method == Method::PATCH || method == Method::POST {
                    let sent = req.into_body().collect().await.unwrap().to_bytes();
                    writes.push((method, path.clone(), serde_json::from_slice(&sent).unwrap()));
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
        let ctx = self.ctx.clone();
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            reconcile(Arc::new(store.clone()), ctx),
        )
        .await
        .expect("reconcile sent a request the script did not expect (or hung)");
        let (handle, writes) = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("reconcile sent fewer requests than scripted")
            .unwrap();
        self.handle = Some(handle);
        let result = result.map(|_| ()).map_err(|e| match e {
            Error::Finalizer(inner) => match *inner {
                kube::runtime::finalizer::Error::ApplyFailed(e) => e,
                other => panic!("finalizer: {other}"),
            },
            other => other,
        });
        (result, Sent { writes })
    }
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

fn raft_url(id: NodeId) -> Option<String> {
    Some(format!("http://toys-orders-{id}.toys-orders.shop.svc:7001"))
}

/// A healthy group: `voters` (and `learners`), leader `leader`, everyone caught up.
fn group(voters: &[NodeId], learners: &[NodeId], leader: NodeId) -> GroupView {
    let members: Vec<MemberInfo> = voters
        .iter()
        .map(|v| (*v, true))
        .chain(learners.iter().map(|l| (*l, false)))
        .map(|(id, voter)| MemberInfo {
            id,
            url: url(id),
            raft_url: raft_url(id),
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
                raft_url: raft_url(m.id),
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
                inventory_defined: true,
                data_id: None,
            };
            (m.id, Ok(status))
        })
        .collect();
    GroupView { statuses }
}

fn fresh(ids: &[NodeId]) -> GroupView {
    let statuses = ids
        .iter()
        .map(|id| {
            let s = RaftStatus {
                id: *id,
                url: url(*id),
                raft_url: raft_url(*id),
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
                inventory_defined: false,
                data_id: None,
            };
            (*id, Ok(s))
        })
        .collect();
    GroupView { statuses }
}

fn token_secret(s: &ToyStore) -> Value {
    serde_json::to_value(build::token_secret(&valid(s), "t0k3n")).unwrap()
}

/// `(path, desired object as applied)` for every object of a build, in apply order.
fn objects_in_order(b: &Objects) -> Vec<(String, Value)> {
    fn entry<K: Serialize + Resource + Clone>(collection: &str, o: &K) -> (String, Value) {
        let path = format!("/{collection}/{}", o.name_any());
        (path, serde_json::to_value(applied(o)).unwrap())
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
    v.push(entry(
        "apis/apps/v1/namespaces/shop/statefulsets",
        &b.stateful_set,
    ));
    v.extend(
        b.deployments
            .iter()
            .map(|o| entry("apis/apps/v1/namespaces/shop/deployments", o)),
    );
    v.extend(
        b.pod_disruption_budgets
            .iter()
            .map(|o| entry("apis/policy/v1/namespaces/shop/poddisruptionbudgets", o)),
    );
    v.extend(b.network_policies.iter().map(|o| {
        entry(
            "apis/networking.k8s.io/v1/namespaces/shop/networkpolicies",
            o,
        )
    }));
    v
}

/// A PATCH for each desired object whose applied hash the cache (`existing`) does not show;
/// no reads: the caches answer them.
fn apply_script(desired: &Objects, existing: Option<&Objects>) -> Vec<Expect> {
    let old: BTreeMap<String, Value> = existing
        .map(objects_in_order)
        .unwrap_or_default()
        .into_iter()
        .collect();
    objects_in_order(desired)
        .into_iter()
        .filter(|(path, value)| {
            old.get(path).is_none_or(|o| {
                o["metadata"]["annotations"][APPLIED_HASH]
                    != value["metadata"]["annotations"][APPLIED_HASH]
            })
        })
        .map(|(path, value)| expect(Method::PATCH, path, 200, value))
        .collect()
}

/// `s` validated, as the reconcile builds from it.
fn valid(s: &ToyStore) -> ValidStore {
    validate(s).expect("a valid store")
}

fn built(s: &ToyStore, order_replicas: i32) -> Objects {
    build::build(
        &valid(s),
        &BuildInputs {
            order_replicas,
            storage_class: None,
        },
    )
}

fn sts_status(replicas: i32, revision: &str) -> Option<StatefulSetStatus> {
    Some(StatefulSetStatus {
        replicas,
        update_revision: Some(revision.into()),
        current_revision: Some("rev-1".into()),
        ..Default::default()
    })
}

/// A store's cluster: its objects built for `replicas` order pods, each pod ready on rev-1.
fn running(s: &ToyStore, replicas: i32) -> Cluster {
    Cluster {
        applied: Some(built(s, replicas)),
        orders_status: sts_status(replicas, "rev-1"),
        pods: (0..replicas)
            .map(|i| order_pod(s, i, "rev-1", true))
            .collect(),
        claims: (0..replicas).map(|i| claim(s, i)).collect(),
        ..Cluster::default()
    }
}

fn order_pod(s: &ToyStore, i: i32, revision: &str, ready: bool) -> Pod {
    let mut labels = build::labels(&s.name_any(), Component::Orders);
    labels.insert("controller-revision-hash".into(), revision.into());
    Pod {
        metadata: ObjectMeta {
            name: Some(build::order_pod_name(&s.name_any(), i)),
            namespace: Some(NS.into()),
            uid: Some(format!("pod-{i}-{revision}")),
            labels: Some(labels),
            ..Default::default()
        },
        status: Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn claim(s: &ToyStore, i: i32) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(build::order_pvc_name(&s.name_any(), i)),
            namespace: Some(NS.into()),
            uid: Some(format!("claim-{i}")),
            labels: Some(build::labels(&s.name_any(), Component::Orders)),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn terminating<K: Resource>(mut o: K) -> K {
    o.meta_mut().deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    o
}

fn deleted() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})
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

/// A repeat of an identical event (same reason, action and note): its series counts up.
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
fn with_status(mut s: ToyStore, obs: &GroupView) -> ToyStore {
    let input = StatusInput {
        obs,
        step: &Step::Done,
        rolling: false,
        initialized: true,
        problem: None,
        restore: Restore::recorded(&s),
        scheduled: None,
    };
    s.status = Some(build_status(&s, &input, Timestamp::UNIX_EPOCH));
    s
}

/// The first round of a process reads the token once.
fn token_read(s: &ToyStore) -> Expect {
    expect(Method::GET, SECRET, 200, token_secret(s))
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
    let mut h = Harness::new(fresh(&[0, 1, 2]));
    h.round(&s, &Cluster::default(), script).await;
    assert!(h.executed().is_empty());
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
    ];
    let applies = apply_script(&built(&s, 3), None);
    // Every object, in dependency order: the order group is the one StatefulSet (the catalog,
    // stateless, is a Deployment like the frontend, with a PDB of its own).
    let paths: Vec<&str> = applies.iter().map(|e| e.path.as_str()).collect();
    let core = "/api/v1/namespaces/shop";
    let apps = "/apis/apps/v1/namespaces/shop";
    let policy = "/apis/policy/v1/namespaces/shop";
    let net = "/apis/networking.k8s.io/v1/namespaces/shop";
    assert_eq!(
        paths,
        [
            format!("{core}/configmaps/toys-config"),
            format!("{core}/serviceaccounts/toys-orders"),
            format!("{core}/serviceaccounts/toys-catalog"),
            format!("{core}/serviceaccounts/toys-frontend"),
            format!("{core}/services/toys-orders"),
            format!("{core}/services/toys-orders-client"),
            format!("{core}/services/toys-catalog"),
            format!("{core}/services/toys-frontend"),
            format!("{apps}/statefulsets/toys-orders"),
            format!("{apps}/deployments/toys-catalog"),
            format!("{apps}/deployments/toys-frontend"),
            format!("{policy}/poddisruptionbudgets/toys-orders"),
            format!("{policy}/poddisruptionbudgets/toys-catalog"),
            format!("{net}/networkpolicies/toys-orders"),
            format!("{net}/networkpolicies/toys-catalog"),
            format!("{net}/networkpolicies/toys-frontend"),
        ]
    );
    script.extend(applies);
    script.push(event()); // Initialized
    script.push(status_patch(&s));
    let mut h = Harness::new(fresh(&[0, 1, 2]));
    let sent = h.round(&s, &Cluster::default(), script).await;
    assert!(matches!(&h.executed()[..], [Step::Initialize { members, .. }] if members.len() == 3));

    // A new store whose spec names no storage class gets the operator's default on the order
    // StatefulSet (the steady-state test shows an existing store keeps its own).
    let classes: Vec<&Value> = sent
        .writes
        .iter()
        .filter(|(_, path, _)| path.contains("/statefulsets/"))
        .map(|(_, _, sts)| &sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"])
        .collect();
    assert_eq!(classes, [&json!("operator-default")]);
    // The catalog as applied: the spec's 2 pods, no volume but the token.
    let (_, _, catalog) = sent
        .writes
        .iter()
        .find(|(_, path, _)| path == &format!("{apps}/deployments/toys-catalog"))
        .unwrap();
    assert_eq!(catalog["spec"]["replicas"], 2);
    assert_eq!(
        catalog["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "token", "secret": {"secretName": "toys-raft-token", "defaultMode": 256}}])
    );
    // Before any replica holds the membership, the status says so instead of "healthy".
    let status = sent.status().unwrap();
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("Unknown", "NotObserved")
    );
}

#[tokio::test]
async fn steady_state_sends_no_request_after_the_first_token_read() {
    let obs = group(&[0, 1, 2], &[], 0);
    let s = with_status(store(3), &obs);
    let mut h = Harness::new(obs);
    // Every object is read from the caches; only the token is read, once per process.
    h.round(&s, &running(&s, 3), vec![token_read(&s)]).await;
    for _ in 0..3 {
        h.round(&s, &running(&s, 3), vec![]).await;
    }
    assert!(
        h.executed().is_empty(),
        "no membership step in steady state"
    );
}

#[tokio::test]
async fn scale_up_grows_the_statefulset_then_adds_a_learner() {
    let obs = group(&[0, 1, 2], &[], 0);
    let old = with_status(store(3), &obs);
    let mut s = old.clone();
    s.spec.orders.replicas = 5;
    s.metadata.generation = Some(2);
    let mut script = vec![token_read(&s)];
    let desired = built(&s, 5);
    script.extend(apply_script(&desired, Some(&built(&old, 3))));
    assert!(
        script
            .iter()
            .any(|e| e.method == Method::PATCH && e.path == ORDERS_STS),
        "the orders StatefulSet grows"
    );
    script.push(event()); // MemberAdded
    script.push(status_patch(&s));
    let mut h = Harness::new(obs);
    h.round(&s, &running(&old, 3), script).await;
    assert!(matches!(&h.executed()[..], [Step::AddLearner { member, .. }] if member.id == 3));
}

#[tokio::test]
async fn scale_down_changes_voters_before_shrinking_the_statefulset() {
    let obs = group(&[0, 1, 2, 3, 4], &[], 0);
    let old = with_status(store(5), &obs);
    let mut s = old.clone();
    s.spec.orders.replicas = 3;
    s.metadata.generation = Some(2);
    let mut script = vec![token_read(&s)];
    // Members 3 and 4 still vote: the StatefulSet keeps 5 pods this round.
    let desired = built(&s, 5);
    script.extend(apply_script(&desired, Some(&built(&old, 5))));
    assert!(
        !script
            .iter()
            .any(|e| e.method == Method::PATCH && e.path == ORDERS_STS),
        "the orders StatefulSet must not shrink while its members vote"
    );
    script.push(event()); // MembershipChanged
    script.push(status_patch(&s));
    let mut h = Harness::new(obs);
    h.round(&s, &running(&old, 5), script).await;
    assert!(
        matches!(&h.executed()[..], [Step::ChangeVoters { voters, .. }] if voters == &vec![0, 1, 2])
    );
}

#[tokio::test]
async fn after_members_left_the_statefulset_shrinks_and_their_volumes_go_once() {
    let obs = group(&[0, 1, 2], &[], 0);
    let mut s = with_status(store(3), &obs);
    s.metadata.generation = Some(2);
    // The previous round applied this spec with 5 pods; members 3 and 4 have left since.
    let mut before = running(&store(5), 5);
    before.applied = Some(built(&s, 5));
    before.pods.truncate(3);
    let mut script = vec![token_read(&s)];
    script.extend(apply_script(&built(&s, 3), Some(&built(&s, 5))));
    assert!(
        script
            .iter()
            .any(|e| e.method == Method::PATCH && e.path == ORDERS_STS)
    );
    for i in [3, 4] {
        let path = format!("{PVCS}/{}", build::order_pvc_name(&s.name_any(), i));
        script.push(expect(Method::DELETE, path, 200, deleted()));
        script.push(event()); // VolumeDeleted, each with its own note
    }
    script.push(status_patch(&s)); // observedGeneration 2
    let mut h = Harness::new(obs);
    let sent = h.round(&s, &before, script).await;
    assert_eq!(
        sent.event_notes(),
        [
            "deleted volume data-toys-orders-3 of a replica that left the group",
            "deleted volume data-toys-orders-4 of a replica that left the group",
        ]
    );
    let s = ToyStore {
        status: sent.status(),
        ..s
    };
    let mut after = running(&s, 3);
    after.applied = Some(built(&s, 3));

    // The caches do not show the deletions yet: nothing is deleted twice.
    after.claims = before.claims.clone();
    h.round(&s, &after, vec![]).await;
    // Claim 3 is terminating (its pod's node is draining), claim 4 is gone: still nothing.
    after.claims = (0..3).map(|i| claim(&s, i)).collect();
    after.claims.push(terminating(claim(&s, 3)));
    h.round(&s, &after, vec![]).await;
}

#[tokio::test]
async fn a_claim_already_being_deleted_is_not_deleted_again() {
    let obs = group(&[0, 1, 2], &[], 0);
    let s = with_status(store(3), &obs);
    let mut cluster = running(&s, 3);
    cluster.claims.push(terminating(claim(&s, 3)));
    let mut h = Harness::new(obs);
    h.round(&s, &cluster, vec![token_read(&s)]).await;
}

#[tokio::test]
async fn deletion_removes_the_volumes_then_the_finalizer() {
    let mut s = store(3);
    s.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    let mut cluster = running(&s, 3);
    // One claim is already on its way out: it gets no second DELETE.
    cluster.claims[2] = terminating(claim(&s, 2));
    // Only order replicas have volumes the operator deletes: a claim of the store labelled
    // with another component is none of its business.
    let mut other = claim(&s, 0);
    other.metadata.name = Some("data-toys-catalog-0".into());
    other.metadata.uid = Some("claim-catalog-0".into());
    other.metadata.labels = Some(build::labels(&s.name_any(), Component::Catalog));
    cluster.claims.push(other);
    let mut script = vec![];
    for i in 0..2 {
        let path = format!("{PVCS}/{}", build::order_pvc_name(&s.name_any(), i));
        script.push(expect(Method::DELETE, path, 200, deleted()));
    }
    script.push(event()); // Deleted
    let mut done = s.clone();
    done.metadata.finalizers = None;
    script.push(expect(
        Method::PATCH,
        STORE,
        200,
        serde_json::to_value(&done).unwrap(),
    ));
    let mut h = Harness::new(group(&[0, 1, 2], &[], 0));
    h.round(&s, &cluster, script).await;
    assert!(h.executed().is_empty());
}

#[tokio::test]
async fn invalid_spec_is_reported_and_nothing_is_applied() {
    let mut s = store(3);
    s.spec.orders.replicas = 4; // slipped past the schema
    let mut h = Harness::new(fresh(&[0, 1, 2]));
    h.round(&s, &Cluster::default(), vec![event(), status_patch(&s)])
        .await;
    assert!(h.executed().is_empty());
}

#[tokio::test]
async fn a_name_that_can_never_reconcile_is_reported_and_nothing_is_applied() {
    let mut s = store(3);
    s.metadata.name = Some("my.shop".into());
    let path = "/apis/toystore.dev/v1alpha1/namespaces/shop/toystores/my.shop/status";
    let script = vec![
        event(),
        expect(Method::PATCH, path, 200, serde_json::to_value(&s).unwrap()),
    ];
    let mut h = Harness::new(fresh(&[0, 1, 2]));
    let sent = h.round(&s, &Cluster::default(), script).await;
    assert!(
        sent.event_notes()[0].contains("DNS-1035"),
        "{:?}",
        sent.event_notes()
    );
}

#[tokio::test]
async fn a_group_that_lost_its_state_is_not_initialized_again() {
    let obs = fresh(&[0, 1, 2]);
    let mut s = store(3);
    s.status = Some(ToyStoreStatus {
        initialized: true,
        ..Default::default()
    });
    let script = vec![token_read(&s), event(), status_patch(&s)]; // GroupLostState warning
    let mut h = Harness::new(obs);
    let sent = h.round(&s, &running(&s, 3), script).await;
    assert!(h.executed().is_empty(), "must not initialize twice");
    // The same condition on the next round: the warning's series counts up (no new Event).
    let s = ToyStore {
        status: sent.status(),
        ..s
    };
    let sent = h.round(&s, &running(&s, 3), vec![repeated_event()]).await;
    let (_, path, body) = &sent.writes[0];
    assert!(path.starts_with(&format!("{EVENTS}/")), "{path}");
    assert_eq!(body["reason"], "GroupLostState");
    assert_eq!(body["series"]["count"], 2);
    assert!(h.executed().is_empty(), "must not initialize twice");
}

#[tokio::test]
async fn a_refused_apply_is_a_condition_and_a_warning_event_with_the_api_message() {
    // The storage class was added to a store created without one (an older CRD let it pass):
    // the API server refuses the StatefulSet change with 422.
    let obs = group(&[0, 1, 2], &[], 0);
    let old = with_status(store(3), &obs);
    let mut s = old.clone();
    s.spec.orders.storage.storage_class_name = Some("gp3".into());
    s.metadata.generation = Some(2);
    let message = "StatefulSet.apps \"toys-orders\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";
    let invalid = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": "Invalid",
        "details": {"name": "toys-orders", "group": "apps", "kind": "StatefulSet"}, "code": 422});
    let mut script = vec![token_read(&s)];
    for e in apply_script(&built(&s, 3), Some(&built(&old, 3))) {
        let refused = e.path == ORDERS_STS;
        script.push(if refused {
            expect(Method::PATCH, ORDERS_STS, 422, invalid.clone())
        } else {
            e
        });
        if refused {
            break; // apply stops at the first refusal
        }
    }
    script.push(event()); // ApplyFailed
    script.push(status_patch(&s));
    let mut h = Harness::new(obs);
    let (result, sent) = h.try_round(&s, &running(&old, 3), script).await;
    assert!(
        result
            .as_ref()
            .is_err_and(|e| e.refused_apply() == Some(message)),
        "{result:?}"
    );
    let events = sent.created_events();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0]["type"].as_str(), events[0]["reason"].as_str()),
        (Some("Warning"), Some("ApplyFailed"))
    );
    assert_eq!(events[0]["note"], message);
    let status = sent.status().expect("a status patch");
    for (type_, value) in [("Degraded", "True"), ("Ready", "False")] {
        let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
            (value, "ApplyFailed", message),
            "{type_}"
        );
    }
}

#[tokio::test]
async fn each_membership_change_is_its_own_event_and_a_repeat_that_changed_nothing_is_none() {
    // 3 → 5: learners 3 and 4 caught up are promoted; then 5 → 3.
    let grown = group(&[0, 1, 2], &[3, 4], 0);
    let mut s = with_status(store(5), &grown);
    let mut h = Harness::new(grown);
    let cluster = running(&s, 5);
    let sent = h
        .round(
            &s,
            &cluster,
            vec![token_read(&s), event(), status_patch(&s)],
        )
        .await;
    assert_eq!(sent.event_notes(), ["voters are now [0, 1, 2, 3, 4]"]);

    let five = group(&[0, 1, 2, 3, 4], &[], 0);
    h.observe(five.clone());
    s = with_status(store(3), &five);
    s.metadata.generation = Some(2);
    // The previous round applied this spec with 5 pods (members 3 and 4 still vote).
    let cluster = Cluster {
        applied: Some(built(&s, 5)),
        ..cluster
    };
    let script = vec![event(), status_patch(&s)];
    let sent = h.round(&s, &cluster, script).await;
    // A new Event with its own note, not "×2" of the first one.
    assert_eq!(sent.event_notes(), ["voters are now [0, 1, 2]"]);

    // The same step again, answered "nothing changed" (it had taken effect): no Event.
    let s = ToyStore {
        status: sent.status(),
        ..s
    };
    h.group
        .unchanged
        .store(true, std::sync::atomic::Ordering::SeqCst);
    h.executed();
    let sent = h.round(&s, &cluster, vec![]).await;
    assert_eq!(sent.event_notes(), Vec::<String>::new());
    assert_eq!(h.executed().len(), 1, "the step was carried out");

    // The same text for a change that did happen (voters back to [0, 1, 2] after another
    // grow): a new Event, not a count on the first.
    h.group
        .unchanged
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let sent = h.round(&s, &cluster, vec![event()]).await;
    let (method, path, body) = &sent.writes[0];
    assert_eq!((method, path.as_str()), (&Method::POST, EVENTS));
    assert_eq!(body["note"], "voters are now [0, 1, 2]");
    assert!(body["series"].is_null(), "{body}");
}

#[tokio::test]
async fn leader_changed_is_published_only_when_the_leader_changes() {
    let leader0 = group(&[0, 1, 2], &[], 0);
    // A previous round saw no leader (an election, or no replica answered in time).
    let s = with_status(store(3), &GroupView::default());
    let cluster = running(&s, 3);
    let mut h = Harness::new(leader0.clone());
    let sent = h
        .round(
            &s,
            &cluster,
            vec![token_read(&s), status_patch(&s), event()],
        )
        .await;
    assert_eq!(sent.event_notes(), ["leader is toys-orders-0 (term 4)"]);

    // The next round still gets the old status (the cache has not caught up), or the leader
    // went missing for a round and came back: the same leader is not announced again.
    h.round(&s, &cluster, vec![status_patch(&s)]).await;
    h.observe(GroupView::default());
    let seen = with_status(store(3), &leader0);
    h.round(&seen, &cluster, vec![status_patch(&s)]).await;
    h.observe(leader0);
    h.round(&s, &cluster, vec![status_patch(&s)]).await;

    // A new leader is.
    let mut leader1 = group(&[0, 1, 2], &[], 1);
    for st in leader1.statuses.values_mut().flatten() {
        st.term = 5;
    }
    h.observe(leader1);
    let sent = h.round(&s, &cluster, vec![status_patch(&s), event()]).await;
    assert_eq!(sent.event_notes(), ["leader is toys-orders-1 (term 5)"]);
}

#[tokio::test]
async fn a_rolling_upgrade_replaces_the_next_pod_only_when_the_last_is_back_and_ready() {
    let obs = group(&[0, 1, 2], &[], 0);
    let s = with_status(store(3), &obs);
    let mut cluster = running(&s, 3);
    cluster.orders_status = sts_status(3, "rev-2");
    let pod1 = format!("{PODS}/{}", build::order_pod_name(&s.name_any(), 1));
    let pod2 = format!("{PODS}/{}", build::order_pod_name(&s.name_any(), 2));
    let mut h = Harness::new(obs);
    let script = vec![
        token_read(&s),
        expect(Method::DELETE, &pod1, 200, deleted()), // followers first
        event(),                                       // PodUpgraded
        status_patch(&s),                              // Progressing
    ];
    let sent = h.round(&s, &cluster, script).await;
    let s = ToyStore {
        status: sent.status(),
        ..s
    };

    // The cache still shows pod 1 as it was: no second DELETE of it, and no other pod.
    h.round(&s, &cluster, vec![]).await;
    // Terminating (and still ready), then gone, then back on rev-2 but not ready: wait.
    cluster.pods[1] = terminating(cluster.pods[1].clone());
    h.round(&s, &cluster, vec![]).await;
    cluster.pods.remove(1);
    h.round(&s, &cluster, vec![]).await;
    cluster.pods.insert(1, order_pod(&s, 1, "rev-2", false));
    h.round(&s, &cluster, vec![]).await;
    // Back and ready: the next follower.
    cluster.pods[1] = order_pod(&s, 1, "rev-2", true);
    h.round(
        &s,
        &cluster,
        vec![expect(Method::DELETE, &pod2, 200, deleted()), event()],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Restore at creation, scheduled backups and their retention

const JOBS: &str = "/apis/batch/v1/namespaces/shop/jobs";
const BACKUPS: &str = "/apis/toystore.dev/v1alpha1/namespaces/shop/toystorebackups";
const FROM: &str = "s3://backups/old-shop/nightly";

/// `store(3)` created from the artifact [`FROM`].
fn restoring_store() -> ToyStore {
    let mut s = store(3);
    s.spec.restore =
        Some(serde_json::from_value(json!({"from": FROM, "credentialsSecret": "s3"})).unwrap());
    s
}

/// The restore Job as the operator creates it, as the watch shows it with `condition`
/// (`("Complete" | "Failed", reason)`, or running).
fn restore_job(s: &ToyStore, condition: Option<(&str, &str)>) -> Job {
    let mut job = build::restore_job(&valid(s)).unwrap();
    job.metadata.uid = Some("restore-job-uid".into());
    job.status = Some(k8s_openapi::api::batch::v1::JobStatus {
        active: Some(i32::from(condition.is_none())),
        conditions: condition.map(|(type_, reason)| {
            vec![k8s_openapi::api::batch::v1::JobCondition {
                type_: type_.into(),
                status: "True".into(),
                reason: Some(reason.into()),
                ..Default::default()
            }]
        }),
        ..Default::default()
    });
    job
}

/// The restore Job's pod, running (`None`) or ended with `message` as its termination message.
fn restore_pod(s: &ToyStore, ended: Option<(i32, &str)>) -> Pod {
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus,
    };
    let state = match ended {
        None => ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..Default::default()
        },
        Some((exit_code, message)) => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code,
                message: Some(message.into()),
                finished_at: Some(Time("2025-03-10T03:10:00Z".parse().unwrap())),
                ..Default::default()
            }),
            ..Default::default()
        },
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("{}-x7k2p", build::restore_job_name(&s.name_any()))),
            namespace: Some(NS.into()),
            labels: Some(build::jobs::restore_labels(&s.name_any())),
            owner_references: Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    api_version: "batch/v1".into(),
                    kind: "Job".into(),
                    name: build::restore_job_name(&s.name_any()),
                    uid: "restore-job-uid".into(),
                    controller: Some(true),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        },
        status: Some(PodStatus {
            container_statuses: Some(vec![ContainerStatus {
                name: "restore".into(),
                state: Some(state),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What `toystore restore` writes on success.
fn restore_report() -> String {
    json!({
        "url": FROM,
        "manifest": {
            "artifactFormat": 1, "store": "old-shop", "createdAt": "2025-03-10T03:00:05Z",
            "toystoreVersion": "0.1.0",
            "state": {"storageFormat": 1, "index": 1234, "term": 3, "orders": 1000,
                      "refused": 7, "products": 12},
            "data": {"object": "state.json", "size": 52000, "sha256": "ab12"}
        }
    })
    .to_string()
}

fn condition<'a>(
    status: &'a ToyStoreStatus,
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"))
}

#[tokio::test]
async fn a_restore_runs_before_the_statefulset_which_waits_until_it_succeeded() {
    let s = restoring_store();
    let mut h = Harness::new(GroupView::default());
    // First round: the token, replica 0's claim, the restore Job; nothing else.
    let script = vec![
        not_found(Method::GET, SECRET),
        expect(
            Method::POST,
            "/api/v1/namespaces/shop/secrets",
            201,
            token_secret(&s),
        ),
        expect(Method::POST, PVCS, 201, json!({})),
        expect(Method::POST, JOBS, 201, json!({})),
        status_patch(&s),
    ];
    let sent = h.round(&s, &Cluster::default(), script).await;
    let (_, _, claim) = &sent.writes[1];
    assert_eq!(claim["metadata"]["name"], "data-toys-orders-0");
    assert_eq!(
        claim["metadata"]["labels"],
        serde_json::to_value(build::labels("toys", Component::Orders)).unwrap()
    );
    assert_eq!(claim["spec"]["storageClassName"], "operator-default");
    let (_, _, job) = &sent.writes[2];
    assert_eq!(job["metadata"]["name"], "toys-restore");
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["command"], json!(["toystore"]));
    assert_eq!(
        container["args"],
        json!([
            "restore",
            "--from",
            FROM,
            "--data-dir",
            "/data",
            "--node-id",
            "0",
            "--url",
            url(0),
            "--raft-url",
            raft_url(0).unwrap(),
            "--result-file",
            "/dev/termination-log"
        ])
    );
    assert_eq!(
        container["envFrom"],
        json!([{"secretRef": {"name": "s3", "optional": false}}])
    );
    let status = sent.status().unwrap();
    assert_eq!(condition(&status, "Restored").reason, "Restoring");
    assert_eq!(condition(&status, "Ready").reason, "Restoring");
    assert!(h.executed().is_empty());

    // While the Job runs: no StatefulSet, nothing applied, only the status.
    let s = ToyStore {
        status: sent.status(),
        ..s
    };
    let mut cluster = Cluster {
        claims: vec![claim_of_restore(&s)],
        jobs: vec![restore_job(&s, None)],
        pods: vec![restore_pod(&s, None)],
        ..Cluster::default()
    };
    let sent = h.round(&s, &cluster, vec![status_patch(&s)]).await;
    let status = sent.status().unwrap();
    assert!(
        condition(&status, "Restored")
            .message
            .contains("restores from"),
        "{status:?}"
    );
    let s = ToyStore {
        status: sent.status(),
        ..s
    };
    h.round(&s, &cluster, vec![]).await;

    // Done: recorded, announced, then the store's objects, the StatefulSet among them.
    cluster.jobs = vec![restore_job(&s, Some(("Complete", "CompletionsReached")))];
    cluster.pods = vec![restore_pod(&s, Some((0, &restore_report())))];
    let mut script = vec![event()];
    script.extend(apply_script(&built(&s, 3), None));
    assert!(script.iter().any(|e| e.path == ORDERS_STS));
    script.push(status_patch(&s));
    let sent = h.round(&s, &cluster, script).await;
    assert_eq!(
        sent.event_notes(),
        [
            "restored from s3://backups/old-shop/nightly: store old-shop as of index 1234, 1000 orders"
        ]
    );
    let status = sent.status().unwrap();
    let restore = status.restore.clone().unwrap();
    assert_eq!(
        (restore.from.as_str(), restore.source_store.as_str()),
        (FROM, "old-shop")
    );
    assert_eq!((restore.index, restore.orders), (1234, 1000));
    assert_eq!(
        restore.completed_at,
        Time("2025-03-10T03:10:00Z".parse().unwrap())
    );
    assert_eq!(condition(&status, "Restored").status, "True");
    // The restored group counts as initialized: it is never initialized anew, empty.
    assert!(status.initialized);
    // The membership driver waits for pod 0 to elect itself: no Initialize.
    assert!(h.executed().is_empty());
}

#[tokio::test]
async fn an_apply_refused_right_after_the_restore_succeeded_still_records_the_restore() {
    let s = restoring_store();
    let mut h = Harness::new(GroupView::default());
    let cluster = Cluster {
        claims: vec![claim_of_restore(&s)],
        jobs: vec![restore_job(&s, Some(("Complete", "CompletionsReached")))],
        pods: vec![restore_pod(&s, Some((0, &restore_report())))],
        ..Cluster::default()
    };
    let refused = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": "refused", "reason": "Invalid", "code": 422});
    let first = apply_script(&built(&s, 3), None).remove(0);
    let script = vec![
        token_read(&s),
        event(), // Restored
        expect(Method::PATCH, first.path, 422, refused),
        event(), // ApplyFailed
        status_patch(&s),
    ];
    let (result, sent) = h.try_round(&s, &cluster, script).await;
    assert!(result.is_err(), "the refused apply is retried");
    let status = sent.status().expect("a status patch");
    // The round's own restore, not "not started": the restore is done and recorded.
    assert_eq!(status.restore.as_ref().map(|r| r.from.as_str()), Some(FROM));
    let restored = condition(&status, "Restored");
    assert_eq!(
        (restored.status.as_str(), restored.reason.as_str()),
        ("True", "Restored")
    );
    assert_eq!(condition(&status, "Degraded").reason, "ApplyFailed");
}

/// Replica 0's claim as the restore step created it (as the watch shows it).
fn claim_of_restore(s: &ToyStore) -> PersistentVolumeClaim {
    let mut c = claim(s, 0);
    c.metadata.uid = Some("claim-restored".into());
    c
}

#[tokio::test]
async fn a_failed_restore_is_a_condition_and_a_warning_and_the_store_gets_no_statefulset() {
    let s = restoring_store();
    let mut h = Harness::new(GroupView::default());
    let failure =
        json!({"error": "artifact s3://backups/old-shop/nightly: state.json checksum mismatch"})
            .to_string();
    let cluster = Cluster {
        claims: vec![claim_of_restore(&s)],
        jobs: vec![restore_job(&s, Some(("Failed", "BackoffLimitExceeded")))],
        pods: vec![restore_pod(&s, Some((1, &failure)))],
        ..Cluster::default()
    };
    let script = vec![token_read(&s), event(), status_patch(&s)];
    let sent = h.round(&s, &cluster, script).await;
    let events = sent.created_events();
    assert_eq!(
        (events[0]["type"].as_str(), events[0]["reason"].as_str()),
        (Some("Warning"), Some("RestoreFailed"))
    );
    assert!(
        events[0]["note"]
            .as_str()
            .unwrap()
            .contains("checksum mismatch"),
        "{}",
        events[0]["note"]
    );
    let status = sent.status().unwrap();
    for type_ in ["Ready", "Degraded", "Restored"] {
        let c = condition(&status, type_);
        assert_eq!(c.reason, "RestoreFailed", "{type_}");
        assert!(
            c.message.contains("checksum mismatch"),
            "{type_}: {}",
            c.message
        );
    }
    assert_eq!(condition(&status, "Degraded").status, "True");
    assert!(status.restore.is_none());
    // Next round: still no StatefulSet, no second Job; the warning counts up.
    let s = ToyStore {
        status: sent.status(),
        ..s
    };
    h.round(&s, &cluster, vec![repeated_event()]).await;
    assert!(h.executed().is_empty());
}

#[tokio::test]
async fn a_completed_restore_job_of_an_earlier_store_of_the_same_name_is_not_this_restore() {
    // An earlier ToyStore `toys` (another uid) left its restore Job, completed with a result,
    // not yet garbage-collected: this store's restore has not run, nothing is recorded.
    let s = restoring_store();
    let mut h = Harness::new(GroupView::default());
    let mut stale = restore_job(&s, Some(("Complete", "CompletionsReached")));
    for owner in stale.metadata.owner_references.iter_mut().flatten() {
        owner.uid = "earlier-store-uid".into();
    }
    let cluster = Cluster {
        claims: vec![claim_of_restore(&s)],
        jobs: vec![stale],
        pods: vec![restore_pod(&s, Some((0, &restore_report())))],
        ..Cluster::default()
    };
    // No Job created (the name is taken), no event, no StatefulSet: only the status.
    let sent = h
        .round(&s, &cluster, vec![token_read(&s), status_patch(&s)])
        .await;
    assert!(sent.created_events().is_empty(), "no Restored event");
    let status = sent.status().unwrap();
    assert!(status.restore.is_none(), "nothing restored is recorded");
    let restored = condition(&status, "Restored");
    assert_eq!(
        (restored.status.as_str(), restored.reason.as_str()),
        ("False", "Restoring")
    );
    assert!(
        restored.message.contains("earlier store"),
        "{}",
        restored.message
    );
    assert!(!status.initialized);
    assert!(h.executed().is_empty());
}

#[tokio::test]
async fn a_store_whose_statefulset_exists_is_never_restored_again() {
    // The StatefulSet exists and no restore is recorded (the status was lost): no claim, no
    // Job, the store goes on as it is.
    let obs = group(&[0, 1, 2], &[], 0);
    let s = with_status(restoring_store(), &obs);
    let mut h = Harness::new(obs.clone());
    let sent = h
        .round(&s, &running(&s, 3), vec![token_read(&s), status_patch(&s)])
        .await;
    let status = sent.status().unwrap();
    assert_eq!(condition(&status, "Restored").reason, "NotRecorded");
    assert!(h.executed().is_empty());

    // Recorded, and every volume and even the StatefulSet gone: the StatefulSet comes back,
    // never a restore Job (a second one-voter group would split the store).
    let mut s = ToyStore {
        status: sent.status(),
        ..s
    };
    s.status.as_mut().unwrap().restore = Some(operator::crd::RestoreStatus {
        from: FROM.into(),
        source_store: "old-shop".into(),
        index: 1234,
        orders: 1000,
        completed_at: Time(Timestamp::UNIX_EPOCH),
    });
    let mut gone = running(&s, 3);
    gone.claims.clear();
    gone.pods.clear();
    gone.orders_status = None;
    if let Some(b) = gone.applied.as_mut() {
        b.stateful_set.metadata.name = Some("not-the-orders".into());
    }
    let script: Vec<Expect> = apply_script(&built(&s, 3), gone.applied.as_ref())
        .into_iter()
        .chain([status_patch(&s)])
        .collect();
    assert!(script.iter().all(|e| e.path != JOBS && e.path != PVCS));
    h.round(&s, &gone, script).await;
}

/// `store(3)` backing up to S3 on `schedule` (if any) keeping `keep` (if any), created `age` ago.
fn backing_up(schedule: Option<&str>, keep: Option<i32>, age_days: i64) -> ToyStore {
    let obs = group(&[0, 1, 2], &[], 0);
    let mut s = store(3);
    s.spec.backup = Some(
        serde_json::from_value(json!({
            "destination": {"url": "s3://backups"},
            "schedule": schedule,
            "retention": keep.map(|keep| json!({"keep": keep})),
        }))
        .unwrap(),
    );
    s.metadata.creation_timestamp = Some(Time(
        Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_hours(24 * age_days),
    ));
    with_status(s, &obs)
}

#[tokio::test]
async fn a_schedule_creates_one_backup_per_due_time_and_catches_up_once() {
    // Yearly on 1 January: the store is three years old and never backed up, so three due
    // times were missed; one backup is created, for the latest.
    let s = backing_up(Some("0 0 1 1 *"), None, 3 * 366);
    let due = operator::cron::Schedule::parse("0 0 1 1 *")
        .unwrap()
        .latest_at_or_before(Timestamp::now())
        .unwrap();
    let name = format!("toys-{}01010000", due.strftime("%Y"));
    let obs = group(&[0, 1, 2], &[], 0);
    let mut h = Harness::new(obs);
    let script = vec![
        token_read(&s),
        expect(
            Method::POST,
            BACKUPS,
            201,
            serde_json::to_value(scheduled_backup("created", None, 1, true)).unwrap(),
        ),
        event(), // BackupScheduled
        status_patch(&s),
    ];
    let sent = h.round(&s, &running(&s, 3), script).await;
    let (_, _, backup) = &sent.writes[0];
    assert_eq!(backup["metadata"]["name"], name.as_str());
    assert_eq!(backup["spec"], json!({"store": "toys"}));
    assert_eq!(
        backup["metadata"]["labels"],
        json!({"toystore.dev/store": "toys", "toystore.dev/scheduled": "true"})
    );
    assert!(
        backup["metadata"]["ownerReferences"].is_null(),
        "a backup outlives its store"
    );
    let status = sent.status().unwrap();
    assert_eq!(status.last_schedule_time, Some(Time(due)));
    assert_eq!(status.last_scheduled_backup.as_deref(), Some(name.as_str()));

    // Served: the next rounds create nothing until the next due time.
    let s = ToyStore {
        status: sent.status(),
        ..s
    };
    h.round(&s, &running(&s, 3), vec![]).await;
    // A status that lagged behind (the cache): the backup exists already, nothing new.
    let lagging = backing_up(Some("0 0 1 1 *"), None, 3 * 366);
    h.round(&lagging, &running(&lagging, 3), vec![expect(Method::POST, BACKUPS, 409, json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "AlreadyExists", "code": 409, "message": "exists"
    })), status_patch(&s)]).await;
    // A store created after the last due time waits for the next.
    let young = backing_up(Some("0 0 1 1 *"), None, 0);
    let mut h = Harness::new(group(&[0, 1, 2], &[], 0));
    h.round(&young, &running(&young, 3), vec![token_read(&young)])
        .await;
}

fn scheduled_backup(
    name: &str,
    phase: Option<operator::crd::BackupPhase>,
    day: u32,
    scheduled: bool,
) -> ToyStoreBackup {
    let mut b = ToyStoreBackup::new(
        name,
        operator::crd::ToyStoreBackupSpec {
            store: "toys".into(),
        },
    );
    let mut labels = BTreeMap::from([(build::STORE_LABEL.to_string(), "toys".to_string())]);
    if scheduled {
        labels.insert(build::SCHEDULED_LABEL.into(), "true".into());
    }
    b.metadata.namespace = Some(NS.into());
    b.metadata.uid = Some(format!("uid-{name}"));
    b.metadata.labels = Some(labels);
    b.metadata.creation_timestamp =
        Some(Time(format!("2025-03-{day:02}T03:00:00Z").parse().unwrap()));
    b.status = phase.map(|phase| operator::crd::ToyStoreBackupStatus {
        phase: Some(phase),
        ..Default::default()
    });
    b
}

#[tokio::test]
async fn retention_deletes_the_oldest_completed_scheduled_backups_only() {
    use operator::crd::BackupPhase::{Completed, Running};
    let s = backing_up(None, Some(2), 30);
    let mut cluster = running(&s, 3);
    cluster.backups = vec![
        scheduled_backup("toys-202503010300", Some(Completed), 1, true),
        scheduled_backup("toys-202503020300", Some(Completed), 2, true),
        scheduled_backup("toys-202503030300", Some(Completed), 3, true),
        scheduled_backup("toys-202503040300", Some(Completed), 4, true),
        scheduled_backup("toys-202503050300", Some(Running), 5, true),
        // By hand, and another store's: never deleted here.
        scheduled_backup("toys-by-hand", Some(Completed), 6, false),
        {
            let mut other = scheduled_backup("other-202503010300", Some(Completed), 1, true);
            other
                .metadata
                .labels
                .as_mut()
                .unwrap()
                .insert(build::STORE_LABEL.into(), "other".into());
            other
        },
    ];
    let mut h = Harness::new(group(&[0, 1, 2], &[], 0));
    let script = vec![
        token_read(&s),
        expect(
            Method::DELETE,
            format!("{BACKUPS}/toys-202503020300"),
            200,
            deleted(),
        ),
        event(),
        expect(
            Method::DELETE,
            format!("{BACKUPS}/toys-202503010300"),
            200,
            deleted(),
        ),
        event(),
    ];
    let sent = h.round(&s, &cluster, script).await;
    assert_eq!(
        sent.event_notes(),
        [
            "deleted ToyStoreBackup toys-202503020300 (the retention keeps the newest 2)",
            "deleted ToyStoreBackup toys-202503010300 (the retention keeps the newest 2)",
        ]
    );
    // The cache still shows them: they are not deleted twice.
    h.round(&s, &cluster, vec![]).await;
}
