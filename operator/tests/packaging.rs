//! The install artifacts: the Helm chart (`charts/toystore-operator`), the plain manifests
//! (`deploy/manifests`), the sample store and the container image's Dockerfile.
//!
//! Every manifest must parse as the Kubernetes type it claims (k8s-openapi types, with no field
//! the type does not know), the CRD must equal `crds/`, the RBAC rules must equal
//! `operator::rbac::rules()` (which the reconcile tests check against every request), and the
//! chart must pass `helm lint` with the real Helm library (helm-sdkpy). Chart rendering uses the
//! real Helm CLI. Both are installed by `tests/tools/install.sh` into `target/tools`; where that
//! fails the Helm parts skip with a message, except under CI, where they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use operator::build::{self, BuildInputs, OPERATOR_APP_NAME, RUN_AS};
use operator::crd::{ToyStore, ToyStoreBackup};
use operator::rbac;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const CHART: &str = "charts/toystore-operator";
const RELEASE: &str = "toystore-operator";
const RELEASE_NS: &str = "toystore-system";

// ---------------------------------------------------------------------------------------------
// Parsing

/// The documents of a YAML stream (comment-only documents dropped).
fn docs(yaml: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(yaml)
        .map(|d| {
            yaml_serde::with::singleton_map_recursive::deserialize::<Value, _>(d)
                .expect("valid YAML")
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn docs_of_file(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    docs(&text)
}

/// The first place where `input` has something `output` lacks or changed: a field the typed
/// round trip dropped (unknown to the type, e.g. misspelled) or a value it could not keep.
fn lost(input: &Value, output: &Value, at: &str) -> Option<String> {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => i.iter().find_map(|(k, v)| match o.get(k) {
            None => Some(format!("{at}.{k}")),
            Some(ov) => lost(v, ov, &format!("{at}.{k}")),
        }),
        (Value::Array(i), Value::Array(o)) if i.len() == o.len() => i
            .iter()
            .zip(o)
            .enumerate()
            .find_map(|(n, (iv, ov))| lost(iv, ov, &format!("{at}[{n}]"))),
        // 86400.0 and 86400 are the same JSON number to Kubernetes.
        (Value::Number(i), Value::Number(o)) if i.as_f64() == o.as_f64() => None,
        _ if input == output => None,
        _ => Some(format!("{at} (value {input} became {output})")),
    }
}

/// `doc` as `T`, failing on any field `T` does not have.
fn strict<T: DeserializeOwned + Serialize>(doc: &Value) -> T {
    let what = format!("{} {}", doc["kind"], doc["metadata"]["name"]);
    let typed: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| {
        panic!(
            "{what} does not parse as {}: {e}",
            std::any::type_name::<T>()
        )
    });
    let back = serde_json::to_value(&typed).unwrap();
    if let Some(path) = lost(doc, &back, "") {
        panic!(
            "{what}: {path} is not a field of {}",
            std::any::type_name::<T>()
        );
    }
    typed
}

/// Parses `doc` strictly as the type its apiVersion and kind name; returns the kind.
fn check_type(doc: &Value) -> String {
    let kind = doc["kind"].as_str().expect("a kind").to_string();
    match (
        doc["apiVersion"].as_str().expect("an apiVersion"),
        kind.as_str(),
    ) {
        ("v1", "Namespace") => drop(strict::<Namespace>(doc)),
        ("v1", "ServiceAccount") => drop(strict::<ServiceAccount>(doc)),
        ("v1", "Service") => drop(strict::<Service>(doc)),
        ("apps/v1", "Deployment") => drop(strict::<Deployment>(doc)),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => drop(strict::<ClusterRole>(doc)),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            drop(strict::<ClusterRoleBinding>(doc))
        }
        ("rbac.authorization.k8s.io/v1", "Role") => drop(strict::<Role>(doc)),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => drop(strict::<RoleBinding>(doc)),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            drop(strict::<CustomResourceDefinition>(doc))
        }
        ("toystore.dev/v1alpha1", "ToyStore") => drop(strict::<ToyStore>(doc)),
        ("toystore.dev/v1alpha1", "ToyStoreBackup") => drop(strict::<ToyStoreBackup>(doc)),
        // Prometheus Operator's type is not in k8s-openapi: check the fields used.
        ("monitoring.coreos.com/v1", "ServiceMonitor") => {
            assert!(doc["spec"]["selector"]["matchLabels"].is_object(), "{doc}");
            assert!(doc["spec"]["endpoints"][0]["port"].is_string(), "{doc}");
        }
        (api, kind) => panic!("unexpected {api} {kind} in the install"),
    }
    kind
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = find(docs, kind);
    assert_eq!(found.len(), 1, "exactly one {kind}");
    found[0]
}

/// Rules as a set of (group, resource, verb) grants, so order and grouping do not matter.
fn grants(rules: &[PolicyRule]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for r in rules {
        assert!(r.resource_names.is_none() && r.non_resource_urls.is_none());
        for g in r.api_groups.iter().flatten() {
            for res in r.resources.iter().flatten() {
                for v in &r.verbs {
                    out.insert((g.clone(), res.clone(), v.clone()));
                }
            }
        }
    }
    out
}

/// Fails unless `doc` (a Role or ClusterRole) grants exactly `rbac::rules()`, naming the
/// difference.
fn assert_operator_rules(doc: &Value) {
    let rules: Vec<PolicyRule> = serde_json::from_value(doc["rules"].clone()).unwrap();
    let (granted, needed) = (grants(&rules), grants(&rbac::rules()));
    let extra: Vec<_> = granted.difference(&needed).collect();
    let missing: Vec<_> = needed.difference(&granted).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "{} {}: grants more than operator::rbac::rules() {extra:?}, lacks {missing:?}",
        doc["kind"],
        doc["metadata"]["name"]
    );
}

/// The CRDs of `crds/toystore.yaml`: ToyStore, then ToyStoreBackup.
fn crds_from_crds_dir() -> Vec<Value> {
    let crds = docs_of_file(&root().join("crds/toystore.yaml"));
    let names: Vec<&str> = crds
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["toystores.toystore.dev", "toystorebackups.toystore.dev"]
    );
    crds
}

/// The CRDs among `docs`.
fn crds_of(docs: &[Value]) -> Vec<Value> {
    find(docs, "CustomResourceDefinition")
        .into_iter()
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tools

struct Tools {
    helm: PathBuf,
    python: PathBuf,
}

/// The Helm CLI and helm-sdkpy from `tests/tools/install.sh`, installed once per test run.
fn tools() -> Option<&'static Tools> {
    static TOOLS: OnceLock<Option<Tools>> = OnceLock::new();
    TOOLS
        .get_or_init(|| {
            let out = Command::new("bash")
                .arg(root().join("tests/tools/install.sh"))
                .output()
                .expect("running bash");
            if out.status.success() {
                let tools = root().join("target/tools");
                return Some(Tools {
                    helm: tools.join("bin/helm"),
                    python: tools.join("helm-venv/bin/python"),
                });
            }
            let why = String::from_utf8_lossy(&out.stderr);
            testkit::skip_or_fail(format!(
                "Helm tools could not be installed (tests/tools/install.sh):\n{why}"
            ));
            None
        })
        .as_ref()
}

/// `helm template` of the chart with `values` (YAML); Err with Helm's message if it refuses.
fn render(tools: &Tools, values: &str) -> Result<Vec<Value>, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, values).unwrap();
    let out = Command::new(&tools.helm)
        .current_dir(root())
        .args([
            "template",
            RELEASE,
            CHART,
            "--namespace",
            RELEASE_NS,
            "--values",
        ])
        .arg(&file)
        .output()
        .expect("running helm");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(docs(&String::from_utf8_lossy(&out.stdout)))
}

// ---------------------------------------------------------------------------------------------
// Chart

