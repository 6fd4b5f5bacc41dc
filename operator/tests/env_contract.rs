//! The environment contract between the operator and the binaries it runs.
//!
//! The operator configures every container through environment variables: the shared
//! ConfigMap (`envFrom`) and the container's own `env`. Each service reads them through the
//! clap `Args` of its `args` module (`order_replica::args`, `catalog::args`,
//! `frontend::args`), which flattens the binary's settings from `api::settings`. This test takes every container the build step produces, resolves its
//! environment as the kubelet would (the ConfigMap first, then `env`, with downward-API values
//! and `$(VAR)` expansion), and holds it against that binary's `Args`:
//! - every variable the operator writes is one the binary knows (a misspelt name fails), or a
//!   helper another value expands (`POD_NAME` in `ORDER_ADVERTISE_URL`);
//! - the environment parses (a dropped required variable, or a value the binary refuses,
//!   fails);
//! - the parsed settings are the spec's (a dropped optional variable falls back to the
//!   binary's default, and fails: the specs here differ from every default);
//! - files and directories it names lie on a volume the container mounts;
//! - each binary gets exactly the variables of [`CONTRACT`], no more (a credential the
//!   frontend must not hold, a setting nobody reads any more) and no fewer.
//!
//! Clap reads `env` values from the process environment, which a test cannot set safely
//! (tests run on parallel threads, and `std::env::set_var` is `unsafe` in edition 2024). So
//! the test turns each variable into the flag clap would fill from it, `--{long}={value}`,
//! finding the flag by its `env` name in `Args::command()`, and clears every `env` name in
//! that command so nothing leaks in from the environment the test runs in. The flag runs the
//! same value parser, delimiter and conflicts as the variable.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use api::settings::{self, CommandLine};
use clap::{CommandFactory, FromArgMatches};
use k8s_openapi::api::core::v1::{Container, PodTemplateSpec};
use operator::build::{self, BuildInputs, Component, Objects};
use operator::crd::{
    CatalogSpec, FrontendSpec, OrdersSpec, RaftSpec, StorageSpec, ToyStore, ToyStoreSpec,
};
use operator::validate::{ValidStore, validate};

/// The ordinal of the order pod whose environment is checked (any but 0, so a constant id
/// would show).
const ORDINAL: i32 = 2;

/// Every variable each binary gets, from the ConfigMap and its container's `env` together
/// (helpers such as `POD_NAME` aside). Issue 18: the catalog is stateless over the order
/// group (no data directory; the replicas' seed list and the token for the group's change
/// stream and inventory commands); the frontend holds no token; the order replicas no longer
/// call the catalog.
const CONTRACT: [(Component, &[&str]); 3] = [
    (
        Component::Orders,
        &[
            "ORDER_ID",
            "ORDER_LISTEN",
            "ORDER_ADVERTISE_URL",
            "ORDER_RAFT_LISTEN",
            "ORDER_RAFT_ADVERTISE_URL",
            "ORDER_DATA_DIR",
            "ORDER_TOKEN_FILE",
            "ORDER_HEARTBEAT_MS",
            "ORDER_ELECTION_TIMEOUT_MIN_MS",
            "ORDER_ELECTION_TIMEOUT_MAX_MS",
            "ORDER_SNAPSHOT_THRESHOLD",
            "ORDER_LOG_FORMAT",
        ],
    ),
    (
        Component::Catalog,
        &[
            "CATALOG_LISTEN",
            "CATALOG_ORDER_REPLICAS",
            "CATALOG_RESTOCK_INTERVAL_SECS",
            "CATALOG_RESTOCK_QUANTITY",
            "CATALOG_TOKEN_FILE",
            "CATALOG_LOG_FORMAT",
        ],
    ),
    (
        Component::Frontend,
        &[
            "FRONTEND_LISTEN",
            "FRONTEND_CATALOG_URL",
            "FRONTEND_ORDER_REPLICAS",
            "FRONTEND_CACHE_CAPACITY",
            "FRONTEND_ORDER_DEADLINE_MS",
            "FRONTEND_SHUTDOWN_DELAY_MS",
            "FRONTEND_LOG_FORMAT",
        ],
    ),
];

