//! Test support shared by the integration tests of every service.
//!
//! Tests run the real binaries, started through the `launcher` crate (the one way to run a
//! store from code); [`binary`] and [`bin_dir`] find (and if needed build) them. Waits are
//! conditions with deadlines ([`wait_for`]), never sleeps. [`Tmpfs`] gives a small disk to fill.
//! A test whose prerequisite (root, a tool) is missing ends through [`skip_or_fail`]: skipped
//! on a developer's machine, failed under CI.

pub mod s3;

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

/// Ends a test that cannot run here for the reason `why` (no root, a tool not installed): on a
/// developer's machine it prints `skipped: why` and returns, so the caller returns too; under CI
/// (`CI` set) it panics with `why`, because there every prerequisite is installed and a test
/// that silently ran nothing would hide a broken install.
#[track_caller]
pub fn skip_or_fail(why: impl std::fmt::Display) {
    assert!(
        std::env::var_os("CI").is_none(),
        "cannot run under CI (CI is set): {why}"
    );
    eprintln!("skipped: {why}");
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
    /// For a test that needs the disk: mounts a tmpfs of `size` (e.g. `"16m"`), or else ends
    /// the test through [`skip_or_fail`] and returns `None`, on which the test returns.
    #[track_caller]
    pub fn mount(size: &str) -> Option<Self> {
        match Self::try_mount(size) {
            Ok(disk) => Some(disk),
            Err(why) => {
                skip_or_fail(why);
                None
            }
        }
    }

    /// Mounts a tmpfs of `size`; where that is not possible (not root), says why, for a caller
    /// that is not a test of its own (a fault scenario reports it).
    pub fn try_mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let why = match Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .output()
        {
            Ok(out) if out.status.success() => return Ok(Self { dir }),
            Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
            Err(e) => format!("running mount: {e}"),
        };
        Err(format!(
            "cannot mount a small tmpfs to fill a disk (needs root): {why}"
        ))
    }

    /// The mount point, where a test puts the data directory it wants to run out of space.
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
