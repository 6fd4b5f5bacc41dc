//! The settings each service binary starts with, written once: the flags and environment
//! variables of `order-replica` ([`OrderReplica`], `ORDER_*`), `catalog` ([`Catalog`],
//! `CATALOG_*`) and `frontend` ([`Frontend`], `FRONTEND_*`).
//!
//! Three programs deal in them. The binary parses them: its parser flattens the struct. The
//! operator writes them as environment variables (the store's ConfigMap and each container's
//! `env`), and the launcher as command-line flags. Each struct is a clap [`clap::Args`] whose
//! attributes name every flag and variable once; [`CommandLine::to_env`] and
//! [`CommandLine::to_args`] turn a value back into variables or flags by reading clap's own
//! description of the struct, so no name is spelled a second time and a writer cannot drift
//! from the parser.
//!
//! A field is `None` (a list is empty) when it is not given, and the binary then takes the
//! default `--help` shows (the `DEFAULT_*` constants). So each writer states only what it
//! sets: the operator leaves the log retention of a replica to the binary, for instance, and
//! splits a binary's settings into the ones every pod shares (the ConfigMap) and the ones of
//! one pod (its `env`) by building two values. Parsed by the binary, a field with a default
//! is always `Some`.
//!
//! This crate is the home because every binary, the operator and the launcher depend on it
//! already, and the operator must not depend on the services (which pull in openraft and
//! redb).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Arg, Args, Command};
use serde::Serialize;
use serde_json::Value;

/// A default as the `&'static str` clap shows in `--help` and parses when the setting is not
/// given; computed once, from the typed constant, so the value is written only there.
macro_rules! default_text {
    ($value:expr) => {{
        static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        TEXT.get_or_init(|| $value.to_string()).as_str()
    }};
}

/// The log formats every binary writes.
const LOG_FORMATS: [&str; 2] = ["text", "json"];

/// The settings of one order replica (`order-replica`).
#[derive(Debug, Clone, Default, PartialEq, Args, Serialize)]
pub struct OrderReplica {
    /// Raft node id of this replica; stable for its whole life.
    #[arg(long, env = "ORDER_ID", required = true)]
    pub id: Option<u64>,
    /// Address to listen on for clients, peers and admin calls.
    #[arg(long, env = "ORDER_LISTEN", default_value = default_text!(Self::DEFAULT_LISTEN))]
    pub listen: Option<SocketAddr>,
    /// URL peers and clients reach this replica at (default: http://<listen>).
    #[arg(long, env = "ORDER_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// Address of a separate listener for Raft RPC from the other replicas (default: Raft RPC
    /// shares `--listen`). With it, client connections cannot starve the group's own traffic.
    #[arg(long, env = "ORDER_RAFT_LISTEN")]
    pub raft_listen: Option<SocketAddr>,
    /// URL the other replicas reach the Raft listener at (default: `http://` + `--raft-listen`).
    #[arg(long, env = "ORDER_RAFT_ADVERTISE_URL", requires = "raft_listen")]
    pub raft_advertise_url: Option<String>,
    /// Directory for the Raft log, state machine and snapshots.
    #[arg(long, env = "ORDER_DATA_DIR", required = true)]
    pub data_dir: Option<PathBuf>,
    /// Cluster token required on Raft RPC and admin calls.
    #[arg(
        long,
        env = "ORDER_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// File holding the cluster token (e.g. a mounted Kubernetes Secret).
    #[arg(long, env = "ORDER_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Leader heartbeat interval, milliseconds.
    #[arg(long, env = "ORDER_HEARTBEAT_MS",
          default_value = default_text!(Self::DEFAULT_HEARTBEAT_MS))]
    pub heartbeat_ms: Option<u64>,
    /// Minimum election timeout, milliseconds.
    #[arg(long, env = "ORDER_ELECTION_TIMEOUT_MIN_MS",
          default_value = default_text!(Self::DEFAULT_ELECTION_TIMEOUT_MIN_MS))]
    pub election_timeout_min_ms: Option<u64>,
    /// Maximum election timeout, milliseconds.
    #[arg(long, env = "ORDER_ELECTION_TIMEOUT_MAX_MS",
          default_value = default_text!(Self::DEFAULT_ELECTION_TIMEOUT_MAX_MS))]
    pub election_timeout_max_ms: Option<u64>,
    /// Build a snapshot and compact the log after this many new entries.
    #[arg(long, env = "ORDER_SNAPSHOT_THRESHOLD",
          default_value = default_text!(Self::DEFAULT_SNAPSHOT_THRESHOLD))]
    pub snapshot_threshold: Option<u64>,
    /// Entries kept in the log behind a snapshot.
    #[arg(long, env = "ORDER_LOGS_TO_KEEP",
          default_value = default_text!(Self::DEFAULT_LOGS_TO_KEEP))]
    pub logs_to_keep: Option<u64>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "ORDER_LOG_FORMAT", default_value = DEFAULT_LOG_FORMAT,
          value_parser = LOG_FORMATS)]
    pub log_format: Option<String>,
}

