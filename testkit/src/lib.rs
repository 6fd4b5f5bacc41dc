//! Test support shared by the integration tests of every service.
//!
//! Tests run the real binaries, started through the `launcher` crate (the one way to run a
//! store from code); [`binary`] and [`bin_dir`] find (and if needed build) them. Waits are
//! conditions with deadlines ([`wait_for`]), never sleeps. [`Tmpfs`] gives a small disk to fill.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// The directory holding the workspace binaries `names`, each built first if needed.
pub fn bin_dir(names: &[&str]) -> PathBuf {
    let mut dir = None;
    for name in names {
        dir = binary(name).parent().map(Path::to_path_buf);
    }
    dir.expect("at least one binary")
}

/// Path of the workspace binary `name` built with the current profile, building it first when
/// the test was started without it (`cargo test -p X` builds only X's binaries).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    // target/<profile>/deps/<test> → target/<profile>; a binary (the soak) is in it already.
    let parent = exe.parent().expect("an executable lives in a directory");
    let dir = if parent.file_name().is_some_and(|n| n == "deps") {
        parent.parent().expect("target/<profile>/deps has a parent")
    } else {
        parent
    };
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