/// A store whose every setting differs from the binaries' defaults.
fn tuned() -> ToyStoreSpec {
    ToyStoreSpec {
        image: "toystore:test".into(),
        image_pull_policy: None,
        image_pull_secrets: Vec::new(),
        orders: OrdersSpec {
            replicas: 5,
            storage: StorageSpec::default(),
            resources: None,
            raft: RaftSpec {
                heartbeat_ms: 40,
                election_timeout_min_ms: 300,
                election_timeout_max_ms: 600,
                snapshot_threshold: 20_000,
            },
        },
        catalog: CatalogSpec {
            replicas: 3,
            restock_interval_seconds: 30,
            restock_quantity: 250,
            ..CatalogSpec::default()
        },
        frontend: FrontendSpec {
            cache_capacity: 5000,
            ..FrontendSpec::default()
        },
        backup: None,
        restore: None,
    }
}

fn valid(spec: ToyStoreSpec) -> ValidStore {
    let mut store = ToyStore::new("shop", spec);
    store.metadata.namespace = Some("toys".into());
    store.metadata.uid = Some("0b6b4c3e-5f0e-4a8e-9d4c-3a1f2e7d9c10".into());
    validate(&store).expect("a valid store")
}

fn built(store: &ValidStore) -> Objects {
    build::build(
        store,
        &BuildInputs {
            order_replicas: store.orders.replicas,
            storage_class: None,
        },
    )
}

/// Every pod template of a build, with the facts the kubelet gives its pod: name and ordinal
/// (a Deployment's pods have none).
fn pods(store: &ValidStore, objects: &Objects) -> Vec<(PodTemplateSpec, String, Option<i32>)> {
    let mut pods = vec![(
        objects.stateful_set.spec.clone().unwrap().template,
        build::order_pod_name(&store.name, ORDINAL),
        Some(ORDINAL),
    )];
    for deployment in &objects.deployments {
        let name = deployment.metadata.name.clone().unwrap();
        pods.push((
            deployment.spec.clone().unwrap().template,
            format!("{name}-5d9c7-x2x4q"),
            None,
        ));
    }
    pods
}

/// Where a variable of a container's environment came from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Source {
    ConfigMap,
    Env,
}

/// The environment of `container` in pod `pod` (ordinal `ordinal`), resolved as the kubelet
/// does: `envFrom` first, then `env` in order, each `$(VAR)` expanded from what came before.
fn environment(
    store: &ValidStore,
    objects: &Objects,
    container: &Container,
    pod: &str,
    ordinal: Option<i32>,
    problems: &mut Vec<String>,
) -> BTreeMap<String, (String, Source)> {
    let mut env = BTreeMap::new();
    for source in container.env_from.iter().flatten() {
        let map = source
            .config_map_ref
            .as_ref()
            .expect("envFrom names a ConfigMap (teach this test other sources)");
        if Some(&map.name) != objects.config_map.metadata.name.as_ref() {
            problems.push(format!("envFrom names ConfigMap {}, not built", map.name));
            continue;
        }
        for (key, value) in objects.config_map.data.iter().flatten() {
            env.insert(key.clone(), (value.clone(), Source::ConfigMap));
        }
    }
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), None) => expand(value, &env),
            (None, Some(from)) => {
                let field = &from
                    .field_ref
                    .as_ref()
                    .expect("valueFrom is a fieldRef (teach this test other sources)")
                    .field_path;
                match field.as_str() {
                    "metadata.name" => pod.to_string(),
                    "metadata.namespace" => store.namespace.clone(),
                    "metadata.labels['apps.kubernetes.io/pod-index']" => match ordinal {
                        Some(ordinal) => ordinal.to_string(),
                        None => {
                            problems.push(format!("{}: a Deployment pod has no index", var.name));
                            continue;
                        }
                    },
                    other => panic!("fieldRef {other}: teach this test its value"),
                }
            }
            _ => panic!("{}: neither a value nor a fieldRef", var.name),
        };
        env.insert(var.name.clone(), (value, Source::Env));
    }
    env
}

