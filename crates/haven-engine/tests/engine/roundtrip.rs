//! Property: any file tree round-trips exactly (names, content, holes,
//! modes, times, symlinks, empty directories).

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use haven_engine::{BackupOptions, NoProgress, RestoreOptions};
use proptest::prelude::*;

use crate::helpers::{new_repo, noise, restored_root, snapshot_tree};

#[derive(Debug, Clone)]
enum Content {
    /// Repeating pattern (compressible), `len` bytes, seeded.
    Pattern { len: usize, seed: u8 },
    /// Pseudo-random bytes (incompressible).
    Noise { len: usize, seed: u64 },
    /// A hole of `hole` bytes between two written regions.
    Sparse { head: usize, hole: u64, tail: usize },
}

#[derive(Debug, Clone)]
enum Item {
    File {
        content: Content,
        mode: u32,
    },
    Dir {
        children: Vec<(Vec<u8>, Item)>,
        mode: u32,
    },
    Symlink {
        target: Vec<u8>,
    },
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-zA-Z0-9_.-]{1,12}".prop_map(|s| s.into_bytes()),
        // Non-UTF-8 bytes, spaces, unicode.
        proptest::collection::vec(
            prop_oneof![
                Just(0xffu8),
                Just(0xfe),
                Just(b' '),
                Just(b'a'),
                0x80u8..0xc0
            ],
            1..8
        ),
        Just("répertoire ☃".as_bytes().to_vec()),
    ]
    .prop_filter("not . or ..", |n| n != b"." && n != b"..")
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        (0usize..200_000, any::<u8>()).prop_map(|(len, seed)| Content::Pattern { len, seed }),
        (0usize..150_000, any::<u64>()).prop_map(|(len, seed)| Content::Noise { len, seed }),
        (0usize..5000, 1u64..3_000_000, 0usize..5000)
            .prop_map(|(head, hole, tail)| Content::Sparse { head, hole, tail }),
    ]
}

fn mode() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0o644),
        Just(0o600),
        Just(0o755),
        Just(0o444),
        Just(0o4755),
        Just(0o1777),
        Just(0o640)
    ]
}

fn item() -> impl Strategy<Value = Item> {
    let leaf = prop_oneof![
        3 => (content(), mode()).prop_map(|(content, mode)| Item::File { content, mode }),
        1 => name().prop_map(|target| Item::Symlink { target }),
        1 => mode().prop_map(|m| Item::Dir { children: Vec::new(), mode: m | 0o700 }),
    ];
    leaf.prop_recursive(3, 40, 6, |inner| {
        (proptest::collection::vec((name(), inner), 0..6), mode()).prop_map(|(children, mode)| {
            Item::Dir {
                children,
                mode: mode | 0o700,
            }
        })
    })
}

fn build(path: &Path, item: &Item, mtime_seed: i64) {
    match item {
        Item::File { content, mode } => {
            let mut f = File::create(path).expect("create");
            match content {
                Content::Pattern { len, seed } => {
                    let data: Vec<u8> = (0..*len)
                        .map(|i| (i as u8 / 7).wrapping_add(*seed))
                        .collect();
                    f.write_all(&data).expect("write");
                }
                Content::Noise { len, seed } => f.write_all(&noise(*len, *seed)).expect("write"),
                Content::Sparse { head, hole, tail } => {
                    f.write_all(&noise(*head, 7)).expect("write");
                    f.seek(SeekFrom::Current(*hole as i64)).expect("seek");
                    if *tail == 0 {
                        f.set_len(*head as u64 + hole).expect("extend");
                    } else {
                        f.write_all(&noise(*tail, 9)).expect("write");
                    }
                }
            }
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode)).expect("chmod");
            set_mtime(path, mtime_seed);
        }
        Item::Symlink { target } => {
            std::os::unix::fs::symlink(OsStr::from_bytes(target), path).expect("symlink");
            let t = filetime::FileTime::from_unix_time(1_600_000_000 + mtime_seed, 5);
            filetime::set_symlink_file_times(path, t, t).expect("symlink times");
        }
        Item::Dir { children, mode } => {
            std::fs::create_dir(path).expect("mkdir");
            let mut seen = std::collections::HashSet::new();
            for (i, (name, child)) in children.iter().enumerate() {
                if seen.insert(name.clone()) {
                    build(
                        &path.join(OsStr::from_bytes(name)),
                        child,
                        mtime_seed + i as i64 + 1,
                    );
                }
            }
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode)).expect("chmod");
            set_mtime(path, mtime_seed);
        }
    }
}

