//! What the `toystore up` tests share.

use std::path::Path;
use std::time::Duration;

use launcher::ClusterFile;
use testkit::wait_for;

/// Waits until the `toystore up` on `dir` serves its storefront on `port`: its cluster.json
/// names that frontend, `/healthz` there answers with the pid cluster.json records, and
/// `/readyz` answers 200. The pid keeps a test from taking another program that got the port
/// (a store that could not bind it stops) for its own store.
pub async fn wait_ready(dir: &Path, port: u16) {
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_for("the store to be ready", Duration::from_secs(60), || async {
        let cluster = ClusterFile::read(dir).ok()?;
        if cluster.frontend != url {
            return None;
        }
        let health: serde_json::Value = http
            .get(format!("{url}/healthz"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let pid = health["pid"].as_u64()?;
        if Some(pid) != cluster.frontend_pid.map(u64::from) {
            return None;
        }
        let r = http.get(format!("{url}/readyz")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
}