/// `$(NAME)` replaced by the value of `NAME` where it is defined; left as it is otherwise, as
/// the kubelet does.
fn expand(value: &str, env: &BTreeMap<String, (String, Source)>) -> String {
    env.iter().fold(value.to_string(), |value, (name, (v, _))| {
        value.replace(&format!("$({name})"), v)
    })
}

/// The variables (without a component's prefix) that other values of `container` expand.
fn helpers(container: &Container) -> Vec<String> {
    let values: Vec<&String> = container
        .env
        .iter()
        .flatten()
        .filter_map(|v| v.value.as_ref())
        .collect();
    container
        .env
        .iter()
        .flatten()
        .map(|v| v.name.clone())
        .filter(|name| values.iter().any(|v| v.contains(&format!("$({name})"))))
        .collect()
}

/// `A`'s `env` names, each with the long flag it fills.
fn env_flags<A: CommandFactory>() -> BTreeMap<String, String> {
    A::command()
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_str()?.to_string();
            let long = arg
                .get_long()
                .unwrap_or_else(|| panic!("{env}: an env-backed argument without a long flag"));
            assert!(
                arg.get_action().takes_values(),
                "{env}: a flag without a value; teach this test clap's reading of it"
            );
            Some((env, long.to_string()))
        })
        .collect()
}

/// `env` parsed by `A` as if every variable in it were set: each turned into its flag, and
/// the command cut off from the process environment.
fn parse<A: CommandFactory + FromArgMatches>(
    binary: &str,
    env: &BTreeMap<String, String>,
) -> Result<A, clap::Error> {
    let flags = env_flags::<A>();
    let mut argv = vec![binary.to_string()];
    for (name, value) in env {
        let long = flags.get(name).expect("only known variables are parsed");
        argv.push(format!("--{long}={value}"));
    }
    let command = A::command().mut_args(|arg| arg.env(None));
    let matches = command.try_get_matches_from(argv)?;
    A::from_arg_matches(&matches)
}

/// The variables `component`'s binary knows.
fn known(component: Component) -> BTreeMap<String, String> {
    match component {
        Component::Orders => env_flags::<order_replica::args::Args>(),
        Component::Catalog => env_flags::<catalog::args::Args>(),
        Component::Frontend => env_flags::<frontend::args::Args>(),
    }
}

/// What the names of `component`'s variables start with.
fn env_prefix(component: Component) -> String {
    match component {
        Component::Orders => settings::OrderReplica::env_prefix(),
        Component::Catalog => settings::Catalog::env_prefix(),
        Component::Frontend => settings::Frontend::env_prefix(),
    }
}

/// The component whose prefix `name` carries.
fn owner(name: &str) -> Option<Component> {
    Component::ALL
        .into_iter()
        .find(|c| name.starts_with(&env_prefix(*c)))
}

/// A setting the binary's parser always fills in (required, or with a default).
fn parsed<T>(value: Option<T>) -> T {
    value.expect("the parser fills in every required or defaulted setting")
}

/// Whether `path` lies on a volume `container` mounts.
fn mounted(container: &Container, path: &Path) -> bool {
    container
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| path.starts_with(&m.mount_path))
}

/// Records a problem when `actual` differs from `expected`.
fn same<T: PartialEq + std::fmt::Debug>(
    problems: &mut Vec<String>,
    what: &str,
    actual: T,
    expected: T,
) {
    if actual != expected {
        problems.push(format!("{what} is {actual:?}, the spec says {expected:?}"));
    }
}

