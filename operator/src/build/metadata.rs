//! What every object carries: its name and namespace, the store's labels and the store as
//! controlling owner.
//!
//! Labels do two jobs. The full set ([`labels`]) marks an object as the operator's (its
//! watches are restricted to [`managed_selector`]) and names its store and component. The
//! subset that selects pods ([`selector_labels`]) is used by every Service, workload, PDB and
//! NetworkPolicy selector; it holds nothing that could change for the life of a store, since a
//! StatefulSet's selector cannot change.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::Resource;

use super::names::Component;
use crate::crd::ToyStore;
use crate::validate::ValidStore;

/// Field manager name the operator uses for every server-side apply; also the value of the
/// managed-by label.
pub const FIELD_MANAGER: &str = "toystore-operator";
/// `app.kubernetes.io/name` of every ToyStore object.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// The label naming the store an object belongs to.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// The label naming the component an object belongs to.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// The label naming who manages an object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The [`NAME_LABEL`] value of every ToyStore object.
pub const APP_NAME: &str = "toystore";
/// The label naming the store of a backup and of its Job and pod. Not [`INSTANCE_LABEL`]: a
/// backup outlives its store, and nothing left after a store's deletion carries that label.
pub const STORE_LABEL: &str = "toystore.dev/store";
/// The label naming the ToyStoreBackup a Job or pod runs.
pub const BACKUP_LABEL: &str = "toystore.dev/backup";
/// The label (`"true"`) of ToyStoreBackups created by a store's schedule; retention deletes
/// only these.
pub const SCHEDULED_LABEL: &str = "toystore.dev/scheduled";
/// [`COMPONENT_LABEL`] of backup Jobs and their pods (admitted to the order replicas' port).
pub const BACKUP_COMPONENT: &str = "backup";
/// [`COMPONENT_LABEL`] of a store's restore Job and its pod.
pub const RESTORE_COMPONENT: &str = "restore";

/// Whether `obj`'s controller is the object with `uid` (not an earlier one of the same name).
pub fn controlled_by(obj: &impl kube::Resource, uid: Option<&String>) -> bool {
    obj.meta()
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == uid)
}

/// The label selector of every object the operator manages (pods and volume claims included,
/// through the StatefulSet templates): what its watches are restricted to.
pub fn managed_selector() -> String {
    format!("{MANAGED_BY_LABEL}={FIELD_MANAGER}")
}

/// All labels of an object of `component` in `store`: name, instance, component, managed-by.
pub fn labels(store: &str, component: Component) -> BTreeMap<String, String> {
    let mut labels = selector_labels(store, component);
    labels.insert(MANAGED_BY_LABEL.into(), FIELD_MANAGER.into());
    labels
}

/// The labels that select the pods of `component` in `store` (name, instance, component).
pub fn selector_labels(store: &str, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_string(), APP_NAME.to_string()),
        (INSTANCE_LABEL.to_string(), store.to_string()),
        (COMPONENT_LABEL.to_string(), component.as_str().to_string()),
    ])
}

/// [`selector_labels`] as a `LabelSelector`.
pub(super) fn selector(store: &ValidStore, component: Component) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector_labels(&store.name, component)),
        ..LabelSelector::default()
    }
}

/// Name, namespace, labels and the controller owner reference: what every object carries.
pub(super) fn metadata(store: &ValidStore, name: &str, component: Component) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(store.namespace.clone()),
        labels: Some(labels(&store.name, component)),
        owner_references: owner_reference(store).map(|owner| vec![owner]),
        ..ObjectMeta::default()
    }
}

/// The labels of the backup Jobs of `store` and their pods, which the order replicas'
/// NetworkPolicy admits (the ToyStoreBackup's own name is added on the Job).
pub fn backup_labels(store: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_string(), APP_NAME.to_string()),
        (COMPONENT_LABEL.to_string(), BACKUP_COMPONENT.to_string()),
        (STORE_LABEL.to_string(), store.to_string()),
        (MANAGED_BY_LABEL.into(), FIELD_MANAGER.into()),
    ])
}

/// The ToyStore as controlling owner: deleting the store garbage-collects its objects, and
/// changes to them wake its reconcile. Absent only for a store without a uid (never one read
/// from the API).
pub(super) fn owner_reference(store: &ValidStore) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: ToyStore::api_version(&()).into_owned(),
        kind: ToyStore::kind(&()).into_owned(),
        name: store.name.clone(),
        uid: store.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}
