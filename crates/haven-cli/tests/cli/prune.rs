//! `haven prune` and `haven forget --prune` on real repositories, including
//! prunes killed with SIGKILL at random points.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::helpers::{Workspace, list_files, noise, parse_json, read_tree, restored};

/// A prune that marks and deletes at once, repacking every partly used
/// pack (told that no backup runs).
const SWEEP_NOW: &[&str] = &[
    "prune",
    "--grace",
    "0s",
    "--i-know-backups-are-stopped",
    "--max-unused",
    "0",
];

/// Write generation `g` of a data set: most files stay, some change, so
/// packs mix blobs of kept and forgotten snapshots.
fn write_generation(root: &Path, g: u64) {
    std::fs::create_dir_all(root).expect("mkdir");
    for f in 0..10u64 {
        if g == 0 || (f + g).is_multiple_of(4) {
            let len = 100_000 + ((f * 31 + g * 17) % 9) as usize * 120_000;
            std::fs::write(root.join(format!("f{f}")), noise(len, g * 100 + f)).expect("write");
        }
    }
}

fn backup(ws: &Workspace, data: &Path) -> String {
    let out = ws
        .haven()
        .args(["--json", "backup"])
        .arg(data)
        .output()
        .expect("backup");
    parse_json(&out, 0)["snapshot_id"]
        .as_str()
        .expect("id")
        .to_string()
}

fn pack_bytes(repo: &Path) -> u64 {
    walkdir::WalkDir::new(repo.join("data"))
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().expect("stat").len())
        .sum()
}

fn assert_check_clean(ws: &Workspace, read_data: bool) {
    let mut args = vec!["repo", "check"];
    if read_data {
        args.push("--read-data");
    }
    let report = ws.json(&args, 0);
    assert_eq!(
        report["problems"].as_array().expect("problems").len(),
        0,
        "{report}"
    );
}

/// Every snapshot restores to exactly what was backed up.
fn assert_restores(
    ws: &Workspace,
    data: &Path,
    expected: &BTreeMap<String, BTreeMap<PathBuf, Vec<u8>>>,
) {
    for (id, files) in expected {
        let target = ws.path(&format!("check-{}", &id[..12]));
        let _ = std::fs::remove_dir_all(&target);
        ws.haven()
            .args(["restore", id, "--target"])
            .arg(&target)
            .assert()
            .success();
        assert_eq!(&read_tree(&restored(&target, data)), files, "snapshot {id}");
    }
}

#[test]
fn forget_then_prune_reclaims_space_in_two_phases() {
    let ws = Workspace::new();
    ws.init();
    let data = ws.path("data");
    let mut expected = BTreeMap::new();
    for g in 0..4 {
        write_generation(&data, g);
        let id = backup(&ws, &data);
        expected.insert(id, read_tree(&data));
    }
    let before = pack_bytes(&ws.repo());

    // Default grace period: forget --prune only marks.
    let report = ws.json(&["forget", "--keep-last", "2", "--prune"], 0);
    assert_eq!(report["removed"].as_array().expect("removed").len(), 2);
    let prune = &report["prune"];
    assert!(prune["mark"]["mark"].is_string(), "{prune}");
    assert!(
        prune["mark"]["unused"]["packs"].as_u64().expect("n")
            + prune["mark"]["repacked"]["packs"].as_u64().expect("n")
            > 0,
        "{prune}"
    );
    assert_eq!(prune["pending"].as_array().expect("pending").len(), 1);
    assert_eq!(prune["before"]["bytes"].as_u64(), Some(before));
    assert!(
        pack_bytes(&ws.repo()) >= before,
        "nothing deleted in the grace period"
    );
    let kept: Vec<String> = ws
        .json(&["snapshots"], 0)
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect();
    expected.retain(|id, _| kept.contains(id));
    assert_check_clean(&ws, false);

    // A prune with a zero grace period sweeps the earlier mark at once.
    let report = ws.json(
        &["prune", "--grace", "0s", "--i-know-backups-are-stopped"],
        0,
    );
    assert_eq!(
        report["swept"].as_array().expect("swept").len(),
        1,
        "{report}"
    );
    let after = report["after"]["bytes"].as_u64().expect("after");
    assert_eq!(after, pack_bytes(&ws.repo()));
    assert!(after < before, "{report}");
    assert!(
        ws.repo()
            .join("marks")
            .read_dir()
            .expect("marks")
            .next()
            .is_none()
    );

    assert_check_clean(&ws, true);
    assert_restores(&ws, &data, &expected);

    // Human output names the phases.
    let out = ws
        .haven()
        .args(["prune", "--dry-run"])
        .output()
        .expect("prune");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("in use") && text.contains("after"), "{text}");
}

