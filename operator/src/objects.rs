//! The build step: from a `ToyStore` to the Kubernetes objects that run it.
//!
//! Reconcile is a pipeline (validate → build → apply → status). This module is the build step,
//! and it is a pure function: it reads the resource and a few facts the membership step already
//! decided ([`BuildInputs`]), makes no API calls, reads no clock and draws no random numbers. The
//! same input always gives byte-for-byte the same objects, which is what makes server-side apply
//! idempotent (an unchanged store applies as a no-op) and lets the golden tests in
//! `tests/golden.rs` pin every field without a cluster.
//!
//! What it produces for a store named `N` in namespace `NS`:
//! - ConfigMap `N-config`: every non-secret setting as the environment variables the binaries
//!   read (`ORDER_*`, `CATALOG_*`, `FRONTEND_*`); pods take it with `envFrom`.
//! - ServiceAccounts `N-orders`, `N-catalog`, `N-frontend`, none with an API token: no pod talks
//!   to the Kubernetes API.
//! - Services: `N-orders` (headless, publishes not-ready pods so peers find each other before a
//!   leader exists; the StatefulSet's governing Service), `N-orders-client`, `N-catalog` and the
//!   public `N-frontend`.
//! - StatefulSets `N-orders` (the Raft group, `OnDelete` updates: the operator rolls pods itself,
//!   one at a time, the leader last) and `N-catalog`, each with a `data` volume claim.
//! - Deployment `N-frontend`.
//! - PodDisruptionBudget `N-orders`, keeping a Raft quorum through voluntary disruptions.
//! - NetworkPolicies admitting only the traffic each component needs (ingress only).
//!
//! The cluster token Secret is built separately by [`token_secret`]: its value is generated once
//! by the reconciler (randomness is not pure) and never rebuilt from the spec.
//!
//! Each pod template carries the annotation [`CONFIG_HASH_ANNOTATION`], a hash of the settings
//! that component reads, so a settings change changes the template and rolls the pods, while a
//! change that only concerns another component leaves them alone.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource,
    EnvVar, EnvVarSource, HTTPGetAction, LocalObjectReference, ObjectFieldSelector,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    Secret, SecretVolumeSource, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec,
    TopologySpreadConstraint, Volume, VolumeMount, VolumeResourceRequirements,
    WeightedPodAffinityTerm,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

use crate::crd::{StorageSpec, ToyStore};

/// Field manager name the operator uses for every server-side apply.
pub const FIELD_MANAGER: &str = "toystore-operator";

/// Component label value of the Raft order replicas.
pub const COMPONENT_ORDERS: &str = "orders";
/// Component label value of the catalog.
pub const COMPONENT_CATALOG: &str = "catalog";
/// Component label value of the frontend.
pub const COMPONENT_FRONTEND: &str = "frontend";

/// Pod template annotation holding the hash of the settings the component reads.
pub const CONFIG_HASH_ANNOTATION: &str = "toystore.dev/config-hash";
/// `app.kubernetes.io/name` of the operator's own pods, admitted to the order replicas' port.
pub const OPERATOR_APP_NAME: &str = "toystore-operator";
/// Key of the cluster token in the token Secret.
pub const TOKEN_KEY: &str = "token";

/// Port of an order replica (clients, Raft RPC and admin API).
pub const ORDER_PORT: i32 = 7000;
/// Port of the catalog.
pub const CATALOG_PORT: i32 = 7100;
/// Port the frontend container listens on.
pub const FRONTEND_PORT: i32 = 8080;
/// Port of the public frontend Service.
pub const FRONTEND_SERVICE_PORT: i32 = 80;

/// Label keys shared by every object.
const NAME_LABEL: &str = "app.kubernetes.io/name";
/// The label naming the store an object belongs to.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// `app.kubernetes.io/name` of every ToyStore object.
const APP_NAME: &str = "toystore";

/// Name of the data volume claim template (and of its mount).
const DATA_VOLUME: &str = "data";
const DATA_DIR: &str = "/data";
const TOKEN_VOLUME: &str = "token";
const TOKEN_DIR: &str = "/var/run/toystore";
/// Unprivileged user and group of every container (the distroless `nonroot` id).
pub const RUN_AS: i64 = 65532;
/// Owner read-only: the token file is for the process alone.
const TOKEN_FILE_MODE: i32 = 0o400;
const PORT_NAME: &str = "http";

/// Facts decided before build by steps that look at the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInputs {
    /// Size of the order StatefulSet, chosen by the membership step. It follows
    /// `spec.orders.replicas` except while a scale-down is in progress: the StatefulSet shrinks
    /// only after the removed members have left the Raft membership.
    pub order_replicas: i32,
    /// Storage class of volume claims whose spec names none (`None`: the cluster's default
    /// class). Chosen by [`fallback_storage_class`].
    pub storage_class: Option<String>,
}

/// The storage class for claims whose spec names none. Claim templates cannot change, so a
/// store whose order StatefulSet exists keeps the class that StatefulSet was created with,
/// even if the operator's default changed since; a new store gets the operator's default.
pub fn fallback_storage_class(
    orders: Option<&StatefulSet>,
    operator_default: Option<&str>,
) -> Option<String> {
    match orders.and_then(|s| s.spec.as_ref()) {
        Some(spec) => spec
            .volume_claim_templates
            .iter()
            .flatten()
            .find(|c| c.metadata.name.as_deref() == Some(DATA_VOLUME))
            .and_then(|c| c.spec.as_ref()?.storage_class_name.clone()),
        None => operator_default.map(str::to_string),
    }
}

