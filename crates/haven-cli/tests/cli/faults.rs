//! Unreadable sources and a full target file system.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::helpers::{SmallFs, Workspace, is_root, noise, parse_json};

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
    // What could not be completed is gone: no partial file, under its own
    // name or a `.partial` one; what is there is whole.
    let restored = crate::helpers::restored(&small.0, &data);
    for entry in walkdir::WalkDir::new(&small.0) {
        let entry = entry.expect("walk");
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(".partial"),
            "{} was left behind",
            entry.path().display()
        );
        if entry.file_type().is_file() {
            let source = data.join(
                entry
                    .path()
                    .strip_prefix(&restored)
                    .expect("under the target"),
            );
            assert_eq!(
                std::fs::read(entry.path()).expect("read"),
                std::fs::read(source).expect("read source"),
                "{} is incomplete",
                entry.path().display()
            );
        }
    }
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

/// Every file of the repository, with its mode bits.
fn modes(root: &std::path::Path) -> Vec<(std::path::PathBuf, bool, u32)> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.expect("walk"))
        .map(|e| {
            let meta = e.metadata().expect("stat");
            (
                e.path().to_path_buf(),
                meta.is_dir(),
                meta.permissions().mode() & 0o7777,
            )
        })
        .collect()
}

/// Regression: a local repository's `config` and `keys/` (the
/// password-wrapped master key: an offline guessing target) followed the
/// umask (0644/0755).
#[test]
fn repository_files_are_private_whatever_the_umask() {
    let ws = Workspace::new();
    let data = ws.path("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("f"), noise(300_000, 7)).expect("write");
    let haven = assert_cmd::cargo::cargo_bin("haven");
    for args in [
        vec!["repo", "init"],
        vec!["backup", data.to_str().expect("utf-8")],
    ] {
        let status = Command::new("sh")
            .arg("-c")
            .arg("umask 000; exec \"$@\"")
            .arg("sh")
            .arg(&haven)
            .args(&args)
            .env("HAVEN_REPO", ws.repo())
            .env("HAVEN_PASSWORD", crate::helpers::PASSWORD)
            .status()
            .expect("run haven under umask 000");
        assert!(status.success(), "{args:?}");
    }
    let all = modes(&ws.repo());
    assert!(all.len() > 8, "{all:?}");
    for (path, is_dir, mode) in &all {
        let expected = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, expected, "{} is {mode:o}", path.display());
    }

    // A key file made readable by hand is reported, with the fix.
    let key = std::fs::read_dir(ws.repo().join("keys"))
        .expect("keys")
        .next()
        .expect("a key file")
        .expect("entry")
        .path();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = ws.haven().args(["repo", "check"]).output().expect("check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("chmod 600 {}", key.display())),
        "{stdout}"
    );
}

/// This machine's host name as Haven names its writers' staging
/// directories (`tmp/<host>-<pid>`).
fn staging_name(pid: u32) -> String {
    let host: String = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{host}-{pid}")
}

/// Regression: a backup stopped by a full disk (or killed) left partial
/// files under `tmp/`, and prune then failed writing its lock: the space
/// could never be reclaimed through Haven.
#[test]
fn a_full_repository_disk_is_reclaimed_by_prune() {
    assert!(
        is_root(),
        "this test mounts a 12 MiB tmpfs and must run as root (CI does)"
    );
    let ws = Workspace::new();
    let small_data = ws.path("small");
    std::fs::create_dir(&small_data).expect("mkdir");
    std::fs::write(small_data.join("f"), noise(200_000, 1)).expect("write");
    let big_data = ws.path("big");
    std::fs::create_dir(&big_data).expect("mkdir");
    for i in 0..4 {
        std::fs::write(big_data.join(format!("f{i}")), noise(4_000_000, 10 + i)).expect("write");
    }
    let disk = SmallFs::mount(ws.path("disk"), "12m");
    let repo = disk.0.join("repo");
    ws.haven_for(&repo)
        .args(["repo", "init", "--pack-size-mib", "4"])
        .assert()
        .success();
    ws.haven_for(&repo)
        .arg("backup")
        .arg(&small_data)
        .assert()
        .success();

    // Fails for want of space: the packs it wrote stay, unreferenced.
    let out = ws
        .haven_for(&repo)
        .arg("backup")
        .arg(&big_data)
        .output()
        .expect("backup");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And a writer killed mid-file left its staging directory: whatever
    // space is left, it fills.
    let dead = std::process::Command::new("true").spawn().expect("spawn");
    let dead_pid = dead.id();
    let mut dead = dead;
    dead.wait().expect("reap");
    let leftover = repo.join("tmp").join(staging_name(dead_pid));
    std::fs::create_dir_all(&leftover).expect("mkdir");
    let mut junk = std::fs::File::create(leftover.join("0")).expect("create");
    let chunk = noise(64 << 10, 3);
    while std::io::Write::write_all(&mut junk, &chunk).is_ok() {}
    drop(junk);

    let out = ws
        .haven_for(&repo)
        .args([
            "--json",
            "prune",
            "--grace",
            "0s",
            "--i-know-backups-are-stopped",
        ])
        .output()
        .expect("prune");
    let report = parse_json(&out, 0);
    assert!(
        report["tmp_bytes_freed"].as_u64().expect("freed") > 0,
        "{report}"
    );
    assert!(
        report["after"]["bytes"].as_u64() < report["before"]["bytes"].as_u64(),
        "{report}"
    );
    assert!(!leftover.exists());

    // Room again: a backup succeeds, and everything checks clean.
    std::fs::write(small_data.join("g"), noise(100_000, 2)).expect("write");
    ws.haven_for(&repo)
        .arg("backup")
        .arg(&small_data)
        .assert()
        .success();
    ws.haven_for(&repo)
        .args(["repo", "check", "--read-data"])
        .assert()
        .success();
}
