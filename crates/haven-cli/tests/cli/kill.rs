//! A backup killed with SIGKILL at random points leaves a repository that
//! checks clean; the next backup succeeds and reuses what was stored. A
//! restore killed at random points leaves nothing readable that should
//! not be.

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

/// Regression: files were created 0644 and directories 0755, their real
/// modes applied only at the end, so a restore killed (or failing) midway
/// left a 0600 private key world-readable in a 0755 directory.
#[test]
fn a_restore_killed_at_random_points_exposes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    let data = ws.path("data");
    let secrets = data.join("secrets");
    std::fs::create_dir_all(&secrets).expect("mkdir");
    for i in 0..6u64 {
        let key = secrets.join(format!("id_{i}"));
        std::fs::write(&key, noise(2_000_000, 500 + i)).expect("write");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let total = dataset(&data.join("public"));
    assert!(total > 10 << 20);
    ws.init();
    ws.haven().arg("backup").arg(&data).assert().success();
    // What a restored entry was backed up from: its path below the
    // target, as an absolute path (ancestors of the data included).
    let source_of = |target: &std::path::Path, restored: &std::path::Path| {
        std::path::Path::new("/").join(restored.strip_prefix(target).expect("under the target"))
    };
    let mode_of = |path: &std::path::Path| {
        std::fs::symlink_metadata(path)
            .expect("source entry")
            .permissions()
            .mode()
            & 0o7777
    };

    let reference = ws.path("reference");
    let started = Instant::now();
    ws.haven()
        .args(["restore", "latest", "--target"])
        .arg(&reference)
        .assert()
        .success();
    let full = started.elapsed();

    let seed: u64 = rand::rng().random();
    eprintln!("kill schedule seed: {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut partial_seen, mut complete_seen) = (0, 0);
    for round in 0..6 {
        let target = ws.path(&format!("target{round}"));
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("haven"))
            .env("HAVEN_REPO", ws.repo())
            .env("HAVEN_PASSWORD", crate::helpers::PASSWORD)
            .args(["restore", "latest", "--target"])
            .arg(&target)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn restore");
        std::thread::sleep(full.mul_f64(rng.random_range(0.05..0.95)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        if !target.exists() {
            continue; // killed before it created anything
        }

        for entry in walkdir::WalkDir::new(&target).min_depth(1) {
            let entry = entry.expect("walk");
            let path = entry.path();
            let mode = entry.metadata().expect("stat").permissions().mode() & 0o7777;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().is_dir() {
                // Private until its recorded mode is applied, at the end.
                let final_mode = mode_of(&source_of(&target, path));
                assert!(
                    mode == 0o700 || mode == final_mode,
                    "{} is {mode:o}",
                    path.display()
                );
            } else if let Some(real) = name.strip_suffix(".partial") {
                partial_seen += 1;
                // Private while incomplete. The last step before the
                // rename sets the recorded mode on the complete file: a
                // kill in between leaves it complete, with that mode.
                if mode != 0o600 {
                    let source = source_of(&target, &path.with_file_name(real));
                    assert_eq!(mode, mode_of(&source), "{} is {mode:o}", path.display());
                    assert_eq!(
                        std::fs::read(path).expect("read"),
                        std::fs::read(&source).expect("read source"),
                        "{} is {mode:o} but incomplete",
                        path.display()
                    );
                }
            } else {
                // Under its real name only once complete, with its mode.
                complete_seen += 1;
                let source = source_of(&target, path);
                assert_eq!(mode, mode_of(&source), "{}", path.display());
                assert_eq!(
                    std::fs::read(path).expect("read"),
                    std::fs::read(&source).expect("read source"),
                    "{} is under its real name but incomplete",
                    path.display()
                );
            }
        }
    }
    eprintln!("{partial_seen} partial and {complete_seen} complete files inspected");
}
