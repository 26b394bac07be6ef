//! Prune: space is reclaimed in two phases, and no data a snapshot needs,
//! now or once an in-flight backup finishes, is ever deleted. Time is a
//! parameter: a day's grace period passes in one call.

use std::io::Write;
use std::time::{Duration, Instant};

use haven_engine::prune::PruneOptions;
use haven_engine::{BackupOptions, Error, NoProgress, ReadData, Repository, RestoreOptions};
use jiff::{SignedDuration, Timestamp};

use crate::helpers::{new_repo, noise};

const HOUR: SignedDuration = SignedDuration::from_hours(1);

fn prune_at(repo: &Repository, now: Timestamp, grace: SignedDuration) -> haven_engine::PruneReport {
    repo.prune(
        &PruneOptions {
            now,
            grace,
            max_unused_percent: 5.0,
            dry_run: false,
            break_lock: false,
            // A grace shorter than the race margin is only allowed when
            // no backup runs, which these tests know.
            backups_stopped: grace < haven_engine::prune::PRUNE_RACE_MARGIN,
        },
        &NoProgress,
    )
    .expect("prune")
}

fn stream(repo: &Repository, data: &[u8]) -> haven_engine::BackupOutcome {
    repo.backup_stream(
        &mut &data[..],
        "dump.sql",
        &BackupOptions::default(),
        &NoProgress,
    )
    .expect("stream backup")
}

fn restored_stream(
    repo: &Repository,
    snapshot: &haven_engine::Id,
    dir: &std::path::Path,
) -> Vec<u8> {
    repo.restore(snapshot, dir, &RestoreOptions::default(), &NoProgress)
        .expect("restore");
    std::fs::read(dir.join("dump.sql")).expect("restored file")
}

fn assert_checks_clean(repo: &Repository) {
    let report = repo.check(ReadData::All, &NoProgress).expect("check");
    assert!(report.is_ok(), "{:#?}", report.problems);
}

fn pack_bytes(repo: &Repository) -> u64 {
    repo.list_packs().expect("list").iter().map(|p| p.1).sum()
}

/// Wait (bounded) until the repository holds at least `n` packs: the
/// in-flight backup has stored data that no snapshot references yet.
fn wait_for_packs(repo: &Repository, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while repo.list_packs().expect("list").len() < n {
        assert!(Instant::now() < deadline, "the backup stored no packs");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A stream backup running in a thread, fed through the returned pipe.
fn stream_in_flight(
    repo: &Repository,
) -> (
    std::thread::JoinHandle<haven_engine::Result<haven_engine::BackupOutcome>>,
    std::io::PipeWriter,
) {
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    let repo = repo.clone();
    let backup = std::thread::spawn(move || {
        repo.backup_stream(
            &mut reader,
            "dump.sql",
            &BackupOptions::default(),
            &NoProgress,
        )
    });
    (backup, writer)
}

#[test]
fn data_of_a_backup_in_flight_survives_mark_and_sweep() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = new_repo(&work.path().join("repo"));
    let data = noise(3 << 20, 11);
    let (backup, mut writer) = stream_in_flight(&repo);
    writer.write_all(&data[..2 << 20]).expect("feed");
    wait_for_packs(&repo, 2);

    // Mark while the backup runs: its packs are referenced by no snapshot.
    let t0 = Timestamp::now();
    let marked = prune_at(&repo, t0, HOUR);
    assert!(
        marked.mark.unused.packs >= 2,
        "the in-flight packs are marked: {marked:#?}"
    );
    assert!(marked.swept.is_empty(), "nothing is due yet");

    writer.write_all(&data[2 << 20..]).expect("feed");
    drop(writer);
    let outcome = backup
        .join()
        .expect("backup thread")
        .expect("a backup finishing well inside the grace period saves its snapshot");

    // The grace period has passed: the sweep sees the new snapshot and
    // keeps every marked pack it needs.
    let swept = prune_at(&repo, t0 + 2 * HOUR, HOUR);
    assert_eq!(swept.swept.len(), 1, "{swept:#?}");
    assert_eq!(swept.swept[0].deleted.packs, 0, "{swept:#?}");
    assert!(swept.swept[0].kept.packs >= 2, "{swept:#?}");
    assert!(repo.prune_marks(false).expect("marks").is_empty());

    assert_checks_clean(&repo);
    assert_eq!(
        restored_stream(&repo, &outcome.snapshot_id, &work.path().join("out")),
        data
    );
}

#[test]
fn marked_packs_are_not_reused_and_are_deleted_after_the_grace_period() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = new_repo(&work.path().join("repo"));
    let data = noise(1 << 20, 3);
    let first = stream(&repo, &data);
    repo.remove_snapshots(&[first.snapshot_id]).expect("forget");
    let old_bytes = pack_bytes(&repo);

    let t0 = Timestamp::now();
    let marked = prune_at(&repo, t0, 24 * HOUR);
    assert_eq!(marked.mark.unused.bytes, old_bytes, "{marked:#?}");
    assert_eq!(pack_bytes(&repo), old_bytes, "marking deletes nothing");

    // The same data again: marked packs may vanish, so nothing is
    // deduplicated against them.
    let second = stream(&repo, &data);
    assert!(
        second.summary().bytes_added >= data.len() as u64,
        "a backup after the mark must store its data again ({} bytes added)",
        second.summary().bytes_added
    );

    // One hour later: still in the grace period, nothing deleted.
    let early = prune_at(&repo, t0 + HOUR, 24 * HOUR);
    assert!(early.swept.is_empty());
    assert_eq!(early.pending.len(), 1);

    let swept = prune_at(&repo, t0 + 25 * HOUR, 24 * HOUR);
    assert_eq!(swept.swept.len(), 1, "{swept:#?}");
    assert_eq!(swept.swept[0].deleted.bytes, old_bytes);
    assert_eq!(swept.swept[0].kept.packs, 0);
    assert_eq!(swept.after.bytes, pack_bytes(&repo));
    assert!(swept.index_files_replaced >= 1);

    assert_checks_clean(&repo);
    assert_eq!(
        restored_stream(&repo, &second.snapshot_id, &work.path().join("out")),
        data
    );
}