/// Records a problem unless `path` is set and lies on a mounted volume.
fn on_volume(problems: &mut Vec<String>, what: &str, container: &Container, path: Option<&Path>) {
    match path {
        Some(path) if mounted(container, path) => {}
        Some(path) => problems.push(format!("{what} {} is on no mounted volume", path.display())),
        None => problems.push(format!("{what} is not set")),
    }
}

fn listen(component: Component) -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], component.port() as u16))
}

/// The settings an order replica parsed, against the spec.
fn check_orders(
    store: &ValidStore,
    container: &Container,
    args: order_replica::args::Args,
) -> Vec<String> {
    let args = args.settings;
    let mut p = Vec::new();
    let orders = &store.orders;
    same(&mut p, "ORDER_ID", parsed(args.id), ORDINAL as u64);
    same(
        &mut p,
        "ORDER_LISTEN",
        parsed(args.listen),
        listen(Component::Orders),
    );
    same(
        &mut p,
        "ORDER_ADVERTISE_URL",
        args.advertise_url,
        Some(build::order_replica_url(
            &store.name,
            &store.namespace,
            ORDINAL,
        )),
    );
    on_volume(
        &mut p,
        "ORDER_DATA_DIR",
        container,
        args.data_dir.as_deref(),
    );
    same(&mut p, "ORDER_TOKEN", args.token, None);
    on_volume(
        &mut p,
        "ORDER_TOKEN_FILE",
        container,
        args.token_file.as_deref(),
    );
    same(
        &mut p,
        "ORDER_HEARTBEAT_MS",
        parsed(args.heartbeat_ms),
        orders.heartbeat_ms,
    );
    same(
        &mut p,
        "ORDER_ELECTION_TIMEOUT_MIN_MS",
        parsed(args.election_timeout_min_ms),
        orders.election_timeout_min_ms,
    );
    same(
        &mut p,
        "ORDER_ELECTION_TIMEOUT_MAX_MS",
        parsed(args.election_timeout_max_ms),
        orders.election_timeout_max_ms,
    );
    same(
        &mut p,
        "ORDER_SNAPSHOT_THRESHOLD",
        parsed(args.snapshot_threshold),
        orders.snapshot_threshold,
    );
    same(
        &mut p,
        "ORDER_LOG_FORMAT",
        parsed(args.log_format).as_str(),
        "json",
    );
    p
}

/// The seed list of the order replicas: the declared size's client URLs.
fn seeds(store: &ValidStore) -> Vec<String> {
    (0..store.orders.replicas)
        .map(|i| build::order_replica_url(&store.name, &store.namespace, i))
        .collect()
}

/// The settings the catalog parsed, against the spec.
fn check_catalog(
    store: &ValidStore,
    container: &Container,
    args: catalog::args::Args,
) -> Vec<String> {
    let args = args.settings;
    let mut p = Vec::new();
    let catalog = &store.catalog;
    same(
        &mut p,
        "CATALOG_LISTEN",
        parsed(args.listen),
        listen(Component::Catalog),
    );
    // The same seeds as the frontends'.
    same(
        &mut p,
        "CATALOG_ORDER_REPLICAS",
        args.order_replicas,
        seeds(store),
    );
    same(&mut p, "CATALOG_PRODUCTS", args.products, None::<PathBuf>);
    same(&mut p, "CATALOG_TOKEN", args.token, None);
    on_volume(
        &mut p,
        "CATALOG_TOKEN_FILE",
        container,
        args.token_file.as_deref(),
    );
    same(
        &mut p,
        "CATALOG_RESTOCK_INTERVAL_SECS",
        parsed(args.restock_interval_secs),
        f64::from(catalog.restock_interval_seconds),
    );
    same(
        &mut p,
        "CATALOG_RESTOCK_QUANTITY",
        parsed(args.restock_quantity),
        catalog.restock_quantity,
    );
    same(
        &mut p,
        "CATALOG_LOG_FORMAT",
        parsed(args.log_format).as_str(),
        "json",
    );
    p
}

