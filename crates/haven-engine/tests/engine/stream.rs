//! Byte-stream backups (database dumps piped in).

use haven_engine::{BackupOptions, NoProgress, RestoreOptions};

use crate::helpers::new_repo;

#[test]
fn a_stream_round_trips_as_one_file() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = new_repo(&work.path().join("repo"));
    let dump: Vec<u8> = (0..500_000u32)
        .flat_map(|i| format!("INSERT {i};\n").into_bytes())
        .collect();
    let outcome = repo
        .backup_stream(
            &mut &dump[..],
            "db.sql",
            &BackupOptions::default(),
            &NoProgress,
        )
        .expect("stream backup");
    assert_eq!(outcome.summary().bytes_read, dump.len() as u64);
    assert!(
        outcome.summary().bytes_added < dump.len() as u64 / 3,
        "SQL text compresses"
    );
    let target = work.path().join("out");
    repo.restore(
        &outcome.snapshot_id,
        &target,
        &RestoreOptions::default(),
        &NoProgress,
    )
    .expect("restore");
    assert_eq!(
        std::fs::read(target.join("db.sql")).expect("restored"),
        dump
    );
}

#[test]
fn a_failing_stream_saves_no_snapshot() {
    struct Failing(usize);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("pg_dump exited with status 1"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(b'x');
            self.0 -= n;
            Ok(n)
        }
    }
    let work = tempfile::tempdir().expect("tempdir");
    let repo = new_repo(&work.path().join("repo"));
    let err = repo
        .backup_stream(
            &mut Failing(100_000),
            "db.sql",
            &BackupOptions::default(),
            &NoProgress,
        )
        .expect_err("stream error must fail the backup");
    assert!(err.to_string().contains("pg_dump exited"), "{err}");
    assert!(
        repo.snapshots().expect("list").is_empty(),
        "no snapshot after a failed stream"
    );
}