#[test]
fn chart_passes_helm_lint_with_the_helm_library() {
    let Some(tools) = tools() else { return };
    let chart = root().join(CHART);
    let out = Command::new(&tools.python)
        .arg(root().join("tests/tools/helm_lint.py"))
        .arg(&chart)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "helm-sdkpy lint failed:\n{text}");
    assert!(text.contains("1 chart(s) linted"), "{text}");

    // The CLI's strict lint prints messages, and lints non-default values too.
    for set in [
        "crds.install=true",
        "watchNamespaces={shop,toys},defaultStorageClass=gp3,serviceMonitor.enabled=true",
    ] {
        let out = Command::new(&tools.helm)
            .args(["lint", "--strict", "--set", set])
            .arg(&chart)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "helm lint --strict --set {set}:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn default_install_is_typed_least_privilege_and_hardened() {
    let Some(tools) = tools() else { return };
    let docs = render(tools, "{}").expect("default values render");
    let kinds: BTreeSet<String> = docs.iter().map(check_type).collect();
    assert_eq!(
        kinds,
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "Deployment",
            "Service",
            "ServiceAccount"
        ]
        .map(String::from)
        .into()
    );

    // The CRDs are crds/toystore.yaml (ToyStore and ToyStoreBackup), with the keep policy.
    let crds = crds_of(&docs);
    assert_eq!(crds, crds_from_crds_dir());
    for crd in &crds {
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"],
            "keep"
        );
    }

    // RBAC: exactly the operator's rules, bound to its service account.
    assert_operator_rules(one(&docs, "ClusterRole"));
    let binding = one(&docs, "ClusterRoleBinding");
    assert_eq!(
        binding["roleRef"]["name"],
        one(&docs, "ClusterRole")["metadata"]["name"]
    );
    let sa = one(&docs, "ServiceAccount");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": RELEASE_NS}])
    );

    // The Deployment: one replica, Recreate, non-root, read-only, no escalation, seccomp.
    let deployment: Deployment = strict(one(&docs, "Deployment"));
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.strategy.unwrap().type_.as_deref(), Some("Recreate"));
    let pod = spec.template.spec.unwrap();
    assert_eq!(
        spec.template.metadata.unwrap().labels.unwrap()["app.kubernetes.io/name"],
        OPERATOR_APP_NAME,
        "the stores' NetworkPolicies admit the operator by this label"
    );
    assert_eq!(
        pod.service_account_name.as_ref(),
        sa["metadata"]["name"].as_str().map(String::from).as_ref()
    );
    let psc = pod.security_context.unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.run_as_user, Some(RUN_AS));
    assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
    let c = &pod.containers[0];
    assert_eq!(
        c.command.as_deref(),
        Some(&["toystore-operator".to_string()][..])
    );
    assert_eq!(c.image.as_deref(), Some("ghcr.io/toystore/toystore:0.1.0"));
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
    assert_eq!(
        c.liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .as_deref(),
        Some("/healthz")
    );
    assert_eq!(
        c.readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .as_deref(),
        Some("/readyz")
    );
    let resources = c.resources.clone().unwrap();
    assert!(resources.requests.is_some() && resources.limits.is_some());
    let env: BTreeMap<_, _> = c
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.as_str(), e.value.clone().unwrap_or_default()))
        .collect();
    assert!(
        !env.contains_key("OPERATOR_WATCH_NAMESPACES"),
        "all namespaces by default"
    );
    assert!(!env.contains_key("OPERATOR_DEFAULT_STORAGE_CLASS"));
    // The metrics Service selects the operator pod.
    let service = one(&docs, "Service");
    assert_eq!(
        service["spec"]["selector"],
        one(&docs, "Deployment")["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn cloud_options_reach_the_install() {
    let Some(tools) = tools() else { return };
    let values = r#"
image: {registry: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, repository: shop/toystore, tag: "1.2.3"}
imagePullSecrets: [{name: regcred}]
crds: {install: false}
watchNamespaces: [shop, toys]
defaultStorageClass: gp3
nodeSelector: {kubernetes.io/os: linux}
tolerations: [{key: dedicated, operator: Equal, value: platform, effect: NoSchedule}]
serviceAccount: {create: true, annotations: {eks.amazonaws.com/role-arn: "arn:aws:iam::123456789012:role/x"}}
serviceMonitor: {enabled: true, labels: {release: prometheus}}
"#;
    let docs = render(tools, values).expect("values render");
    for d in &docs {
        check_type(d);
    }
    assert!(find(&docs, "CustomResourceDefinition").is_empty());

    // Namespaced: a Role and RoleBinding per watched namespace, nothing cluster-wide.
    assert!(find(&docs, "ClusterRole").is_empty());
    assert!(find(&docs, "ClusterRoleBinding").is_empty());
    let roles = find(&docs, "Role");
    let namespaces: BTreeSet<_> = roles
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["shop", "toys"].into());
    for role in roles {
        assert_operator_rules(role);
    }
    for binding in find(&docs, "RoleBinding") {
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(binding["subjects"][0]["namespace"], RELEASE_NS);
    }

    let deployment = one(&docs, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(
        c["image"],
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/toystore:1.2.3"
    );
    let env: BTreeMap<_, _> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["value"].as_str().unwrap()))
        .collect();
    assert_eq!(env["OPERATOR_WATCH_NAMESPACES"], "shop,toys");
    assert_eq!(env["OPERATOR_DEFAULT_STORAGE_CLASS"], "gp3");
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "regcred"}]));
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    assert_eq!(
        one(&docs, "ServiceAccount")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/x"
    );

    // The ServiceMonitor scrapes the metrics Service's port, with the user's labels.
    let monitor = one(&docs, "ServiceMonitor");
    let service = one(&docs, "Service");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            &service["metadata"]["labels"][k], v,
            "ServiceMonitor selects the Service"
        );
    }
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
}

