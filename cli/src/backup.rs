//! `toystore backup`, `toystore backup verify` and `toystore restore`: the flags, and wiring
//! to the [`backup`] crate (artifacts) and [`order_replica::restore`] (seeding a data
//! directory).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use api::GroupClient;
use api::backup::{BackupReport, FailureReport, RestoreReport};
use clap::Subcommand;
use launcher::ClusterFile;
use serde::Serialize;

/// The flags of `toystore backup`; `verify` is a subcommand of its own.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    command: Option<BackupCmd>,
    /// Where backups go: the artifact is written to URL/NAME. s3://bucket/prefix (S3 and
    /// S3-compatible: credentials and endpoint from AWS_* variables), gs://bucket/prefix,
    /// az://container/prefix, or file:///absolute/path.
    #[arg(long, value_name = "URL")]
    to: Option<String>,
    /// The local store to back up, found through its data directory (cluster.json and token).
    #[arg(long, default_value = "toystore-data", conflicts_with = "replicas")]
    data_dir: PathBuf,
    /// The order replicas' URLs, comma separated, for a store that is not local (the
    /// operator's backup Job); the leader is found among them.
    #[arg(long, value_delimiter = ',', requires = "token_file")]
    replicas: Vec<String>,
    /// The file holding the store's cluster token (with --replicas).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The store's name, recorded in the manifest and used by --keep.
    #[arg(long, default_value = "local")]
    store: String,
    /// The artifact's name under --to (default: STORE-<UTC time>, e.g. local-20261207T214400Z).
    #[arg(long)]
    name: Option<String>,
    /// Once the backup is complete, delete this store's older complete backups under --to,
    /// keeping the newest N.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    keep: Option<u64>,
    /// Also write the outcome to this file as JSON: the report, or `{"error": ...}` (the
    /// operator's backup Job uses its termination-message file).
    #[arg(long)]
    result_file: Option<PathBuf>,
}

/// Subcommands of `toystore backup`.
#[derive(Debug, Subcommand)]
enum BackupCmd {
    /// Read an artifact back and check it whole: manifest, size, SHA-256, and the state's
    /// format, index and orders against the manifest. Exits non-zero naming what is wrong.
    Verify {
        /// The artifact's URL, as `toystore backup` printed it.
        url: String,
    },
}

/// The flags of `toystore restore`: seeds one new replica data directory from an artifact (the
/// operator's restore Job; locally, `toystore up --restore-from` does this itself).
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The artifact's URL.
    #[arg(long, value_name = "URL")]
    from: String,
    /// The new, empty data directory of the replica that starts the restored group.
    #[arg(long)]
    data_dir: PathBuf,
    /// That replica's Raft node id.
    #[arg(long)]
    node_id: u64,
    /// That replica's client URL, as its members will reach it.
    #[arg(long)]
    url: String,
    /// That replica's peer (Raft RPC) URL.
    #[arg(long)]
    raft_url: Option<String>,
    /// Also write the outcome to this file as JSON (see `toystore backup --result-file`).
    #[arg(long)]
    result_file: Option<PathBuf>,
}

/// How long finding the leader and reading its state may take.
const LEADER_DEADLINE: Duration = Duration::from_secs(60);

/// `toystore backup [verify]`.
pub async fn run_backup(args: BackupArgs) -> anyhow::Result<()> {
    if let Some(BackupCmd::Verify { url }) = args.command {
        return verify(&url).await;
    }
    let result_file = args.result_file.clone();
    let outcome = backup(args).await;
    report(result_file.as_deref(), &outcome)?;
    let report = outcome?;
    let state = &report.manifest.state;
    println!(
        "backup complete: {} orders as of index {} (term {}), {} bytes, sha256 {}, in {} ms",
        state.orders,
        state.index,
        state.term,
        report.manifest.data.size,
        report.manifest.data.sha256,
        report.millis
    );
    println!("{}", report.url);
    Ok(())
}

async fn backup(args: BackupArgs) -> anyhow::Result<BackupReport> {
    let to = args
        .to
        .context("--to URL is required: where the backup goes")?;
    let (urls, token) = if args.replicas.is_empty() {
        local_group(&args.data_dir)?
    } else {
        let file = args.token_file.expect("clap requires it with --replicas");
        (args.replicas, read_token(&file)?)
    };
    let group = GroupClient::new(urls, Some(token), LEADER_DEADLINE);
    let dest = backup::Destination::parse(&to)?;
    let keep = args.keep.map(|k| k as usize);
    Ok(backup::take(&group, &dest, &args.store, args.name.as_deref(), keep).await?)
}

/// The replicas and token of the local store in `dir`.
fn local_group(dir: &Path) -> anyhow::Result<(Vec<String>, String)> {
    let cluster = ClusterFile::read(dir).with_context(|| {
        format!(
            "no local store in {} (its cluster.json is missing); start one with `toystore up \
             --data-dir {}`, or give --replicas and --token-file",
            dir.display(),
            dir.display()
        )
    })?;
    let urls = cluster.order.iter().map(|r| r.url.clone()).collect();
    Ok((urls, read_token(&cluster.token_file)?))
}

/// The cluster token in `file`, as every service reads it (trimmed, never empty).
fn read_token(file: &Path) -> anyhow::Result<String> {
    servicekit::read_token(None, Some(file))
        .map_err(anyhow::Error::msg)?
        .context("no token file given")
}

/// `toystore backup verify URL`.
async fn verify(url: &str) -> anyhow::Result<()> {
    let dest = backup::Destination::parse(url)?;
    let verified = backup::fetch_verified(&dest).await?;
    let m = &verified.manifest;
    println!(
        "{url}: complete and intact: store {}, taken {}, {} orders and {} toys as of index {} \
         (term {}), {} bytes, sha256 {}",
        m.store,
        m.created_at,
        m.state.orders,
        m.state.products,
        m.state.index,
        m.state.term,
        m.data.size,
        m.data.sha256
    );
    Ok(())
}

/// `toystore restore`.
pub async fn run_restore(args: RestoreArgs) -> anyhow::Result<()> {
    let result_file = args.result_file.clone();
    let outcome = restore(args).await;
    report(result_file.as_deref(), &outcome)?;
    let report = outcome?;
    println!(
        "restored {} orders as of index {} from {}",
        report.manifest.state.orders, report.manifest.state.index, report.url
    );
    Ok(())
}

async fn restore(args: RestoreArgs) -> anyhow::Result<RestoreReport> {
    let dest = backup::Destination::parse(&args.from)?;
    let verified = backup::fetch_verified(&dest).await?;
    let node = order_replica::types::ReplicaNode {
        addr: args.url,
        raft_addr: args.raft_url,
    };
    order_replica::restore::seed(&args.data_dir, args.node_id, node, verified.state).await?;
    Ok(RestoreReport {
        url: verified.url,
        manifest: verified.manifest,
    })
}

/// Writes the outcome to the result file, if one is asked for. When that fails too, the error
/// names both, so a failed backup's own reason is never hidden behind the file's.
fn report<T: Serialize>(file: Option<&Path>, outcome: &anyhow::Result<T>) -> anyhow::Result<()> {
    let Some(file) = file else { return Ok(()) };
    let json = match outcome {
        Ok(report) => serde_json::to_vec(report)?,
        Err(e) => serde_json::to_vec(&FailureReport {
            error: format!("{e:#}"),
        })?,
    };
    let written = std::fs::write(file, json).with_context(|| format!("writing {}", file.display()));
    match (written, outcome) {
        (Err(w), Err(e)) => Err(w.context(format!("after the command failed: {e:#}"))),
        (written, _) => written,
    }
}
