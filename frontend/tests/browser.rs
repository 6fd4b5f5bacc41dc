//! The storefront page in a real headless browser (Debian's Chromium driven by playwright-core,
//! see `tests/browser/`). `.ci/run` installs both; where they are missing the test says
//! "skipped" and passes.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use support::{Store, StoreOptions};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser")
}

/// Why the browser test cannot run here, if it cannot.
fn missing_tools() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!(
            "no Chromium at {chromium} (run tests/browser/install.sh)"
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("no node on PATH".into());
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        return Some("playwright-core not installed (run tests/browser/install.sh)".into());
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storefront_lists_buys_and_looks_up_an_order_in_a_real_browser() {
    if let Some(why) = missing_tools() {
        eprintln!("skipped: storefront browser test: {why}");
        return;
    }
    let store = Store::start(StoreOptions::default()).await;
    let screenshot = store.dir.path().join("storefront.png");
    let url = store.frontend(0);
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(browser_dir().join("storefront.mjs"))
            .arg(&url)
            .arg(&screenshot)
            .output()
            .expect("running node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser run failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("storefront ok: order 0"), "{stdout}");
    // The click in the browser really placed the order.
    let (status, body) = store.get(0, "/orders/0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["quantity"], 2);
}
