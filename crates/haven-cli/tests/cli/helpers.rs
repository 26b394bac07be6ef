//! A temporary workspace with a repository and a `haven` command builder.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

pub const PASSWORD: &str = "test password";

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Workspace {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn repo(&self) -> PathBuf {
        self.path("repo")
    }

    /// `haven` with this workspace's repository and password.
    pub fn haven(&self) -> Command {
        self.haven_for(&self.repo())
    }

    pub fn haven_for(&self, repo: &Path) -> Command {
        let mut cmd = Command::cargo_bin("haven").expect("haven binary");
        cmd.env("HAVEN_REPO", repo)
            .env("HAVEN_PASSWORD", PASSWORD)
            .env_remove("HAVEN_PASSWORD_FILE")
            .env_remove("RUST_LOG");
        cmd
    }

    /// Create the repository with small packs (so test data spans several).
    pub fn init(&self) {
        self.haven()
            .args(["repo", "init", "--pack-size-mib", "4"])
            .assert()
            .success();
    }

    /// Run with `--json`, require `expected_code`, parse the one document.
    pub fn json(&self, args: &[&str], expected_code: i32) -> Value {
        let out = self
            .haven()
            .arg("--json")
            .args(args)
            .output()
            .expect("run haven");
        parse_json(&out, expected_code)
    }
}

pub fn parse_json(out: &Output, expected_code: i32) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(expected_code), "stderr: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Every file below `root` (relative path → bytes).
pub fn read_tree(root: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(root)
                .expect("under root")
                .to_path_buf();
            (rel, std::fs::read(e.path()).expect("read"))
        })
        .collect()
}

/// Every file path below `root`, for "nothing was written" comparisons.
pub fn list_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().to_path_buf())
        .collect();
    files.sort();
    files
}

/// Where a source directory lands inside a restore target.
pub fn restored(target: &Path, source: &Path) -> PathBuf {
    target.join(source.strip_prefix("/").expect("absolute"))
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A tmpfs mounted for the test, unmounted on drop.
pub struct SmallFs(pub std::path::PathBuf);

impl SmallFs {
    pub fn mount(path: std::path::PathBuf, size: &str) -> Self {
        std::fs::create_dir_all(&path).expect("mkdir");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        SmallFs(path)
    }

    /// Fill it up: a file as large as it takes, until no byte fits.
    pub fn fill(&self) -> std::path::PathBuf {
        use std::io::Write as _;
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let block = vec![0xa5u8; 64 << 10];
        while file.write_all(&block).is_ok() {}
        while file.write_all(&[0xa5]).is_ok() {}
        path
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}