impl OrderReplica {
    /// Where a replica listens when `--listen` is not given.
    pub const DEFAULT_LISTEN: SocketAddr = loopback(7000);
    /// The leader's heartbeat interval, milliseconds.
    pub const DEFAULT_HEARTBEAT_MS: u64 = 50;
    /// The lower bound of the randomized election timeout, milliseconds.
    pub const DEFAULT_ELECTION_TIMEOUT_MIN_MS: u64 = 150;
    /// The upper bound of the randomized election timeout, milliseconds.
    pub const DEFAULT_ELECTION_TIMEOUT_MAX_MS: u64 = 300;
    /// New log entries between snapshots.
    pub const DEFAULT_SNAPSHOT_THRESHOLD: u64 = 5000;
    /// Entries kept behind a snapshot, so a follower slightly behind needs no snapshot.
    pub const DEFAULT_LOGS_TO_KEEP: u64 = 1000;
}

/// The settings of a catalog (`catalog`).
#[derive(Debug, Clone, Default, PartialEq, Args, Serialize)]
pub struct Catalog {
    /// Address to listen on.
    #[arg(long, env = "CATALOG_LISTEN", default_value = default_text!(Self::DEFAULT_LISTEN))]
    pub listen: Option<SocketAddr>,
    /// Seed list of order replica URLs, comma-separated; the rest is learned.
    #[arg(
        long,
        env = "CATALOG_ORDER_REPLICAS",
        value_delimiter = ',',
        required = true
    )]
    pub order_replicas: Vec<String>,
    /// JSON array of {"name", "price", "quantity"} defining the toys at a store's first start
    /// only (default: twelve built-in toys, each with its own price and stock).
    #[arg(long, env = "CATALOG_PRODUCTS")]
    pub products: Option<PathBuf>,
    /// Seconds between restock rounds (fractions allowed).
    #[arg(long, env = "CATALOG_RESTOCK_INTERVAL_SECS",
          default_value = default_text!(Self::DEFAULT_RESTOCK_INTERVAL_SECS),
          value_parser = parse_interval)]
    pub restock_interval_secs: Option<f64>,
    /// Stock a sold-out toy is restocked to.
    #[arg(long, env = "CATALOG_RESTOCK_QUANTITY",
          default_value = default_text!(Self::DEFAULT_RESTOCK_QUANTITY),
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub restock_quantity: Option<u32>,
    /// The cluster token: the order group's change stream and inventory commands need it.
    #[arg(long, env = "CATALOG_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the cluster token (e.g. a mounted Secret); used when --token is not given.
    #[arg(long, env = "CATALOG_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "CATALOG_LOG_FORMAT", default_value = DEFAULT_LOG_FORMAT,
          value_parser = LOG_FORMATS)]
    pub log_format: Option<String>,
}

impl Catalog {
    /// Where a catalog listens when `--listen` is not given.
    pub const DEFAULT_LISTEN: SocketAddr = loopback(7100);
    /// Seconds between restock rounds.
    pub const DEFAULT_RESTOCK_INTERVAL_SECS: f64 = 10.0;
    /// Stock a sold-out toy is restocked to.
    pub const DEFAULT_RESTOCK_QUANTITY: u32 = 100;
}

