//! A real S3 API for tests: moto's server (`tests/tools/install-moto.sh` installs it into
//! `target/tools/moto-venv`), one per [`S3Server`], on a free loopback port, with one bucket.
//! Requests are path-style and unsigned ones are accepted, so any S3 client pointed at
//! [`S3Server::endpoint`] with [`S3Server::env`] works.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::skip_or_fail;

/// How long moto gets to answer after it is started (it starts in about a second).
const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running moto S3 server with one bucket; killed when dropped.
pub struct S3Server {
    child: Child,
    addr: SocketAddr,
    bucket: String,
    _log_dir: tempfile::TempDir,
}

impl S3Server {
    /// For a test that needs S3: installs moto (once per process) and starts it, or else ends
    /// the test through [`skip_or_fail`] and returns `None`, on which the test returns.
    #[track_caller]
    pub fn start() -> Option<Self> {
        match Self::try_start() {
            Ok(server) => Some(server),
            Err(why) => {
                skip_or_fail(why);
                None
            }
        }
    }

    /// Installs moto (once per process), starts it and creates the bucket; says why not.
    pub fn try_start() -> Result<Self, String> {
        let moto = install()?;
        let mut last = String::new();
        // A free port can be taken between choosing it and moto binding it: try another.
        for _ in 0..3 {
            match Self::start_on(&moto, free_port()?) {
                Ok(server) => return Ok(server),
                Err(why) => last = why,
            }
        }
        Err(last)
    }

    fn start_on(moto: &Path, port: u16) -> Result<Self, String> {
        let log_dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
        let log_path = log_dir.path().join("moto.log");
        let log = std::fs::File::create(&log_path).map_err(|e| format!("moto's log: {e}"))?;
        let err_log = log.try_clone().map_err(|e| format!("moto's log: {e}"))?;
        let child = Command::new(moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", moto.display()))?;
        let mut server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            bucket: "toystore-backups".to_string(),
            _log_dir: log_dir,
        };
        let tail = |why: String| {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let start = log.len().saturating_sub(2000);
            format!(
                "{why}; the end of moto's log:\n{}",
                &log[log.floor_char_boundary(start)..]
            )
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(tail(format!(
                    "moto_server exited during start-up ({status})"
                )));
            }
            if request(server.addr, "GET", "/").is_ok_and(|status| status == 200) {
                break;
            }
            if started.elapsed() > START_DEADLINE {
                return Err(tail(format!(
                    "moto_server did not answer on {} within {START_DEADLINE:?}",
                    server.addr
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        match request(server.addr, "PUT", &format!("/{}", server.bucket)) {
            Ok(200) => Ok(server),
            Ok(status) => Err(tail(format!("creating the bucket: HTTP {status}"))),
            Err(e) => Err(tail(format!("creating the bucket: {e}"))),
        }
        // On an error `server` is dropped, which kills moto.
    }

    /// The server's URL, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The environment an S3 client (object_store's `AmazonS3Builder::from_env`, the AWS CLI)
    /// needs to use this server: endpoint, dummy credentials, region, plain HTTP allowed.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tests/tools/install-moto.sh` once per process; the path of `moto_server`, or why not.
fn install() -> Result<PathBuf, String> {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let script = root.join("tests/tools/install-moto.sh");
            let out = Command::new("bash")
                .arg(&script)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "{} failed ({}): {}",
                    script.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            let moto = root.join("target/tools/moto-venv/bin/moto_server");
            if moto.exists() {
                Ok(moto)
            } else {
                Err(format!(
                    "{} missing after {}",
                    moto.display(),
                    script.display()
                ))
            }
        })
        .clone()
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("a free port: {e}"))
}

/// One unsigned HTTP/1.1 request with an empty body; the response's status code.
fn request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<u16> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:.200}")))
}
