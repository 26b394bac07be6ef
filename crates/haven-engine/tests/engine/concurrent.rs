//! Several backups write to one repository at the same time, without any
//! lock; every snapshot is complete and the repository checks clean.

use haven_engine::{BackupOptions, NoProgress, ReadData, RestoreOptions};

use crate::helpers::{new_repo, noise, open_repo, restored_root, snapshot_tree};

#[test]
fn concurrent_backups_into_one_repository_all_succeed() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("repo");
    new_repo(&dir);
    // Overlapping data: both hosts hold the shared file, so both try to
    // store its chunks at the same moment.
    let shared = noise(2_000_000, 42);
    let sources: Vec<_> = (0..3)
        .map(|i| {
            let source = work.path().join(format!("host{i}"));
            std::fs::create_dir(&source).expect("mkdir");
            std::fs::write(source.join("shared.bin"), &shared).expect("write");
            std::fs::write(source.join("own.bin"), noise(1_500_000, i)).expect("write");
            source
        })
        .collect();

    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter()
            .enumerate()
            .map(|(i, source)| {
                let dir = dir.clone();
                scope.spawn(move || {
                    // Each writer opens the repository itself, as separate
                    // processes on separate hosts would.
                    let repo = open_repo(&dir);
                    let options = BackupOptions {
                        hostname: Some(format!("host-{i}")),
                        ..BackupOptions::default()
                    };
                    repo.backup(std::slice::from_ref(source), &options, &NoProgress)
                        .expect("concurrent backup")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });

    let repo = open_repo(&dir);
    assert_eq!(repo.snapshots().expect("list").len(), 3);
    let report = repo.check(ReadData::All, &NoProgress).expect("check");
    assert!(report.is_ok(), "{:?}", report.problems);
    for (outcome, source) in outcomes.iter().zip(&sources) {
        let target = work
            .path()
            .join(format!("restore-{}", outcome.snapshot_id.short()));
        repo.restore(
            &outcome.snapshot_id,
            &target,
            &RestoreOptions::default(),
            &NoProgress,
        )
        .expect("restore");
        assert_eq!(
            snapshot_tree(source),
            snapshot_tree(&restored_root(&target, source))
        );
    }
}
