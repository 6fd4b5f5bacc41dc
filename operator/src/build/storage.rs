//! The volumes of the order replicas, the one stateful component (the catalog and the
//! frontends keep nothing): one ReadWriteOnce claim per pod from a `data` claim template,
//! their retention, and which storage class a claim gets when the spec names none.
//!
//! A claim template cannot change once its StatefulSet exists, so everything here is fixed
//! at creation: the storage class a store started with stays its class even if the operator's
//! default changes later ([`fallback_storage_class`]).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodTemplateSpec, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::BuildInputs;
use super::metadata::{labels, metadata, selector};
use super::names::{self, Component, DATA_VOLUME};
use super::pod_template::mount;
use crate::validate::{Storage, ValidStore};

/// Where the data volume is mounted.
pub(super) const DATA_DIR: &str = "/data";

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

/// The StatefulSet `{store}-{component}`: `spec` (replicas, update policy) completed with the
/// pods of `template`, each with its own `data` claim of `storage`, governed by the Service of
/// the same name.
pub(super) fn stateful_set(
    store: &ValidStore,
    component: Component,
    storage: &Storage,
    inputs: &BuildInputs,
    template: PodTemplateSpec,
    spec: StatefulSetSpec,
) -> StatefulSet {
    let name = names::component_name(&store.name, component);
    StatefulSet {
        metadata: metadata(store, &name, component),
        spec: Some(StatefulSetSpec {
            service_name: Some(name),
            selector: selector(store, component),
            persistent_volume_claim_retention_policy: Some(claim_retention()),
            volume_claim_templates: Some(vec![data_claim(store, component, storage, inputs)]),
            template,
            ..spec
        }),
        ..StatefulSet::default()
    }
}

/// The `data` volume claim template: one ReadWriteOnce volume per pod, of the spec's class or
/// else the fallback in `inputs`.
pub(super) fn data_claim(
    store: &ValidStore,
    component: Component,
    storage: &Storage,
    inputs: &BuildInputs,
) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.into()),
            labels: Some(labels(&store.name, component)),
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

/// The data volume's mount at [`DATA_DIR`].
pub(super) fn data_mount() -> VolumeMount {
    mount(DATA_VOLUME, DATA_DIR, false)
}

/// Claims go with the StatefulSet when the store is deleted; on scale-down they stay, because
/// the operator deletes a removed member's claim itself, only after it left the membership.
fn claim_retention() -> StatefulSetPersistentVolumeClaimRetentionPolicy {
    StatefulSetPersistentVolumeClaimRetentionPolicy {
        when_deleted: Some("Delete".into()),
        when_scaled: Some("Retain".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::build;
    use crate::build::tests::{default_spec, inputs, store};

    #[test]
    fn storage_class_comes_from_the_spec_else_the_fallback() {
        let class = |store: &ValidStore, fallback: Option<&str>| -> Option<String> {
            let inputs = BuildInputs {
                storage_class: fallback.map(str::to_string),
                ..inputs(3)
            };
            let set = build(store, &inputs).stateful_set;
            let templates = set.spec.unwrap().volume_claim_templates.unwrap();
            templates[0].spec.clone().unwrap().storage_class_name
        };
        assert_eq!(class(&store(default_spec()), None), None);
        assert_eq!(
            class(&store(default_spec()), Some("gp3")),
            Some("gp3".into())
        );
        let mut spec = default_spec();
        spec.orders.storage.storage_class_name = Some("io2".into());
        assert_eq!(class(&store(spec), Some("gp3")), Some("io2".into()));
    }

    #[test]
    fn fallback_storage_class_never_changes_an_existing_store() {
        let store = store(default_spec());
        let created_with = |class: Option<&str>| {
            let inputs = BuildInputs {
                storage_class: class.map(str::to_string),
                ..inputs(3)
            };
            build(&store, &inputs).stateful_set
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
}