/// Everything [`build`] produces for one store, to be server-side applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Objects {
    /// `{name}-config`: the non-secret settings.
    pub config_map: ConfigMap,
    /// One per component: orders, catalog, frontend.
    pub service_accounts: Vec<ServiceAccount>,
    /// Orders headless, orders client, catalog, frontend.
    pub services: Vec<Service>,
    /// Orders first, then catalog.
    pub stateful_sets: Vec<StatefulSet>,
    /// The frontend.
    pub deployment: Deployment,
    /// Keeps a quorum of order replicas.
    pub pod_disruption_budget: PodDisruptionBudget,
    /// Orders, catalog, frontend.
    pub network_policies: Vec<NetworkPolicy>,
}

/// Builds every object of `store` except the token Secret. Pure and deterministic.
pub fn build(store: &ToyStore, inputs: &BuildInputs) -> Objects {
    let config = config_data(store);
    Objects {
        config_map: config_map(store, &config),
        service_accounts: [COMPONENT_ORDERS, COMPONENT_CATALOG, COMPONENT_FRONTEND]
            .into_iter()
            .map(|component| service_account(store, component))
            .collect(),
        services: services(store),
        stateful_sets: vec![
            orders_stateful_set(store, inputs, &config),
            catalog_stateful_set(store, inputs, &config),
        ],
        deployment: frontend_deployment(store, &config),
        pod_disruption_budget: orders_pdb(store),
        network_policies: network_policies(store),
    }
}

/// The Secret `{name}-raft-token` holding the cluster token under [`TOKEN_KEY`].
///
/// The reconciler generates `token` once and creates this Secret only when it is missing; the
/// token is never derived from the spec, so it is not part of [`build`].
pub fn token_secret(store: &ToyStore, token: &str) -> Secret {
    Secret {
        metadata: metadata(store, &token_secret_name(store), COMPONENT_ORDERS),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            TOKEN_KEY.to_string(),
            ByteString(token.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

/// The label selector of every object the operator manages (pods and volume claims included,
/// through the StatefulSet templates): what its watches are restricted to.
pub fn managed_selector() -> String {
    format!("{MANAGED_BY_LABEL}={FIELD_MANAGER}")
}

/// All labels of an object of `component`: name, instance, component and managed-by.
pub fn labels(store: &ToyStore, component: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(store, component);
    labels.insert(MANAGED_BY_LABEL.into(), FIELD_MANAGER.into());
    labels
}

/// The labels that select the pods of `component` in this store (name, instance, component).
/// Used by Service, StatefulSet, Deployment, PDB and NetworkPolicy selectors, so they never
/// change for the life of the store.
pub fn selector_labels(store: &ToyStore, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_string(), APP_NAME.to_string()),
        (INSTANCE_LABEL.to_string(), store.name_any()),
        (COMPONENT_LABEL.to_string(), component.to_string()),
    ])
}

/// `{name}-orders`: the order StatefulSet, its headless Service, ServiceAccount, PDB and
/// NetworkPolicy.
pub fn orders_name(store: &ToyStore) -> String {
    format!("{}-{COMPONENT_ORDERS}", store.name_any())
}

/// `{name}-orders-{ordinal}`: the pod of order replica `ordinal` (also its Raft node id).
pub fn order_pod_name(store: &ToyStore, ordinal: i32) -> String {
    format!("{}-{ordinal}", orders_name(store))
}

/// The stable URL of order replica `ordinal` through the headless Service, as it advertises
/// itself: `http://{name}-orders-{ordinal}.{name}-orders.{namespace}.svc:7000`.
pub fn order_replica_url(store: &ToyStore, ordinal: i32) -> String {
    format!(
        "http://{}.{}.{}.svc:{ORDER_PORT}",
        order_pod_name(store, ordinal),
        orders_name(store),
        namespace(store)
    )
}

/// `data-{name}-orders-{ordinal}`: the volume claim of order replica `ordinal`.
pub fn order_pvc_name(store: &ToyStore, ordinal: i32) -> String {
    format!("{DATA_VOLUME}-{}", order_pod_name(store, ordinal))
}

/// `{name}-raft-token`: the Secret built by [`token_secret`].
pub fn token_secret_name(store: &ToyStore) -> String {
    format!("{}-raft-token", store.name_any())
}

/// `{name}-config`: the ConfigMap of settings.
pub fn config_map_name(store: &ToyStore) -> String {
    format!("{}-config", store.name_any())
}

/// The catalog's URL inside the cluster: `http://{name}-catalog.{namespace}.svc:7100`.
pub fn catalog_url(store: &ToyStore) -> String {
    format!(
        "http://{}.{}.svc:{CATALOG_PORT}",
        component_name(store, COMPONENT_CATALOG),
        namespace(store)
    )
}

/// The store's namespace. A `ToyStore` read from the API always has one; `default` stands in
/// for a hand-built one without.
fn namespace(store: &ToyStore) -> String {
    store.namespace().unwrap_or_else(|| "default".into())
}