/// The settings of a frontend (`frontend`).
#[derive(Debug, Clone, Default, PartialEq, Args, Serialize)]
pub struct Frontend {
    /// Address to listen on.
    #[arg(long, env = "FRONTEND_LISTEN", default_value = default_text!(Self::DEFAULT_LISTEN))]
    pub listen: Option<SocketAddr>,
    /// The catalog's base URL (in Kubernetes its Service), or several replicas' URLs,
    /// comma-separated, read in turn.
    #[arg(
        long,
        env = "FRONTEND_CATALOG_URL",
        value_delimiter = ',',
        required = true
    )]
    pub catalog_url: Vec<String>,
    /// Seed list of order replica URLs, comma-separated; the rest is learned.
    #[arg(
        long,
        env = "FRONTEND_ORDER_REPLICAS",
        value_delimiter = ',',
        required = true
    )]
    pub order_replicas: Vec<String>,
    /// Product cache capacity (entries); 0 turns the cache off.
    #[arg(long, env = "FRONTEND_CACHE_CAPACITY",
          default_value = default_text!(Self::DEFAULT_CACHE_CAPACITY))]
    pub cache_capacity: Option<usize>,
    /// Deadline for placing an order, retries included, in milliseconds.
    #[arg(long, env = "FRONTEND_ORDER_DEADLINE_MS",
          default_value = default_text!(Self::DEFAULT_ORDER_DEADLINE_MS))]
    pub order_deadline_ms: Option<u64>,
    /// On SIGTERM, keep serving this long (milliseconds) with /readyz failing before shutting
    /// down, so a load balancer or Service stops sending clients first. The operator sets it;
    /// 0 (local mode) stops at once.
    #[arg(long, env = "FRONTEND_SHUTDOWN_DELAY_MS",
          default_value = default_text!(Self::DEFAULT_SHUTDOWN_DELAY_MS))]
    pub shutdown_delay_ms: Option<u64>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "FRONTEND_LOG_FORMAT", default_value = DEFAULT_LOG_FORMAT,
          value_parser = LOG_FORMATS)]
    pub log_format: Option<String>,
}

impl Frontend {
    /// Where a frontend listens when `--listen` is not given.
    pub const DEFAULT_LISTEN: SocketAddr = loopback(8080);
    /// Product cache entries.
    pub const DEFAULT_CACHE_CAPACITY: usize = 1000;
    /// How long a purchase may take, retries across leader changes included, milliseconds.
    pub const DEFAULT_ORDER_DEADLINE_MS: u64 = 10_000;
    /// Serving on, unready, after SIGTERM: none.
    pub const DEFAULT_SHUTDOWN_DELAY_MS: u64 = 0;
}

/// The log format of every binary when none is given.
pub const DEFAULT_LOG_FORMAT: &str = LOG_FORMATS[0];

/// `127.0.0.1:port`.
const fn loopback(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

/// Accepts a positive, finite number of seconds up to one day.
fn parse_interval(s: &str) -> Result<f64, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "must be more than 0 and at most 86400 seconds, got {s}"
        ));
    }
    Ok(secs)
}

/// A binary's settings as clap describes them, and turned back into what clap parses.
///
/// Every setting has a long flag and an environment variable, and takes a value.
pub trait CommandLine: Args + Serialize {
    /// Every setting that is given, as `(variable, value)`, in the order the struct declares
    /// them.
    fn to_env(&self) -> Vec<(String, String)> {
        given(self)
            .into_iter()
            .map(|(arg, value)| (env_name(&arg), value))
            .collect()
    }

    /// Every setting that is given, as `--flag=value`, in the order the struct declares them.
    fn to_args(&self) -> Vec<String> {
        given(self)
            .into_iter()
            .map(|(arg, value)| format!("--{}={value}", long_name(&arg)))
            .collect()
    }

    /// The environment variable of the field `field` (its name in the struct).
    ///
    /// # Panics
    /// If the struct has no such field.
    fn env_var(field: &str) -> String {
        arguments::<Self>()
            .iter()
            .find(|arg| arg.get_id() == field)
            .map(env_name)
            .unwrap_or_else(|| panic!("no setting {field}"))
    }

    /// What the names of every variable of this binary start with, up to the first `_`
    /// (`ORDER_`).
    fn env_prefix() -> String {
        let names: Vec<String> = arguments::<Self>().iter().map(env_name).collect();
        let first = names.first().expect("a binary has settings");
        let prefix = &first[..=first.find('_').expect("variables are PREFIX_NAME")];
        assert!(
            names.iter().all(|n| n.starts_with(prefix)),
            "every variable of a binary starts with {prefix}: {names:?}"
        );
        prefix.to_string()
    }
}

impl CommandLine for OrderReplica {}
impl CommandLine for Catalog {}
impl CommandLine for Frontend {}

/// The arguments of `S`, as clap builds them from its derive.
fn arguments<S: Args>() -> Vec<Arg> {
    S::augment_args(Command::new("settings"))
        .get_arguments()
        .cloned()
        .collect()
}

fn env_name(arg: &Arg) -> String {
    arg.get_env()
        .and_then(|env| env.to_str())
        .unwrap_or_else(|| panic!("setting {} has no environment variable", arg.get_id()))
        .to_string()
}

fn long_name(arg: &Arg) -> &str {
    arg.get_long()
        .unwrap_or_else(|| panic!("setting {} has no long flag", arg.get_id()))
}

