//! Test support shared by the integration tests of every service.
//!
//! Tests run the real binaries: [`binary`] finds (and if needed builds) a workspace binary,
//! [`Service`] starts it on a loopback port, SIGKILLs or SIGTERMs it, and restarts it with the
//! same arguments and data. Waits are conditions with deadlines ([`wait_for`]), never sleeps.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding an ephemeral port")
        .port()
}

/// Polls `check` every 50 ms until it returns `Some`; panics naming `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Binaries already built by this test process.
static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());

/// Path of the workspace binary `name` built with the current profile, building it first when
/// the test was started without it (`cargo test -p X` builds only X's binaries).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let path = dir.join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = built.iter().find(|(n, _)| n == name) {
        return p.clone();
    }
    let release = dir.file_name().is_some_and(|p| p == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--workspace", "--bin", name]);
    if release {
        cmd.arg("--release");
    }
    // Cheap when up to date; keeps a stale binary from being tested.
    let status = cmd.status().expect("running cargo build");
    assert!(status.success(), "cargo build --bin {name} failed");
    assert!(path.exists(), "{} missing after build", path.display());
    built.push((name.to_string(), path.clone()));
    path
}

/// A service process that can be killed and restarted with the same command line.
pub struct Service {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    log: PathBuf,
    /// Port the service listens on.
    pub port: u16,
    child: Option<Child>,
}

impl Service {
    /// Describes a service; `args` must make it listen on `port`. Logs go to `log`.
    pub fn new(name: &str, program: PathBuf, args: Vec<String>, port: u16, log: PathBuf) -> Self {
        Self {
            name: name.to_string(),
            program,
            args,
            envs: Vec::new(),
            log,
            port,
            child: None,
        }
    }

    /// Adds an environment variable for every start.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether the process is running (as far as this handle knows).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The exit status, once the process has exited by itself (it is then no longer running).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self
            .child
            .as_mut()?
            .try_wait()
            .expect("polling the process")?;
        self.child = None;
        Some(status)
    }

    /// Process id, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the process and waits until `GET /healthz` answers 200.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("opening the service log");
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.program.display()));
        self.child = Some(child);
        let url = format!("{}/healthz", self.url());
        let http = reqwest::Client::new();
        wait_for(
            &format!("{} to serve", self.name),
            Duration::from_secs(20),
            || {
                let req = http.get(&url).send();
                async move { req.await.ok()?.status().is_success().then_some(()) }
            },
        )
        .await;
    }

    /// SIGKILLs the process.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("service is running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaping the killed process");
    }

    /// SIGTERMs the process and waits; returns whether it exited with status 0.
    pub fn terminate(&mut self) -> bool {
        let mut child = self.child.take().expect("service is running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("sending SIGTERM");
        child.wait().expect("waiting for exit").success()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A small tmpfs mounted on a temporary directory, for filling a disk in tests. Unmounted
/// (lazily) when dropped.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `"16m"`); `None` where that is not possible (not root),
    /// after printing why the caller's test is skipped.
    pub fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("skipped: cannot mount a small tmpfs here (needs root) to fill a disk");
            return None;
        }
        Some(Self { dir })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills it up with a file `filler`; returns the file's path (remove it to free the space).
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut filler = std::fs::File::create(&path).expect("creating the filler");
        let block = vec![0u8; 64 * 1024];
        while filler.write_all(&block).is_ok() {}
        // Whatever still fits in a page.
        while filler.write_all(&[0u8; 512]).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
