//! `haven forget`: retention applied to a real repository.

use crate::helpers::{Workspace, list_files, parse_json};

fn ids(ws: &Workspace) -> Vec<String> {
    let out = ws
        .haven()
        .args(["--json", "snapshots"])
        .output()
        .expect("list");
    parse_json(&out, 0)
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect()
}

fn workspace_with_snapshots(hosts: &[&str]) -> Workspace {
    let ws = Workspace::new();
    ws.init();
    let data = ws.path("data");
    std::fs::create_dir(&data).expect("mkdir");
    for (i, host) in hosts.iter().enumerate() {
        std::fs::write(data.join("f"), format!("version {i}")).expect("write");
        ws.haven()
            .args(["backup", "--host", host])
            .arg(&data)
            .assert()
            .success();
    }
    ws
}

#[test]
fn forget_keeps_what_the_policy_says_per_group_and_explains_it() {
    let ws = workspace_with_snapshots(&["web", "web", "web", "db", "db"]);
    let all = ids(&ws);
    assert_eq!(all.len(), 5);

    // Dry run: the plan, nothing removed.
    let plan = ws.json(&["forget", "--keep-last", "1", "--dry-run"], 0);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(
        plan["removed"].as_array().expect("removed").len(),
        3,
        "{plan}"
    );
    assert_eq!(ids(&ws).len(), 5, "a dry run removes nothing");
    let groups = plan["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2, "grouped by host and paths");
    for g in groups {
        let decisions = g["decisions"].as_array().expect("decisions");
        assert_eq!(decisions[0]["keep"], true);
        assert_eq!(decisions[0]["reasons"][0], "last 1");
        assert!(
            decisions[1..]
                .iter()
                .all(|d| d["keep"] == false && d["reasons"][0] == "no rule keeps it")
        );
    }

    // For real: the newest snapshot of each host remains, and checks clean.
    let done = ws.json(&["forget", "--keep-last", "1"], 0);
    let remaining = ids(&ws);
    assert_eq!(remaining.len(), 2);
    for removed in done["removed"].as_array().expect("removed") {
        assert!(!remaining.contains(&removed.as_str().expect("id").to_string()));
    }
    ws.haven()
        .args(["repo", "check", "--read-data"])
        .assert()
        .success();
    let target = ws.path("restore");
    ws.haven()
        .args(["restore", "latest", "--target"])
        .arg(&target)
        .assert()
        .success();

    // One group for everything: only the newest snapshot overall stays.
    ws.json(&["forget", "--keep-last", "1", "--group-by", "none"], 0);
    assert_eq!(ids(&ws).len(), 1);
}

#[test]
fn forget_with_a_wrong_password_or_no_policy_removes_nothing() {
    let ws = workspace_with_snapshots(&["a", "a"]);
    let before = list_files(&ws.repo());
    let out = ws
        .haven()
        .env("HAVEN_PASSWORD", "wrong")
        .args(["forget", "--keep-last", "1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong password"));
    assert_eq!(list_files(&ws.repo()), before);

    let out = ws.haven().args(["forget"]).output().expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "no --keep-* rule is a usage error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--keep-"));
    let out = ws
        .haven()
        .args(["forget", "--keep-within", "3 months"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "months have no fixed length");
    ws.json(&["forget", "--keep-within", "2w"], 0);
    assert_eq!(
        list_files(&ws.repo()),
        before,
        "everything is within two weeks"
    );
}