#[test]
fn a_backup_outliving_the_grace_period_saves_no_snapshot() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = new_repo(&work.path().join("repo"));
    let data = noise(2 << 20, 5);
    let (backup, mut writer) = stream_in_flight(&repo);
    writer.write_all(&data[..1 << 20]).expect("feed");
    wait_for_packs(&repo, 1);
    // A prune marked data two hours ago with a one-hour grace period, as
    // if this backup had run for more than two hours: its mark is due.
    prune_at(&repo, Timestamp::now() - 2 * HOUR, HOUR);
    writer.write_all(&data[1 << 20..]).expect("feed");
    drop(writer);
    let result = backup.join().expect("backup thread");
    assert!(
        matches!(result, Err(Error::PruneRace { .. })),
        "{:?}",
        result.map(|o| o.snapshot_id)
    );
    assert!(repo.snapshot_ids().expect("list").is_empty());

    // Run again: it succeeds (the mark is known at its start).
    let again = stream(&repo, &data);
    assert_checks_clean(&repo);
    assert_eq!(
        restored_stream(&repo, &again.snapshot_id, &work.path().join("out")),
        data
    );
}

#[test]
fn repacking_reclaims_partly_used_packs_and_every_kept_snapshot_restores() {
    let work = tempfile::tempdir().expect("tempdir");
    let source = work.path().join("src");
    std::fs::create_dir(&source).expect("mkdir");
    let repo = new_repo(&work.path().join("repo"));
    let mut snapshots = Vec::new();
    // Ten generations of a directory where a few files change each time:
    // packs end up holding blobs of kept and forgotten snapshots alike.
    for generation in 0..10u64 {
        for f in 0..6u64 {
            if generation == 0 || (f + generation) % 3 == 0 {
                let len = 20_000 + ((f * 7 + generation * 13) % 11) as usize * 9_000;
                std::fs::write(
                    source.join(format!("f{f}")),
                    noise(len, generation * 10 + f),
                )
                .expect("write");
            }
        }
        let outcome = repo
            .backup(
                std::slice::from_ref(&source),
                &BackupOptions {
                    parent: haven_engine::ParentChoice::None,
                    ..BackupOptions::default()
                },
                &NoProgress,
            )
            .expect("backup");
        let restored = work.path().join(format!("expected{generation}"));
        repo.restore(
            &outcome.snapshot_id,
            &restored,
            &RestoreOptions::default(),
            &NoProgress,
        )
        .expect("restore");
        snapshots.push((outcome.snapshot_id, restored));
    }
    // Forget every other generation.
    let forgotten: Vec<_> = snapshots.iter().step_by(2).map(|s| s.0).collect();
    repo.remove_snapshots(&forgotten).expect("forget");
    let before = pack_bytes(&repo);

    let options = PruneOptions {
        now: Timestamp::now(),
        grace: SignedDuration::ZERO,
        max_unused_percent: 0.0,
        dry_run: false,
        break_lock: false,
        backups_stopped: true,
    };
    let predicted = repo
        .prune(
            &PruneOptions {
                dry_run: true,
                ..options.clone()
            },
            &NoProgress,
        )
        .expect("dry run");
    let report = repo.prune(&options, &NoProgress).expect("prune");
    // The dry run predicted what the prune did: the packs after, what
    // the sweep deleted, and the bytes up to the order parallel sealers
    // put blobs in (a header's offsets may take a digit more or less).
    assert_eq!(
        predicted.after.packs, report.after.packs,
        "{predicted:#?}\n{report:#?}"
    );
    let slack = 2 * report.mark.blobs_repacked;
    let close = |a: u64, b: u64| a.abs_diff(b) <= slack;
    assert!(
        close(predicted.after.bytes, report.after.bytes),
        "{predicted:#?}\n{report:#?}"
    );
    assert!(close(
        predicted.mark.repack_bytes_written,
        report.mark.repack_bytes_written
    ));
    let deleted = |r: &haven_engine::PruneReport| {
        r.swept
            .iter()
            .map(|s| (s.deleted.packs, s.deleted.bytes))
            .collect::<Vec<_>>()
    };
    assert_eq!(deleted(&predicted), deleted(&report));
    assert!(report.mark.repacked.packs > 0, "{report:#?}");
    assert!(report.mark.blobs_repacked > 0);
    assert!(report.after.bytes < before, "{report:#?}");
    assert_eq!(report.after.bytes, pack_bytes(&repo));

    // Nothing unused is left, and a second prune has nothing to do.
    let again = prune_at(&repo, Timestamp::now(), SignedDuration::ZERO);
    assert_eq!(again.unused_bytes, 0, "{again:#?}");
    assert_eq!(again.mark.unused.packs + again.mark.repacked.packs, 0);

    assert_checks_clean(&repo);
    for (id, expected) in snapshots.iter().skip(1).step_by(2) {
        let out = work.path().join(format!("check-{}", id.short()));
        repo.restore(id, &out, &RestoreOptions::default(), &NoProgress)
            .expect("restore after prune");
        assert_eq!(
            crate::helpers::snapshot_tree(&out),
            crate::helpers::snapshot_tree(expected)
        );
    }
}

