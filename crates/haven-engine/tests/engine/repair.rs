//! Lost data: a pack gone from storage (deleted by hand, by a disk error,
//! or by a prune of an older version racing a backup). New backups must
//! store that data again instead of relying on the index's word, and
//! `repair` must rebuild the index from what is there and name (and, when
//! asked, remove) the snapshots that lost data.

use haven_engine::{
    BackupOptions, NoProgress, ReadData, RepairOptions, Repository, RestoreOptions,
};

use crate::helpers::{new_repo, noise};

fn stream(repo: &Repository, data: &[u8], name: &str) -> haven_engine::Id {
    repo.backup_stream(&mut &data[..], name, &BackupOptions::default(), &NoProgress)
        .expect("backup")
        .snapshot_id
}

fn restores(repo: &Repository, id: &haven_engine::Id, name: &str, data: &[u8]) -> bool {
    let out = tempfile::tempdir().expect("tempdir");
    match repo.restore(id, out.path(), &RestoreOptions::default(), &NoProgress) {
        Ok(outcome) if outcome.failed.is_empty() => {
            std::fs::read(out.path().join(name)).is_ok_and(|bytes| bytes == data)
        }
        _ => false,
    }
}

/// Delete one pack holding data of `snapshot`'s file (the first one).
fn lose_a_pack_of(repo: &Repository) -> haven_engine::Id {
    let (index, _) = repo.load_index(false).expect("index");
    let pack = index.packs()[0].id;
    let hex = pack.to_hex();
    repo.backend()
        .delete(&format!("data/{}/{hex}", &hex[..2]))
        .expect("delete");
    pack
}

/// Regression: after a pack was lost, later backups of the same data
/// deduplicated against the index entries of the missing pack and
/// reported success for snapshots that did not restore.
#[test]
fn after_a_pack_is_lost_new_backups_store_its_data_again() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = new_repo(&work.path().join("repo"));
    let data = noise(700_000, 31);
    let first = stream(&repo, &data, "db.dump");
    lose_a_pack_of(&repo);
    assert!(!restores(&repo, &first, "db.dump", &data));

    let second = stream(&repo, &data, "db.dump");
    assert!(
        restores(&repo, &second, "db.dump", &data),
        "a backup after the loss relied on the missing pack"
    );
}

#[test]
fn repair_rebuilds_the_index_and_names_then_removes_the_damaged_snapshots() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = new_repo(&work.path().join("repo"));
    let lost = noise(700_000, 41);
    let safe = noise(500_000, 42);
    let damaged = stream(&repo, &lost, "lost.bin");
    lose_a_pack_of(&repo);
    let intact = stream(&repo, &safe, "safe.bin");

    let before = repo.check(ReadData::None, &NoProgress).expect("check");
    assert!(before.problems.iter().any(|p| p.kind == "missing-pack"));

    let report = repo
        .repair(RepairOptions::default(), &NoProgress)
        .expect("repair");
    assert!(report.packs_gone >= 1, "{report:#?}");
    assert!(report.index_files_replaced >= 1, "{report:#?}");
    let named: Vec<&str> = report.damaged.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(named, vec![damaged.to_hex().as_str()], "{report:#?}");
    assert!(!report.is_clean());
    // The index lists only what is there: no missing pack any more, the
    // damaged snapshot still reported.
    let after = repo.check(ReadData::None, &NoProgress).expect("check");
    assert!(
        !after.problems.iter().any(|p| p.kind == "missing-pack"),
        "{:#?}",
        after.problems
    );
    assert!(after.damaged.iter().all(|d| d.snapshot == damaged.to_hex()));

    let report = repo
        .repair(
            RepairOptions {
                forget_damaged: true,
            },
            &NoProgress,
        )
        .expect("repair --forget-damaged");
    assert!(report.is_clean(), "{report:#?}");
    assert!(report.damaged.iter().all(|d| d.forgotten));
    assert_eq!(repo.snapshot_ids().expect("list"), vec![intact]);
    let clean = repo.check(ReadData::All, &NoProgress).expect("check");
    assert!(clean.is_ok(), "{:#?}", clean.problems);
    assert!(restores(&repo, &intact, "safe.bin", &safe));

    // A new backup of the lost data stores it again.
    let again = stream(&repo, &lost, "lost.bin");
    assert!(restores(&repo, &again, "lost.bin", &lost));
}

/// The chunks a damaged snapshot lacks come back with the next backup of
/// the same data (same content, same ids): the snapshot is whole again.
#[test]
fn a_new_backup_of_the_lost_data_heals_the_damaged_snapshot() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = new_repo(&work.path().join("repo"));
    let data = noise(700_000, 61);
    let damaged = stream(&repo, &data, "db.dump");
    lose_a_pack_of(&repo);
    assert!(!restores(&repo, &damaged, "db.dump", &data));
    let report = repo
        .repair(RepairOptions::default(), &NoProgress)
        .expect("repair");
    assert_eq!(report.damaged.len(), 1);
    stream(&repo, &data, "db.dump");
    assert!(restores(&repo, &damaged, "db.dump", &data));
    let report = repo
        .repair(RepairOptions::default(), &NoProgress)
        .expect("repair");
    assert!(report.damaged.is_empty(), "{report:#?}");
}

#[test]
fn repair_never_removes_a_locked_or_held_snapshot() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = new_repo(&work.path().join("repo"));
    let data = noise(600_000, 51);
    let held = stream(&repo, &data, "held.bin");
    repo.add_hold(&held, "case 12").expect("hold");
    lose_a_pack_of(&repo);
    let report = repo
        .repair(
            RepairOptions {
                forget_damaged: true,
            },
            &NoProgress,
        )
        .expect("repair");
    assert_eq!(report.damaged.len(), 1);
    assert!(!report.damaged[0].forgotten);
    assert!(
        report.damaged[0]
            .kept_because
            .as_deref()
            .is_some_and(|why| why.contains("case 12"))
    );
    assert_eq!(repo.snapshot_ids().expect("list"), vec![held]);
}
