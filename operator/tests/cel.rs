//! The CRD's CEL rules, evaluated as the API server would evaluate them.
//!
//! The rule text is read from the generated CRD YAML (the one committed in `crds/`), so a changed
//! rule is what these tests run. The evaluator is the `cel` crate (cel-rust): a pure-Rust CEL
//! interpreter with `has()`, `size()` and `matches()` (RE2-compatible syntax for these patterns),
//! which is all the rules use, and it builds in seconds with no toolchain beyond cargo. It is not
//! the API server's evaluator (cel-go), so the tests also check what the evaluator cannot: that
//! the rule sits on an object the API server always has (defaults), that field paths name
//! declared fields, and that an explicit `null` cannot pose as "unset".

use std::collections::BTreeMap;

use cel::{Context, Program, Value};
use serde_json::{Value as Json, json};

/// The committed CRD of `kind`'s `openAPIV3Schema`, as JSON.
fn schema_of(kind: &str) -> Json {
    let crds: Vec<Json> = yaml_serde::Deserializer::from_str(&operator::crdgen::yaml())
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect();
    let crd = crds
        .into_iter()
        .find(|crd| crd["spec"]["names"]["kind"] == kind)
        .unwrap_or_else(|| panic!("no CRD of {kind}"));
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// The ToyStore schema at a dotted path of property names (`spec.orders.storage`).
fn at(path: &str) -> Json {
    at_of("ToyStore", path)
}

/// `kind`'s schema at a dotted path of property names.
fn at_of(kind: &str, path: &str) -> Json {
    let mut s = schema_of(kind);
    for part in path.split('.').filter(|p| !p.is_empty()) {
        s = s["properties"][part].clone();
        assert!(!s.is_null(), "no property {part} in {path}");
    }
    s
}

/// The ToyStore rules at `path`, by message: (rule, fieldPath).
fn rules(path: &str) -> BTreeMap<String, (String, Option<String>)> {
    rules_of("ToyStore", path)
}

/// `kind`'s rules at `path`, by message: (rule, fieldPath).
fn rules_of(kind: &str, path: &str) -> BTreeMap<String, (String, Option<String>)> {
    at_of(kind, path)["x-kubernetes-validations"]
        .as_array()
        .unwrap_or_else(|| panic!("no x-kubernetes-validations at {path:?}"))
        .iter()
        .map(|r| {
            (
                r["message"].as_str().unwrap().to_string(),
                (
                    r["rule"].as_str().unwrap().to_string(),
                    r["fieldPath"].as_str().map(str::to_string),
                ),
            )
        })
        .collect()
}

/// The one ToyStore rule at `path` whose message contains `about`.
fn rule(path: &str, about: &str) -> (String, Option<String>) {
    rule_of("ToyStore", path, about)
}

/// The one rule of `kind` at `path` whose message contains `about`.
fn rule_of(kind: &str, path: &str, about: &str) -> (String, Option<String>) {
    let found: Vec<_> = rules_of(kind, path)
        .into_iter()
        .filter(|(message, _)| message.contains(about))
        .map(|(_, r)| r)
        .collect();
    assert_eq!(found.len(), 1, "one rule about {about:?} at {path:?}");
    found[0].clone()
}

/// Evaluates `rule` with `self` (and `oldSelf`, for a transition rule) bound as maps.
fn eval(rule: &str, this: &Json, old: Option<&Json>) -> bool {
    let program = Program::compile(rule).unwrap_or_else(|e| panic!("{rule}: {e:?}"));
    let mut ctx = Context::default();
    ctx.add_variable_from_value("self", cel::to_value(this).unwrap());
    if let Some(old) = old {
        ctx.add_variable_from_value("oldSelf", cel::to_value(old).unwrap());
    }
    match program.execute(&ctx) {
        Ok(Value::Bool(b)) => b,
        other => panic!("{rule} on {this} / {old:?}: {other:?}"),
    }
}

/// The one storage of a store: the order replicas' (the catalog keeps no data).
const STORAGE_PATHS: [&str; 1] = ["spec.orders.storage"];

#[test]
fn storage_class_cannot_be_added_removed_or_changed() {
    let unset = json!({"size": "1Gi"});
    let gp2 = json!({"size": "1Gi", "storageClassName": "gp2"});
    let gp3 = json!({"size": "1Gi", "storageClassName": "gp3"});
    for path in STORAGE_PATHS {
        let (rule, field_path) = rule(path, "storageClassName is immutable");
        assert_eq!(field_path.as_deref(), Some(".storageClassName"), "{path}");
        for (name, old, new, allowed) in [
            ("unset → set", &unset, &gp3, false),
            ("set → unset", &gp2, &unset, false),
            ("set → other", &gp2, &gp3, false),
            ("unchanged set", &gp2, &gp2, true),
            ("unchanged unset", &unset, &unset, true),
        ] {
            assert_eq!(eval(&rule, new, Some(old)), allowed, "{path}: {name}");
        }
    }
}

#[test]
fn the_storage_class_rule_always_runs() {
    // A transition rule runs only when the object it sits on exists in the old and the new
    // object. `storage`, and `orders` above it, are defaulted by the API server (also when
    // reading stored objects), so it always exists.
    for path in ["spec.orders"].into_iter().chain(STORAGE_PATHS) {
        assert!(at(path)["default"].is_object(), "{path} has no default");
    }
    for path in STORAGE_PATHS {
        // Nullable would let `storageClassName: null` pass `has()` as present; without it the
        // API server prunes an explicit null, so unset has a single form.
        let class = at(&format!("{path}.storageClassName"));
        assert_ne!(class["nullable"], json!(true), "{path}");
        // No leftover rule on the field itself (it would miss presence changes anyway).
        assert!(class["x-kubernetes-validations"].is_null(), "{path}");
    }
}

#[test]
fn storage_size_cannot_change() {
    for path in STORAGE_PATHS {
        let (rule, _) = rule(&format!("{path}.size"), "storage.size is immutable");
        assert!(eval(&rule, &json!("1Gi"), Some(&json!("1Gi"))));
        assert!(!eval(&rule, &json!("2Gi"), Some(&json!("1Gi"))));
    }
}

#[test]
fn the_catalog_is_stateless_and_counts_one_to_nine_pods() {
    let catalog = at("spec.catalog");
    assert!(
        catalog["properties"]["storage"].is_null(),
        "the catalog keeps no volume: {catalog}"
    );
    // No rule is left about a catalog volume (the order group's rules stay, tested above).
    let schema = serde_json::to_string(&catalog).unwrap();
    assert!(!schema.contains("storageClassName"), "{schema}");
    let replicas = at("spec.catalog.replicas");
    assert_eq!(replicas["type"], "integer");
    let number = |key: &str| replicas[key].as_f64();
    assert_eq!(
        (number("minimum"), number("maximum"), number("default")),
        (Some(1.0), Some(9.0), Some(2.0))
    );
    assert_eq!(catalog["default"]["replicas"], json!(2));
}

fn store_named(name: &str) -> Json {
    json!({"metadata": {"name": name}, "spec": {"image": "toystore:1"}})
}

#[test]
fn store_names_must_be_dns_1035_labels_of_at_most_40_characters() {
    let root = rules("");
    assert!(!root.is_empty());
    for (message, (_, field_path)) in &root {
        assert_eq!(
            field_path.as_deref(),
            Some(".metadata.name"),
            "the message must be attached to metadata.name: {message}"
        );
    }
    let long = "a".repeat(41);
    for bad in ["my.shop", "1shop", "Shop", "shop-", long.as_str()] {
        let refused: Vec<&String> = root
            .iter()
            .filter(|(_, (rule, _))| !eval(rule, &store_named(bad), None))
            .map(|(message, _)| message)
            .collect();
        assert!(!refused.is_empty(), "{bad:?} is accepted");
    }
    for good in ["shop", "a-1", "a".repeat(40).as_str()] {
        for (message, (rule, _)) in &root {
            assert!(eval(rule, &store_named(good), None), "{good:?}: {message}");
        }
    }
}

#[test]
fn the_name_field_path_names_a_declared_field() {
    // The API server refuses a fieldPath that is not a field of the schema, and allows the root
    // schema to declare metadata.name (and generateName) and nothing else of metadata.
    let metadata = at("metadata");
    assert_eq!(metadata["type"], "object");
    let declared: Vec<&String> = metadata["properties"].as_object().unwrap().keys().collect();
    assert_eq!(declared, ["name"]);
    // The length limit is the CEL rule alone: a schema maxLength would fail first, and the API
    // server would add a path-less "<nil>: ... some validation rules were not checked" line.
    assert!(at("metadata.name")["maxLength"].is_null());
}

#[test]
fn restore_cannot_be_added_removed_or_changed_after_creation() {
    let (presence, field_path) = rule("spec", "cannot be added or removed");
    assert_eq!(field_path.as_deref(), Some(".restore"));
    let plain = json!({"image": "toystore:1"});
    let from = |url: &str| json!({"image": "toystore:1", "restore": {"from": url}});
    let a = from("s3://b/old/nightly");
    let b = from("s3://b/old/weekly");
    for (name, old, new, allowed) in [
        ("added", &plain, &a, false),
        ("removed", &a, &plain, false),
        ("kept", &a, &a, true),
        ("never set", &plain, &plain, true),
        // Changed: the presence rule passes, the rule on restore refuses.
        ("changed", &a, &b, true),
    ] {
        assert_eq!(eval(&presence, new, Some(old)), allowed, "{name}");
    }
    let (immutable, _) = rule("spec.restore", "spec.restore is immutable");
    assert!(!eval(&immutable, &b["restore"], Some(&a["restore"])));
    assert!(eval(&immutable, &a["restore"], Some(&a["restore"])));
    // `spec` is always there (required), so the presence rule always runs on an update.
    let required = schema_of("ToyStore")["required"].clone();
    assert!(
        required.as_array().unwrap().contains(&json!("spec")),
        "{required}"
    );
}

#[test]
fn backup_and_restore_urls_name_a_store_the_jobs_can_reach() {
    let (scheme, _) = rule("spec.backup.destination.url", "destination.url must be");
    for ok in [
        "s3://bucket",
        "s3://bucket/prefix/deeper",
        "gs://bucket/p",
        "az://container",
        "file:///backups",
    ] {
        assert!(eval(&scheme, &json!(ok), None), "{ok}");
    }
    for bad in [
        "http://bucket",
        "s3://",
        "s3:///bucket",
        "S3://bucket",
        "bucket",
        "",
    ] {
        assert!(!eval(&scheme, &json!(bad), None), "{bad}");
    }
    let (file, field_path) = rule("spec.backup.destination", "a file:// destination");
    assert_eq!(field_path.as_deref(), Some(".url"));
    for (destination, allowed) in [
        (json!({"url": "s3://b"}), true),
        (
            json!({"url": "file:///backups/x", "persistentVolumeClaim": "nfs"}),
            true,
        ),
        (
            json!({"url": "file:///backups", "persistentVolumeClaim": "nfs"}),
            true,
        ),
        (json!({"url": "file:///backups/x"}), false),
        (
            json!({"url": "file:///data", "persistentVolumeClaim": "nfs"}),
            false,
        ),
        (
            json!({"url": "file:///backupsx", "persistentVolumeClaim": "nfs"}),
            false,
        ),
    ] {
        assert_eq!(eval(&file, &destination, None), allowed, "{destination}");
    }
    let (file, _) = rule("spec.restore", "a file:// source");
    assert!(eval(
        &file,
        &json!({"from": "file:///backups/a/b", "persistentVolumeClaim": "nfs"}),
        None
    ));
    assert!(!eval(&file, &json!({"from": "file:///backups/a/b"}), None));
    assert!(eval(&file, &json!({"from": "gs://b/a/b"}), None));
    // Every string a rule runs on is bounded, so the API server's cost estimate accepts it.
    for path in [
        "spec.backup.destination.url",
        "spec.restore.from",
        "spec.backup.schedule",
    ] {
        assert!(at(path)["maxLength"].is_number(), "{path}");
    }
}

#[test]
fn a_schedule_is_five_cron_fields_or_a_macro() {
    let (rule, _) = rule("spec.backup.schedule", "schedule must be");
    for ok in [
        "0 3 * * *",
        "*/15 9-17 * * MON-FRI",
        "@daily",
        "@hourly",
        "0  3 * * *",
    ] {
        assert!(eval(&rule, &json!(ok), None), "{ok}");
    }
    for bad in ["0 3 * *", "0 3 * * * *", "@often", "every day", ""] {
        assert!(!eval(&rule, &json!(bad), None), "{bad}");
    }
    let keep = at("spec.backup.retention.keep");
    assert_eq!(
        (keep["minimum"].as_f64(), keep["maximum"].as_f64()),
        (Some(1.0), Some(1000.0))
    );
}

#[test]
fn a_backup_names_its_store_for_good_and_has_a_job_sized_name() {
    let (rule, _) = rule_of("ToyStoreBackup", "spec.store", "spec.store is immutable");
    assert!(eval(&rule, &json!("shop"), Some(&json!("shop"))));
    assert!(!eval(&rule, &json!("other"), Some(&json!("shop"))));
    let root = rules_of("ToyStoreBackup", "");
    let named = |name: &str| json!({"metadata": {"name": name}, "spec": {"store": "shop"}});
    let long = "a".repeat(57);
    for bad in ["my.backup", "Backup", "-b", long.as_str()] {
        assert!(
            root.values()
                .any(|(rule, _)| !eval(rule, &named(bad), None)),
            "{bad:?} is accepted"
        );
    }
    for good in ["shop-202503100300", "1st", "a".repeat(56).as_str()] {
        for (message, (rule, field_path)) in &root {
            assert!(eval(rule, &named(good), None), "{good:?}: {message}");
            assert_eq!(field_path.as_deref(), Some(".metadata.name"));
        }
    }
    let metadata = at_of("ToyStoreBackup", "metadata");
    assert_eq!(metadata["properties"].as_object().unwrap().len(), 1);
}
