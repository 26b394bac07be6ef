//! The documented interface: commands, `--json`, exit codes, errors.

use crate::helpers::{Workspace, list_files, parse_json, read_tree, restored};

#[test]
fn backup_snapshots_restore_round_trip_with_json() {
    let ws = Workspace::new();
    let data = ws.path("data");
    std::fs::create_dir_all(data.join("sub/empty")).expect("mkdir");
    std::fs::write(data.join("a.txt"), "alpha\n".repeat(1000)).expect("write");
    std::fs::write(data.join("sub/b.bin"), crate::helpers::noise(300_000, 1)).expect("write");
    std::os::unix::fs::symlink("a.txt", data.join("link")).expect("symlink");
    ws.init();

    let summary = ws.json(
        &[
            "backup",
            data.to_str().expect("utf8"),
            "--tag",
            "daily",
            "--host",
            "web-1",
        ],
        0,
    );
    for key in [
        "snapshot_id",
        "files_new",
        "files_changed",
        "files_unmodified",
        "bytes_read",
        "bytes_added",
        "duration_ms",
    ] {
        assert!(
            summary.get(key).is_some(),
            "backup summary lacks {key}: {summary}"
        );
    }
    assert_eq!(summary["files_new"], 2);
    assert_eq!(summary["bytes_read"], 6000 + 300_000);
    let id = summary["snapshot_id"].as_str().expect("id").to_string();

    // --json is accepted after the subcommand too.
    let out = ws
        .haven()
        .args(["snapshots", "--json"])
        .output()
        .expect("run");
    let list = parse_json(&out, 0);
    assert_eq!(list.as_array().expect("array").len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["hostname"], "web-1");
    assert_eq!(list[0]["tags"][0], "daily");

    let target = ws.path("target");
    ws.haven()
        .args([
            "restore",
            &id[..8],
            "--target",
            target.to_str().expect("utf8"),
        ])
        .assert()
        .success();
    let back = restored(&target, &data);
    assert_eq!(read_tree(&data), read_tree(&back));
    assert!(
        back.join("sub/empty").is_dir(),
        "empty directories are restored"
    );
    assert_eq!(
        std::fs::read_link(back.join("link")).expect("link"),
        std::path::Path::new("a.txt")
    );

    // --exclude leaves matching paths out.
    std::fs::write(data.join("scratch.tmp"), b"temporary").expect("write");
    let excluded = ws.json(
        &["backup", data.to_str().expect("utf8"), "--exclude", "*.tmp"],
        0,
    );
    let excluded_id = excluded["snapshot_id"].as_str().expect("id").to_string();
    let ex_target = ws.path("ex-target");
    ws.haven()
        .args([
            "restore",
            &excluded_id,
            "--target",
            ex_target.to_str().expect("utf8"),
        ])
        .assert()
        .success();
    let ex_back = restored(&ex_target, &data);
    assert!(ex_back.join("a.txt").exists() && !ex_back.join("scratch.tmp").exists());
    std::fs::remove_file(data.join("scratch.tmp")).expect("rm");

    // SNAPSHOT:PATH restores a sub-tree into the target.
    let sub_target = ws.path("sub-target");
    let spec = format!("latest:{}/sub", data.display());
    ws.haven()
        .args([
            "restore",
            &spec,
            "--target",
            sub_target.to_str().expect("utf8"),
        ])
        .assert()
        .success();
    assert!(sub_target.join("b.bin").is_file());

    let stats = ws.json(&["repo", "stats"], 0);
    assert_eq!(stats["snapshots"], 2);
    assert!(stats["pack_bytes"].as_u64().expect("bytes") > 0);
    let check = ws.json(&["repo", "check", "--read-data"], 0);
    assert_eq!(check["problems"].as_array().expect("problems").len(), 0);
    ws.haven()
        .args(["repo", "check", "--read-data-subset", "50%"])
        .assert()
        .success();
}