/// `{name}-{component}`.
fn component_name(store: &ToyStore, component: &str) -> String {
    format!("{}-{component}", store.name_any())
}

/// Name, namespace, labels and the controller owner reference: what every object carries.
fn metadata(store: &ToyStore, name: &str, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace(store)),
        labels: Some(labels(store, component)),
        owner_references: owner_references(store),
        ..ObjectMeta::default()
    }
}

/// The ToyStore as controlling owner: deleting the store garbage-collects its objects, and
/// changes to them wake its reconcile. Absent only for a store without a uid (never one read
/// from the API).
fn owner_references(store: &ToyStore) -> Option<Vec<OwnerReference>> {
    store.controller_owner_ref(&()).map(|owner| {
        vec![OwnerReference {
            block_owner_deletion: Some(true),
            ..owner
        }]
    })
}

fn selector(store: &ToyStore, component: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector_labels(store, component)),
        ..LabelSelector::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Settings

/// Every non-secret setting, keyed by the environment variable its binary reads.
fn config_data(store: &ToyStore) -> BTreeMap<String, String> {
    let spec = &store.spec;
    let raft = &spec.orders.raft;
    let seeds = (0..spec.orders.replicas)
        .map(|ordinal| order_replica_url(store, ordinal))
        .collect::<Vec<_>>()
        .join(",");
    [
        ("ORDER_HEARTBEAT_MS", raft.heartbeat_ms.to_string()),
        (
            "ORDER_ELECTION_TIMEOUT_MIN_MS",
            raft.election_timeout_min_ms.to_string(),
        ),
        (
            "ORDER_ELECTION_TIMEOUT_MAX_MS",
            raft.election_timeout_max_ms.to_string(),
        ),
        (
            "ORDER_SNAPSHOT_THRESHOLD",
            raft.snapshot_threshold.to_string(),
        ),
        ("ORDER_CATALOG_URL", catalog_url(store)),
        ("ORDER_LOG_FORMAT", "json".into()),
        (
            "CATALOG_RESTOCK_INTERVAL_SECS",
            spec.catalog.restock_interval_seconds.to_string(),
        ),
        (
            "CATALOG_RESTOCK_QUANTITY",
            spec.catalog.restock_quantity.to_string(),
        ),
        ("CATALOG_LOG_FORMAT", "json".into()),
        ("FRONTEND_CATALOG_URL", catalog_url(store)),
        // A seed list only: the frontend learns the membership from any member, so it is the
        // declared size, not the StatefulSet's size during a scale-down.
        ("FRONTEND_ORDER_REPLICAS", seeds),
        (
            "FRONTEND_CACHE_CAPACITY",
            spec.frontend.cache_capacity.to_string(),
        ),
        ("FRONTEND_LOG_FORMAT", "json".into()),
        // Serve (unready) this long after SIGTERM: endpoints and load balancers need a few
        // seconds to stop sending clients to a terminating pod.
        ("FRONTEND_SHUTDOWN_DELAY_MS", "5000".into()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value))
    .collect()
}

/// The environment-variable prefix of the settings `component` reads.
fn config_prefix(component: &str) -> &'static str {
    match component {
        COMPONENT_ORDERS => "ORDER_",
        COMPONENT_CATALOG => "CATALOG_",
        _ => "FRONTEND_",
    }
}

/// FNV-1a (64 bit) over the sorted `key=value` pairs `component` reads, as 16 hex digits.
///
/// Only that component's keys count: scaling the order group changes the frontend's seed list
/// but must not restart every order replica.
fn config_hash(config: &BTreeMap<String, String>, component: &str) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let prefix = config_prefix(component);
    let mut hash = OFFSET;
    for (key, value) in config.iter().filter(|(key, _)| key.starts_with(prefix)) {
        // NUL separators: no key or value contains one, so the encoding is unambiguous.
        for byte in key.bytes().chain([0]).chain(value.bytes()).chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("{hash:016x}")
}

