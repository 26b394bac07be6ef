//! Parent snapshots: unchanged files are not read; deduplication works
//! across snapshots and hosts; chunking is deterministic per repository.

use haven_engine::{BackupOptions, NoProgress, ParentChoice, Repository};

use crate::helpers::{new_repo, noise};

fn write_dataset(root: &std::path::Path) {
    std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
    for i in 0..40 {
        let body: Vec<u8> = (0..(i * 997 + 10)).map(|j| (j * 31 + i) as u8).collect();
        std::fs::write(root.join(format!("a/file{i}")), body).expect("write");
    }
    std::fs::write(root.join("a/b/big"), vec![7u8; 300_000]).expect("write");
}

#[test]
fn unchanged_files_are_skipped_and_changed_ones_read() {
    let work = tempfile::tempdir().expect("tempdir");
    let source = work.path().join("data");
    write_dataset(&source);
    let repo = new_repo(&work.path().join("repo"));
    let paths = vec![source.clone()];
    let first = repo
        .backup(&paths, &BackupOptions::default(), &NoProgress)
        .expect("first");
    assert_eq!(first.summary().files_new, 41);
    assert!(first.summary().bytes_added > 0);

    let second = repo
        .backup(&paths, &BackupOptions::default(), &NoProgress)
        .expect("second");
    let s = second.summary();
    assert_eq!(
        (s.files_new, s.files_changed, s.files_unmodified),
        (0, 0, 41)
    );
    assert_eq!(s.bytes_read, 0, "unchanged files must not be read");
    // Only ancestor directory trees may be re-stored (e.g. /tmp's mtime
    // moves while other tests run); no file data is.
    assert_eq!(s.data_blobs_added, 0, "nothing new to store");
    assert_eq!(second.snapshot.parent, Some(first.snapshot_id));

    std::fs::write(source.join("a/file3"), b"changed content").expect("write");
    std::fs::write(source.join("a/new"), b"brand new").expect("write");
    let third = repo
        .backup(&paths, &BackupOptions::default(), &NoProgress)
        .expect("third");
    let s = third.summary();
    assert_eq!(
        (s.files_new, s.files_changed, s.files_unmodified),
        (1, 1, 40)
    );
    assert_eq!(
        s.bytes_read,
        "changed content".len() as u64 + "brand new".len() as u64
    );

    let forced = BackupOptions {
        parent: ParentChoice::None,
        ..BackupOptions::default()
    };
    let fourth = repo.backup(&paths, &forced, &NoProgress).expect("forced");
    assert_eq!(fourth.summary().files_new, 42);
    assert_eq!(
        fourth.summary().data_blobs_added,
        0,
        "everything deduplicates"
    );
}

#[test]
fn data_deduplicates_across_hosts_and_paths() {
    let work = tempfile::tempdir().expect("tempdir");
    let one = work.path().join("one");
    let two = work.path().join("two");
    write_dataset(&one);
    write_dataset(&two);
    let repo = new_repo(&work.path().join("repo"));
    let first = repo
        .backup(
            &[one],
            &BackupOptions {
                hostname: Some("host-a".into()),
                ..Default::default()
            },
            &NoProgress,
        )
        .expect("first host");
    let second = repo
        .backup(
            &[two],
            &BackupOptions {
                hostname: Some("host-b".into()),
                ..Default::default()
            },
            &NoProgress,
        )
        .expect("second host");
    assert!(first.summary().data_blobs_added > 0);
    assert_eq!(
        second.summary().data_blobs_added,
        0,
        "same content from another host is stored once"
    );
    assert!(
        second.snapshot.parent.is_none(),
        "parent only from the same host and paths"
    );
}

#[test]
fn chunking_is_deterministic_within_a_repository_and_secret_across() {
    let work = tempfile::tempdir().expect("tempdir");
    let source = work.path().join("big");
    std::fs::create_dir(&source).expect("mkdir");
    let data = noise(400_000, 88172645463325252);
    std::fs::write(source.join("f"), &data).expect("write");
    let content_of = |repo: &Repository| {
        let opts = BackupOptions {
            parent: ParentChoice::None,
            ..Default::default()
        };
        let out = repo
            .backup(std::slice::from_ref(&source), &opts, &NoProgress)
            .expect("backup");
        let (index, _) = repo.load_index(false).expect("index");
        let mut tree = repo.read_tree(&index, &out.snapshot.tree).expect("root");
        // Descend the absolute path to the file node.
        loop {
            let node = tree.nodes[0].clone();
            match node.subtree {
                Some(sub) => tree = repo.read_tree(&index, &sub).expect("subtree"),
                None => {
                    return node
                        .content
                        .iter()
                        .map(|id| index.get(id).expect("indexed").raw_length)
                        .collect::<Vec<_>>();
                }
            }
        }
    };
    let repo_a = new_repo(&work.path().join("a"));
    let reopened = crate::helpers::open_repo(&work.path().join("a"));
    let repo_b = new_repo(&work.path().join("b"));
    let sizes_a = content_of(&repo_a);
    assert!(
        sizes_a.len() > 5,
        "400 kB at 16 kB average must span many chunks"
    );
    assert_eq!(
        sizes_a,
        content_of(&reopened),
        "same repository, same boundaries"
    );
    assert_ne!(
        sizes_a,
        content_of(&repo_b),
        "another repository's secret seed cuts elsewhere"
    );
}
