//! Backup and restore with real parts: a store of real processes under load, `toystore backup`
//! into an S3-compatible server (moto), the store destroyed, `toystore up --restore-from` into
//! a new directory, and every acknowledged order and the books checked by `history`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use api::ReplicaClient;
use api::backup::{BackupReport, FailureReport};
use api::inventory::ProductDef;
use faults::target::{Target, TargetOptions};
use faults::workload::{self, Workload};
use history::{Event, Op, Outcome, Recorder, StoredStatus, check};
use launcher::ClusterFile;
use launcher::ports::free_port;
use testkit::s3::S3Server;
use testkit::{Tmpfs, binary, wait_for};
use tokio::sync::watch;

mod support;

/// Toys with stock enough that purchases are confirmed quickly: what matters here is orders.
fn toys() -> Vec<ProductDef> {
    ["Tux", "Lego", "Kite", "Yoyo"]
        .into_iter()
        .map(|name| ProductDef {
            name: name.into(),
            price: 5.0,
            quantity: 1_000_000,
        })
        .collect()
}

/// A store of three replicas, a catalog and a frontend, its toys [`toys`].
async fn store() -> Target {
    Target::start(&TargetOptions {
        catalogs: 1,
        frontends: 1,
        products: Some(toys()),
        ..TargetOptions::default()
    })
    .await
    .expect("a store")
}

/// Four clients buying from a store, each operation recorded, until `stop`.
struct Load {
    recorder: Recorder,
    stop: watch::Sender<bool>,
    clients: tokio::task::JoinHandle<Vec<String>>,
}

impl Load {
    fn start(target: &Target, seed: u64) -> Self {
        let recorder = Recorder::new();
        let (stop, stopped) = watch::channel(false);
        let workload = Workload {
            clients: 4,
            frontends: target.frontends(),
            toys: toys().into_iter().map(|t| t.name).collect(),
            seed,
        };
        let clients = tokio::spawn(workload::run(workload, recorder.clone(), stopped));
        Self {
            recorder,
            stop,
            clients,
        }
    }
}

/// Runs `toystore ARGS` with the S3 server's credentials and endpoint; returns its output.
fn toystore(s3: &S3Server, args: &[&str]) -> Output {
    Command::new(binary("toystore"))
        .args(args)
        .envs(s3.env())
        .output()
        .expect("running toystore")
}