/// The given settings of `settings`, each with its argument and its value as clap parses it.
fn given<S: CommandLine>(settings: &S) -> Vec<(Arg, String)> {
    let Value::Object(fields) = serde_json::to_value(settings).expect("settings serialize") else {
        panic!("settings serialize as a struct");
    };
    arguments::<S>()
        .into_iter()
        .filter_map(|arg| {
            let value = fields.get(arg.get_id().as_str())?;
            let text = text(value, arg.get_value_delimiter())?;
            Some((arg, text))
        })
        .collect()
}

/// `value` as clap parses it, or `None` when it is not given (`None`, an empty list).
fn text(value: &Value, delimiter: Option<char>) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        // Integers as integers; a float as Rust writes it (`10`, `0.5`), as clap reads it back.
        Value::Number(n) => Some(match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u.to_string(),
            (None, Some(i), _) => i.to_string(),
            (None, None, Some(f)) => f.to_string(),
            (None, None, None) => n.to_string(),
        }),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) => {
            let delimiter = delimiter.expect("a list setting has a value delimiter");
            let texts: Vec<String> = items.iter().filter_map(|v| text(v, None)).collect();
            Some(texts.join(&delimiter.to_string()))
        }
        Value::Object(_) => panic!("settings are flat: {value}"),
    }
}

#[cfg(test)]
mod tests {
    use clap::{FromArgMatches, Parser};

    use super::*;

    /// A binary's parser: the settings flattened, as each binary does.
    #[derive(Debug, Parser)]
    struct Binary<S: Args> {
        #[command(flatten)]
        settings: S,
    }

    /// `args` parsed as a binary would, cut off from the process environment.
    fn parse<S: Args + FromArgMatches>(args: &[String]) -> Result<S, clap::Error> {
        let command = S::augment_args(Command::new("binary")).mut_args(|arg| arg.env(None));
        let argv = std::iter::once("binary".to_string()).chain(args.iter().cloned());
        S::from_arg_matches(&command.try_get_matches_from(argv)?)
    }

    fn replica() -> OrderReplica {
        OrderReplica {
            id: Some(3),
            listen: Some("0.0.0.0:7000".parse().unwrap()),
            advertise_url: Some("http://r3:7000".into()),
            raft_listen: Some("0.0.0.0:7001".parse().unwrap()),
            raft_advertise_url: Some("http://r3:7001".into()),
            data_dir: Some("/data".into()),
            token: None,
            token_file: Some("/var/run/toystore/token".into()),
            heartbeat_ms: Some(40),
            election_timeout_min_ms: Some(300),
            election_timeout_max_ms: Some(600),
            snapshot_threshold: Some(20_000),
            logs_to_keep: Some(10),
            log_format: Some("json".into()),
        }
    }

    fn catalog() -> Catalog {
        Catalog {
            listen: Some("0.0.0.0:7100".parse().unwrap()),
            order_replicas: vec!["http://a:7000".into(), "http://b:7000".into()],
            products: Some("/toys.json".into()),
            restock_interval_secs: Some(0.5),
            restock_quantity: Some(250),
            token: Some("s3cret".into()),
            token_file: None,
            log_format: Some("text".into()),
        }
    }

    fn frontend() -> Frontend {
        Frontend {
            listen: Some("0.0.0.0:8080".parse().unwrap()),
            catalog_url: vec!["http://c:7100".into()],
            order_replicas: vec!["http://a:7000".into()],
            cache_capacity: Some(0),
            order_deadline_ms: Some(2500),
            shutdown_delay_ms: Some(5000),
            log_format: Some("json".into()),
        }
    }

    #[test]
    fn every_setting_has_a_flag_a_variable_and_a_field() {
        fn check<S: CommandLine>(value: &S) {
            let Value::Object(fields) = serde_json::to_value(value).unwrap() else {
                panic!("a struct");
            };
            let ids: Vec<String> = arguments::<S>()
                .iter()
                .map(|arg| {
                    long_name(arg);
                    env_name(arg);
                    assert!(arg.get_action().takes_values(), "{}", arg.get_id());
                    arg.get_id().to_string()
                })
                .collect();
            let names: Vec<&String> = fields.keys().collect();
            assert_eq!(names.len(), ids.len(), "{names:?} {ids:?}");
            assert!(ids.iter().all(|id| fields.contains_key(id)), "{ids:?}");
        }
        check(&replica());
        check(&catalog());
        check(&frontend());
    }

