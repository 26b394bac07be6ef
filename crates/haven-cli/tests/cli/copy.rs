//! `haven copy`: snapshots to a second repository with its own keys.

use std::path::{Path, PathBuf};

use crate::helpers::{Workspace, list_files, noise, parse_json, read_tree, restored};

const PASSWORD2: &str = "second password";

fn target(ws: &Workspace) -> PathBuf {
    ws.path("target")
}

/// `haven` on the target repository, with its own password.
fn on_target(ws: &Workspace) -> assert_cmd::Command {
    let mut cmd = ws.haven_for(&target(ws));
    cmd.env("HAVEN_PASSWORD", PASSWORD2);
    cmd
}

/// `haven copy` from the workspace repository to the target.
fn copy(ws: &Workspace) -> assert_cmd::Command {
    let mut cmd = ws.haven();
    cmd.env("HAVEN_PASSWORD2", PASSWORD2)
        .arg("copy")
        .arg("--to")
        .arg(target(ws));
    cmd
}

fn copy_json(ws: &Workspace, extra: &[&str]) -> serde_json::Value {
    let out = copy(ws).arg("--json").args(extra).output().expect("copy");
    parse_json(&out, 0)
}

fn setup() -> (Workspace, PathBuf) {
    let ws = Workspace::new();
    ws.init();
    on_target(&ws)
        .args(["repo", "init", "--pack-size-mib", "4"])
        .assert()
        .success();
    let data = ws.path("data");
    std::fs::create_dir(&data).expect("mkdir");
    for i in 0..5u64 {
        std::fs::write(data.join(format!("f{i}.bin")), noise(700_000, i)).expect("write");
    }
    (ws, data)
}

fn json_of(cmd: &mut assert_cmd::Command, args: &[&str]) -> serde_json::Value {
    let out = cmd.arg("--json").args(args).output().expect("run");
    parse_json(&out, 0)
}

#[test]
fn copies_are_deduplicated_idempotent_verified_and_keep_their_locks() {
    let (ws, data) = setup();
    // The target already holds the same data from its own backup: a copy
    // is cut with the target's chunker, so it deduplicates against it.
    on_target(&ws).arg("backup").arg(&data).assert().success();
    ws.haven()
        .args(["backup", "--lock-until", "2099-01-01"])
        .arg(&data)
        .assert()
        .success();
    std::fs::write(data.join("new.txt"), "a small change\n").expect("write");
    ws.haven().arg("backup").arg(&data).assert().success();

    let report = copy_json(&ws, &["--verify"]);
    assert_eq!(report["copied"], 2, "{report}");
    assert_eq!(report["present"], 0);
    let added = report["bytes_added"].as_u64().expect("bytes");
    assert!(
        added < 200_000,
        "3.5 MB of data the target has must not travel again ({added} bytes added)"
    );
    let snapshots = report["snapshots"].as_array().expect("snapshots");
    assert!(snapshots.iter().all(|s| s["verified"] == true), "{report}");
    assert!(
        snapshots[0]["bytes_read"].as_u64().expect("read") >= 3_500_000,
        "file content is read from the source and re-chunked"
    );
    assert!(
        snapshots[1]["bytes_read"].as_u64().expect("read") < 100_000,
        "only what changed since the parent is read again: {report}"
    );

    // Idempotent: nothing copied, nothing written the second time.
    let files = list_files(&target(&ws));
    let again = copy_json(&ws, &[]);
    assert_eq!(again["copied"], 0, "{again}");
    assert_eq!(again["present"], 2);
    assert_eq!(again["bytes_added"], 0);
    assert_eq!(list_files(&target(&ws)), files);

    // The next run reads only what changed since the copied parent.
    std::fs::write(data.join("later.txt"), "another small change\n").expect("write");
    ws.haven().arg("backup").arg(&data).assert().success();
    let next = copy_json(&ws, &[]);
    assert_eq!(next["copied"], 1, "{next}");
    let fresh = next["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .find(|s| s["status"] == "copied")
        .expect("the new snapshot");
    assert!(
        fresh["bytes_read"].as_u64().expect("read") < 100_000,
        "{next}"
    );

    // The copies restore exactly and keep the retention lock.
    let listed = json_of(&mut on_target(&ws), &["snapshots"]);
    let listed = listed.as_array().expect("list");
    assert_eq!(listed.len(), 4, "the native backup and three copies");
    assert_eq!(
        listed
            .iter()
            .filter(|s| s["retention_lock_until"].is_string())
            .count(),
        1,
        "{listed:?}"
    );
    let out = ws.path("out");
    on_target(&ws)
        .args(["restore", "latest", "--target"])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(read_tree(&restored(&out, &data)), read_tree(&data));
    let check = json_of(&mut on_target(&ws), &["repo", "check", "--read-data"]);
    assert_eq!(check["problems"].as_array().expect("problems").len(), 0);

    // A locked copy is as protected as the original.
    let locked = listed
        .iter()
        .find(|s| s["retention_lock_until"].is_string())
        .expect("locked copy");
    let out = on_target(&ws)
        .args(["forget", locked["id"].as_str().expect("id")])
        .output()
        .expect("forget");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("retention lock"));
}

#[test]
fn copy_selects_snapshots_and_verify_catches_a_damaged_copy() {
    let (ws, data) = setup();
    let first = json_of(&mut ws.haven(), &["backup", data.to_str().expect("utf8")]);
    std::fs::write(data.join("f0.bin"), noise(700_000, 99)).expect("write");
    ws.haven().arg("backup").arg(&data).assert().success();

    let id = first["snapshot_id"].as_str().expect("id");
    let report = copy_json(&ws, &[&id[..10]]);
    assert_eq!(report["copied"], 1, "{report}");
    assert_eq!(report["snapshots"][0]["source"], id);

    // Damage the copy's data: --verify reads it back and fails.
    let pack = largest_file(&target(&ws).join("data"));
    let mut bytes = std::fs::read(&pack).expect("read");
    bytes[1000] ^= 0x01;
    std::fs::write(&pack, bytes).expect("write");
    let out = copy(&ws)
        .args([&id[..10], "--verify"])
        .output()
        .expect("copy");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("corrupt"), "{stderr}");
}

#[test]
fn copy_with_a_wrong_or_missing_target_password_writes_nothing() {
    let (ws, data) = setup();
    ws.haven().arg("backup").arg(&data).assert().success();
    let files = list_files(&target(&ws));

    let out = copy(&ws)
        .env("HAVEN_PASSWORD2", "wrong")
        .output()
        .expect("copy");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("target repository") && stderr.contains("wrong password"),
        "{stderr}"
    );

    let out = copy(&ws)
        .env_remove("HAVEN_PASSWORD2")
        .output()
        .expect("copy");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HAVEN_PASSWORD2"));

    let out = ws
        .haven()
        .env("HAVEN_PASSWORD2", crate::helpers::PASSWORD)
        .args(["copy", "--to"])
        .arg(ws.repo())
        .output()
        .expect("copy");
    assert_eq!(
        out.status.code(),
        Some(2),
        "copying a repository into itself"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("same repository"));
    assert_eq!(list_files(&target(&ws)), files);
}

fn largest_file(dir: &Path) -> PathBuf {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .max_by_key(|e| e.metadata().expect("stat").len())
        .expect("a pack")
        .path()
        .to_path_buf()
}
