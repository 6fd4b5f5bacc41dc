//! The committed CRDs (`crds/toystore.yaml`, ToyStore and ToyStoreBackup, and its copies in the
//! chart and the manifests) must be exactly what the Rust types generate.

use std::path::Path;

#[test]
fn every_committed_copy_of_the_crd_matches_the_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let generated = operator::crdgen::yaml();
    for copy in operator::crdgen::COPIES {
        let path = root.join(copy);
        if std::env::var_os("UPDATE_CRD").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{copy} is stale: run `UPDATE_CRD=1 cargo test -p operator --test crd`"
        );
    }
}

#[test]
fn crd_has_validation_printer_columns_and_short_name() {
    let yaml = operator::crdgen::yaml();
    for needle in [
        "shortNames:\n    - ts",
        "x-kubernetes-validations",
        "orders.replicas must be odd",
        "storageClassName is immutable",
        "maximum: 9",
        "name: Leader",
        "name: Term",
        "name: Ready",
        "subresources:\n      status: {}",
        "helm.sh/resource-policy: keep",
        // The backups' CRD, in the same file.
        "name: toystorebackups.toystore.dev",
        "shortNames:\n    - tsb",
        "name: Phase",
        "name: Store",
        "spec.restore is immutable",
        "spec.restore cannot be added or removed",
    ] {
        assert!(yaml.contains(needle), "CRD lacks {needle:?}:\n{yaml}");
    }
}
