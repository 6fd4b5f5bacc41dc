//! The frontend: a stateless Deployment and the public Service of the store's API.
//!
//! Stateless, so a Deployment that rolls with a surge and never below full capacity. The
//! Service's type comes from the spec (`ClusterIP`, `NodePort` or `LoadBalancer`) and maps the
//! usual port 80 to the container's port. Frontends hold no credential: they find the order
//! leader through the replicas' public read-only view of the group, so no token is mounted.

use api::settings;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceSpec};

use super::config::Config;
use super::names::{self, Component, FRONTEND_PORT, FRONTEND_SERVICE_PORT};
use super::pod_template::{
    Placement, container, env, listen_on, pod_template, spread, stateless_deployment,
};
use super::service::component_service;
use crate::validate::ValidStore;

/// The public Service, of the spec's type.
pub(super) fn service(store: &ValidStore) -> Service {
    component_service(
        store,
        names::component_name(&store.name, Component::Frontend),
        Component::Frontend,
        ServiceSpec {
            type_: Some(store.frontend.service_type.clone()),
            ..ServiceSpec::default()
        },
        FRONTEND_SERVICE_PORT,
        FRONTEND_PORT,
    )
}

/// The frontend's Deployment.
pub(super) fn deployment(store: &ValidStore, config: &Config) -> Deployment {
    let frontend = &store.frontend;
    let mut container = container(store, Component::Frontend, frontend.resources.as_ref());
    container.env = Some(env(&settings::Frontend {
        listen: Some(listen_on(FRONTEND_PORT)),
        ..settings::Frontend::default()
    }));
    let placement = Placement {
        spread: vec![spread(store, Component::Frontend, "kubernetes.io/hostname")],
        affinity: None,
    };
    let template = pod_template(
        store,
        Component::Frontend,
        config,
        container,
        Vec::new(),
        placement,
    );
    stateless_deployment(store, Component::Frontend, frontend.replicas, template)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::*;
    use crate::build::build;
    use crate::build::tests::{default_spec, inputs, store};

    #[test]
    fn rolls_at_full_capacity_behind_a_service_of_the_spec_type() {
        let mut spec = default_spec();
        spec.frontend.replicas = 4;
        spec.frontend.service_type = "LoadBalancer".into();
        let objects = build(&store(spec), &inputs(3));
        let deployment = objects.deployments[1].spec.clone().unwrap();
        assert_eq!(deployment.replicas, Some(4));
        let rolling = deployment.strategy.unwrap().rolling_update.unwrap();
        assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)));
        let service = objects.services[3].spec.clone().unwrap();
        assert_eq!(service.type_.as_deref(), Some("LoadBalancer"));
        let port = &service.ports.unwrap()[0];
        assert_eq!(
            (port.port, port.target_port.clone()),
            (FRONTEND_SERVICE_PORT, Some(IntOrString::Int(FRONTEND_PORT)))
        );
    }

    #[test]
    fn frontends_get_no_token_and_no_volume() {
        let objects = build(&store(default_spec()), &inputs(3));
        let pod = objects.deployments[1]
            .spec
            .clone()
            .unwrap()
            .template
            .spec
            .unwrap();
        assert_eq!(pod.volumes, None);
        let container = &pod.containers[0];
        assert_eq!(container.volume_mounts, None);
        let names: Vec<&str> = container
            .env
            .iter()
            .flatten()
            .map(|v| v.name.as_str())
            .collect();
        assert!(names.iter().all(|n| !n.contains("TOKEN")), "{names:?}");
        let config = objects.config_map.data.unwrap();
        assert!(config.keys().all(|k| !k.contains("TOKEN")), "{config:?}");
    }
}
