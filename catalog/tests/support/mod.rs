//! Runs the real `catalog` binary on a free loopback port with a temporary data directory,
//! SIGKILLs it and restarts it on the same directory. Every wait has a deadline; none is a
//! fixed sleep.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api::catalog::{CatalogClient, TakeRequest};

use testkit::free_port;
pub use testkit::wait_for;

/// One catalog process and its directory.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub data_dir: PathBuf,
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
    pub http: reqwest::Client,
}

impl Server {
    /// Starts a catalog with the built-in toys and `args` added to the command line.
    pub async fn start(args: &[&str]) -> Self {
        Self::start_inner(None, args).await
    }

    /// Starts a catalog seeded from `products` (a JSON array) with `args` added.
    pub async fn with_products(products: &str, args: &[&str]) -> Self {
        Self::start_inner(Some(products), args).await
    }

    /// Starts a catalog keeping its data in `data_dir` (e.g. on a small filesystem).
    pub async fn with_data_dir(data_dir: PathBuf, args: &[&str]) -> Self {
        Self::start_inner_in(None, Some(data_dir), args).await
    }

    async fn start_inner(products: Option<&str>, args: &[&str]) -> Self {
        Self::start_inner_in(products, None, args).await
    }

    async fn start_inner_in(
        products: Option<&str>,
        data_dir: Option<PathBuf>,
        args: &[&str],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if let Some(json) = products {
            let path = dir.path().join("products.json");
            std::fs::write(&path, json).unwrap();
            all.extend(["--products".into(), path.to_str().unwrap().into()]);
        }
        let mut server = Self {
            data_dir: data_dir.unwrap_or_else(|| dir.path().join("data")),
            dir,
            port: free_port(),
            args: all,
            child: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> CatalogClient {
        CatalogClient::new(self.http.clone(), self.url())
    }

    /// (Re)starts the process on the same port and data directory; waits until it is ready.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the catalog is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("catalog.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_catalog"))
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--data-dir", self.data_dir.to_str().unwrap()])
            .args(&self.args)
            .env("RUST_LOG", "info,catalog=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting catalog");
        self.child = Some(child);
        let url = self.url();
        let http = self.http.clone();
        wait_for("the catalog to be ready", Duration::from_secs(20), || {
            let http = http.clone();
            let url = url.clone();
            async move {
                let r = http.get(format!("{url}/readyz")).send().await.ok()?;
                r.status().is_success().then_some(())
            }
        })
        .await;
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("the catalog is running");
        child.kill().unwrap(); // SIGKILL on unix
        child.wait().unwrap();
    }

    /// SIGTERMs the process; returns whether it exited with success, and how long it took.
    pub fn terminate(&mut self) -> (bool, Duration) {
        let mut child = self.child.take().expect("the catalog is running");
        let start = Instant::now();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let ok = child.wait().unwrap().success();
        (ok, start.elapsed())
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("catalog.log")).unwrap_or_default()
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

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn take(key: &str, name: &str, quantity: u32) -> TakeRequest {
    TakeRequest {
        key: key.into(),
        name: name.into(),
        quantity,
    }
}
