//! The storefront page in a real headless browser (Debian's Chromium driven by playwright-core,
//! see `tests/browser/`). `.ci/run` installs both; where they are missing the test says
//! "skipped" and passes, except under CI (`CI` set), where it fails.
//!
//! `tests/browser/storefront.mjs` does what a shopper does and checks what the page shows: the
//! grid with prices and stock, a sold-out answer, an unknown toy, a purchase of 2, another
//! client's purchases appearing without a reload, the order look-up; then, with every order
//! replica killed, the store's 503. Its screenshots are `target/storefront.png` and
//! `target/storefront-unavailable.png`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use support::{Store, StoreOptions};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser")
}

/// Where the screenshot `name` goes: the target directory (the parent of `target/tmp`).
fn screenshot(name: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join(name)
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

/// Runs the page script in `mode` against `url`; returns what it printed, or fails the test
/// with its output.
async fn run_page(url: &str, shot: &Path, mode: &str) -> String {
    let args = [
        browser_dir().join("storefront.mjs").into_os_string(),
        url.into(),
        shot.into(),
        mode.into(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(args)
            .output()
            .expect("running node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser run ({mode}) failed, {}:\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storefront_sells_shows_live_stock_and_explains_every_refusal_in_a_real_browser() {
    if let Some(why) = missing_tools() {
        testkit::skip_or_fail(format!("storefront browser test: {why}"));
        return;
    }
    let mut store = Store::start(StoreOptions {
        // A purchase with no order replica left answers 503 after this long.
        order_deadline_ms: 3000,
        ..StoreOptions::default()
    })
    .await;
    let url = store.frontend(0);

    let shot = screenshot("storefront.png");
    let stdout = run_page(&url, &shot, "shop").await;
    let number: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("storefront ok: order "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no order number in: {stdout}"));
    // The click in the browser really placed the order.
    let (status, body) = store.get(0, &format!("/orders/{number}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["quantity"], 2);
    assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000));
    eprintln!("screenshot: {}", shot.display());

    // No order replica left: the page must say the store cannot take orders now.
    for id in store.store.replica_ids() {
        store.replica(id).kill();
    }
    let shot = screenshot("storefront-unavailable.png");
    let stdout = run_page(&url, &shot, "unavailable").await;
    assert!(stdout.contains("storefront ok: 503"), "{stdout}");
    eprintln!("screenshot: {}", shot.display());
}
