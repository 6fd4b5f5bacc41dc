//! What every component's pods share: the container shape, probes, a locked-down security
//! context, environment and volume helpers, placement, the pod template around them, the
//! pod's own ServiceAccount, and the Deployment the stateless components run in.
//!
//! The component modules ([`super::orders`], [`super::catalog`], [`super::frontend`]) start
//! from [`container`] and add what is theirs (per-pod `env`, mounts, a startup probe), then
//! wrap it with [`pod_template`]; the catalog and the frontend then wrap that with
//! [`stateless_deployment`]. Everything here is the same for all three on purpose: one
//! security posture and one probe policy to review.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use api::settings::CommandLine;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, EnvVar,
    EnvVarSource, HTTPGetAction, LocalObjectReference, ObjectFieldSelector, PodSecurityContext,
    PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretVolumeSource,
    SecurityContext, ServiceAccount, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::config::{CONFIG_HASH_ANNOTATION, Config, TOKEN_KEY, config_hash};
use super::metadata::{labels, metadata, selector};
use super::names::{self, Component, PORT_NAME};
use crate::validate::ValidStore;

/// Unprivileged user and group of every container (the distroless `nonroot` id).
pub const RUN_AS: i64 = 65532;
/// Where the token Secret is mounted.
pub(super) const TOKEN_DIR: &str = "/var/run/toystore";
const TOKEN_VOLUME: &str = "token";
/// Owner read-only: the token file is for the process alone.
const TOKEN_FILE_MODE: i32 = 0o400;

/// The ServiceAccount `{store}-{component}` its pods run as, with no API token: no pod talks
/// to the Kubernetes API.
pub(super) fn service_account(store: &ValidStore, component: Component) -> ServiceAccount {
    ServiceAccount {
        metadata: metadata(
            store,
            &names::component_name(&store.name, component),
            component,
        ),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

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
/// restarted pod is back in its Service quickly.
fn readiness_probe() -> Probe {
    http_probe("/readyz", 2, 2, 7)
}

/// Restarted only after a minute of failures: a replica busy with a snapshot or a slow disk must
/// not be killed for being briefly slow.
fn liveness_probe() -> Probe {
    http_probe("/healthz", 10, 5, 6)
}

/// Up to five minutes to load its state (a large log or snapshot) before liveness applies;
/// probed every second, so readiness checks start as soon as the process answers.
pub(super) fn startup_probe() -> Probe {
    http_probe("/healthz", 1, 1, 300)
}

/// The given `settings` of a binary as literal environment variables, in the order its
/// settings declare them.
pub(super) fn env(settings: &impl CommandLine) -> Vec<EnvVar> {
    settings
        .to_env()
        .into_iter()
        .map(|(name, value)| EnvVar {
            name,
            value: Some(value),
            ..EnvVar::default()
        })
        .collect()
}

/// An environment variable set from a field of the pod (the downward API).
pub(super) fn env_from_field(name: &str, field_path: &str) -> EnvVar {
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

/// `0.0.0.0:{port}`: a listen address on every interface of the pod.
pub(super) fn listen_on(port: i32) -> SocketAddr {
    let port = u16::try_from(port).expect("ports are constants below 65536");
    (Ipv4Addr::UNSPECIFIED, port).into()
}

/// A mount of volume `name` at `path`.
pub(super) fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

/// The token Secret as a read-only volume.
pub(super) fn token_volume(store: &ValidStore) -> Volume {
    Volume {
        name: TOKEN_VOLUME.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(names::token_secret_name(&store.name)),
            default_mode: Some(TOKEN_FILE_MODE),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// The token volume's read-only mount.
pub(super) fn token_mount() -> VolumeMount {
    mount(TOKEN_VOLUME, TOKEN_DIR, true)
}

/// The path of the token inside the pod.
pub(super) fn token_file() -> PathBuf {
    Path::new(TOKEN_DIR).join(TOKEN_KEY)
}

/// The container of `component`: image, command (its binary), the settings from the
/// ConfigMap, the `http` port, probes and a locked-down security context. Callers add `env`,
/// mounts and, for components that load state at start, a startup probe.
pub(super) fn container(
    store: &ValidStore,
    component: Component,
    resources: Option<&ResourceRequirements>,
) -> Container {
    Container {
        name: component.binary().into(),
        image: Some(store.image.clone()),
        image_pull_policy: store.image_pull_policy.clone(),
        command: Some(vec![component.binary().into()]),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: names::config_map_name(&store.name),
                ..ConfigMapEnvSource::default()
            }),
            ..EnvFromSource::default()
        }]),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.into()),
            container_port: component.port(),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(readiness_probe()),
        liveness_probe: Some(liveness_probe()),
        resources: resources.cloned(),
        security_context: Some(container_security_context()),
        ..Container::default()
    }
}