/// `toystore backup` of the target's group into `to`, with a result file; the report, or the
/// failure and its text.
fn backup(
    s3: &S3Server,
    target: &Target,
    to: &str,
    dir: &Path,
) -> Result<BackupReport, (FailureReport, String)> {
    let urls: Vec<String> = target
        .replicas()
        .into_iter()
        .map(|id| target.store.replica_url(id))
        .collect();
    let result = dir.join(format!("result-{}.json", rand_suffix()));
    let token = target.store.token_file();
    let out = toystore(
        s3,
        &[
            "backup",
            "--replicas",
            &urls.join(","),
            "--token-file",
            token.to_str().unwrap(),
            "--to",
            to,
            "--store",
            "shop",
            "--result-file",
            result.to_str().unwrap(),
        ],
    );
    let json = std::fs::read(&result).expect("toystore backup writes its result file");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(serde_json::from_slice(&json).expect("a backup report"))
    } else {
        Err((
            serde_json::from_slice(&json).expect("a failure report"),
            text,
        ))
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Waits until the clients have `n` more confirmed purchases than now.
async fn confirmed_orders(recorder: &Recorder, n: usize) {
    let confirmed = |r: &Recorder| {
        r.events()
            .iter()
            .filter(|e| {
                matches!(
                    (&e.op, &e.outcome),
                    (Op::Purchase { .. }, Outcome::Confirmed { .. })
                )
            })
            .count()
    };
    let target = confirmed(recorder) + n;
    wait_for(
        &format!("{n} more confirmed purchases"),
        Duration::from_secs(60),
        || async { (confirmed(recorder) >= target).then_some(()) },
    )
    .await;
}

/// A store started by `toystore up` on `dir`, killed when dropped.
struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `toystore up --restore-from URL` on the new directory `dir`; waits until it is ready.
async fn restore_up(s3: &S3Server, url: &str, dir: &Path) -> Up {
    let port = free_port().unwrap();
    let log = std::fs::File::create(dir.with_extension("log")).unwrap();
    let child = Command::new(binary("toystore"))
        .args(["up", "--port", &port.to_string(), "--restock-interval", "1"])
        .args(["--restore-from", url, "--data-dir"])
        .arg(dir)
        .envs(s3.env())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting toystore up");
    let up = Up(child);
    support::wait_ready(dir, port).await;
    up
}

/// The replicas of the local store in `dir`, with its token.
fn local_replicas(dir: &Path) -> BTreeMap<u64, ReplicaClient> {
    let cluster = ClusterFile::read(dir).expect("cluster.json");
    let token = std::fs::read_to_string(dir.join("token")).unwrap();
    let http = api::client::http_client(Duration::from_secs(10));
    cluster
        .order
        .iter()
        .map(|r| {
            let client = ReplicaClient::new(http.clone(), r.url.clone(), Some(token.trim().into()));
            (r.id, client)
        })
        .collect()
}

/// The purchases confirmed in `events`, by key: the order number.
fn confirmed(events: &[Event]) -> BTreeMap<String, u64> {
    events
        .iter()
        .filter_map(|e| match (&e.op, &e.outcome) {
            (Op::Purchase { key, .. }, Outcome::Confirmed { number }) => {
                Some((key.clone(), *number))
            }
            _ => None,
        })
        .collect()
}

/// The most important promise of a backup: a store restored from it holds every purchase
/// acknowledged before the backup started, with its number, and the books of one state of the
/// group; a purchase acknowledged later is there whole (same number) or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_load_restores_every_acknowledged_order_into_a_new_store() {
    // Built before the clients start, not while they buy (a build would make the run long).
    binary("toystore");
    let Some(s3) = S3Server::start() else { return };
    let work = tempfile::tempdir().unwrap();
    let mut target = store().await;
    let Load {
        recorder,
        stop,
        clients: load,
    } = Load::start(&target, 20);
    confirmed_orders(&recorder, 200).await;

    // The backup, while the clients go on buying.
    let started = recorder.now();
    let to = format!("s3://{}/backups", s3.bucket());
    let report = backup(&s3, &target, &to, work.path()).expect("the backup completes");
    confirmed_orders(&recorder, 50).await;
    stop.send(true).unwrap();
    let keys = load.await.unwrap();
    let events = recorder.events();
    let state = &report.manifest.state;
    assert!(report.url.starts_with(&to), "{}", report.url);
    assert!(state.orders >= 200, "{state:?}");

    // The store is gone: every process killed, every data directory deleted.
    target.kill_everything();
    let dir = target.keep();
    drop(target);
    std::fs::remove_dir_all(&dir).unwrap();

    let out = toystore(&s3, &["backup", "verify", &report.url]);
    assert!(out.status.success(), "{out:?}");

    let restored = work.path().join("restored");
    let _up = restore_up(&s3, &report.url, &restored).await;
    let replicas = local_replicas(&restored);
    assert_eq!(replicas.len(), 3, "a restored store has its three replicas");
    let mut final_state = faults::target::final_state(&replicas, &keys)
        .await
        .expect("the restored store's state");
    // The restored store's catalog restocks to its own quantity; restocks are not checked here.
    final_state.restock_quantity = None;

    // Before the backup started: every acknowledged purchase is there, with its number.
    let before: Vec<Event> = events
        .iter()
        .filter(|e| e.completed < started)
        .cloned()
        .collect();
    let mut violations = check::acknowledged_orders_kept(&before, &final_state);
    violations.extend(check::one_outcome_per_key(&events, &final_state));
    violations.extend(check::numbers_dense(&final_state));
    violations.extend(check::stock_invariant(&final_state));
    violations.extend(check::replicas_converge(&final_state));
    assert!(violations.is_empty(), "{violations:#?}");

    // The state is the backup's: its orders exactly, and a prefix of what was acknowledged.
    let reference = final_state.reference().unwrap();
    assert_eq!(reference.by_number.len() as u64, state.orders);
    for (key, number) in confirmed(&events) {
        match reference.by_key.get(&key).map(|o| &o.status) {
            Some(StoredStatus::Confirmed { number: n }) => assert_eq!(*n, number, "{key}"),
            Some(StoredStatus::Rejected) => panic!("{key} was confirmed, restored as refused"),
            None => assert!(
                number >= state.orders,
                "{key} (order {number}) is missing though the backup holds orders 0..{}",
                state.orders
            ),
        }
    }
    for audit in final_state.audits.values() {
        assert!(audit.applied_index >= state.index, "{audit:?}");
        assert_eq!(audit.confirmed, state.orders);
    }

    // The store goes on: the next order takes the next number.
    let http = reqwest::Client::new();
    let cluster = ClusterFile::read(&restored).unwrap();
    let resp = http
        .post(format!("{}/orders", cluster.frontend))
        .header("Idempotency-Key", "after-the-restore")
        .json(&serde_json::json!({"name": "Tux", "quantity": 1}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(status.is_success(), "{body}");
    assert_eq!(body["data"]["order_number"].as_u64(), Some(state.orders));
}

/// A backup that cannot complete leaves nothing that looks like a complete artifact: an
/// unreachable destination, a full one, and a leader killed while a backup is under way
/// (which either completes through the next leader or fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interrupted_backup_leaves_nothing_that_looks_complete() {
    binary("toystore");
    let Some(s3) = S3Server::start() else { return };
    let Some(disk) = Tmpfs::mount("1m") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let mut target = store().await;
    let Load {
        recorder,
        stop,
        clients: load,
    } = Load::start(&target, 21);
    confirmed_orders(&recorder, 20).await;

    // Unreachable: nothing listens on the endpoint.
    let closed = [
        (
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", free_port().unwrap()),
        ),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ALLOW_HTTP", "true".into()),
    ];
    let (failure, text) = {
        let urls: Vec<String> = target
            .replicas()
            .into_iter()
            .map(|id| target.store.replica_url(id))
            .collect();
        let result = work.path().join("unreachable.json");
        let out = Command::new(binary("toystore"))
            .args(["backup", "--replicas", &urls.join(","), "--token-file"])
            .arg(target.store.token_file())
            .args([
                "--to",
                "s3://nowhere/backups",
                "--store",
                "shop",
                "--result-file",
            ])
            .arg(&result)
            .envs(closed)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{out:?}");
        let failure: FailureReport =
            serde_json::from_slice(&std::fs::read(&result).unwrap()).unwrap();
        (failure, String::from_utf8_lossy(&out.stderr).to_string())
    };
    assert!(
        failure
            .error
            .contains("the backup destination is unreachable")
            && failure.error.contains("s3://nowhere/backups"),
        "{failure:?} {text}"
    );

    // Full: the destination's disk has no room left.
    disk.fill();
    let full = format!("file://{}/backups", disk.path().display());
    let (failure, text) = backup(&s3, &target, &full, work.path()).expect_err("no room");
    assert!(
        failure.error.contains("the backup destination is full")
            || failure.error.contains("No space left on device"),
        "{failure:?} {text}"
    );
    assert_no_complete_artifact(&full).await;

    // The leader killed as the backup starts (paused first: a request that reaches it waits
    // until it dies). Whatever the timing, the outcome is a complete artifact or none.
    let leader = target.leader().await.expect("a leader");
    target.pause_replica(leader);
    let to = format!("s3://{}/killed", s3.bucket());
    let before = confirmed(&recorder.events()).len() as u64;
    let mut child = spawn_backup(&s3, &target, &to, &work.path().join("killed.json"));
    target.kill_replica(leader);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path().join("killed.json")).unwrap()).unwrap();
    let listed = backup::list_artifacts(&destination(&s3, &to))
        .await
        .unwrap();
    if status.success() {
        // Taken from the next leader: complete, intact, and holding what was acknowledged.
        let report: BackupReport = serde_json::from_value(result).unwrap();
        assert!(report.manifest.state.orders >= before, "{report:?}");
        let out = toystore(&s3, &["backup", "verify", &report.url]);
        assert!(out.status.success(), "{out:?}");
    } else {
        assert!(
            listed.iter().all(|l| l.manifest.is_none()),
            "{listed:?} {result}"
        );
    }
    stop.send(true).unwrap();
    load.await.unwrap();
}

fn spawn_backup(s3: &S3Server, target: &Target, to: &str, result: &Path) -> Child {
    let urls: Vec<String> = target
        .replicas()
        .into_iter()
        .map(|id| target.store.replica_url(id))
        .collect();
    Command::new(binary("toystore"))
        .args(["backup", "--replicas", &urls.join(","), "--token-file"])
        .arg(target.store.token_file())
        .args(["--to", to, "--store", "shop", "--result-file"])
        .arg(result)
        .envs(s3.env())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn destination(s3: &S3Server, url: &str) -> backup::Destination {
    backup::Destination::parse_with(url, s3.env()).unwrap()
}

async fn assert_no_complete_artifact(url: &str) {
    let dest = backup::Destination::parse(url).unwrap();
    let listed = backup::list_artifacts(&dest)
        .await
        .expect("listing the destination");
    assert!(
        listed.iter().all(|l| l.manifest.is_none()),
        "a failed backup left a complete artifact: {listed:?}"
    );
}
