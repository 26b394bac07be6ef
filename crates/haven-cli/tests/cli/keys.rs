//! `haven repo key add|list|remove|rotate`.

use crate::helpers::{PASSWORD, Workspace, parse_json};

fn keys(ws: &Workspace, password: &str) -> serde_json::Value {
    let out = ws
        .haven()
        .env("HAVEN_PASSWORD", password)
        .args(["--json", "repo", "key", "list"])
        .output()
        .expect("list");
    parse_json(&out, 0)
}

#[test]
fn keys_can_be_added_listed_removed_and_rotated() {
    let ws = Workspace::new();
    ws.init();
    let first = keys(&ws, PASSWORD);
    assert_eq!(first.as_array().expect("array").len(), 1);
    assert_eq!(first[0]["current"], true);
    let first_id = first[0]["id"].as_str().expect("id").to_string();

    // The last key cannot be removed, and neither can the one in use.
    let out = ws
        .haven()
        .args(["repo", "key", "remove", &first_id[..8]])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("last key"));

    // Add a second password; both open the repository.
    let added = ws
        .haven()
        .env("HAVEN_NEW_PASSWORD", "second password")
        .args(["--json", "repo", "key", "add"])
        .output()
        .expect("add");
    let second_id = parse_json(&added, 0)["added"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        keys(&ws, "second password")
            .as_array()
            .expect("array")
            .len(),
        2
    );
    let out = ws
        .haven()
        .args(["repo", "key", "remove", &first_id[..8]])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the one this command was opened with"));

    // With the second password, the first key can go: its password stops working.
    ws.haven()
        .env("HAVEN_PASSWORD", "second password")
        .args(["repo", "key", "remove", &first_id[..8]])
        .assert()
        .success();
    let out = ws.haven().arg("snapshots").output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong password"));

    // Rotate: a third password replaces the second; data stays readable.
    let data = ws.path("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("f"), b"kept across rotation").expect("write");
    ws.haven()
        .env("HAVEN_PASSWORD", "second password")
        .arg("backup")
        .arg(&data)
        .assert()
        .success();
    let pw_file = ws.path("new-pw");
    std::fs::write(&pw_file, "third password\n").expect("write");
    let rotated = ws
        .haven()
        .env("HAVEN_PASSWORD", "second password")
        .args(["--json", "repo", "key", "rotate", "--new-password-file"])
        .arg(&pw_file)
        .output()
        .expect("rotate");
    let doc = parse_json(&rotated, 0);
    assert_eq!(doc["removed"], second_id.as_str());
    let out = ws
        .haven()
        .env("HAVEN_PASSWORD", "second password")
        .arg("snapshots")
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "the rotated-out password no longer works"
    );
    let target = ws.path("out");
    ws.haven()
        .env("HAVEN_PASSWORD", "third password")
        .args(["restore", "latest", "--target"])
        .arg(&target)
        .assert()
        .success();
    let restored = crate::helpers::restored(&target, &data).join("f");
    assert_eq!(
        std::fs::read(restored).expect("read"),
        b"kept across rotation"
    );
    let listed = keys(&ws, "third password");
    assert_eq!(listed.as_array().expect("array").len(), 1);
    assert!(
        !listed.to_string().contains("third password"),
        "no secret in the key list"
    );
}