/// The store's `imagePullSecrets` as a pod spec takes them (`None` when it names none).
pub(super) fn image_pull_secrets(store: &ValidStore) -> Option<Vec<LocalObjectReference>> {
    (!store.image_pull_secrets.is_empty()).then(|| {
        store
            .image_pull_secrets
            .iter()
            .map(|name| LocalObjectReference { name: name.clone() })
            .collect()
    })
}

/// No privilege escalation, a read-only root filesystem, no capabilities.
pub(super) fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// Non-root with a fixed uid/gid, volumes group-owned by it, the runtime's seccomp profile.
pub(super) fn pod_security_context() -> PodSecurityContext {
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

/// Where a component's pods go.
pub(super) struct Placement {
    /// Topology spread constraints.
    pub spread: Vec<TopologySpreadConstraint>,
    /// Affinity rules, if any.
    pub affinity: Option<Affinity>,
}

/// Spread over `topology_key` as evenly as possible, never blocking scheduling.
pub(super) fn spread(
    store: &ValidStore,
    component: Component,
    topology_key: &str,
) -> TopologySpreadConstraint {
    TopologySpreadConstraint {
        max_skew: 1,
        topology_key: topology_key.into(),
        when_unsatisfiable: "ScheduleAnyway".into(),
        label_selector: Some(selector(store, component)),
        ..TopologySpreadConstraint::default()
    }
}

/// The pod template of `component`: labels, the hash of the settings it reads from `config`
/// and a pod spec with the shared security settings around `container`.
pub(super) fn pod_template(
    store: &ValidStore,
    component: Component,
    config: &Config,
    container: Container,
    volumes: Vec<Volume>,
    placement: Placement,
) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(&store.name, component)),
            annotations: Some(BTreeMap::from([(
                CONFIG_HASH_ANNOTATION.to_string(),
                config_hash(config.of(component)),
            )])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            service_account_name: Some(names::component_name(&store.name, component)),
            // Service links would inject `{NAME}_*` variables next to ours; nothing reads them.
            enable_service_links: Some(false),
            image_pull_secrets: image_pull_secrets(store),
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

/// The Deployment `{store}-{component}` of a stateless component: `replicas` pods of
/// `template`, rolled with a surge and never below full capacity (a new pod is ready before
/// an old one goes).
pub(super) fn stateless_deployment(
    store: &ValidStore,
    component: Component,
    replicas: i32,
    template: PodTemplateSpec,
) -> Deployment {
    Deployment {
        metadata: metadata(
            store,
            &names::component_name(&store.name, component),
            component,
        ),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: selector(store, component),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template,
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::build;
    use crate::build::tests::{default_spec, inputs, store, templates};

    #[test]
    fn every_pod_runs_locked_down_as_its_own_account() {
        let store = store(default_spec());
        let objects = build(&store, &inputs(3));
        for (component, template) in templates(&objects) {
            let pod = template.spec.unwrap();
            let name = names::component_name(&store.name, component);
            assert_eq!(pod.service_account_name.as_ref(), Some(&name));
            let security = pod.security_context.unwrap();
            assert_eq!(security.run_as_non_root, Some(true));
            assert_eq!(security.run_as_user, Some(RUN_AS));
            let container = &pod.containers[0];
            assert_eq!(
                container.command,
                Some(vec![component.binary().to_string()])
            );
            let locked = container.security_context.as_ref().unwrap();
            assert_eq!(locked.read_only_root_filesystem, Some(true));
            assert_eq!(locked.allow_privilege_escalation, Some(false));
            let port = &container.ports.as_ref().unwrap()[0];
            assert_eq!(port.container_port, component.port());
        }
        for account in &objects.service_accounts {
            assert_eq!(account.automount_service_account_token, Some(false));
        }
    }
}
