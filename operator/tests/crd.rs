//! The committed CRD (`crds/toystore.yaml`) must be exactly what the Rust types generate.

use std::path::Path;

#[test]
fn committed_crd_matches_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/toystore.yaml");
    let generated = operator::crdgen::yaml();
    if std::env::var_os("UPDATE_CRD").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "crds/toystore.yaml is stale: run `cargo run -p operator --bin crdgen > crds/toystore.yaml`"
    );
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
    ] {
        assert!(yaml.contains(needle), "CRD lacks {needle:?}:\n{yaml}");
    }
}
