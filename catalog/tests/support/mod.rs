//! Runs the real `catalog` binary (a launcher `Process`) on a free loopback port with a
//! temporary data directory, SIGKILLs it and restarts it on the same directory. Every wait has a deadline; none is a
//! fixed sleep.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use api::catalog::{CatalogClient, TakeRequest};
use launcher::Process;

#[allow(unused_imports)] // not every test binary waits
pub use testkit::wait_for;

/// The cluster token the test catalogs require.
pub const TOKEN: &str = "catalog-test-token";

/// The initial stock of a built-in toy.
pub fn default_stock(name: &str) -> u32 {
    catalog::seed::default_products()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{name} is not a built-in toy"))
        .quantity
}

/// One catalog process and its directory.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub data_dir: PathBuf,
    pub process: Process,
    pub http: reqwest::Client,
}

impl Server {
    /// Starts a catalog with the built-in toys and `args` added to the command line.
    pub async fn start(args: &[&str]) -> Self {
        Self::start_inner_in(None, None, args).await
    }

    /// Starts a catalog seeded from `products` (a JSON array) with `args` added.
    pub async fn with_products(products: &str, args: &[&str]) -> Self {
        Self::start_inner_in(Some(products), None, args).await
    }

    /// Starts a catalog keeping its data in `data_dir` (e.g. on a small filesystem).
    pub async fn with_data_dir(data_dir: PathBuf, args: &[&str]) -> Self {
        Self::start_inner_in(None, Some(data_dir), args).await
    }

    async fn start_inner_in(
        products: Option<&str>,
        data_dir: Option<PathBuf>,
        args: &[&str],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = data_dir.unwrap_or_else(|| dir.path().join("data"));
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if let Some(json) = products {
            let path = dir.path().join("products.json");
            std::fs::write(&path, json).unwrap();
            all.extend(["--products".into(), path.to_str().unwrap().into()]);
        }
        let port = launcher::ports::free_port().unwrap();
        let process = Process::new(
            "catalog",
            testkit::binary("catalog"),
            port,
            dir.path().join("catalog.log"),
        )
        .args(["--listen".to_string(), format!("127.0.0.1:{port}")])
        .args(["--data-dir".to_string(), data_dir.display().to_string()])
        .env("CATALOG_TOKEN", TOKEN)
        .args(all)
        .env("RUST_LOG", "info,catalog=debug")
        .ready_at("/readyz");
        let mut server = Self {
            dir,
            data_dir,
            process,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        self.process.url()
    }

    /// A client with the cluster token.
    pub fn client(&self) -> CatalogClient {
        CatalogClient::new(self.http.clone(), self.url()).with_token(TOKEN)
    }

    /// A client without the token (reads only).
    pub fn anonymous(&self) -> CatalogClient {
        CatalogClient::new(self.http.clone(), self.url())
    }

    /// (Re)starts the process on the same port and data directory; waits until it is ready.
    pub async fn restart(&mut self) {
        self.process
            .start(Duration::from_secs(20))
            .await
            .expect("the catalog starts");
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// SIGTERMs the process; returns whether it exited with success, and how long it took.
    pub async fn terminate(&mut self) -> (bool, Duration) {
        let start = Instant::now();
        let status = self
            .process
            .stop(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(30))
            .await;
        (status.is_some_and(|s| s.success()), start.elapsed())
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.process.log()).unwrap_or_default()
    }

    /// The value of a metric line starting with `prefix` (e.g. `toystore_catalog_feed_waiters`).
    pub async fn metric(&self, prefix: &str) -> Option<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.url()))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(prefix)?.strip_prefix(' ')?.parse().ok())
    }
}

pub fn take(key: &str, name: &str, quantity: u32) -> TakeRequest {
    TakeRequest {
        key: key.into(),
        name: name.into(),
        quantity,
    }
}