    #[test]
    fn given_settings_parse_back_from_flags_and_from_variables() {
        fn round_trip<S: CommandLine + FromArgMatches + PartialEq + std::fmt::Debug>(value: S) {
            assert_eq!(parse::<S>(&value.to_args()).unwrap(), value);
            // The variables, as the flags clap fills from them.
            let by_env: std::collections::BTreeMap<String, String> = arguments::<S>()
                .iter()
                .map(|arg| (env_name(arg), long_name(arg).to_string()))
                .collect();
            let args: Vec<String> = value
                .to_env()
                .into_iter()
                .map(|(name, v)| format!("--{}={v}", by_env[&name]))
                .collect();
            assert_eq!(parse::<S>(&args).unwrap(), value);
        }
        round_trip(replica());
        round_trip(catalog());
        round_trip(frontend());
    }

    #[test]
    fn only_given_settings_are_written_in_declaration_order_as_the_operator_writes_them() {
        let shared = OrderReplica {
            heartbeat_ms: Some(100),
            snapshot_threshold: Some(5000),
            log_format: Some("json".into()),
            ..OrderReplica::default()
        };
        assert_eq!(
            shared.to_env(),
            [
                ("ORDER_HEARTBEAT_MS", "100"),
                ("ORDER_SNAPSHOT_THRESHOLD", "5000"),
                ("ORDER_LOG_FORMAT", "json"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let restock = Catalog {
            order_replicas: vec!["http://a:7000".into(), "http://b:7000".into()],
            restock_interval_secs: Some(10.0),
            ..Catalog::default()
        };
        assert_eq!(
            restock.to_args(),
            [
                "--order-replicas=http://a:7000,http://b:7000",
                "--restock-interval-secs=10",
            ]
        );
        assert!(Frontend::default().to_env().is_empty());
    }

    #[test]
    fn unset_settings_take_the_defaults_help_shows() {
        let parsed: OrderReplica =
            parse(&["--id=1".to_string(), "--data-dir=/d".to_string()]).unwrap();
        assert_eq!(parsed.listen, Some(OrderReplica::DEFAULT_LISTEN));
        assert_eq!(
            parsed.heartbeat_ms,
            Some(OrderReplica::DEFAULT_HEARTBEAT_MS)
        );
        assert_eq!(
            parsed.logs_to_keep,
            Some(OrderReplica::DEFAULT_LOGS_TO_KEEP)
        );
        assert_eq!(parsed.log_format.as_deref(), Some(DEFAULT_LOG_FORMAT));
        let parsed: Catalog = parse(&["--order-replicas=http://a".to_string()]).unwrap();
        assert_eq!(
            parsed.restock_interval_secs,
            Some(Catalog::DEFAULT_RESTOCK_INTERVAL_SECS)
        );
        assert_eq!(
            parsed.restock_quantity,
            Some(Catalog::DEFAULT_RESTOCK_QUANTITY)
        );
        let parsed: Frontend = parse(&[
            "--catalog-url=http://c".to_string(),
            "--order-replicas=http://a".to_string(),
        ])
        .unwrap();
        assert_eq!(
            parsed.cache_capacity,
            Some(Frontend::DEFAULT_CACHE_CAPACITY)
        );
        assert_eq!(parsed.shutdown_delay_ms, Some(0));
        // Required settings stay required.
        assert!(parse::<OrderReplica>(&["--id=1".to_string()]).is_err());
        assert!(parse::<Frontend>(&["--catalog-url=http://c".to_string()]).is_err());
    }

    #[test]
    fn a_binary_parser_flattens_its_settings() {
        let binary = Binary::<Frontend>::try_parse_from([
            "frontend",
            "--catalog-url=http://c",
            "--order-replicas=http://a,http://b",
        ])
        .unwrap();
        assert_eq!(binary.settings.order_replicas, ["http://a", "http://b"]);
    }

    #[test]
    fn each_binary_has_its_own_env_prefix() {
        let prefixes = [
            OrderReplica::env_prefix(),
            Catalog::env_prefix(),
            Frontend::env_prefix(),
        ];
        assert_eq!(prefixes, ["ORDER_", "CATALOG_", "FRONTEND_"]);
        for a in &prefixes {
            for b in &prefixes {
                if a != b {
                    assert!(!a.starts_with(b.as_str()), "{a} {b}");
                }
            }
        }
        assert_eq!(OrderReplica::env_var("id"), "ORDER_ID");
    }

    #[test]
    fn restock_interval_is_positive_and_at_most_a_day() {
        assert_eq!(parse_interval("0.5"), Ok(0.5));
        assert_eq!(parse_interval("86400"), Ok(86_400.0));
        for bad in ["0", "-1", "86401", "inf", "NaN", "soon"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}