#[test]
fn values_schema_refuses_bad_values() {
    let Some(tools) = tools() else { return };
    for (values, complaint) in [
        ("image: {pullPolicy: Sometimes}", "pullPolicy"),
        ("watchNamespaces: [Not_A_Namespace]", "watchNamespaces"),
        ("watchNamespaces: shop", "watchNamespaces"),
        ("crds: {install: yes-please}", "install"),
        ("replicas: 3", "replicas"),
        ("logFormat: xml", "logFormat"),
    ] {
        let err = render(tools, values).expect_err(values);
        assert!(err.contains(complaint), "{values}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Plain manifests

fn manifest_docs() -> Vec<Value> {
    let dir = root().join("deploy/manifests/install");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().flat_map(|f| docs_of_file(f)).collect()
}

#[test]
fn manifests_are_typed_and_grant_exactly_the_operators_rules() {
    let docs = manifest_docs();
    let kinds: Vec<String> = docs.iter().map(check_type).collect();
    // `kubectl apply -f install/` goes in file order: the namespace and CRD first.
    assert_eq!(
        kinds[..3],
        [
            "Namespace",
            "CustomResourceDefinition",
            "CustomResourceDefinition"
        ]
    );
    assert_eq!(crds_of(&docs), crds_from_crds_dir());
    assert_operator_rules(one(&docs, "ClusterRole"));
    for d in &docs {
        if d["kind"] != "Namespace" && !d["metadata"]["namespace"].is_null() {
            assert_eq!(d["metadata"]["namespace"], RELEASE_NS, "{d}");
        }
    }
    let binding = one(&docs, "ClusterRoleBinding");
    let sa = one(&docs, "ServiceAccount");
    assert_eq!(binding["subjects"][0]["name"], sa["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["namespace"], RELEASE_NS);
}

#[test]
fn kustomization_lists_every_manifest() {
    let Ok(out) = Command::new("kubectl")
        .arg("kustomize")
        .arg(root().join("deploy/manifests"))
        .output()
    else {
        eprintln!("skipped: kubectl not found; `kubectl kustomize deploy/manifests` not checked");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = docs(&String::from_utf8_lossy(&out.stdout));
    let key = |d: &Value| format!("{}/{}", d["kind"], d["metadata"]["name"]);
    let by_key = |docs: Vec<Value>| -> BTreeMap<String, Value> {
        docs.into_iter().map(|d| (key(&d), d)).collect()
    };
    let (built, files) = (by_key(built), by_key(manifest_docs()));
    assert_eq!(
        built.keys().collect::<Vec<_>>(),
        files.keys().collect::<Vec<_>>(),
        "kustomize builds other objects than install/ holds"
    );
    for (name, file) in &files {
        let difference = lost(file, &built[name], "").or_else(|| lost(&built[name], file, ""));
        assert_eq!(
            difference, None,
            "{name}: kustomize output differs from the file"
        );
    }
}

#[test]
fn manifests_install_what_the_chart_installs_by_default() {
    let Some(tools) = tools() else { return };
    let chart = render(tools, "{}").unwrap();
    let manifests = manifest_docs();
    // Same objects by kind and name (the Namespace is the manifests' own).
    let names = |docs: &[Value]| -> BTreeSet<String> {
        docs.iter()
            .filter(|d| d["kind"] != "Namespace")
            .map(|d| format!("{}/{}", d["kind"], d["metadata"]["name"]))
            .collect()
    };
    assert_eq!(names(&manifests), names(&chart));
    // Same Deployment, Service and RBAC content; labels differ (Helm adds its own).
    for kind in ["Deployment", "Service"] {
        assert_eq!(
            one(&manifests, kind)["spec"],
            one(&chart, kind)["spec"],
            "{kind}"
        );
    }
    assert_eq!(
        one(&manifests, "ClusterRole")["rules"],
        one(&chart, "ClusterRole")["rules"]
    );
    assert_eq!(
        one(&manifests, "ClusterRoleBinding")["subjects"],
        one(&chart, "ClusterRoleBinding")["subjects"]
    );
}

// ---------------------------------------------------------------------------------------------
// Sample store, kind cluster, image

#[test]
fn sample_store_is_a_valid_toystore() {
    let docs = docs_of_file(&root().join("deploy/samples/toystore.yaml"));
    assert_eq!(docs.len(), 1);
    let store: ToyStore = strict(&docs[0]);
    operator::validate::validate(&store).expect("the sample passes validation");
    assert_eq!(store.spec.orders.replicas, 3);
    // Stateless catalogs, two of them, stated for the reader (`strict` above refuses a
    // leftover `catalog.storage`).
    assert_eq!(docs[0]["spec"]["catalog"]["replicas"], 2);
    // It is also valid against the CRD's structural schema as far as required fields go.
    let crd = crds_from_crds_dir().remove(0);
    let required =
        &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["required"];
    for field in required.as_array().into_iter().flatten() {
        assert!(
            !docs[0]["spec"][field.as_str().unwrap()].is_null(),
            "sample lacks {field}"
        );
    }
}

#[test]
fn sample_backup_and_restored_store_are_valid() {
    let docs = docs_of_file(&root().join("deploy/samples/toystorebackup.yaml"));
    assert_eq!(docs.len(), 1);
    let backup: ToyStoreBackup = strict(&docs[0]);
    let sample = docs_of_file(&root().join("deploy/samples/toystore.yaml"));
    assert_eq!(
        backup.spec.store,
        sample[0]["metadata"]["name"].as_str().unwrap()
    );
    let name = backup.metadata.name.as_deref().unwrap();
    assert!(
        name.len() <= operator::crd::MAX_BACKUP_NAME_LENGTH,
        "{name}"
    );

    let docs = docs_of_file(&root().join("deploy/samples/toystore-restored.yaml"));
    assert_eq!(docs.len(), 1);
    let restored: ToyStore = strict(&docs[0]);
    let valid = operator::validate::validate(&restored).expect("the sample passes validation");
    // It restores from where the sample backup of `shop` writes.
    let destination = &valid.backup.as_ref().unwrap().destination.url;
    assert_eq!(
        valid.restore.as_ref().unwrap().from.url,
        format!("{destination}/{}/{name}", backup.spec.store)
    );
}

#[test]
fn kind_cluster_has_workers_in_distinct_zones() {
    let docs = docs_of_file(&root().join("deploy/kind/cluster.yaml"));
    assert_eq!(docs[0]["kind"], "Cluster");
    assert_eq!(docs[0]["apiVersion"], "kind.x-k8s.io/v1alpha4");
    let nodes = docs[0]["nodes"].as_array().unwrap();
    let zones: BTreeSet<_> = nodes
        .iter()
        .filter(|n| n["role"] == "worker")
        .map(|n| n["labels"]["topology.kubernetes.io/zone"].as_str().unwrap())
        .collect();
    assert_eq!(zones.len(), 3, "three workers, three zones: {zones:?}");
}

/// The `--bin` names the Dockerfile builds.
fn dockerfile_binaries(dockerfile: &str) -> BTreeSet<String> {
    let words: Vec<&str> = dockerfile.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "--bin")
        .map(|w| w[1].to_string())
        .collect()
}

#[test]
fn image_builds_every_binary_the_pods_run_as_their_user() {
    let dockerfile = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    let built = dockerfile_binaries(&dockerfile);
    // Every command a store's pods run (from the operator's own build step) ...
    let mut store: ToyStore =
        strict(&docs_of_file(&root().join("deploy/samples/toystore.yaml"))[0]);
    store.metadata.namespace = Some("shop".into());
    let store = operator::validate::validate(&store).expect("the sample is valid");
    let objects = build::build(
        &store,
        &BuildInputs {
            order_replicas: 3,
            storage_class: None,
        },
    );
    let mut pods = vec![objects.stateful_set.spec.clone().unwrap().template];
    pods.extend(
        objects
            .deployments
            .iter()
            .map(|d| d.spec.clone().unwrap().template),
    );
    let mut commands = BTreeSet::new();
    for pod in pods {
        let spec = pod.spec.unwrap();
        assert_eq!(spec.security_context.unwrap().run_as_user, Some(RUN_AS));
        for c in spec.containers {
            commands.insert(c.command.unwrap()[0].clone());
        }
    }
    // ... plus the operator and the CLI (the e2e suite's load Job runs `toystore load`).
    commands.extend(["toystore-operator".to_string(), "toystore".to_string()]);
    assert_eq!(built, commands, "deploy/Dockerfile --bin list");
    let copied = dockerfile
        .lines()
        .skip_while(|l| !l.contains("mkdir -p /out"))
        .take_while(|l| !l.trim().is_empty())
        .collect::<String>();
    for bin in &built {
        assert!(
            copied.contains(&format!("target/release/{bin}")),
            "{bin} not copied out"
        );
    }
    assert!(
        dockerfile.contains(&format!("USER {RUN_AS}:{RUN_AS}")),
        "the image runs as the pods' user"
    );
}

/// Whether `.dockerignore` (as written here: `dir/`, `**/dir/`, `*.ext` patterns) drops `path`.
fn docker_ignores(patterns: &[&str], path: &str) -> bool {
    patterns.iter().any(|p| {
        if let Some(dir) = p.strip_prefix("**/") {
            let dir = dir.trim_end_matches('/');
            path.split('/').any(|part| part == dir)
        } else if let Some(dir) = p.strip_suffix('/') {
            path == dir || path.starts_with(&format!("{dir}/"))
        } else if let Some(ext) = p.strip_prefix('*') {
            !path.contains('/') && path.ends_with(ext)
        } else {
            panic!("pattern {p:?} is not understood by this test; extend docker_ignores")
        }
    })
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The files `include_str!`/`include_bytes!` name in `code`.
fn included(code: &str) -> Vec<&str> {
    ["include_str!(\"", "include_bytes!(\""]
        .iter()
        .flat_map(|m| {
            code.match_indices(m)
                .map(move |(i, _)| &code[i + m.len()..])
        })
        .filter_map(|rest| rest.split('"').next())
        .collect()
}

#[test]
fn build_context_keeps_every_file_the_build_reads() {
    let text = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    let patterns: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(docker_ignores(&patterns, "target/release/x"));
    assert!(docker_ignores(&patterns, "tests/browser/node_modules/a"));

    // The workspace's manifests, crate sources and included files, from cargo itself.
    let out = Command::new(env!("CARGO"))
        .current_dir(root())
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let base = root().canonicalize().unwrap();
    let relative = |p: &Path| -> String {
        let p = p
            .canonicalize()
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        p.strip_prefix(&base)
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let mut needed = vec!["Cargo.toml".to_string(), "Cargo.lock".to_string()];
    for package in metadata["packages"].as_array().unwrap() {
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap());
        needed.push(relative(&manifest));
        for source in rust_files(&manifest.parent().unwrap().join("src")) {
            needed.push(relative(&source));
            let code = std::fs::read_to_string(&source).unwrap();
            for file in included(&code) {
                needed.push(relative(&source.parent().unwrap().join(file)));
            }
        }
    }
    assert!(
        needed.iter().any(|p| p == "frontend/static/index.html"),
        "{needed:?}"
    );
    for path in needed {
        assert!(
            !docker_ignores(&patterns, &path),
            ".dockerignore drops {path}, which the build needs"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The kind e2e suite (runs only where Docker and kind exist; here its skip and its syntax)

/// Runs `tests/e2e/run.sh` with PATH = a directory holding a stub `docker` that answers
/// `docker info` with `docker_info_exit`, then the system directories.
fn run_e2e_with_stub_docker(docker_info_exit: i32) -> std::process::Output {
    let stubs = tempfile::tempdir().unwrap();
    let docker = stubs.path().join("docker");
    std::fs::write(&docker, format!("#!/bin/sh\nexit {docker_info_exit}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", stubs.path().display());
    Command::new("/bin/bash")
        .arg(root().join("tests/e2e/run.sh"))
        .env("PATH", path)
        .env("E2E_ARTIFACTS", stubs.path().join("artifacts"))
        .output()
        .unwrap()
}

#[test]
fn e2e_suite_skips_with_a_clear_line_without_a_docker_engine() {
    let out = run_e2e_with_stub_docker(1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "skipped: no Docker engine (docker info failed); the kind e2e suite needs Docker and kind"
    );
}

#[test]
fn e2e_suite_skips_naming_kind_when_only_docker_is_there() {
    if Path::new("/usr/bin/kind").exists() || Path::new("/bin/kind").exists() {
        eprintln!("skipped: kind is installed system-wide; cannot hide it from the suite");
        return;
    }
    // Without helm on PATH the suite installs the repository's copy; have it in place first.
    let _ = tools();
    let out = run_e2e_with_stub_docker(0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("skipped: kind"), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

#[test]
fn e2e_suite_is_valid_bash_and_shellcheck_clean() {
    let script = root().join("tests/e2e/run.sh");
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    // The stand-ins the tests below put on PATH are scripts too.
    let stubs =
        ["kubectl", "helm", "kind", "docker"].map(|s| root().join("tests/e2e/stubs").join(s));
    match Command::new("shellcheck")
        .arg(&script)
        .args(&stubs)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "shellcheck tests/e2e/run.sh tests/e2e/stubs/*:\n{}",
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(_) => eprintln!("skipped: shellcheck not installed (.ci/run installs it)"),
    }
}

#[test]
fn e2e_suite_waits_only_by_polling_with_a_deadline() {
    // One `sleep`, the poll interval of wait_until, whose deadline fails the run naming the
    // condition: no fixed sleep stands in for a wait.
    let text = std::fs::read_to_string(root().join("tests/e2e/run.sh")).unwrap();
    let sleeps: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("sleep") || l.contains(" sleep "))
        .collect();
    assert_eq!(sleeps, ["    sleep 2"], "{sleeps:?}");
    assert!(text.contains(r#"fail "timed out after ${seconds}s waiting for $what${OBSERVED:+ (last seen: $OBSERVED)}""#));
}

#[test]
fn e2e_load_job_is_a_hardened_job_running_the_cli() {
    let text = std::fs::read_to_string(root().join("tests/e2e/load-job.yaml")).unwrap();
    // The replacements run.sh makes (start_load_job); none may be left over.
    let filled = text
        .replace("__NAME__", "load")
        .replace("__IMAGE__", "toystore:e2e")
        .replace("__PULL_POLICY__", "IfNotPresent")
        .replace("__DURATION__", "60");
    let script = std::fs::read_to_string(root().join("tests/e2e/run.sh")).unwrap();
    for placeholder in ["__NAME__", "__IMAGE__", "__PULL_POLICY__", "__DURATION__"] {
        assert!(
            script.contains(&format!("s|{placeholder}|")),
            "run.sh never fills {placeholder}"
        );
    }
    assert!(!filled.contains("__"), "{filled}");
    let doc = &docs(&filled)[0];
    let job: k8s_openapi::api::batch::v1::Job = strict(doc);
    let spec = job.spec.unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.security_context.unwrap().run_as_user, Some(RUN_AS));
    let c = &pod.containers[0];
    assert_eq!(c.command.as_deref(), Some(&["toystore".to_string()][..]));
    assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
    let args = c.args.clone().unwrap().join(" ");
    assert!(args.contains("--max-errors 0"), "{args}");
    assert!(args.contains("--url http://shop-frontend"), "{args}");
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
}

// ---------------------------------------------------------------------------------------------
// The e2e suite's existing-cluster mode (E2E_CLUSTER=existing), against stand-ins: no cluster
// exists here. tests/e2e/stubs holds a kubectl and a helm that record every call and answer as a
// small healthy cluster would (or as a test's canned rules say), and a kind and a docker that
// fail if called at all.

const E2E_ECR_IMAGE: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/toystore:1.2.3";

/// A directory to use as the whole PATH: links to the named stand-ins of tests/e2e/stubs (an
/// entry with a `/` is a program of its own, linked under its file name), then to every
/// program in /usr/bin and /bin except those in `without`.
fn e2e_bin_dir(at: &Path, stubs: &[&str], without: &[&str]) -> PathBuf {
    let bin = at.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in stubs {
        let target = if name.contains('/') {
            PathBuf::from(name)
        } else {
            root().join("tests/e2e/stubs").join(name)
        };
        let link = bin.join(target.file_name().unwrap());
        std::os::unix::fs::symlink(&target, link).unwrap();
    }
    for dir in ["/usr/bin", "/bin"] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name_str = name.to_string_lossy();
            let link = bin.join(&name);
            if without.contains(&name_str.as_ref()) || link.symlink_metadata().is_ok() {
                continue;
            }
            let _ = std::os::unix::fs::symlink(entry.path(), &link);
        }
    }
    bin
}

/// One run of tests/e2e/run.sh (or of a snippet that sources it), with what it printed and
/// every call the stand-ins recorded, each as its argument list (program first).
struct E2eRun {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    calls: Vec<Vec<String>>,
    artifacts: PathBuf,
    _dir: tempfile::TempDir,
}

impl E2eRun {
    /// The calls of `program` (kubectl, helm, kind, docker).
    fn calls_of(&self, program: &str) -> Vec<&Vec<String>> {
        self.calls.iter().filter(|c| c[0] == program).collect()
    }

    fn output(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}--- stderr\n{}--- calls\n{}",
            self.code,
            self.stdout,
            self.stderr,
            self.calls
                .iter()
                .map(|c| c.join(" "))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    /// The machine lacks a tool the suite needs (curl, jq): the test cannot say more.
    fn skipped_for_lack_of_tools(&self) -> bool {
        let lacking =
            self.stdout.starts_with("skipped:") && self.stdout.contains("not found on PATH");
        if lacking {
            eprintln!("skipped: {}", self.stdout.trim());
        }
        lacking
    }
}

/// Every variable run.sh reads, so the caller's environment cannot leak into a test.
const E2E_KNOBS: &[&str] = &[
    "E2E_CLUSTER",
    "E2E_IMAGE",
    "E2E_NEXT_IMAGE",
    "E2E_IMAGE_PULL_POLICY",
    "E2E_STORAGE_CLASS",
    "E2E_KEEP",
    "E2E_LOAD_SECONDS",
    "E2E_BACKUP_URL",
    "E2E_BACKUP_SECRET",
    "E2E_TIMEOUT_FACTOR",
    "KEEP_CLUSTER",
    "KIND_CLUSTER_NAME",
    "KIND_NODE_IMAGE",
    "KUBECONFIG",
];

/// Runs `bash ARGS` with PATH = e2e_bin_dir(stubs, without), the given environment, canned
/// kubectl answers `rules` (pattern, exit code, reply) and a fresh artifacts directory.
fn run_e2e_bash(
    args: &[&str],
    stubs: &[&str],
    without: &[&str],
    env: &[(&str, &str)],
    rules: &[(&str, i32, &str)],
) -> E2eRun {
    let dir = tempfile::tempdir().unwrap();
    let bin = e2e_bin_dir(dir.path(), stubs, without);
    let log = dir.path().join("calls");
    let rules_file = dir.path().join("rules");
    let text: String = rules
        .iter()
        .map(|(pattern, code, reply)| format!("{pattern}\t{code}\t{reply}\n"))
        .collect();
    std::fs::write(&rules_file, text).unwrap();
    let artifacts = dir.path().join("artifacts");
    let mut cmd = Command::new("/bin/bash");
    cmd.args(args).current_dir(root());
    for knob in E2E_KNOBS {
        cmd.env_remove(knob);
    }
    cmd.env("PATH", &bin)
        .env("HOME", dir.path())
        .env("STUB_LOG", &log)
        .env("STUB_RULES", &rules_file)
        .env("E2E_ARTIFACTS", &artifacts);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let calls = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('\u{1f}').map(String::from).collect())
        .collect();
    E2eRun {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        calls,
        artifacts,
        _dir: dir,
    }
}

const ALL_STUBS: &[&str] = &["kubectl", "helm", "kind", "docker"];

/// tests/e2e/run.sh in existing mode with every stand-in and `env` on top.
fn run_e2e_existing(env: &[(&str, &str)]) -> E2eRun {
    let mut all = vec![("E2E_CLUSTER", "existing"), ("E2E_IMAGE", E2E_ECR_IMAGE)];
    all.extend_from_slice(env);
    let script = root().join("tests/e2e/run.sh");
    run_e2e_bash(&[script.to_str().unwrap()], ALL_STUBS, &[], &all, &[])
}

/// Fails if kind or docker was called: the existing mode runs without both.
fn assert_no_kind_or_docker(run: &E2eRun) {
    assert!(
        run.calls_of("kind").is_empty() && run.calls_of("docker").is_empty(),
        "{}",
        run.output()
    );
}

/// The arguments of a call from index `from` on (none if it is shorter).
fn args_from(call: &[String], from: usize) -> &[String] {
    call.get(from..).unwrap_or(&[])
}

/// The value after `flag` in a call.
fn flag_value<'a>(call: &'a [String], flag: &str) -> Option<&'a str> {
    call.iter()
        .position(|a| a == flag)
        .and_then(|i| call.get(i + 1))
        .map(String::as_str)
}

#[test]
fn e2e_existing_mode_skips_with_a_clear_line_without_an_image() {
    let script = root().join("tests/e2e/run.sh");
    let run = run_e2e_bash(
        &[script.to_str().unwrap()],
        ALL_STUBS,
        &[],
        &[("E2E_CLUSTER", "existing")],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert_eq!(
        run.stdout.trim(),
        "skipped: E2E_IMAGE is not set; E2E_CLUSTER=existing needs an image the cluster's \
         nodes can pull or already have, e.g. E2E_IMAGE=registry.example.com/toystore:0.1.0"
    );
    assert!(run.calls.is_empty(), "{}", run.output());
}

#[test]
fn e2e_existing_mode_skips_with_a_clear_line_without_a_kubeconfig_context() {
    let run = run_e2e_existing(&[("STUB_CONTEXT", ""), ("KUBECONFIG", "/nonexistent/config")]);
    if run.skipped_for_lack_of_tools() {
        return;
    }
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert_eq!(
        run.stdout.trim(),
        "skipped: no current kubectl context (KUBECONFIG=/nonexistent/config); \
         E2E_CLUSTER=existing runs on the current context's cluster"
    );
    // Only the local question; nothing was sent to any cluster.
    let kubectl: Vec<String> = run
        .calls_of("kubectl")
        .iter()
        .map(|c| c.join(" "))
        .collect();
    assert_eq!(kubectl, ["kubectl config current-context"]);
    assert_no_kind_or_docker(&run);
}

#[test]
fn e2e_existing_mode_skips_naming_each_missing_tool() {
    let script = root().join("tests/e2e/run.sh");
    let env = [("E2E_CLUSTER", "existing"), ("E2E_IMAGE", E2E_ECR_IMAGE)];
    for (stubs, without, missing) in [
        (&["helm", "kind", "docker"][..], &["kubectl"][..], "kubectl"),
        (ALL_STUBS, &["jq"][..], "jq"),
        (ALL_STUBS, &["curl", "jq"][..], "curl, jq"),
    ] {
        let run = run_e2e_bash(&[script.to_str().unwrap()], stubs, without, &env, &[]);
        assert_eq!(run.code, Some(0), "{}", run.output());
        assert_eq!(
            run.stdout.trim(),
            format!(
                "skipped: {missing} not found on PATH; the existing-cluster e2e suite needs \
                 kubectl, helm, curl and jq"
            ),
            "{}",
            run.output()
        );
        assert_no_kind_or_docker(&run);
    }
}

#[test]
fn e2e_existing_mode_refuses_bad_settings_before_touching_anything() {
    let script = root().join("tests/e2e/run.sh");
    for (env, message) in [
        (
            &[("E2E_CLUSTER", "eks")][..],
            "E2E_CLUSTER must be kind (the default) or existing",
        ),
        (
            &[
                ("E2E_CLUSTER", "existing"),
                ("E2E_IMAGE", "registry.example.com/toystore@sha256:0123"),
            ][..],
            "the Helm chart takes a tag, not a digest",
        ),
        (
            &[
                ("E2E_CLUSTER", "existing"),
                ("E2E_IMAGE", "registry.example.com:5000/toystore"),
            ][..],
            "expected [REGISTRY/]REPOSITORY:TAG",
        ),
        (
            &[
                ("E2E_CLUSTER", "existing"),
                ("E2E_IMAGE", E2E_ECR_IMAGE),
                ("E2E_NEXT_IMAGE", E2E_ECR_IMAGE),
            ][..],
            "E2E_NEXT_IMAGE must differ from E2E_IMAGE",
        ),
        (
            &[
                ("E2E_CLUSTER", "existing"),
                ("E2E_IMAGE", E2E_ECR_IMAGE),
                ("E2E_TIMEOUT_FACTOR", "0"),
            ][..],
            "E2E_TIMEOUT_FACTOR must be a positive whole number",
        ),
    ] {
        let run = run_e2e_bash(&[script.to_str().unwrap()], ALL_STUBS, &[], env, &[]);
        assert_eq!(run.code, Some(2), "{}", run.output());
        assert!(run.stderr.contains(message), "{}", run.output());
        assert!(run.calls.is_empty(), "{}", run.output());
    }
}

#[test]
fn e2e_existing_mode_fails_when_the_context_does_not_answer() {
    // Explicitly asked for, configured, and unreachable (VPN down, expired token): a failure,
    // not a skip, so that a CI job running it cannot pass without testing anything.
    let run = run_e2e_existing(&[("STUB_UNREACHABLE", "1")]);
    if run.skipped_for_lack_of_tools() {
        return;
    }
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(
        run.stdout.starts_with(
            "e2e: existing cluster: context e2e-test, server https://stub.invalid:6443\n"
        ),
        "{}",
        run.output()
    );
    assert!(
        run.stderr.contains(
            "FAIL: cannot reach the cluster of context e2e-test (https://stub.invalid:6443): \
             The connection to the server stub.invalid:6443 was refused"
        ),
        "{}",
        run.output()
    );
    assert!(
        run.stderr.contains("e2e: FAILED in step \"1/15 "),
        "{}",
        run.output()
    );
    // Nothing created, so nothing deleted.
    for call in &run.calls {
        assert!(
            !call
                .iter()
                .any(|a| ["create", "delete", "install", "uninstall"].contains(&a.as_str())),
            "{}",
            run.output()
        );
    }
    assert_no_kind_or_docker(&run);
}

#[test]
fn e2e_existing_mode_fails_with_the_real_kubectl_on_an_unreachable_server() {
    // The kubectl on the test's PATH (CI runners keep it in /usr/local/bin).
    let Some(kubectl) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("kubectl"))
            .find(|p| p.is_file())
    }) else {
        eprintln!("skipped: no kubectl on PATH");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(
        &config,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n\
         contexts:\n- name: nowhere\n  context:\n    cluster: c\n    user: u\n\
         current-context: nowhere\nusers:\n- name: u\n  user:\n    token: not-a-token\n",
    )
    .unwrap();
    let script = root().join("tests/e2e/run.sh");
    let run = run_e2e_bash(
        &[script.to_str().unwrap()],
        &["helm", "kind", "docker", kubectl.to_str().unwrap()],
        &["kubectl"],
        &[
            ("E2E_CLUSTER", "existing"),
            ("E2E_IMAGE", E2E_ECR_IMAGE),
            ("KUBECONFIG", config.to_str().unwrap()),
        ],
        &[],
    );
    if run.skipped_for_lack_of_tools() {
        return;
    }
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(
        run.stderr
            .contains("FAIL: cannot reach the cluster of context nowhere (https://127.0.0.1:1)"),
        "{}",
        run.output()
    );
    assert!(run.calls_of("helm").is_empty(), "{}", run.output());
    assert_no_kind_or_docker(&run);
}

#[test]
fn e2e_existing_mode_works_only_in_its_own_namespaces_and_removes_them_on_failure() {
    // helm install fails (the stand-in's default), so the run stops in step 3 and cleans up.
    let run = run_e2e_existing(&[]);
    if run.skipped_for_lack_of_tools() {
        return;
    }
    let all = run.output();
    assert_eq!(run.code, Some(1), "{all}");
    assert!(
        run.stderr
            .contains("e2e: FAILED in step \"3/15 Install the operator with Helm\""),
        "{all}"
    );
    assert_no_kind_or_docker(&run);

    // The context and kubeconfig are printed first, and every call pins the context.
    let mut lines = run.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("e2e: existing cluster: context e2e-test, server https://stub.invalid:6443")
    );
    assert!(
        lines.next().is_some_and(
            |l| l.starts_with("e2e: kubeconfig ~/.kube/config (KUBECONFIG unset); run ")
        ),
        "{all}"
    );
    for call in &run.calls {
        let pinned = match call[0].as_str() {
            "kubectl" if call[1] == "config" => {
                call[2] == "current-context" || flag_value(call, "--context") == Some("e2e-test")
            }
            "kubectl" => call[1..3] == ["--context", "e2e-test"],
            "helm" => call[1..3] == ["--kube-context", "e2e-test"],
            _ => false,
        };
        assert!(pinned, "not pinned to the context: {call:?}\n{all}");
    }

    // Three namespaces of one run, unique to it, labelled for finding leftovers.
    let created: Vec<String> = run
        .calls_of("kubectl")
        .iter()
        .filter(|c| args_from(c, 3).starts_with(&["create".into(), "namespace".into()]))
        .map(|c| c[5].clone())
        .collect();
    assert_eq!(created.len(), 3, "{all}");
    let store_ns = &created[1];
    assert!(
        store_ns.starts_with("toystore-e2e-") && store_ns.len() <= 40,
        "{store_ns}"
    );
    assert_eq!(created[0], format!("{store_ns}-system"));
    assert_eq!(created[2], format!("{store_ns}-api"));
    for ns in &created {
        assert!(
            run.calls_of("kubectl").iter().any(|c| args_from(c, 3)
                .starts_with(&["label".into(), "namespace".into()])
                && c[5] == *ns
                && c.contains(&"app.kubernetes.io/part-of=toystore-e2e".to_string())),
            "{ns} not labelled\n{all}"
        );
    }

    // Nothing outside them is changed: every namespaced call names one of them, and the only
    // cluster-wide writes are those namespaces and the CRD this run installed.
    for call in run
        .calls_of("kubectl")
        .iter()
        .chain(run.calls_of("helm").iter())
    {
        if let Some(ns) = flag_value(call, "-n") {
            assert!(
                created.iter().any(|c| c == ns),
                "outside the run's namespaces: {call:?}"
            );
        }
        let verb = call
            .iter()
            .skip(1)
            .find(|a| !a.starts_with('-') && *a != "e2e-test");
        let writes = matches!(
            verb.map(String::as_str),
            Some(
                "create"
                    | "delete"
                    | "patch"
                    | "apply"
                    | "label"
                    | "annotate"
                    | "replace"
                    | "scale"
                    | "install"
                    | "uninstall"
            )
        );
        if writes && flag_value(call, "-n").is_none() {
            let target = call.join(" ");
            assert!(
                target.contains(" namespace ")
                    || target.contains("delete crd toystores.toystore.dev"),
                "cluster-wide write: {target}"
            );
            if target.contains(" namespace ") {
                let named: Vec<&String> = call
                    .iter()
                    .filter(|a| a.starts_with("toystore-e2e-"))
                    .collect();
                assert!(
                    !named.is_empty() && named.iter().all(|n| created.contains(n)),
                    "{target}"
                );
            }
        }
        assert!(
            !call.iter().any(|a| a == "-A" || a == "--all-namespaces")
                || call.iter().any(|a| a == "get"),
            "only reads may span namespaces: {call:?}"
        );
    }

    // The operator: the given image split as the chart takes it, a Role in the store's
    // namespace only, the CRD from the chart since the cluster had none.
    let install = run
        .calls_of("helm")
        .into_iter()
        .find(|c| c.contains(&"install".to_string()))
        .expect("helm install")
        .clone();
    let install_line = install.join(" ");
    for expected in [
        "--set-string image.registry=123456789012.dkr.ecr.eu-west-1.amazonaws.com".to_string(),
        "--set-string image.repository=toystore".into(),
        "--set-string image.tag=1.2.3".into(),
        "--set-string image.pullPolicy=IfNotPresent".into(),
        format!("--set-string watchNamespaces[0]={store_ns}"),
        "--set crds.install=true".into(),
    ] {
        assert!(
            install_line.contains(&expected),
            "{expected} not in {install_line}"
        );
    }
    assert!(
        !install_line.contains("--create-namespace"),
        "{install_line}"
    );
    assert!(
        !install_line.contains("defaultStorageClass"),
        "{install_line}"
    );

    // Clean-up: stores first, then the release, the three namespaces, and the CRD it installed.
    let kubectl: Vec<String> = run
        .calls_of("kubectl")
        .iter()
        .map(|c| args_from(c, 3).join(" "))
        .collect();
    let deleted_ns = kubectl
        .iter()
        .position(|c| c.starts_with("delete namespace"))
        .expect("namespaces deleted");
    assert_eq!(
        kubectl[deleted_ns],
        format!(
            "delete namespace {} {} {} --ignore-not-found --timeout=600s",
            created[0], created[1], created[2]
        )
    );
    let deleted_crd = kubectl
        .iter()
        .position(|c| c.starts_with("delete crd toystores.toystore.dev"))
        .expect("the CRD this run installed is deleted");
    assert!(deleted_crd > deleted_ns);
    assert!(
        run.calls_of("helm")
            .iter()
            .any(|c| c.contains(&"uninstall".to_string()))
    );

    // Diagnostics of the run's namespaces only, and no credentials among them.
    for file in [
        "resources.txt",
        "events.txt",
        "toystores.yaml",
        "describe-store.txt",
    ] {
        assert!(run.artifacts.join(file).is_file(), "{file} missing\n{all}");
    }
    assert!(!run.artifacts.join("kubeconfig").exists());

    // The values it passes render with the real chart: the image is E2E_IMAGE, the operator
    // watches the store's namespace only, with a Role there and no cluster-wide grant.
    let Some(tools) = tools() else { return };
    let mut template = Command::new(&tools.helm);
    template
        .current_dir(root())
        .args(["template", RELEASE, CHART, "--namespace", &created[0]]);
    for pair in install.windows(2) {
        if pair[0].starts_with("--set") {
            template.args(pair);
        }
    }
    let out = template.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = docs(&String::from_utf8_lossy(&out.stdout));
    let deployment = one(&rendered, "Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], E2E_ECR_IMAGE);
    assert!(
        container["env"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "OPERATOR_WATCH_NAMESPACES", "value": store_ns}))
    );
    assert!(find(&rendered, "ClusterRole").is_empty());
    assert_eq!(
        one(&rendered, "Role")["metadata"]["namespace"],
        json!(store_ns)
    );
    // Both CRDs: ToyStore and ToyStoreBackup.
    assert_eq!(find(&rendered, "CustomResourceDefinition").len(), 2);
}

#[test]
fn e2e_existing_mode_uses_an_installed_crd_as_it_is_and_keeps_everything_with_e2e_keep() {
    let run = run_e2e_existing(&[
        ("STUB_CRD", "1"),
        ("E2E_KEEP", "1"),
        ("E2E_STORAGE_CLASS", "gp3"),
        ("KUBECONFIG", "/somewhere/config"),
    ]);
    if run.skipped_for_lack_of_tools() {
        return;
    }
    let all = run.output();
    assert_eq!(run.code, Some(1), "{all}");
    assert!(
        run.stdout
            .contains("e2e: kubeconfig /somewhere/config; run "),
        "{all}"
    );
    let install = run
        .calls_of("helm")
        .into_iter()
        .find(|c| c.contains(&"install".to_string()))
        .expect("helm install")
        .join(" ");
    assert!(install.contains("--set crds.install=false"), "{install}");
    assert!(
        install.contains("--set-string defaultStorageClass=gp3"),
        "{install}"
    );
    // It compared the cluster's CRD with the repository's, and never changes or deletes it.
    assert!(
        run.calls_of("kubectl")
            .iter()
            .any(|c| args_from(c, 3).first().is_some_and(|v| v == "diff")
                && c.contains(&"crds/toystore.yaml".to_string())),
        "{all}"
    );
    for call in &run.calls {
        assert!(
            !call.iter().any(|a| a == "delete" || a == "uninstall"),
            "E2E_KEEP=1 deleted something: {call:?}"
        );
    }
    assert!(
        run.stdout
            .contains("E2E_KEEP=1: kept namespaces toystore-e2e-"),
        "{all}"
    );
    assert!(
        run.stdout
            .contains("kubectl --context e2e-test delete namespace toystore-e2e-"),
        "{all}"
    );
    assert_no_kind_or_docker(&run);
}

#[test]
fn e2e_existing_mode_refuses_clusters_it_would_disturb_or_could_not_use() {
    for (env, message) in [
        (
            ("STUB_CLUSTER_WIDE_OPERATOR", "1"),
            "a ToyStore operator watching every namespace runs on this cluster \
             (shop-system/toystore-operator)",
        ),
        (
            ("STUB_NO_DEFAULT_CLASS", "1"),
            "the cluster has no default StorageClass, so the store's volumes would never bind; \
             set E2E_STORAGE_CLASS (e.g. gp3 on EKS; classes here: gp2)",
        ),
    ] {
        let run = run_e2e_existing(&[env]);
        if run.skipped_for_lack_of_tools() {
            return;
        }
        assert_eq!(run.code, Some(1), "{}", run.output());
        assert!(run.stderr.contains(message), "{}", run.output());
        // Refused before creating anything (`auth can-i create` only asks).
        assert!(
            !run.calls
                .iter()
                .any(|c| args_from(c, 3).first().is_some_and(|v| v == "create")),
            "{}",
            run.output()
        );
    }
}

// Single functions of run.sh, sourced (it runs main only when executed), with canned answers.

/// Sources run.sh in existing mode (store namespace `ns`, context `ctx`) and runs `body`.
fn run_e2e_snippet(body: &str, rules: &[(&str, i32, &str)]) -> E2eRun {
    let script = format!(
        "source {}\nE2E_CLUSTER=existing NS=ns API_NS=ns-api E2E_TIMEOUT_FACTOR=1 \
         KUBE_CONTEXT=ctx ARTIFACTS=$E2E_ARTIFACTS\nKUBECTL_FLAGS=(--context ctx)\n\
         mkdir -p \"$ARTIFACTS\"\n{body}\n",
        root().join("tests/e2e/run.sh").display()
    );
    run_e2e_bash(&["-c", &script], ALL_STUBS, &[], &[], rules)
}

#[test]
fn e2e_split_image_gives_the_charts_registry_repository_and_tag() {
    let cases = [
        (
            E2E_ECR_IMAGE,
            Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com toystore 1.2.3"),
        ),
        (
            "ghcr.io/toystore/toystore:0.1.0",
            Some("ghcr.io toystore/toystore 0.1.0"),
        ),
        (
            "localhost:5000/toystore:e2e",
            Some("localhost:5000 toystore e2e"),
        ),
        ("toystore:e2e", Some("- toystore e2e")),
        ("me/toystore:dev", Some("- me/toystore dev")),
        ("registry.example.com:5000/toystore", None),
        ("toystore", None),
        ("ghcr.io/toystore/toystore@sha256:abc", None),
        ("ghcr.io/Toystore/toystore:1", None),
    ];
    let body: String = cases
        .iter()
        .map(|(image, _)| format!("split_image '{image}' || echo refused\n"))
        .collect();
    let run = run_e2e_snippet(&body, &[]);
    let got: Vec<&str> = run.stdout.lines().collect();
    let want: Vec<&str> = cases.iter().map(|(_, w)| w.unwrap_or("refused")).collect();
    assert_eq!(got, want, "{}", run.output());
}

#[test]
fn e2e_expect_refused_wants_a_validation_refusal_with_the_named_field() {
    const INVALID_CLASS: &str = "The ToyStore \"shop\" is invalid: spec.orders.storage: Invalid \
                                 value: \"object\": storageClassName cannot be added or removed";
    const INVALID_NAME: &str = "The ToyStore \"my.shop\" is invalid: metadata.name: Invalid \
                                value: \"string\": a ToyStore name must be a DNS-1035 label";
    // The rule's line and, as API servers add when a schema check failed first, a path-less one.
    const NIL_PATH: &str = "The ToyStore \"my.shop\" is invalid: \\n* metadata.name: Invalid \
                            value: \"string\": a ToyStore name must be a DNS-1035 label\\n* \
                            <nil>: Invalid value: \"null\": some validation rules were not \
                            checked because the object was invalid";
    let patch = "expect_refused adding storageClassName patch toystore shop -n ns -p '{}'";
    let name = "expect_name_refused my.shop 'a dot' 'must be a DNS-1035 label'";
    for (body, rules, ok, message) in [
        (
            patch,
            vec![("* patch *", 1, INVALID_CLASS)],
            true,
            "refused as expected",
        ),
        (
            patch,
            vec![("* patch *", 0, "toystore.toystore.dev/shop patched")],
            false,
            "the API accepted it; it must refuse it",
        ),
        (
            patch,
            vec![("* patch *", 1, "Unable to connect to the server: EOF")],
            false,
            "failed, but not as a refused (invalid) spec",
        ),
        (
            patch,
            vec![("* patch *", 1, INVALID_NAME)],
            false,
            "refused, but the message does not match /storageClassName/",
        ),
        (
            name,
            vec![("* create --dry-run=server *", 1, INVALID_NAME)],
            true,
            "refused as expected",
        ),
        (
            name,
            vec![("* create --dry-run=server *", 1, NIL_PATH)],
            false,
            "carries a line without a field path (<nil>)",
        ),
        (
            name,
            vec![(
                "* create --dry-run=server *",
                0,
                "toystore.toystore.dev/my.shop created (server dry run)",
            )],
            false,
            "the API accepted it",
        ),
    ] {
        let run = run_e2e_snippet(&format!("{body}\necho passed"), &rules);
        let all = run.output();
        assert_eq!(run.stdout.contains("passed"), ok, "{body}\n{all}");
        assert!(all.contains(message), "{body}: {message}\n{all}");
        // The answer is kept for the artifacts either way.
        let kept = std::fs::read_to_string(run.artifacts.join("refused.txt")).unwrap();
        assert!(kept.contains(&rules[0].2.replace("\\n", "\n")), "{kept}");
    }
}

/// A ToyStore status as the operator writes it: 3 members (`roles`), member 2's matched index
/// `matched2`, the others at `group`, Ready as given.
fn store_status(ready: bool, healthy2: bool, matched2: i64, group: i64) -> String {
    let member = |id: i64, role: &str, healthy: bool, matched: i64| {
        json!({"id": id, "pod": format!("shop-orders-{id}"), "role": role, "healthy": healthy,
               "matchedIndex": matched})
    };
    json!({
        "metadata": {"generation": 1},
        "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                            "reason": if ready { "AllHealthy" } else { "MembersUnhealthy" }}],
            "readyOrderReplicas": 3,
            "leader": "shop-orders-0",
            "term": 2,
            "members": [
                member(0, "leader", true, group),
                member(1, "follower", true, group),
                member(2, "follower", healthy2, matched2),
            ],
        },
    })
    .to_string()
}

#[test]
fn e2e_lost_volume_recovery_needs_new_pod_new_claim_and_replication_past_the_loss() {
    const READY_POD: &str =
        r#"{"metadata":{},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#;
    let claim = |uid: &str, phase: &str| {
        format!(r#"{{"metadata":{{"uid":"{uid}"}},"status":{{"phase":"{phase}"}}}}"#)
    };
    // Member 2 lost its volume when the group was at index 100.
    let body = "if lost_volume_recovered 2 shop-orders-2 pod-old data-shop-orders-2 claim-old \
                100 100; then echo recovered; else echo waiting; fi\n\
                echo \"observed: $OBSERVED\"\necho \"seen unhealthy: $SEEN_UNHEALTHY\"";
    for (what, pod_uid, claim_json, store, want, observed) in [
        (
            "recovered",
            "pod-new",
            claim("claim-new", "Bound"),
            store_status(true, true, 240, 250),
            "recovered",
            "member 2 matched index 240, group 250, 100 before the loss",
        ),
        (
            "the old pod still",
            "pod-old",
            claim("claim-new", "Bound"),
            store_status(true, true, 240, 250),
            "waiting",
            "pod uid pod-old",
        ),
        (
            "the new claim not bound",
            "pod-new",
            claim("claim-new", "Pending"),
            store_status(true, true, 240, 250),
            "waiting",
            "claim-new Pending",
        ),
        (
            "the old claim",
            "pod-new",
            claim("claim-old", "Bound"),
            store_status(true, true, 240, 250),
            "waiting",
            "claim-old Bound",
        ),
        // The defect of issue 10: healthy and Ready, but the matched index frozen at the loss.
        (
            "replication frozen",
            "pod-new",
            claim("claim-new", "Bound"),
            store_status(true, true, 90, 400),
            "waiting",
            "member 2 matched index 90, group 400",
        ),
        (
            "far behind",
            "pod-new",
            claim("claim-new", "Bound"),
            store_status(true, true, 150, 400),
            "waiting",
            "member 2 matched index 150, group 400",
        ),
        (
            "the status says so",
            "pod-new",
            claim("claim-new", "Bound"),
            store_status(false, false, 90, 400),
            "waiting",
            "Ready=False(MembersUnhealthy)",
        ),
    ] {
        let rules = [
            ("* pod shop-orders-2 *jsonpath*", 0, pod_uid),
            ("* pod shop-orders-2 *-o json *", 0, READY_POD),
            (
                "* pvc data-shop-orders-2 *-o json *",
                0,
                claim_json.as_str(),
            ),
            ("* toystore shop *-o json *", 0, store.as_str()),
        ];
        let run = run_e2e_snippet(body, &rules);
        let all = run.output();
        assert!(run.stdout.starts_with(want), "{what}\n{all}");
        assert!(run.stdout.contains(observed), "{what}: {observed}\n{all}");
        if what == "the status says so" {
            assert!(run.stdout.contains("seen unhealthy: generation 1"), "{all}");
        }
    }
}

#[test]
fn e2e_catalog_loss_waits_for_new_ready_catalog_pods() {
    let pod = |uid: &str, ready: bool, terminating: bool| {
        json!({"metadata": {"name": format!("shop-catalog-{uid}"), "uid": uid,
                            "deletionTimestamp": terminating.then_some("2026-01-01T00:00:00Z")},
               "status": {"phase": "Running",
                          "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    };
    let pods = |items: Vec<Value>| json!({"items": items}).to_string();
    // u1 and u2 were deleted.
    for (what, n, items, want) in [
        (
            "a new pod Ready",
            1,
            vec![pod("u1", true, true), pod("u3", true, false)],
            "ready",
        ),
        (
            "only the old pods",
            1,
            vec![pod("u1", true, false), pod("u2", true, false)],
            "waiting",
        ),
        (
            "the new pod not Ready yet",
            1,
            vec![pod("u3", false, false)],
            "waiting",
        ),
        (
            "the new pod terminating",
            1,
            vec![pod("u3", true, true)],
            "waiting",
        ),
        (
            "one of two",
            2,
            vec![pod("u2", true, false), pod("u3", true, false)],
            "waiting",
        ),
        (
            "two of two",
            2,
            vec![pod("u3", true, false), pod("u4", true, false)],
            "ready",
        ),
    ] {
        let json = pods(items);
        let rules = [(
            "* pods -n ns -l *component=catalog -o json *",
            0,
            json.as_str(),
        )];
        let body = format!(
            "if catalog_pods_ready {n} 'u1 u2'; then echo ready; else echo waiting; fi\n\
             echo \"observed: $OBSERVED\""
        );
        let run = run_e2e_snippet(&body, &rules);
        let all = run.output();
        assert!(run.stdout.starts_with(want), "{what}\n{all}");
        assert!(
            run.stdout.contains("observed: pods shop-catalog-"),
            "{what}\n{all}"
        );
    }
}

#[test]
fn e2e_product_queries_wait_out_a_catalog_outage_and_fail_on_anything_else() {
    let tux = r#"{"data":{"name":"Tux","price":25.5,"quantity":3}}"#;
    let unavailable = r#"{"error":{"code":503,"message":"no catalog answers"}}"#;
    for (what, code, body, want, outage) in [
        ("answered", 200, tux, Some("answered"), ""),
        ("no catalog yet", 503, unavailable, Some("waiting"), "1"),
        ("a server error", 500, unavailable, None, ""),
        (
            "another toy",
            200,
            r#"{"data":{"name":"Whale","price":1,"quantity":1}}"#,
            None,
            "",
        ),
    ] {
        // `api` answers as the frontend would; the rest is run.sh's own.
        let snippet = format!(
            "api() {{ API_STATUS={code}; API_BODY='{body}'; }}\n\
             if product_answers Tux; then echo answered; else echo waiting; fi\n\
             echo \"outage: $SEEN_QUERY_OUTAGE\""
        );
        let run = run_e2e_snippet(&snippet, &[]);
        let all = run.output();
        match want {
            Some(want) => {
                assert!(run.stdout.starts_with(want), "{what}\n{all}");
                assert!(
                    run.stdout.contains(&format!("outage: {outage}\n")),
                    "{what}\n{all}"
                );
            }
            None => {
                assert_eq!(run.code, Some(1), "{what}\n{all}");
                assert!(
                    run.stderr.contains("FAIL: GET /products/Tux"),
                    "{what}\n{all}"
                );
            }
        }
    }
}

#[test]
fn e2e_upgrade_without_a_second_image_pins_the_running_image_by_digest() {
    let digest = "sha256:".to_string() + &"ab".repeat(32);
    let pods = |ids: &[String]| {
        let items: Vec<Value> = ids
            .iter()
            .map(|id| json!({"status": {"containerStatuses": [{"imageID": id}]}}))
            .collect();
        json!({ "items": items }).to_string()
    };
    let repo = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/toystore";
    for (ids, want) in [
        (
            vec![format!("{repo}@{digest}"); 3],
            Some(format!("{repo}@{digest}")),
        ),
        (
            vec![format!("docker-pullable://{repo}@{digest}")],
            Some(format!("{repo}@{digest}")),
        ),
        // Two different images running, or an image with no registry digest: no guess.
        (
            vec![
                format!("{repo}@{digest}"),
                format!("{repo}@sha256:{}", "cd".repeat(32)),
            ],
            None,
        ),
        (vec![digest.clone()], None),
    ] {
        let listing = pods(&ids);
        let run = run_e2e_snippet(
            "image_by_digest 2>&1",
            &[("* get * pods -n ns -l *-o json *", 0, listing.as_str())],
        );
        match want {
            Some(image) => assert_eq!(run.stdout.trim(), image, "{}", run.output()),
            None => assert!(
                run.stdout
                    .starts_with("no single registry digest in the order pods' imageIDs"),
                "{}",
                run.output()
            ),
        }
    }
}