/// The settings a frontend parsed, against the spec.
fn check_frontend(
    store: &ValidStore,
    container: &Container,
    args: frontend::args::Args,
) -> Vec<String> {
    let args = args.settings;
    let mut p = Vec::new();
    same(
        &mut p,
        "FRONTEND_LISTEN",
        parsed(args.listen),
        listen(Component::Frontend),
    );
    same(
        &mut p,
        "FRONTEND_CATALOG_URL",
        args.catalog_url,
        vec![build::catalog_url(&store.name, &store.namespace)],
    );
    same(
        &mut p,
        "FRONTEND_ORDER_REPLICAS",
        args.order_replicas,
        seeds(store),
    );
    // No token, nothing mounted: the frontend finds the leader through a public endpoint.
    same(
        &mut p,
        "FRONTEND volumes",
        container.volume_mounts.as_ref(),
        None,
    );
    same(
        &mut p,
        "FRONTEND_CACHE_CAPACITY",
        parsed(args.cache_capacity) as u64,
        store.frontend.cache_capacity,
    );
    same(
        &mut p,
        "FRONTEND_ORDER_DEADLINE_MS",
        parsed(args.order_deadline_ms),
        build::config::FRONTEND_ORDER_DEADLINE_MS,
    );
    // Drains before stopping in a cluster (local mode stops at once, the default).
    same(
        &mut p,
        "FRONTEND_SHUTDOWN_DELAY_MS",
        parsed(args.shutdown_delay_ms) > 0,
        true,
    );
    same(
        &mut p,
        "FRONTEND_LOG_FORMAT",
        parsed(args.log_format).as_str(),
        "json",
    );
    p
}

/// `env` (the variables of `component`'s binary) parsed by its `Args` and checked against the
/// spec.
fn parse_and_check(
    store: &ValidStore,
    component: Component,
    container: &Container,
    env: &BTreeMap<String, String>,
) -> Vec<String> {
    let binary = component.binary();
    let refused = |e: clap::Error| vec![format!("{binary} refuses its environment: {e}")];
    match component {
        Component::Orders => {
            parse(binary, env).map_or_else(refused, |args| check_orders(store, container, args))
        }
        Component::Catalog => {
            parse(binary, env).map_or_else(refused, |args| check_catalog(store, container, args))
        }
        Component::Frontend => {
            parse(binary, env).map_or_else(refused, |args| check_frontend(store, container, args))
        }
    }
}

/// Every way `objects` break the contract with the binaries, each a sentence.
fn contract_problems(store: &ValidStore, objects: &Objects) -> Vec<String> {
    let mut problems = Vec::new();
    // Every setting in the ConfigMap is for a binary that knows it.
    for key in objects.config_map.data.iter().flatten().map(|(k, _)| k) {
        match owner(key) {
            Some(component) if known(component).contains_key(key) => {}
            Some(component) => problems.push(format!(
                "ConfigMap: {} does not know {key}",
                component.binary()
            )),
            None => problems.push(format!("ConfigMap: {key} is for no binary")),
        }
    }
    for (template, pod, ordinal) in pods(store, objects) {
        for container in &template.spec.expect("a pod spec").containers {
            let binary = container.command.as_ref().expect("a command")[0].clone();
            let component = Component::ALL
                .into_iter()
                .find(|c| c.binary() == binary)
                .unwrap_or_else(|| panic!("{binary}: no service's Args to check it against"));
            let mut within = Vec::new();
            let env = environment(store, objects, container, &pod, ordinal, &mut within);
            let known = known(component);
            let helpers = helpers(container);
            let mut own = BTreeMap::new();
            let contract: BTreeSet<&str> = CONTRACT
                .iter()
                .find(|(c, _)| *c == component)
                .map(|(_, names)| names.iter().copied().collect())
                .expect("every component has a contract");
            for name in &contract {
                if !env.contains_key(*name) {
                    within.push(format!("{name} is not set"));
                }
            }
            for (name, (value, source)) in env {
                if value.contains("$(") {
                    within.push(format!("{name}={value} expands a variable that is not set"));
                }
                if known.contains_key(&name) {
                    if !contract.contains(name.as_str()) {
                        within.push(format!("{name} is set, and not in the contract"));
                    }
                    own.insert(name, value);
                } else if source == Source::ConfigMap && owner(&name) != Some(component) {
                    // Another binary's setting from the shared ConfigMap, checked above.
                } else if !helpers.contains(&name) {
                    within.push(format!("{name} is unknown to {binary}"));
                }
            }
            within.extend(parse_and_check(store, component, container, &own));
            problems.extend(within.into_iter().map(|p| format!("{binary}: {p}")));
        }
    }
    problems
}