#[test]
fn locked_and_held_snapshots_keep_their_data() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = new_repo(&work.path().join("repo"));
    let locked_data = noise(400_000, 1);
    let held_data = noise(400_000, 2);
    let locked = repo
        .backup_stream(
            &mut &locked_data[..],
            "dump.sql",
            &BackupOptions {
                lock_until: Some(Timestamp::now() + 24 * HOUR),
                ..BackupOptions::default()
            },
            &NoProgress,
        )
        .expect("locked backup");
    let held = stream(&repo, &held_data);
    repo.add_hold(&held.snapshot_id, "case 7").expect("hold");
    let doomed = stream(&repo, &noise(400_000, 3));
    let before = pack_bytes(&repo);

    assert!(matches!(
        repo.remove_snapshots(&[locked.snapshot_id]),
        Err(Error::Protected { .. })
    ));
    repo.remove_snapshots(&[doomed.snapshot_id])
        .expect("forget");
    let report = prune_at(&repo, Timestamp::now(), SignedDuration::ZERO);
    assert!(report.after.bytes < before, "{report:#?}");

    assert_checks_clean(&repo);
    let out = work.path().join("locked");
    assert_eq!(
        restored_stream(&repo, &locked.snapshot_id, &out),
        locked_data
    );
    let out = work.path().join("held");
    assert_eq!(restored_stream(&repo, &held.snapshot_id, &out), held_data);
}

#[test]
fn a_dry_run_changes_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = new_repo(&work.path().join("repo"));
    let first = stream(&repo, &noise(500_000, 8));
    stream(&repo, &noise(500_000, 9));
    repo.remove_snapshots(&[first.snapshot_id]).expect("forget");
    let packs = || {
        let mut p = repo.list_packs().expect("list");
        p.sort();
        p
    };
    let before = packs();
    let report = repo
        .prune(
            &PruneOptions {
                now: Timestamp::now(),
                grace: SignedDuration::ZERO,
                dry_run: true,
                ..PruneOptions::default()
            },
            &NoProgress,
        )
        .expect("dry run");
    assert!(report.dry_run);
    assert!(report.mark.unused.packs > 0, "{report:#?}");
    assert!(report.after.bytes < report.before.bytes);
    assert_eq!(packs(), before);
    assert!(repo.prune_marks(false).expect("marks").is_empty());
}

#[test]
fn an_unreadable_mark_stops_neither_backups_nor_prune() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = new_repo(&work.path().join("repo"));
    let data = noise(1 << 20, 21);
    let (backup, mut writer) = stream_in_flight(&repo);
    writer.write_all(&data[..1 << 19]).expect("feed");
    // A damaged mark appears while the backup runs (its name is the hash
    // of its bytes, but they decrypt to nothing).
    let garbage = b"not an encrypted prune mark".to_vec();
    let name = format!("marks/{}", haven_engine::Id::of_file(&garbage));
    repo.backend().write_new(&name, garbage).expect("write");
    writer.write_all(&data[1 << 19..]).expect("feed");
    drop(writer);
    let outcome = backup
        .join()
        .expect("backup thread")
        .expect("no prune can sweep a mark it cannot read: the backup saves its snapshot");
    // The next backup starts with it present, too.
    stream(&repo, &noise(300_000, 22));

    // Prune removes it (it only unmarks) and carries on.
    prune_at(&repo, Timestamp::now(), SignedDuration::ZERO);
    assert!(!repo.backend().exists(&name).expect("exists"));
    assert_checks_clean(&repo);
    assert_eq!(
        restored_stream(&repo, &outcome.snapshot_id, &work.path().join("out")),
        data
    );
}