fn set_mtime(path: &Path, seed: i64) {
    let t = filetime::FileTime::from_unix_time(
        1_500_000_000 + seed * 3600,
        (seed as u32 % 1000) * 1_000_123,
    );
    filetime::set_file_times(path, t, t).expect("utimes");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_trees_round_trip_exactly(root in item()) {
        let work = tempfile::tempdir().expect("tempdir");
        let source = work.path().join("source");
        let root = match root {
            dir @ Item::Dir { .. } => dir,
            other => Item::Dir { children: vec![(b"only".to_vec(), other)], mode: 0o755 },
        };
        build(&source, &root, 1);
        let repo = new_repo(&work.path().join("repo"));
        let outcome = repo.backup(std::slice::from_ref(&source), &BackupOptions::default(), &NoProgress).expect("backup");
        prop_assert!(outcome.skipped.is_empty(), "skipped: {:?}", outcome.skipped);

        let target = work.path().join("target");
        let restored = repo
            .restore(&outcome.snapshot_id, &target, &RestoreOptions::default(), &NoProgress)
            .expect("restore");
        prop_assert!(restored.failed.is_empty());
        let expected = snapshot_tree(&source);
        let actual = snapshot_tree(&restored_root(&target, &source));
        prop_assert_eq!(expected.len(), actual.len());
        for ((path, want), (got_path, got)) in expected.iter().zip(actual.iter()) {
            prop_assert_eq!(path, got_path);
            // A sparse source must restore sparse (not necessarily with the
            // identical block count, which depends on the file system).
            prop_assert_eq!(want.sparse_blocks.is_some(), got.sparse_blocks.is_some(), "sparseness of {:?}", String::from_utf8_lossy(path));
            prop_assert_eq!(
                (&want.kind, want.mode, want.mtime_ns, want.uid, want.gid, &want.content, &want.target),
                (&got.kind, got.mode, got.mtime_ns, got.uid, got.gid, &got.content, &got.target),
                "entry {:?}", String::from_utf8_lossy(path)
            );
        }
        // The structure check finds nothing wrong either.
        let report = repo.check(haven_engine::ReadData::All, &NoProgress).expect("check");
        prop_assert!(report.is_ok(), "{:?}", report.problems);
    }
}

#[test]
fn sub_path_and_include_restore_only_what_was_asked() {
    let work = tempfile::tempdir().expect("tempdir");
    let source = work.path().join("src");
    std::fs::create_dir_all(source.join("docs/deep")).expect("mkdir");
    std::fs::write(source.join("docs/a.txt"), b"alpha").expect("write");
    std::fs::write(source.join("docs/deep/b.txt"), b"beta").expect("write");
    std::fs::write(source.join("docs/c.bin"), b"gamma").expect("write");
    std::fs::write(source.join("top.txt"), b"top").expect("write");
    let repo = new_repo(&work.path().join("repo"));
    let snap = repo
        .backup(
            std::slice::from_ref(&source),
            &BackupOptions::default(),
            &NoProgress,
        )
        .expect("backup");

    let sub = work.path().join("sub");
    let options = RestoreOptions {
        subpath: Some(format!("{}/docs", source.display())),
        includes: vec![],
    };
    repo.restore(&snap.snapshot_id, &sub, &options, &NoProgress)
        .expect("restore sub-path");
    assert_eq!(std::fs::read(sub.join("a.txt")).expect("a"), b"alpha");
    assert_eq!(std::fs::read(sub.join("deep/b.txt")).expect("b"), b"beta");
    assert!(!sub.join("top.txt").exists());

    let single = work.path().join("single");
    let options = RestoreOptions {
        subpath: Some(format!("{}/top.txt", source.display())),
        includes: vec![],
    };
    repo.restore(&snap.snapshot_id, &single, &options, &NoProgress)
        .expect("restore one file");
    assert_eq!(std::fs::read(single.join("top.txt")).expect("top"), b"top");

    let inc = work.path().join("inc");
    let options = RestoreOptions {
        subpath: None,
        includes: vec!["*.txt".into()],
    };
    repo.restore(&snap.snapshot_id, &inc, &options, &NoProgress)
        .expect("restore with include");
    let root = restored_root(&inc, &source);
    assert!(
        root.join("docs/a.txt").exists()
            && root.join("docs/deep/b.txt").exists()
            && root.join("top.txt").exists()
    );
    assert!(!root.join("docs/c.bin").exists(), "excluded by --include");

    let missing = RestoreOptions {
        subpath: Some("/no/such/path".into()),
        includes: vec![],
    };
    let err = repo
        .restore(
            &snap.snapshot_id,
            &work.path().join("x"),
            &missing,
            &NoProgress,
        )
        .expect_err("missing sub-path");
    assert!(
        err.to_string().contains("does not exist in snapshot"),
        "{err}"
    );
}

#[test]
fn restore_replaces_existing_files_rather_than_mixing_content() {
    let work = tempfile::tempdir().expect("tempdir");
    let source = work.path().join("s");
    std::fs::create_dir(&source).expect("mkdir");
    std::fs::write(source.join("f"), b"short").expect("write");
    let repo = new_repo(&work.path().join("repo"));
    let snap = repo
        .backup(
            std::slice::from_ref(&source),
            &BackupOptions::default(),
            &NoProgress,
        )
        .expect("backup");
    let target = work.path().join("t");
    let dest = restored_root(&target, &source);
    std::fs::create_dir_all(&dest).expect("mkdir");
    let mut stale = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(dest.join("f"))
        .expect("open");
    stale.write_all(&[b'x'; 10_000]).expect("write");
    drop(stale);
    repo.restore(
        &snap.snapshot_id,
        &target,
        &RestoreOptions::default(),
        &NoProgress,
    )
    .expect("restore");
    assert_eq!(std::fs::read(dest.join("f")).expect("read"), b"short");
}
