//! A flipped byte in any pack, index or snapshot file is detected by
//! `repo check --read-data`, which names the affected snapshots and paths;
//! restoring affected files fails loudly instead of writing wrong data.

use std::path::{Path, PathBuf};

use crate::helpers::{Workspace, noise, parse_json, read_tree, restored};

struct Fixture {
    ws: Workspace,
    data: PathBuf,
    snapshot: String,
}

fn fixture() -> Fixture {
    let ws = Workspace::new();
    let data = ws.path("data");
    std::fs::create_dir(&data).expect("mkdir");
    for i in 0..6u64 {
        std::fs::write(data.join(format!("blob{i}.bin")), noise(1_500_000, i)).expect("write");
    }
    std::fs::write(data.join("notes.txt"), "meeting notes\n".repeat(100)).expect("write");
    ws.init();
    let out = ws
        .haven()
        .args(["--json", "backup"])
        .arg(&data)
        .output()
        .expect("backup");
    let snapshot = parse_json(&out, 0)["snapshot_id"]
        .as_str()
        .expect("id")
        .to_string();
    Fixture { ws, data, snapshot }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .collect();
    v.sort();
    v
}

fn flip_byte(file: &Path, at: usize) {
    let mut bytes = std::fs::read(file).expect("read");
    bytes[at] ^= 0x40;
    std::fs::write(file, bytes).expect("write");
}

#[test]
fn flipped_byte_in_a_pack_names_snapshot_and_paths_and_restore_refuses_them() {
    let f = fixture();
    // The largest pack holds file data; flip a byte in its middle.
    let pack = files_in(&f.ws.repo().join("data"))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).expect("stat").len())
        .expect("a pack");
    let len = std::fs::metadata(&pack).expect("stat").len() as usize;
    flip_byte(&pack, len / 2);

    // The structure check does not read data, so it passes...
    f.ws.haven().args(["repo", "check"]).assert().success();
    // ...reading the data finds the damage and traces it.
    let out =
        f.ws.haven()
            .args(["--json", "repo", "check", "--read-data"])
            .output()
            .expect("check");
    let report = parse_json(&out, 1);
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["kind"].as_str().expect("kind"))
        .collect();
    assert!(
        kinds.contains(&"damaged-pack") && kinds.contains(&"damaged-blob"),
        "{kinds:?}"
    );
    let damaged = report["damaged"].as_array().expect("damaged");
    assert!(
        !damaged.is_empty(),
        "affected paths must be named: {report}"
    );
    let mut bad_files = Vec::new();
    for d in damaged {
        assert_eq!(d["snapshot"], f.snapshot.as_str());
        let path = PathBuf::from(d["path"].as_str().expect("path"));
        assert!(
            path.starts_with(&f.data),
            "{path:?} is a path of the snapshot"
        );
        bad_files.push(path);
    }
    // Human output names them too.
    let out =
        f.ws.haven()
            .args(["repo", "check", "--read-data"])
            .output()
            .expect("check");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let first_bad = bad_files[0].to_string_lossy().into_owned();
    assert!(
        text.contains(&first_bad) && text.contains(&f.snapshot[..8]),
        "{text}"
    );

    // Restore fails loudly, leaves no damaged file behind, restores the rest.
    let target = f.ws.path("target");
    let out =
        f.ws.haven()
            .args(["restore", "latest", "--target"])
            .arg(&target)
            .output()
            .expect("restore");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(first_bad.rsplit('/').next().expect("name")),
        "{stderr}"
    );
    let original = read_tree(&f.data);
    let back = read_tree(&restored(&target, &f.data));
    for bad in &bad_files {
        let rel = bad.strip_prefix(&f.data).expect("rel");
        assert!(
            !back.contains_key(rel),
            "damaged file {rel:?} must not be written"
        );
    }
    for (rel, content) in &back {
        assert_eq!(
            original.get(rel),
            Some(content),
            "restored {rel:?} must be exact"
        );
    }
    assert_eq!(back.len() + bad_files.len(), original.len());
}

#[test]
fn flipped_byte_in_an_index_is_detected_and_data_stays_recoverable() {
    let f = fixture();
    let index = files_in(&f.ws.repo().join("index"))
        .into_iter()
        .next()
        .expect("an index");
    let len = std::fs::metadata(&index).expect("stat").len() as usize;
    flip_byte(&index, len / 2);
    let out =
        f.ws.haven()
            .args(["--json", "repo", "check", "--read-data"])
            .output()
            .expect("check");
    let report = parse_json(&out, 1);
    let problems = report["problems"].as_array().expect("problems");
    assert!(
        problems.iter().any(|p| p["kind"] == "damaged-index"
            && p["object"].as_str().expect("object").contains(
                &index
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .to_string()
            )),
        "{report}"
    );
    // Pack headers make the data findable without the index: nothing lost.
    assert!(
        report["damaged"].as_array().expect("damaged").is_empty(),
        "{report}"
    );
    let target = f.ws.path("target");
    f.ws.haven()
        .args(["restore", "latest", "--target"])
        .arg(&target)
        .assert()
        .success();
    assert_eq!(read_tree(&f.data), read_tree(&restored(&target, &f.data)));
}

#[test]
fn flipped_byte_in_a_snapshot_is_detected_and_restore_fails() {
    let f = fixture();
    let snapshot_file = f.ws.repo().join("snapshots").join(&f.snapshot);
    flip_byte(&snapshot_file, 40);
    let out =
        f.ws.haven()
            .args(["--json", "repo", "check", "--read-data"])
            .output()
            .expect("check");
    let report = parse_json(&out, 1);
    assert!(
        report["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .any(|p| p["kind"] == "damaged-snapshot"),
        "{report}"
    );
    assert_eq!(report["damaged"][0]["snapshot"], f.snapshot.as_str());

    let target = f.ws.path("target");
    let out =
        f.ws.haven()
            .args(["restore", &f.snapshot[..8], "--target"])
            .arg(&target)
            .output()
            .expect("restore");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("corrupt") && stderr.contains(&f.snapshot),
        "{stderr}"
    );
}