#[test]
fn every_variable_the_operator_writes_parses_into_the_spec() {
    for spec in [tuned(), valid_defaults()] {
        let store = valid(spec);
        let problems = contract_problems(&store, &built(&store));
        assert!(problems.is_empty(), "{problems:#?}");
    }
}

fn valid_defaults() -> ToyStoreSpec {
    serde_json::from_value(serde_json::json!({"image": "toystore:test"})).unwrap()
}

/// The contract problems of `store`'s objects once `change` has edited their ConfigMap.
fn problems_after(
    store: &ValidStore,
    change: impl FnOnce(&mut BTreeMap<String, String>),
) -> String {
    let mut objects = built(store);
    change(
        objects
            .config_map
            .data
            .as_mut()
            .expect("the ConfigMap has data"),
    );
    contract_problems(store, &objects).join("\n")
}

#[test]
fn a_misspelt_or_dropped_variable_fails() {
    let store = valid(tuned());

    // A misspelt setting: unknown to the binary, and the real one missing.
    let problems = problems_after(&store, |data| {
        let threshold = data.remove("ORDER_SNAPSHOT_THRESHOLD").unwrap();
        data.insert("ORDER_SNAPSHOT_THRESHOLDS".into(), threshold);
    });
    assert!(
        problems.contains("does not know ORDER_SNAPSHOT_THRESHOLDS"),
        "{problems}"
    );
    assert!(
        problems.contains("ORDER_SNAPSHOT_THRESHOLD is not set"),
        "{problems}"
    );
    assert!(
        problems.contains("ORDER_SNAPSHOT_THRESHOLD is 5000, the spec says 20000"),
        "{problems}"
    );

    // A dropped setting with a default: the binary starts, but not with the spec's value.
    let problems = problems_after(&store, |data| {
        data.remove("CATALOG_RESTOCK_QUANTITY");
    });
    assert!(
        problems.contains("CATALOG_RESTOCK_QUANTITY is 100, the spec says 250"),
        "{problems}"
    );

    // A dropped required setting: the binary refuses to start.
    let problems = problems_after(&store, |data| {
        data.remove("FRONTEND_ORDER_REPLICAS");
    });
    assert!(
        problems.contains("frontend refuses its environment"),
        "{problems}"
    );

    // The catalog without the group's seed list cannot read the inventory.
    let problems = problems_after(&store, |data| {
        data.remove("CATALOG_ORDER_REPLICAS");
    });
    assert!(
        problems.contains("catalog: CATALOG_ORDER_REPLICAS is not set"),
        "{problems}"
    );
}

#[test]
fn a_setting_outside_the_contract_fails() {
    let store = valid(tuned());
    // Gone with issue 18: the frontend holds no token, the catalog no data, the replicas
    // call no catalog.
    for (key, value) in [
        ("FRONTEND_ORDER_TOKEN_FILE", "/var/run/toystore/token"),
        ("CATALOG_DATA_DIR", "/data"),
        ("ORDER_CATALOG_URL", "http://shop-catalog.toys.svc:7100"),
    ] {
        let problems = problems_after(&store, |data| {
            data.insert(key.into(), value.into());
        });
        assert!(problems.contains(key), "{key}: {problems}");
    }
}
