//! `--stdin-from` dump streams and pre/post hooks.

use crate::helpers::{Workspace, parse_json};

fn snapshot_count(ws: &Workspace) -> usize {
    let out = ws
        .haven()
        .args(["--json", "snapshots"])
        .output()
        .expect("list");
    parse_json(&out, 0).as_array().expect("array").len()
}

#[test]
fn a_command_stream_is_backed_up_without_a_temporary_file() {
    let ws = Workspace::new();
    ws.init();
    // 3 MB of "dump" across several chunks and packs, streamed.
    let cmd = "i=0; while [ $i -lt 30000 ]; do echo \"INSERT INTO t VALUES ($i, 'row number $i of the dump');\"; i=$((i+1)); done";
    let summary = ws.json(
        &[
            "backup",
            "--stdin-from",
            cmd,
            "--stdin-name",
            "db.sql",
            "--tag",
            "pg",
        ],
        0,
    );
    assert_eq!(summary["paths"][0], "db.sql");
    let target = ws.path("out");
    ws.haven()
        .args(["restore", "latest", "--target"])
        .arg(&target)
        .assert()
        .success();
    let restored = std::fs::read_to_string(target.join("db.sql")).expect("restored dump");
    assert_eq!(restored.lines().count(), 30000);
    assert!(restored.ends_with("VALUES (29999, 'row number 29999 of the dump');\n"));
}

#[test]
fn a_failing_dump_command_saves_no_snapshot() {
    let ws = Workspace::new();
    ws.init();
    let out = ws
        .haven()
        .args([
            "backup",
            "--stdin-from",
            "echo partial data; echo 'pg_dump: connection refused' >&2; exit 2",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exit status: 2") && stderr.contains("connection refused"),
        "{stderr}"
    );
    assert_eq!(
        snapshot_count(&ws),
        0,
        "a failed dump must not become a snapshot"
    );
}

#[test]
fn hooks_run_around_the_backup_and_post_hook_learns_the_outcome() {
    let ws = Workspace::new();
    ws.init();
    let data = ws.path("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("f"), b"x").expect("write");
    let log = ws.path("hooks.log");
    let pre = format!("echo pre >> {}", log.display());
    let post = format!(
        "echo \"post $HAVEN_BACKUP_STATUS $HAVEN_SNAPSHOT_ID\" >> {}",
        log.display()
    );

    let summary = ws.json(
        &[
            "backup",
            data.to_str().expect("utf8"),
            "--pre-hook",
            &pre,
            "--post-hook",
            &post,
        ],
        0,
    );
    let id = summary["snapshot_id"].as_str().expect("id");
    let text = std::fs::read_to_string(&log).expect("log");
    assert_eq!(text, format!("pre\npost success {id}\n"));

    // A failing pre-hook aborts; the post-hook still runs, told "failed".
    std::fs::remove_file(&log).expect("rm");
    let failing_pre = format!(
        "echo pre >> {}; echo 'cannot freeze' >&2; exit 1",
        log.display()
    );
    let out = ws
        .haven()
        .args([
            "backup",
            data.to_str().expect("utf8"),
            "--pre-hook",
            &failing_pre,
            "--post-hook",
            &post,
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pre-hook failed") && stderr.contains("cannot freeze"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&log).expect("log"),
        "pre\npost failed \n"
    );
    assert_eq!(snapshot_count(&ws), 1, "the aborted backup saved nothing");

    // A failing post-hook after a saved snapshot: exit 3 (partial).
    let out = ws
        .haven()
        .args([
            "backup",
            data.to_str().expect("utf8"),
            "--post-hook",
            "exit 5",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(snapshot_count(&ws), 2);
}

#[test]
fn a_hook_over_its_timeout_is_killed_and_aborts_the_backup() {
    let ws = Workspace::new();
    ws.init();
    let data = ws.path("data");
    std::fs::create_dir(&data).expect("mkdir");
    let out = ws
        .haven()
        .args([
            "backup",
            data.to_str().expect("utf8"),
            "--pre-hook",
            "sleep 60",
            "--hook-timeout",
            "1s",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did not finish within 1s"), "{stderr}");
    assert_eq!(snapshot_count(&ws), 0);

    let out = ws
        .haven()
        .args([
            "backup",
            data.to_str().expect("utf8"),
            "--hook-timeout",
            "soon",
        ])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad duration is a usage error"
    );
}