#[test]
fn prune_with_a_wrong_password_or_bad_options_deletes_nothing() {
    let ws = Workspace::new();
    ws.init();
    let data = ws.path("data");
    write_generation(&data, 0);
    let first = backup(&ws, &data);
    write_generation(&data, 1);
    backup(&ws, &data);
    ws.haven().args(["forget", &first]).assert().success();
    let files = list_files(&ws.repo());

    for args in [
        vec!["prune", "--grace", "0s", "--i-know-backups-are-stopped"],
        vec![
            "forget",
            "--keep-last",
            "1",
            "--prune",
            "--grace",
            "0s",
            "--i-know-backups-are-stopped",
        ],
    ] {
        let out = ws
            .haven()
            .env("HAVEN_PASSWORD", "wrong")
            .args(&args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("wrong password"));
        assert_eq!(
            list_files(&ws.repo()),
            files,
            "{args:?} changed the repository"
        );
    }
    for (bad, complaint) in [
        (vec!["prune", "--max-unused", "150"], "between 0 and 100"),
        (vec!["prune", "--grace", "soon"], "not a duration"),
    ] {
        let out = ws.haven().args(&bad).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(complaint),
            "{bad:?}"
        );
    }
    assert_eq!(list_files(&ws.repo()), files);
}

fn spawn_prune(ws: &Workspace, extra: &[&str]) -> Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("haven"))
        .env("HAVEN_REPO", ws.repo())
        .env("HAVEN_PASSWORD", crate::helpers::PASSWORD)
        .args(SWEEP_NOW)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn prune")
}

#[test]
fn a_running_prune_holds_the_lock_and_a_dead_one_does_not() {
    let ws = Workspace::new();
    ws.init();
    // Enough garbage that the first prune holds its lock while it repacks
    // and deletes (tens of MB), long enough to be seen and frozen.
    let data = ws.path("data");
    let mut generations = Vec::new();
    for g in 0..6 {
        write_generation(&data, g);
        std::fs::write(data.join("big"), noise(12 << 20, 1000 + g)).expect("write");
        generations.push(backup(&ws, &data));
    }
    for id in &generations[..5] {
        ws.haven().args(["forget", id]).assert().success();
    }

    let mut first = spawn_prune(&ws, &[]);
    let lock = ws.repo().join("prune.lock");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lock.exists() {
        assert!(Instant::now() < deadline, "prune never took its lock");
        std::thread::sleep(Duration::from_millis(2));
    }
    // Freeze it while it holds the lock.
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&first),
        rustix::process::Signal::STOP,
    )
    .expect("SIGSTOP");
    let out = ws.haven().args(["prune"]).output().expect("second prune");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another prune is running")
            && stderr.contains(&format!("pid {}", first.id())),
        "{stderr}"
    );
    assert!(stderr.contains("--break-lock"), "{stderr}");

    // Killed: the next prune on this host sees the process is gone.
    first.kill().expect("SIGKILL");
    first.wait().expect("reap");
    assert!(lock.exists(), "a killed prune leaves its lock");
    ws.json(&["prune"], 0);
    assert!(!lock.exists(), "a finished prune removes its lock");
    assert_check_clean(&ws, false);
}

