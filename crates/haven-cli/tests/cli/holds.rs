//! Retention locks and legal holds: no command removes a protected snapshot.

use crate::helpers::{Workspace, parse_json};

fn backup(ws: &Workspace, data: &std::path::Path, extra: &[&str]) -> String {
    std::fs::write(data.join("f"), jiff::Timestamp::now().to_string()).expect("write");
    let out = ws
        .haven()
        .args(["--json", "backup"])
        .arg(data)
        .args(extra)
        .output()
        .expect("backup");
    parse_json(&out, 0)["snapshot_id"]
        .as_str()
        .expect("id")
        .to_string()
}

#[test]
fn locked_and_held_snapshots_survive_forget_and_explicit_removal() {
    let ws = Workspace::new();
    ws.init();
    let data = ws.path("data");
    std::fs::create_dir(&data).expect("mkdir");
    let locked = backup(&ws, &data, &["--lock-until", "2099-01-01"]);
    let held = backup(&ws, &data, &[]);
    let plain = backup(&ws, &data, &[]);
    let newest = backup(&ws, &data, &[]);

    ws.haven()
        .args(["hold", "add", &held[..8], "--reason", "case 42: litigation"])
        .assert()
        .success();
    let holds = parse_json(
        &ws.haven()
            .args(["--json", "hold", "list"])
            .output()
            .expect("list"),
        0,
    );
    assert_eq!(holds[0]["snapshot"], held.as_str());
    assert_eq!(holds[0]["reason"], "case 42: litigation");

    // The policy keeps only the newest, but protection wins, with its reason.
    let report = ws.json(&["forget", "--keep-last", "1"], 0);
    let removed: Vec<&str> = report["removed"]
        .as_array()
        .expect("removed")
        .iter()
        .map(|v| v.as_str().expect("id"))
        .collect();
    assert_eq!(removed, vec![plain.as_str()]);
    let decisions = report["groups"][0]["decisions"]
        .as_array()
        .expect("decisions");
    let reasons_of = |id: &str| {
        decisions.iter().find(|d| d["id"] == id).expect("decision")["reasons"].to_string()
    };
    assert!(
        reasons_of(&locked).contains("retention lock until 2099-01-01"),
        "{report}"
    );
    assert!(
        reasons_of(&held).contains("legal hold: case 42"),
        "{report}"
    );
    assert!(reasons_of(&newest).contains("last 1"));

    // Explicit removal of a protected snapshot fails clearly and removes nothing.
    for (id, why) in [(&locked, "retention lock"), (&held, "legal hold")] {
        let out = ws
            .haven()
            .args(["forget", &id[..8], &newest[..8]])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("is protected") && stderr.contains(why),
            "{stderr}"
        );
    }
    let listed = parse_json(
        &ws.haven()
            .args(["--json", "snapshots"])
            .output()
            .expect("list"),
        0,
    );
    assert_eq!(
        listed.as_array().expect("array").len(),
        3,
        "all or nothing: the newest was not removed either"
    );
    let lock = listed
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["id"] == locked.as_str())
        .expect("locked");
    assert_eq!(lock["retention_lock_until"], "2099-01-01T00:00:00Z");

    // Lifting the hold (with a reason) makes the snapshot removable.
    let out = ws
        .haven()
        .args(["hold", "remove", &held[..8]])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "--reason is required");
    ws.haven()
        .args(["hold", "remove", &held[..8], "--reason", "case closed"])
        .assert()
        .success();
    ws.haven().args(["forget", &held[..8]]).assert().success();
    ws.haven().args(["repo", "check"]).assert().success();
}

#[test]
fn a_lock_in_the_past_or_a_hold_without_reason_is_refused() {
    let ws = Workspace::new();
    ws.init();
    let data = ws.path("data");
    std::fs::create_dir(&data).expect("mkdir");
    let out = ws
        .haven()
        .args(["backup", "--lock-until", "2001-01-01"])
        .arg(&data)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in the past"));
    let id = backup(&ws, &data, &[]);
    let out = ws
        .haven()
        .args(["hold", "add", &id[..8], "--reason", " "])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = ws
        .haven()
        .env("HAVEN_PASSWORD", "wrong")
        .args(["hold", "add", &id[..8], "--reason", "x"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !ws.repo().join("holds").exists(),
        "no hold written with a wrong password"
    );
}

/// A local repository has no Object Lock: a locked backup into one says
/// nothing about Object Lock (the lock is Haven's, as for every
/// repository), even with verbose logs.
#[test]
fn a_locked_backup_to_a_local_repository_says_nothing_of_object_lock() {
    let ws = Workspace::new();
    ws.init();
    let data = ws.path("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("f"), "x").expect("write");
    let out = ws
        .haven()
        .args(["-vv", "backup", "--lock-until", "2099-01-01"])
        .arg(&data)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains("Object Lock"), "{text}");
    }
}