fn config_map(store: &ToyStore, config: &BTreeMap<String, String>) -> ConfigMap {
    ConfigMap {
        metadata: metadata(store, &config_map_name(store), COMPONENT_ORDERS),
        data: Some(config.clone()),
        ..ConfigMap::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Identities and Services

fn service_account(store: &ToyStore, component: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: metadata(store, &component_name(store, component), component),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

fn service_port(port: i32, target: i32) -> ServicePort {
    ServicePort {
        name: Some(PORT_NAME.into()),
        port,
        target_port: Some(IntOrString::Int(target)),
        // Explicit: `protocol` is part of the list key server-side apply merges ports by.
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

fn service(
    store: &ToyStore,
    name: String,
    component: &str,
    spec: ServiceSpec,
    port: ServicePort,
) -> Service {
    Service {
        metadata: metadata(store, &name, component),
        spec: Some(ServiceSpec {
            selector: Some(selector_labels(store, component)),
            ports: Some(vec![port]),
            ..spec
        }),
        ..Service::default()
    }
}

fn services(store: &ToyStore) -> Vec<Service> {
    let cluster_ip = || ServiceSpec {
        type_: Some("ClusterIP".into()),
        ..ServiceSpec::default()
    };
    vec![
        // Governing Service of the StatefulSet: gives every replica a stable DNS name, ready or
        // not, so members reach each other while no leader exists yet.
        service(
            store,
            orders_name(store),
            COMPONENT_ORDERS,
            ServiceSpec {
                cluster_ip: Some("None".into()),
                publish_not_ready_addresses: Some(true),
                ..cluster_ip()
            },
            service_port(ORDER_PORT, ORDER_PORT),
        ),
        service(
            store,
            format!("{}-client", orders_name(store)),
            COMPONENT_ORDERS,
            cluster_ip(),
            service_port(ORDER_PORT, ORDER_PORT),
        ),
        service(
            store,
            component_name(store, COMPONENT_CATALOG),
            COMPONENT_CATALOG,
            cluster_ip(),
            service_port(CATALOG_PORT, CATALOG_PORT),
        ),
        service(
            store,
            component_name(store, COMPONENT_FRONTEND),
            COMPONENT_FRONTEND,
            ServiceSpec {
                type_: Some(store.spec.frontend.service_type.clone()),
                ..ServiceSpec::default()
            },
            service_port(FRONTEND_SERVICE_PORT, FRONTEND_PORT),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Pods

/// An HTTP GET probe on the container's `http` port.
fn http_probe(path: &str, period: i32, timeout: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(PORT_NAME.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(timeout),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

/// Out of the Service after ~14 s without an answer or a leader. Probed every 2 s so that a
/// restarted pod (the single catalog during an upgrade) is back in its Service quickly.
fn readiness_probe() -> Probe {
    http_probe("/readyz", 2, 2, 7)
}

/// Restarted only after a minute of failures: a replica busy with a snapshot or a slow disk must
/// not be killed for being briefly slow.
fn liveness_probe() -> Probe {
    http_probe("/healthz", 10, 5, 6)
}

/// Up to five minutes to open the store (a large log or snapshot) before liveness applies;
/// probed every second, so readiness checks start as soon as the process answers.
fn startup_probe() -> Probe {
    http_probe("/healthz", 1, 1, 300)
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

fn env_from_field(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

/// The token Secret as a read-only volume.
fn token_volume(store: &ToyStore) -> Volume {
    Volume {
        name: TOKEN_VOLUME.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(token_secret_name(store)),
            default_mode: Some(TOKEN_FILE_MODE),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn token_file() -> String {
    format!("{TOKEN_DIR}/{TOKEN_KEY}")
}

/// The container of a component: image, command (the binary of the same name), the settings
/// from the ConfigMap, the `http` port, probes and a locked-down security context. Callers add
/// `env`, mounts and, for stateful components, a startup probe.
fn container(
    store: &ToyStore,
    binary: &str,
    port: i32,
    resources: Option<&ResourceRequirements>,
) -> Container {
    Container {
        name: binary.into(),
        image: Some(store.spec.image.clone()),
        image_pull_policy: store.spec.image_pull_policy.clone(),
        command: Some(vec![binary.into()]),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: config_map_name(store),
                ..ConfigMapEnvSource::default()
            }),
            ..EnvFromSource::default()
        }]),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.into()),
            container_port: port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(readiness_probe()),
        liveness_probe: Some(liveness_probe()),
        resources: resources.cloned(),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// Non-root with a fixed uid/gid, volumes group-owned by it, the runtime's seccomp profile.
fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        fs_group: Some(RUN_AS),
        // Skip the recursive chown of a large volume when its root already has the right owner.
        fs_group_change_policy: Some("OnRootMismatch".into()),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// Spread over `topology_key` as evenly as possible, never blocking scheduling.
fn spread(store: &ToyStore, component: &str, topology_key: &str) -> TopologySpreadConstraint {
    TopologySpreadConstraint {
        max_skew: 1,
        topology_key: topology_key.into(),
        when_unsatisfiable: "ScheduleAnyway".into(),
        label_selector: Some(selector(store, component)),
        ..TopologySpreadConstraint::default()
    }
}

/// The pod template of `component`: labels, the config-hash annotation and a pod spec with the
/// shared security settings around `container`.
fn pod_template(
    store: &ToyStore,
    component: &str,
    config: &BTreeMap<String, String>,
    container: Container,
    volumes: Vec<Volume>,
    placement: Placement,
) -> PodTemplateSpec {
    let image_pull_secrets = (!store.spec.image_pull_secrets.is_empty()).then(|| {
        store
            .spec
            .image_pull_secrets
            .iter()
            .map(|name| LocalObjectReference { name: name.clone() })
            .collect()
    });
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(store, component)),
            annotations: Some(BTreeMap::from([(
                CONFIG_HASH_ANNOTATION.to_string(),
                config_hash(config, component),
            )])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            service_account_name: Some(component_name(store, component)),
            // Service links would inject `{NAME}_*` variables next to ours; nothing reads them.
            enable_service_links: Some(false),
            image_pull_secrets,
            security_context: Some(pod_security_context()),
            termination_grace_period_seconds: Some(30),
            topology_spread_constraints: Some(placement.spread),
            affinity: placement.affinity,
            containers: vec![container],
            volumes: (!volumes.is_empty()).then_some(volumes),
            ..PodSpec::default()
        }),
    }
}

/// Where a component's pods go.
struct Placement {
    spread: Vec<TopologySpreadConstraint>,
    affinity: Option<Affinity>,
}

/// The `data` volume claim template: one ReadWriteOnce volume per pod.
fn data_claim(
    store: &ToyStore,
    component: &str,
    storage: &StorageSpec,
    inputs: &BuildInputs,
) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.into()),
            labels: Some(labels(store, component)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(storage.size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            storage_class_name: storage
                .storage_class_name
                .clone()
                .or_else(|| inputs.storage_class.clone()),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// Claims go with the StatefulSet when the store is deleted; on scale-down they stay, because
/// the operator deletes a removed member's claim itself, only after it left the membership.
fn claim_retention() -> StatefulSetPersistentVolumeClaimRetentionPolicy {
    StatefulSetPersistentVolumeClaimRetentionPolicy {
        when_deleted: Some("Delete".into()),
        when_scaled: Some("Retain".into()),
    }
}

fn orders_stateful_set(
    store: &ToyStore,
    inputs: &BuildInputs,
    config: &BTreeMap<String, String>,
) -> StatefulSet {
    let name = orders_name(store);
    let spec = &store.spec.orders;
    let mut container = container(store, "order-replica", ORDER_PORT, spec.resources.as_ref());
    container.env = Some(vec![
        env_from_field("POD_NAME", "metadata.name"),
        env_from_field("POD_NAMESPACE", "metadata.namespace"),
        // The Raft node id is the pod ordinal (label set by Kubernetes >= 1.28), so a pod keeps
        // its identity across restarts and rescheduling.
        env_from_field(
            "ORDER_ID",
            "metadata.labels['apps.kubernetes.io/pod-index']",
        ),
        env("ORDER_LISTEN", format!("0.0.0.0:{ORDER_PORT}")),
        // Must equal `order_replica_url` for this ordinal; POD_NAME and POD_NAMESPACE are
        // defined above, as `$(VAR)` expansion requires.
        env(
            "ORDER_ADVERTISE_URL",
            format!("http://$(POD_NAME).{name}.$(POD_NAMESPACE).svc:{ORDER_PORT}"),
        ),
        env("ORDER_DATA_DIR", DATA_DIR),
        env("ORDER_TOKEN_FILE", token_file()),
    ]);
    container.volume_mounts = Some(vec![
        mount(DATA_VOLUME, DATA_DIR, false),
        mount(TOKEN_VOLUME, TOKEN_DIR, true),
    ]);
    container.startup_probe = Some(startup_probe());
    // No `lifecycle.preStop`: on SIGTERM the replica itself transfers leadership to the most
    // caught-up voter while still serving Raft RPCs, then stops (see `order_replica::server`);
    // terminationGracePeriodSeconds leaves ample time for that hand-over.
    let placement = Placement {
        spread: vec![
            spread(store, COMPONENT_ORDERS, "kubernetes.io/hostname"),
            spread(store, COMPONENT_ORDERS, "topology.kubernetes.io/zone"),
        ],
        affinity: Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    WeightedPodAffinityTerm {
                        weight: 100,
                        pod_affinity_term: PodAffinityTerm {
                            topology_key: "kubernetes.io/hostname".into(),
                            label_selector: Some(selector(store, COMPONENT_ORDERS)),
                            ..PodAffinityTerm::default()
                        },
                    },
                ]),
                ..PodAntiAffinity::default()
            }),
            ..Affinity::default()
        }),
    };
    StatefulSet {
        metadata: metadata(store, &name, COMPONENT_ORDERS),
        spec: Some(StatefulSetSpec {
            replicas: Some(inputs.order_replicas),
            service_name: Some(name.clone()),
            selector: selector(store, COMPONENT_ORDERS),
            // Members start together: the group needs a quorum before any pod is ready.
            pod_management_policy: Some("Parallel".into()),
            // The operator rolls the pods one at a time, the leader last, after a hand-over.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..StatefulSetUpdateStrategy::default()
            }),
            persistent_volume_claim_retention_policy: Some(claim_retention()),
            volume_claim_templates: Some(vec![data_claim(
                store,
                COMPONENT_ORDERS,
                &spec.storage,
                inputs,
            )]),
            template: pod_template(
                store,
                COMPONENT_ORDERS,
                config,
                container,
                vec![token_volume(store)],
                placement,
            ),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

fn catalog_stateful_set(
    store: &ToyStore,
    inputs: &BuildInputs,
    config: &BTreeMap<String, String>,
) -> StatefulSet {
    let name = component_name(store, COMPONENT_CATALOG);
    let spec = &store.spec.catalog;
    let mut container = container(store, "catalog", CATALOG_PORT, spec.resources.as_ref());
    container.env = Some(vec![
        env("CATALOG_LISTEN", format!("0.0.0.0:{CATALOG_PORT}")),
        env("CATALOG_DATA_DIR", DATA_DIR),
    ]);
    container.volume_mounts = Some(vec![mount(DATA_VOLUME, DATA_DIR, false)]);
    container.startup_probe = Some(startup_probe());
    let placement = Placement {
        spread: vec![spread(store, COMPONENT_CATALOG, "kubernetes.io/hostname")],
        affinity: None,
    };
    StatefulSet {
        metadata: metadata(store, &name, COMPONENT_CATALOG),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(name.clone()),
            selector: selector(store, COMPONENT_CATALOG),
            persistent_volume_claim_retention_policy: Some(claim_retention()),
            volume_claim_templates: Some(vec![data_claim(
                store,
                COMPONENT_CATALOG,
                &spec.storage,
                inputs,
            )]),
            template: pod_template(
                store,
                COMPONENT_CATALOG,
                config,
                container,
                Vec::new(),
                placement,
            ),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

fn frontend_deployment(store: &ToyStore, config: &BTreeMap<String, String>) -> Deployment {
    let spec = &store.spec.frontend;
    let mut container = container(store, "frontend", FRONTEND_PORT, spec.resources.as_ref());
    container.env = Some(vec![
        env("FRONTEND_LISTEN", format!("0.0.0.0:{FRONTEND_PORT}")),
        env("FRONTEND_ORDER_TOKEN_FILE", token_file()),
    ]);
    container.volume_mounts = Some(vec![mount(TOKEN_VOLUME, TOKEN_DIR, true)]);
    let placement = Placement {
        spread: vec![spread(store, COMPONENT_FRONTEND, "kubernetes.io/hostname")],
        affinity: None,
    };
    Deployment {
        metadata: metadata(
            store,
            &component_name(store, COMPONENT_FRONTEND),
            COMPONENT_FRONTEND,
        ),
        spec: Some(DeploymentSpec {
            replicas: Some(spec.replicas),
            selector: selector(store, COMPONENT_FRONTEND),
            // Full capacity throughout a rollout: a new pod is ready before an old one goes.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: pod_template(
                store,
                COMPONENT_FRONTEND,
                config,
                container,
                vec![token_volume(store)],
                placement,
            ),
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Disruption and network policy

/// Voluntary disruptions (drains, evictions) never take the group below a majority of the
/// declared size. A single replica has no quorum to keep: `minAvailable: 1` would block every
/// node drain forever, so it gets `maxUnavailable: 1` (a drain takes it down briefly, as any
/// restart does). The PDB exists for every size so a scale from 3 to 1 changes it in place.
fn orders_pdb(store: &ToyStore) -> PodDisruptionBudget {
    let replicas = store.spec.orders.replicas;
    let (min_available, max_unavailable) = if replicas == 1 {
        (None, Some(IntOrString::Int(1)))
    } else {
        (Some(IntOrString::Int(replicas / 2 + 1)), None)
    };
    PodDisruptionBudget {
        metadata: metadata(store, &orders_name(store), COMPONENT_ORDERS),
        spec: Some(PodDisruptionBudgetSpec {
            min_available,
            max_unavailable,
            selector: Some(selector(store, COMPONENT_ORDERS)),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

/// Pods of `component` in this store (same namespace as the policy).
fn peer(store: &ToyStore, component: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(selector(store, component)),
        ..NetworkPolicyPeer::default()
    }
}

/// Ingress to `component`'s pods on `port`, from `from` (`None`: from anywhere). Egress is not
/// restricted: pods need DNS and each other, and the operator reaches the API.
fn network_policy(
    store: &ToyStore,
    component: &str,
    port: i32,
    from: Option<Vec<NetworkPolicyPeer>>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: metadata(store, &component_name(store, component), component),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(store, component)),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from,
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(port)),
                    protocol: Some("TCP".into()),
                    ..NetworkPolicyPort::default()
                }]),
            }]),
            ..NetworkPolicySpec::default()
        }),
    }
}

fn network_policies(store: &ToyStore) -> Vec<NetworkPolicy> {
    // The operator drives membership through the admin API from its own namespace.
    let operator = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector::default()),
        pod_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                NAME_LABEL.to_string(),
                OPERATOR_APP_NAME.to_string(),
            )])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    vec![
        network_policy(
            store,
            COMPONENT_ORDERS,
            ORDER_PORT,
            Some(vec![
                peer(store, COMPONENT_ORDERS),
                peer(store, COMPONENT_FRONTEND),
                operator,
            ]),
        ),
        network_policy(
            store,
            COMPONENT_CATALOG,
            CATALOG_PORT,
            Some(vec![
                peer(store, COMPONENT_ORDERS),
                peer(store, COMPONENT_FRONTEND),
            ]),
        ),
        network_policy(store, COMPONENT_FRONTEND, FRONTEND_PORT, None),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ToyStoreSpec;

    fn store(spec: ToyStoreSpec) -> ToyStore {
        let mut store = ToyStore::new("shop", spec);
        store.metadata.namespace = Some("toys".into());
        store.metadata.uid = Some("0b6b4c3e-5f0e-4a8e-9d4c-3a1f2e7d9c10".into());
        store
    }

    fn default_spec() -> ToyStoreSpec {
        ToyStoreSpec {
            image: "toystore:test".into(),
            image_pull_policy: None,
            image_pull_secrets: Vec::new(),
            orders: Default::default(),
            catalog: Default::default(),
            frontend: Default::default(),
        }
    }

    fn inputs(order_replicas: i32) -> BuildInputs {
        BuildInputs {
            order_replicas,
            storage_class: None,
        }
    }

    fn template_hash(template: &PodTemplateSpec) -> String {
        template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()[CONFIG_HASH_ANNOTATION]
            .clone()
    }

    /// Hashes of the orders, catalog and frontend pod templates.
    fn hashes(store: &ToyStore) -> [String; 3] {
        let objects = build(store, &inputs(store.spec.orders.replicas));
        [
            template_hash(&objects.stateful_sets[0].spec.as_ref().unwrap().template),
            template_hash(&objects.stateful_sets[1].spec.as_ref().unwrap().template),
            template_hash(&objects.deployment.spec.as_ref().unwrap().template),
        ]
    }

    /// Every object's metadata with its kind, in build order, the token Secret last.
    fn all_metadata(objects: &Objects, secret: &Secret) -> Vec<(&'static str, ObjectMeta)> {
        let mut all = vec![("ConfigMap", objects.config_map.metadata.clone())];
        all.extend(
            objects
                .service_accounts
                .iter()
                .map(|o| ("ServiceAccount", o.metadata.clone())),
        );
        all.extend(
            objects
                .services
                .iter()
                .map(|o| ("Service", o.metadata.clone())),
        );
        all.extend(
            objects
                .stateful_sets
                .iter()
                .map(|o| ("StatefulSet", o.metadata.clone())),
        );
        all.push(("Deployment", objects.deployment.metadata.clone()));
        all.push((
            "PodDisruptionBudget",
            objects.pod_disruption_budget.metadata.clone(),
        ));
        all.extend(
            objects
                .network_policies
                .iter()
                .map(|o| ("NetworkPolicy", o.metadata.clone())),
        );
        all.push(("Secret", secret.metadata.clone()));
        all
    }

    #[test]
    fn a_single_replica_pdb_never_blocks_a_drain() {
        let mut spec = default_spec();
        spec.orders.replicas = 1;
        let pdb = build(&store(spec), &inputs(1)).pod_disruption_budget;
        let pdb = pdb.spec.unwrap();
        assert_eq!(pdb.min_available, None);
        assert_eq!(pdb.max_unavailable, Some(IntOrString::Int(1)));
    }

    #[test]
    fn pdb_keeps_a_quorum_of_the_declared_size() {
        for (replicas, quorum) in [(3, 2), (5, 3), (7, 4), (9, 5)] {
            let mut spec = default_spec();
            spec.orders.replicas = replicas;
            let pdb = build(&store(spec), &inputs(replicas)).pod_disruption_budget;
            assert_eq!(
                pdb.spec.unwrap().min_available,
                Some(IntOrString::Int(quorum)),
                "{replicas} replicas"
            );
        }
    }

    #[test]
    fn seed_list_follows_spec_replicas_and_stateful_set_follows_inputs() {
        let mut spec = default_spec();
        spec.orders.replicas = 3;
        let store = store(spec);
        let objects = build(&store, &inputs(5));
        let seeds = &objects.config_map.data.as_ref().unwrap()["FRONTEND_ORDER_REPLICAS"];
        let expected: Vec<_> = (0..3).map(|i| order_replica_url(&store, i)).collect();
        assert_eq!(seeds.split(',').collect::<Vec<_>>(), expected);
        assert_eq!(
            objects.stateful_sets[0].spec.as_ref().unwrap().replicas,
            Some(5)
        );
        // The PDB, too, follows the declared size.
        assert_eq!(
            objects.pod_disruption_budget.spec.unwrap().min_available,
            Some(IntOrString::Int(2))
        );
    }

    #[test]
    fn config_hash_changes_only_for_the_component_whose_setting_changed() {
        let base = hashes(&store(default_spec()));
        assert_eq!(base, hashes(&store(default_spec())), "deterministic");
        assert!(base.iter().all(|h| h.len() == 16));

        let mut spec = default_spec();
        spec.orders.raft.heartbeat_ms = 50;
        let raft = hashes(&store(spec));
        assert_ne!(raft[0], base[0]);
        assert_eq!(raft[1..], base[1..]);

        let mut spec = default_spec();
        spec.catalog.restock_quantity = 7;
        let restock = hashes(&store(spec));
        assert_ne!(restock[1], base[1]);
        assert_eq!([&restock[0], &restock[2]], [&base[0], &base[2]]);

        let mut spec = default_spec();
        spec.frontend.cache_capacity = 0;
        let cache = hashes(&store(spec));
        assert_ne!(cache[2], base[2]);
        assert_eq!(cache[..2], base[..2]);

        // Scaling the group changes the frontend's seed list, and must not roll the replicas.
        let mut spec = default_spec();
        spec.orders.replicas = 5;
        let scaled = hashes(&store(spec));
        assert_eq!(scaled[..2], base[..2]);
        assert_ne!(scaled[2], base[2]);

        // Settings that are not in the ConfigMap do not touch the hash.
        let mut spec = default_spec();
        spec.image = "toystore:next".into();
        spec.frontend.replicas = 4;
        assert_eq!(hashes(&store(spec)), base);
    }

    #[test]
    fn every_object_is_named_labelled_and_owned_by_the_store() {
        let store = store(default_spec());
        let objects = build(&store, &inputs(3));
        let secret = token_secret(&store, "s3cret");
        let all = all_metadata(&objects, &secret);
        assert_eq!(all.len(), 1 + 3 + 4 + 2 + 1 + 1 + 3 + 1);
        for (kind, meta) in all {
            let name = meta.name.clone().unwrap();
            assert!(name.starts_with("shop-"), "{kind} {name}");
            assert_eq!(meta.namespace.as_deref(), Some("toys"), "{kind} {name}");
            let labels = meta.labels.clone().unwrap();
            assert_eq!(labels["app.kubernetes.io/name"], "toystore");
            assert_eq!(labels["app.kubernetes.io/instance"], "shop");
            assert_eq!(labels["app.kubernetes.io/managed-by"], "toystore-operator");
            let component = &labels["app.kubernetes.io/component"];
            assert!(
                [COMPONENT_ORDERS, COMPONENT_CATALOG, COMPONENT_FRONTEND]
                    .contains(&component.as_str()),
                "{kind} {name}: {component}"
            );
            let owners = meta.owner_references.unwrap();
            assert_eq!(owners.len(), 1, "{kind} {name}");
            let owner = &owners[0];
            assert_eq!(owner.api_version, "toystore.dev/v1alpha1");
            assert_eq!(owner.kind, "ToyStore");
            assert_eq!(owner.name, "shop");
            assert_eq!(owner.uid, "0b6b4c3e-5f0e-4a8e-9d4c-3a1f2e7d9c10");
            assert_eq!(owner.controller, Some(true));
            assert_eq!(owner.block_owner_deletion, Some(true));
        }
    }

    #[test]
    fn pod_selectors_match_pod_template_labels() {
        let store = store(default_spec());
        let objects = build(&store, &inputs(3));
        let templates = [
            (
                COMPONENT_ORDERS,
                &objects.stateful_sets[0].spec.as_ref().unwrap().template,
            ),
            (
                COMPONENT_CATALOG,
                &objects.stateful_sets[1].spec.as_ref().unwrap().template,
            ),
            (
                COMPONENT_FRONTEND,
                &objects.deployment.spec.as_ref().unwrap().template,
            ),
        ];
        for (component, template) in templates {
            let pod_labels = template.metadata.as_ref().unwrap().labels.clone().unwrap();
            for (key, value) in selector_labels(&store, component) {
                assert_eq!(pod_labels.get(&key), Some(&value), "{component}");
            }
        }
        for service in &objects.services {
            let selected = service.spec.as_ref().unwrap().selector.clone().unwrap();
            let component =
                &service.metadata.labels.as_ref().unwrap()["app.kubernetes.io/component"];
            assert_eq!(selected, selector_labels(&store, component));
        }
    }

    #[test]
    fn storage_class_comes_from_the_spec_else_the_fallback() {
        let claims = |store: &ToyStore, fallback: Option<&str>| -> Vec<Option<String>> {
            let inputs = BuildInputs {
                storage_class: fallback.map(str::to_string),
                ..inputs(3)
            };
            build(store, &inputs)
                .stateful_sets
                .iter()
                .map(|set| {
                    let templates = set.spec.as_ref().unwrap().volume_claim_templates.as_ref();
                    templates.unwrap()[0]
                        .spec
                        .as_ref()
                        .unwrap()
                        .storage_class_name
                        .clone()
                })
                .collect()
        };
        let gp3 = || Some("gp3".to_string());
        assert_eq!(claims(&store(default_spec()), None), vec![None, None]);
        assert_eq!(
            claims(&store(default_spec()), Some("gp3")),
            vec![gp3(), gp3()]
        );
        let mut spec = default_spec();
        spec.orders.storage.storage_class_name = Some("io2".into());
        assert_eq!(
            claims(&store(spec), Some("gp3")),
            vec![Some("io2".into()), gp3()]
        );
    }

    #[test]
    fn fallback_storage_class_never_changes_an_existing_store() {
        let store = store(default_spec());
        let created_with = |class: Option<&str>| {
            let inputs = BuildInputs {
                storage_class: class.map(str::to_string),
                ..inputs(3)
            };
            build(&store, &inputs).stateful_sets.remove(0)
        };
        // New store: the operator's default.
        assert_eq!(
            fallback_storage_class(None, Some("gp3")),
            Some("gp3".into())
        );
        assert_eq!(fallback_storage_class(None, None), None);
        // Existing store: whatever it was created with, whatever the default is now.
        let old = created_with(None);
        assert_eq!(fallback_storage_class(Some(&old), Some("gp3")), None);
        let gp2 = created_with(Some("gp2"));
        assert_eq!(
            fallback_storage_class(Some(&gp2), Some("gp3")),
            Some("gp2".into())
        );
    }

    #[test]
    fn advertised_url_is_the_replica_url() {
        let store = store(default_spec());
        let objects = build(&store, &inputs(3));
        let container = &objects.stateful_sets[0]
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0];
        let advertised = container
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == "ORDER_ADVERTISE_URL")
            .and_then(|e| e.value.clone())
            .unwrap();
        let expanded = advertised
            .replace("$(POD_NAME)", &order_pod_name(&store, 2))
            .replace("$(POD_NAMESPACE)", "toys");
        assert_eq!(expanded, order_replica_url(&store, 2));
        assert_eq!(
            order_replica_url(&store, 2),
            "http://shop-orders-2.shop-orders.toys.svc:7000"
        );
        assert_eq!(order_pvc_name(&store, 2), "data-shop-orders-2");
    }

    #[test]
    fn token_secret_holds_the_token_under_its_key() {
        let store = store(default_spec());
        let secret = token_secret(&store, "s3cret");
        assert_eq!(secret.metadata.name.as_deref(), Some("shop-raft-token"));
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
        assert_eq!(secret.data.unwrap()[TOKEN_KEY].0, b"s3cret");
    }
}