#[test]
fn wrong_password_fails_clearly_and_writes_nothing() {
    let ws = Workspace::new();
    let data = ws.path("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("f"), b"x").expect("write");
    ws.init();
    let before = list_files(&ws.repo());
    let out = ws
        .haven()
        .env("HAVEN_PASSWORD", "not the password")
        .args(["backup", data.to_str().expect("utf8")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wrong password"), "{stderr}");
    assert!(
        !stderr.contains("not the password"),
        "the password must never be echoed"
    );
    assert_eq!(
        before,
        list_files(&ws.repo()),
        "nothing may be written with a wrong password"
    );

    // A password file works, and a wrong one fails the same way.
    let pw = ws.path("pw");
    std::fs::write(&pw, "wrong\n").expect("write");
    let out = ws
        .haven()
        .env_remove("HAVEN_PASSWORD")
        .args(["snapshots", "--password-file", pw.to_str().expect("utf8")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    std::fs::write(&pw, format!("{}\n", crate::helpers::PASSWORD)).expect("write");
    ws.haven()
        .env_remove("HAVEN_PASSWORD")
        .env("HAVEN_PASSWORD_FILE", &pw)
        .arg("snapshots")
        .assert()
        .success();
}

#[test]
fn missing_or_uninitialised_repository_is_explained() {
    let ws = Workspace::new();
    let out = ws
        .haven_for(&ws.path("nope"))
        .arg("snapshots")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no repository at") && stderr.contains("haven repo init"),
        "{stderr}"
    );
    assert!(
        !ws.path("nope").exists(),
        "opening must not create the directory"
    );

    std::fs::create_dir(ws.path("empty")).expect("mkdir");
    let out = ws
        .haven_for(&ws.path("empty"))
        .arg("snapshots")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not initialised"), "{stderr}");
    let left = std::fs::read_dir(ws.path("empty")).expect("ls").count();
    assert_eq!(left, 0, "nothing written into a non-repository");

    // init refuses to overwrite an existing repository.
    ws.init();
    let out = ws.haven().args(["repo", "init"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[test]
fn usage_errors_exit_2_and_json_errors_are_one_document() {
    let ws = Workspace::new();
    let out = ws
        .haven()
        .env_remove("HAVEN_REPO")
        .arg("snapshots")
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "no repository given is a usage error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--repo"));

    let out = ws.haven().args(["backup"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "missing PATH");
    let out = ws
        .haven()
        .args(["repo", "check", "--read-data-subset", "150"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = ws
        .haven()
        .args(["--repo", "ftp://x/y", "snapshots"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scheme"));

    let out = ws
        .haven_for(&ws.path("nope"))
        .args(["--json", "snapshots"])
        .output()
        .expect("run");
    let doc = parse_json(&out, 1);
    assert!(
        doc["error"]["message"]
            .as_str()
            .expect("message")
            .contains("no repository")
    );
    // One error shape everywhere: the code decides the exit code.
    assert_eq!(doc["error"]["code"], "repository-not-found");

    ws.init();
    let out = ws
        .haven()
        .args(["restore", "zz", "--target", "/tmp/x"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a malformed selector is a usage error"
    );
    let out = ws
        .haven()
        .args(["restore", "abcdef", "--target", "/tmp/x"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no snapshot matches"));
}

#[test]
fn a_closed_stdout_ends_the_command_quietly_like_sigpipe() {
    // `haven catalog schema | head -0`: the reader is gone before the
    // first write.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("haven"))
        .args(["catalog", "schema"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(141));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A path to back up that does not exist: one clear message (not the
/// cause twice), its own error code, nothing saved.
#[test]
fn a_missing_backup_path_is_reported_once() {
    let ws = Workspace::new();
    ws.init();
    let missing = ws.path("not-there");
    let out = ws
        .haven()
        .args(["--json", "backup"])
        .arg(&missing)
        .output()
        .expect("run");
    let error = parse_json(&out, 1);
    assert_eq!(error["error"]["code"], "source-unreadable");
    let message = error["error"]["message"].as_str().expect("message");
    assert_eq!(
        message,
        format!("cannot back up {}: it does not exist", missing.display())
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("does not exist").count(), 1, "{stderr}");
    assert_eq!(ws.json(&["snapshots"], 0).as_array().map(Vec::len), Some(0));
}
