//! A backup killed with SIGKILL at random points leaves a repository that
//! checks clean; the next backup succeeds and reuses what was stored.

use std::process::Stdio;
use std::time::Instant;

use rand::{Rng, SeedableRng};

use crate::helpers::{Workspace, noise, parse_json};

fn dataset(root: &std::path::Path) -> u64 {
    let mut total = 0u64;
    std::fs::create_dir_all(root).expect("mkdir");
    for d in 0..8 {
        let dir = root.join(format!("dir{d}"));
        std::fs::create_dir(&dir).expect("mkdir");
        for f in 0..12u64 {
            // Mostly incompressible, sizes from 2 KiB to ~1.4 MiB.
            let len = 2048 + ((d * 12 + f) * 15_013 % 1_400_000) as usize;
            std::fs::write(dir.join(format!("f{f}")), noise(len, d * 100 + f)).expect("write");
            total += len as u64;
        }
    }
    total
}

fn pack_bytes(repo: &std::path::Path) -> u64 {
    let data = repo.join("data");
    if !data.exists() {
        return 0; // killed before the first pack was written
    }
    walkdir::WalkDir::new(data)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().expect("stat").len())
        .sum()
}

#[test]
fn sigkill_at_random_points_loses_nothing_and_is_reused() {
    let ws = Workspace::new();
    let data = ws.path("data");
    let total = dataset(&data);

    // Reference: how long a complete backup takes and how much it stores.
    let reference = ws.path("reference");
    ws.haven_for(&reference)
        .args(["repo", "init", "--pack-size-mib", "4"])
        .assert()
        .success();
    let started = Instant::now();
    let out = ws
        .haven_for(&reference)
        .args(["--json", "backup"])
        .arg(&data)
        .output()
        .expect("backup");
    let full = parse_json(&out, 0);
    let full_duration = started.elapsed();
    let full_bytes = full["bytes_added"].as_u64().expect("bytes");
    assert!(full_bytes >= total, "noise does not compress");

    ws.init();
    // The seed is printed so a failure can be replayed.
    let seed: u64 = rand::rng().random();
    eprintln!("kill schedule seed: {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for round in 0..6 {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("haven"))
            .env("HAVEN_REPO", ws.repo())
            .env("HAVEN_PASSWORD", crate::helpers::PASSWORD)
            .args(["backup", "--force"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn backup");
        // The kill point: a random instant within a full backup's duration
        // (process start and key derivation included).
        let delay = full_duration.mul_f64(rng.random_range(0.05..0.95));
        std::thread::sleep(delay);
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("reap");
        eprintln!(
            "round {round}: killed after {delay:?} ({status}), packs {} bytes",
            pack_bytes(&ws.repo())
        );

        let out = ws
            .haven()
            .args(["--json", "repo", "check"])
            .output()
            .expect("check");
        let report = parse_json(&out, 0);
        assert_eq!(
            report["problems"].as_array().expect("problems").len(),
            0,
            "{report}"
        );
    }

    let stored_before = pack_bytes(&ws.repo());
    let out = ws
        .haven()
        .args(["--json", "backup", "--force"])
        .arg(&data)
        .output()
        .expect("final backup");
    let last = parse_json(&out, 0);
    let added = last["bytes_added"].as_u64().expect("bytes");
    if stored_before > 0 {
        assert!(
            added < full_bytes,
            "data stored by killed backups must be reused ({added} >= {full_bytes})"
        );
    }
    // Everything stored by all attempts together is about one copy of the
    // data: killed attempts re-used each other's packs.
    let stored = pack_bytes(&ws.repo());
    assert!(
        stored <= full_bytes + full_bytes / 5 + 8 * 1024 * 1024,
        "stored {stored} bytes for {full_bytes} bytes of data: killed backups were not reused"
    );
    let out = ws
        .haven()
        .args(["--json", "repo", "check", "--read-data"])
        .output()
        .expect("check");
    let report = parse_json(&out, 0);
    assert_eq!(
        report["problems"].as_array().expect("problems").len(),
        0,
        "{report}"
    );

    let target = ws.path("restored");
    ws.haven()
        .args(["restore", "latest", "--target"])
        .arg(&target)
        .assert()
        .success();
    assert_eq!(
        crate::helpers::read_tree(&data),
        crate::helpers::read_tree(&crate::helpers::restored(&target, &data))
    );
}
