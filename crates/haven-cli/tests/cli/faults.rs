//! Unreadable sources and a full target file system.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::helpers::{Workspace, is_root, noise, parse_json};

/// Run `haven` as an unprivileged user, so permission bits apply (root
/// reads everything). Needs `setpriv` (util-linux) when run as root. The
/// binary is copied into the workspace first: the build directory may be
/// under a home directory the unprivileged user cannot enter.
fn unprivileged(ws: &Workspace) -> Command {
    let built = assert_cmd::cargo::cargo_bin("haven");
    let bin = ws.path("haven-bin");
    if !bin.exists() {
        std::fs::copy(&built, &bin).expect("copy the haven binary");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    cmd.env("HAVEN_REPO", ws.repo())
        .env("HAVEN_PASSWORD", crate::helpers::PASSWORD);
    cmd
}

#[test]
fn unreadable_source_files_give_partial_success_with_the_list() {
    let ws = Workspace::new();
    std::fs::set_permissions(ws.dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let data = ws.path("data");
    std::fs::create_dir_all(data.join("locked-dir")).expect("mkdir");
    std::fs::write(data.join("ok.txt"), b"readable").expect("write");
    std::fs::write(data.join("secret.txt"), b"unreadable").expect("write");
    std::fs::write(data.join("locked-dir/inner"), b"x").expect("write");
    for p in [&data, &ws.dir.path().to_path_buf()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    std::fs::set_permissions(data.join("ok.txt"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    std::fs::set_permissions(
        data.join("secret.txt"),
        std::fs::Permissions::from_mode(0o000),
    )
    .expect("chmod");
    std::fs::set_permissions(
        data.join("locked-dir"),
        std::fs::Permissions::from_mode(0o000),
    )
    .expect("chmod");

    let status = unprivileged(&ws)
        .args(["repo", "init", "--pack-size-mib", "4"])
        .status()
        .expect("init");
    assert!(
        status.success(),
        "init as an unprivileged user (is setpriv installed?)"
    );
    let out = unprivileged(&ws)
        .args(["backup", "--json"])
        .arg(&data)
        .output()
        .expect("backup");
    let doc = parse_json(&out, 3);
    let skipped: Vec<String> = doc["skipped"]
        .as_array()
        .expect("skipped list")
        .iter()
        .map(|s| s["path"].as_str().expect("path").to_string())
        .collect();
    assert!(
        skipped.iter().any(|p| p.ends_with("secret.txt")),
        "{skipped:?}"
    );
    assert!(
        skipped.iter().any(|p| p.ends_with("locked-dir")),
        "{skipped:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("secret.txt") && stderr.contains("Permission denied"),
        "{stderr}"
    );
    assert_eq!(doc["files_new"], 1, "the readable file is backed up");
    // The snapshot exists and holds the readable file.
    let list = parse_json(
        &unprivileged(&ws)
            .args(["snapshots", "--json"])
            .output()
            .expect("list"),
        0,
    );
    assert_eq!(list.as_array().expect("array").len(), 1);
}

/// A tmpfs mounted for the test, unmounted on drop.
struct SmallFs(std::path::PathBuf);

impl SmallFs {
    fn mount(path: std::path::PathBuf, size: &str) -> Self {
        std::fs::create_dir_all(&path).expect("mkdir");
        let status = Command::new("mount")
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
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn restore_onto_a_full_file_system_names_the_file_and_fails_cleanly() {
    assert!(
        is_root(),
        "this test mounts a 1 MiB tmpfs and must run as root (CI does)"
    );
    let ws = Workspace::new();
    let data = ws.path("data");
    std::fs::create_dir(&data).expect("mkdir");
    for i in 0..4 {
        std::fs::write(data.join(format!("big{i}.bin")), noise(900_000, i)).expect("write");
    }
    ws.init();
    ws.haven().arg("backup").arg(&data).assert().success();
    let small = SmallFs::mount(ws.path("small"), "1m");
    let out = ws
        .haven()
        .args(["restore", "latest", "--target"])
        .arg(&small.0)
        .output()
        .expect("restore");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        stderr.contains("big") && stderr.contains(".bin"),
        "the error names the file: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Regression: a storage failure mid-backup was reported as "interrupted"
/// (the walker's reaction) instead of its cause.
#[test]
fn a_full_repository_disk_reports_the_storage_error_and_stays_consistent() {
    assert!(
        is_root(),
        "this test mounts a 2 MiB tmpfs and must run as root (CI does)"
    );
    let ws = Workspace::new();
    let data = ws.path("data");
    std::fs::create_dir(&data).expect("mkdir");
    for i in 0..4 {
        std::fs::write(data.join(format!("f{i}.bin")), noise(2_000_000, 10 + i)).expect("write");
    }
    let small = SmallFs::mount(ws.path("small"), "2m");
    let repo = small.0.join("repo");
    ws.haven_for(&repo)
        .args(["repo", "init", "--pack-size-mib", "4"])
        .assert()
        .success();
    let out = ws
        .haven_for(&repo)
        .arg("backup")
        .arg(&data)
        .output()
        .expect("backup");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("No space left on device"),
        "the cause must be named: {stderr}"
    );
    assert!(!stderr.contains("error: interrupted"), "{stderr}");
    // Nothing half-committed: no snapshot, and what is there checks clean.
    let out = ws
        .haven_for(&repo)
        .args(["--json", "snapshots"])
        .output()
        .expect("list");
    assert_eq!(parse_json(&out, 0).as_array().expect("array").len(), 0);
    ws.haven_for(&repo)
        .args(["repo", "check"])
        .assert()
        .success();
}
