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

use operator::crd::ToyStore;
use operator::objects::{self, BuildInputs, OPERATOR_APP_NAME, RUN_AS};
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
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| {
            serde_yaml::with::singleton_map_recursive::deserialize::<Value, _>(d)
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

fn crd_from_crds_dir() -> Value {
    let crd = docs_of_file(&root().join("crds/toystore.yaml"));
    assert_eq!(crd.len(), 1);
    crd.into_iter().next().unwrap()
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
            let why = String::from_utf8_lossy(&out.stderr).into_owned();
            if std::env::var_os("CI").is_some() {
                panic!("tests/tools/install.sh failed under CI:\n{why}");
            }
            eprintln!(
                "skipped: Helm tools could not be installed (tests/tools/install.sh):\n{why}"
            );
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

    // The CRD is crds/toystore.yaml, with the keep policy.
    let crd = one(&docs, "CustomResourceDefinition");
    assert_eq!(crd, &crd_from_crds_dir());
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );

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
    assert_eq!(kinds[..2], ["Namespace", "CustomResourceDefinition"]);
    assert_eq!(one(&docs, "CustomResourceDefinition"), &crd_from_crds_dir());
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
    // It is also valid against the CRD's structural schema as far as required fields go.
    let crd = crd_from_crds_dir();
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
    let objects = objects::build(
        &store,
        &BuildInputs {
            order_replicas: 3,
            storage_class: None,
        },
    );
    let mut pods: Vec<_> = objects
        .stateful_sets
        .iter()
        .map(|s| s.spec.clone().unwrap().template)
        .collect();
    pods.push(objects.deployment.spec.clone().unwrap().template);
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
    match Command::new("shellcheck").arg(&script).output() {
        Ok(out) => assert!(
            out.status.success(),
            "shellcheck tests/e2e/run.sh:\n{}",
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(_) => eprintln!("skipped: shellcheck not installed (.ci/run installs it)"),
    }
}

#[test]
fn e2e_load_job_is_a_hardened_job_running_the_cli() {
    let text = std::fs::read_to_string(root().join("tests/e2e/load-job.yaml")).unwrap();
    let filled = text
        .replace("__NAME__", "load")
        .replace("__IMAGE__", "toystore:e2e")
        .replace("__DURATION__", "60");
    let doc = &docs(&filled)[0];
    let job: k8s_openapi::api::batch::v1::Job = strict(doc);
    let spec = job.spec.unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.security_context.unwrap().run_as_user, Some(RUN_AS));
    let c = &pod.containers[0];
    assert_eq!(c.command.as_deref(), Some(&["toystore".to_string()][..]));
    let args = c.args.clone().unwrap().join(" ");
    assert!(args.contains("--max-errors 0"), "{args}");
    assert!(args.contains("--url http://shop-frontend"), "{args}");
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
}
