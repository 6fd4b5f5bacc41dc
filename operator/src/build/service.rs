//! The shape every Service shares: one TCP port named `http`, selecting the pods of one
//! component by [`super::metadata::selector_labels`]. The component modules choose the name,
//! the type and the port.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::metadata::{metadata, selector_labels};
use super::names::{Component, PORT_NAME};
use crate::validate::ValidStore;

/// A `ClusterIP` Service spec, to be completed by [`component_service`].
pub(super) fn cluster_ip() -> ServiceSpec {
    ServiceSpec {
        type_: Some("ClusterIP".into()),
        ..ServiceSpec::default()
    }
}

/// Service `name` selecting `component`'s pods, `spec` with one port `port` → `target`.
pub(super) fn component_service(
    store: &ValidStore,
    name: String,
    component: Component,
    spec: ServiceSpec,
    port: i32,
    target: i32,
) -> Service {
    Service {
        metadata: metadata(store, &name, component),
        spec: Some(ServiceSpec {
            selector: Some(selector_labels(&store.name, component)),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.into()),
                port,
                target_port: Some(IntOrString::Int(target)),
                // Explicit: `protocol` is part of the list key server-side apply merges ports by.
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..spec
        }),
        ..Service::default()
    }
}
