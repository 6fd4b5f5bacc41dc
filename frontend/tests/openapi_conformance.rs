//! The public API against its own OpenAPI document, with schemathesis (`--checks all`): no 5xx
//! for any input, only documented status codes and content types, schema-valid answers,
//! schema-invalid input refused and schema-valid input accepted (or refused for its meaning, see
//! `tests/schemathesis.toml`).
//!
//! The test installs schemathesis from PyPI into `target/tools` (`tests/tools/install-
//! schemathesis.sh`); where that is impossible it prints `skipped: ...` and passes, except
//! under CI (`CI` set), where it fails.

mod support;

use std::path::Path;
use std::process::Command;

use support::{Store, StoreOptions};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_public_api_conforms_to_its_openapi_document() {
    let install = Command::new("bash")
        .arg(repo().join("tests/tools/install-schemathesis.sh"))
        .output()
        .expect("running bash");
    if !install.status.success() {
        let why = String::from_utf8_lossy(&install.stderr);
        testkit::skip_or_fail(format!("schemathesis cannot be installed here: {why}"));
        return;
    }
    let store = Store::start_in_process(StoreOptions::default()).await;
    let schema = format!("{}/openapi.json", store.frontend(0));
    let bin = repo().join("target/tools/schemathesis-venv/bin/schemathesis");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .arg("--config-file")
            .arg(config)
            .args(["run", &schema, "--checks", "all", "--max-examples", "50"])
            .args(["--seed", "1", "--no-color"])
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .expect("running schemathesis")
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
