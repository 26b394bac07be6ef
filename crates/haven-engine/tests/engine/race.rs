//! A prune that marks and sweeps at once (`--grace 0s`) while a backup
//! runs, the backup paused at each of its phases: the backup either saves
//! a snapshot that restores, or fails and leaves none. Never a snapshot
//! whose data is gone, and never an index listing deleted packs.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use haven_engine::prune::PruneOptions;
use haven_engine::{
    BackupOptions, Error, NoProgress, Progress, ReadData, Repository, RestoreOptions, WritePhase,
};
use jiff::{SignedDuration, Timestamp};

use crate::helpers::{new_repo, noise};

/// Stops the writer at one phase until the test lets it go on.
struct PauseAt {
    phase: WritePhase,
    reached: SyncSender<()>,
    resume: Mutex<Receiver<()>>,
}

impl Progress for PauseAt {
    fn phase(&self, phase: WritePhase) {
        if phase == self.phase {
            self.reached.send(()).expect("the test waits");
            self.resume
                .lock()
                .expect("lock")
                .recv()
                .expect("the test resumes the writer");
        }
    }
}

/// Mark and sweep in one run: what `--grace 0s` does, wrongly told that
/// no backup runs.
fn prune_now(repo: &Repository) -> haven_engine::PruneReport {
    repo.prune(
        &PruneOptions {
            now: Timestamp::now(),
            grace: SignedDuration::ZERO,
            max_unused_percent: 0.0,
            dry_run: false,
            break_lock: false,
            backups_stopped: true,
        },
        &NoProgress,
    )
    .expect("prune")
}

fn stream(
    repo: &Repository,
    data: &[u8],
    progress: &dyn Progress,
) -> haven_engine::Result<haven_engine::Id> {
    repo.backup_stream(
        &mut &data[..],
        "dump.sql",
        &BackupOptions::default(),
        progress,
    )
    .map(|o| o.snapshot_id)
}

/// The outcome of one race, for the summary the test prints.
#[derive(Debug)]
enum Verdict {
    SavedAndRestores,
    Refused,
}

/// A repository holding `garbage` (stored, then forgotten: prune deletes
/// it) and a kept snapshot; a backup of `data` paused at `phase` while a
/// prune marks and sweeps.
fn race(phase: WritePhase, data: &[u8], garbage: &[u8]) -> Verdict {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = new_repo(&work.path().join("repo"));
    let kept_data = noise(300_000, 99);
    let kept = stream(&repo, &kept_data, &NoProgress).expect("kept backup");
    let old = stream(&repo, garbage, &NoProgress).expect("garbage backup");
    repo.remove_snapshots(&[old]).expect("forget");

    let (reached_tx, reached) = sync_channel(0);
    let (resume, resume_rx) = sync_channel(0);
    let pause = PauseAt {
        phase,
        reached: reached_tx,
        resume: Mutex::new(resume_rx),
    };
    let outcome = std::thread::scope(|scope| {
        let backup = scope.spawn(|| stream(&repo, data, &pause));
        reached.recv().expect("the backup reaches the phase");
        let report = prune_now(&repo);
        eprintln!(
            "{phase:?}: prune deleted {} packs",
            report.swept.iter().map(|s| s.deleted.packs).sum::<u64>()
        );
        resume.send(()).expect("resume");
        backup.join().expect("backup thread")
    });

    let verdict = match outcome {
        Ok(id) => {
            let out = work.path().join("restored");
            repo.restore(&id, &out, &RestoreOptions::default(), &NoProgress)
                .expect("a saved snapshot restores");
            assert_eq!(std::fs::read(out.join("dump.sql")).expect("read"), data);
            Verdict::SavedAndRestores
        }
        Err(e) => {
            assert!(
                matches!(e, Error::PruneSwept { .. } | Error::PruneRace { .. }),
                "{phase:?}: {e}"
            );
            let ids = repo.snapshot_ids().expect("list");
            assert_eq!(
                ids,
                vec![kept],
                "{phase:?}: a refused backup leaves no snapshot"
            );
            Verdict::Refused
        }
    };
    // Whatever happened, the repository is consistent: no snapshot lacks
    // data, no index lists a deleted pack (check reports both).
    let report = repo.check(ReadData::All, &NoProgress).expect("check");
    assert!(report.is_ok(), "{phase:?}: {:#?}", report.problems);
    let out = work.path().join("kept");
    repo.restore(&kept, &out, &RestoreOptions::default(), &NoProgress)
        .expect("restore kept");
    assert_eq!(
        std::fs::read(out.join("dump.sql")).expect("read"),
        kept_data
    );

    // The next backup of the same data stores what was deleted again.
    let again = stream(&repo, data, &NoProgress).expect("backup again");
    let out = work.path().join("again");
    repo.restore(&again, &out, &RestoreOptions::default(), &NoProgress)
        .expect("the next backup restores");
    assert_eq!(std::fs::read(out.join("dump.sql")).expect("read"), data);
    verdict
}

/// Regression: the backup deduplicated against packs of forgotten data
/// that the prune deleted while it ran, and saved a snapshot that did
/// not restore.
#[test]
fn a_sweep_after_the_backup_started_refuses_data_it_deduplicated_against() {
    let data = noise(600_000, 1);
    assert!(matches!(
        race(WritePhase::Started, &data, &data),
        Verdict::Refused
    ));
}

/// Regression: the prune marked and deleted the backup's own new packs
/// (no snapshot referenced them yet); the backup saved its snapshot.
#[test]
fn a_sweep_of_the_backups_own_packs_refuses_its_snapshot() {
    let data = noise(600_000, 2);
    assert!(matches!(
        race(WritePhase::DataStored, &data, &noise(400_000, 3)),
        Verdict::Refused
    ));
}

/// The sweep runs between the backup's last look and its snapshot being
/// written: the backup sees the record after saving and takes its
/// snapshot back.
#[test]
fn a_sweep_between_the_check_and_the_save_takes_the_snapshot_back() {
    let data = noise(600_000, 4);
    assert!(matches!(
        race(WritePhase::Checked, &data, &noise(400_000, 5)),
        Verdict::Refused
    ));
}

/// Once the snapshot is saved, the prune sees it and keeps its data.
#[test]
fn a_sweep_after_the_snapshot_is_saved_keeps_its_data() {
    let data = noise(600_000, 6);
    assert!(matches!(
        race(WritePhase::SnapshotSaved, &data, &noise(400_000, 7)),
        Verdict::SavedAndRestores
    ));
}