#[test]
fn sigkill_at_random_points_of_prune_loses_no_snapshot_data() {
    let ws = Workspace::new();
    ws.init();
    let data = ws.path("data");
    let mut expected: BTreeMap<String, BTreeMap<PathBuf, Vec<u8>>> = BTreeMap::new();
    let mut order = Vec::new();
    for g in 0..4 {
        write_generation(&data, g);
        let id = backup(&ws, &data);
        expected.insert(id.clone(), read_tree(&data));
        order.push(id);
    }

    // Reference: how long a full prune of this repository takes.
    let reference = ws.path("reference");
    let status = std::process::Command::new("cp")
        .args(["-a"])
        .arg(ws.repo())
        .arg(&reference)
        .status()
        .expect("cp");
    assert!(status.success());
    ws.haven_for(&reference)
        .args(["forget", &order[0]])
        .assert()
        .success();
    let started = Instant::now();
    ws.haven_for(&reference).args(SWEEP_NOW).assert().success();
    let full = started.elapsed();

    let seed: u64 = rand::rng().random();
    eprintln!("kill schedule seed: {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let start_bytes = pack_bytes(&ws.repo());
    for round in 0..8u64 {
        // New garbage every round: a new generation, the oldest forgotten.
        write_generation(&data, 4 + round);
        let id = backup(&ws, &data);
        expected.insert(id.clone(), read_tree(&data));
        order.push(id);
        let oldest = order.remove(0);
        ws.haven().args(["forget", &oldest]).assert().success();
        expected.remove(&oldest);

        let mut child = spawn_prune(&ws, &[]);
        let delay = full.mul_f64(rng.random_range(0.05..1.1));
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().expect("reap");
        eprintln!("round {round}: killed after {delay:?} ({status})");

        assert_check_clean(&ws, false);
        assert_restores(&ws, &data, &expected);
    }

    // An uninterrupted prune finishes the job (taking over the lock a
    // killed one left) and the repository is smaller than the history.
    ws.json(SWEEP_NOW, 0);
    assert_check_clean(&ws, true);
    assert_restores(&ws, &data, &expected);
    let report = ws.json(&["prune", "--dry-run", "--max-unused", "0"], 0);
    assert_eq!(report["unused_bytes"], 0, "{report}");
    assert!(
        pack_bytes(&ws.repo()) < start_bytes * 2,
        "space was reclaimed"
    );
}

/// What happened to the backups racing prunes.
#[derive(Debug, Default)]
struct RaceTally {
    rounds: u32,
    backups_saved: u32,
    backups_refused: u32,
    backups_killed: u32,
    prunes_killed: u32,
    packs_swept: u64,
}

/// Backups run beside prunes that mark and sweep at once (`--grace 0s`
/// with `--i-know-backups-are-stopped`: the operator's mistake), either
/// killed at a random point. Every backup that reports success restores;
/// the others leave no snapshot; the repository checks clean throughout.
#[test]
fn backups_racing_sweeping_prunes_and_random_kills_never_report_an_unrestorable_snapshot() {
    let ws = Workspace::new();
    ws.init();
    let data = ws.path("data");
    let mut expected: BTreeMap<String, BTreeMap<PathBuf, Vec<u8>>> = BTreeMap::new();
    let mut order = Vec::new();
    write_generation(&data, 0);
    std::fs::write(data.join("big"), noise(8 << 20, 7000)).expect("write");
    let started = Instant::now();
    let id = backup(&ws, &data);
    let backup_time = started.elapsed();
    expected.insert(id.clone(), read_tree(&data));
    order.push(id);

    let seed: u64 = rand::rng().random();
    eprintln!("race schedule seed: {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut tally = RaceTally::default();
    for round in 1..=12u64 {
        tally.rounds += 1;
        // New data, and garbage for the prune: the oldest snapshot goes.
        write_generation(&data, round);
        if round % 3 == 0 {
            std::fs::write(data.join("big"), noise(8 << 20, 7000 + round)).expect("write");
        }
        if order.len() > 1 {
            let oldest = order.remove(0);
            ws.haven().args(["forget", &oldest]).assert().success();
            expected.remove(&oldest);
        }
        let tree = read_tree(&data);
        let backup_child = std::process::Command::new(assert_cmd::cargo::cargo_bin("haven"))
            .env("HAVEN_REPO", ws.repo())
            .env("HAVEN_PASSWORD", crate::helpers::PASSWORD)
            .args(["--json", "backup"])
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn backup");
        std::thread::sleep(backup_time.mul_f64(rng.random_range(0.0..0.6)));
        let mut prune = std::process::Command::new(assert_cmd::cargo::cargo_bin("haven"))
            .env("HAVEN_REPO", ws.repo())
            .env("HAVEN_PASSWORD", crate::helpers::PASSWORD)
            .arg("--json")
            .args(SWEEP_NOW)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prune");
        let (kill_backup, kill_prune) = (rng.random_bool(0.25), rng.random_bool(0.25));
        let mut backup_child = backup_child;
        if kill_backup || kill_prune {
            std::thread::sleep(backup_time.mul_f64(rng.random_range(0.05..1.0)));
            if kill_backup {
                let _ = backup_child.kill();
            }
            if kill_prune {
                let _ = prune.kill();
            }
        }
        let backup_out = backup_child.wait_with_output().expect("backup");
        let prune_out = prune.wait_with_output().expect("prune");
        // Killed, not finished before the signal came.
        tally.prunes_killed += u32::from(prune_out.status.code().is_none());
        if prune_out.status.success()
            && let Ok(report) = serde_json::from_slice::<serde_json::Value>(&prune_out.stdout)
        {
            let deleted: u64 = report["swept"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .filter_map(|m| m["deleted"]["packs"].as_u64())
                        .sum()
                })
                .unwrap_or(0);
            tally.packs_swept += deleted;
        }
        let stderr = String::from_utf8_lossy(&backup_out.stderr);
        match backup_out.status.code() {
            Some(0) => {
                let report: serde_json::Value =
                    serde_json::from_slice(&backup_out.stdout).expect("backup report");
                let id = report["snapshot_id"].as_str().expect("id").to_string();
                expected.insert(id.clone(), tree);
                order.push(id);
                tally.backups_saved += 1;
            }
            Some(1) => {
                assert!(
                    stderr.contains("prune deleted") || stderr.contains("prune marked"),
                    "a backup failed for another reason: {stderr}"
                );
                tally.backups_refused += 1;
            }
            _ => {
                assert!(kill_backup, "the backup died: {stderr}");
                tally.backups_killed += 1;
            }
        }
        // No snapshot without its data, no index entry for a lost pack.
        assert_check_clean(&ws, false);
        assert_eq!(
            snapshot_ids(&ws),
            expected.keys().cloned().collect::<Vec<_>>(),
            "round {round}: exactly the successful backups' snapshots exist"
        );
    }
    eprintln!("{tally:?}");
    assert!(tally.backups_saved > 0, "{tally:?}");

    ws.json(SWEEP_NOW, 0);
    assert_check_clean(&ws, true);
    assert_restores(&ws, &data, &expected);
}

fn snapshot_ids(ws: &Workspace) -> Vec<String> {
    let list = ws.json(&["snapshots"], 0);
    let mut ids: Vec<String> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    ids
}
