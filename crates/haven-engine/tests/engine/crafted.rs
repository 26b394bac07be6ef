//! Crafted repositories: a backup client holds the repository password,
//! so a compromised one can write any tree it likes. Each case stores one
//! such tree, restores it, and checks three things: nothing outside the
//! target changed (a canary directory is byte-, mode-, owner- and
//! mtime-identical), the restore refused what it had to (naming the
//! snapshot and path), and `repo check` flags the snapshot.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use haven_engine::testing::Forge;
use haven_engine::{Id, NoProgress, ReadData, Repository, RestoreOptions, RestoreOutcome};
use serde_json::{Value, json};

use crate::helpers::{new_repo, snapshot_tree};

/// A directory outside every restore target, with what a restore through
/// a symlink would change: a file, a private file, a subdirectory.
struct Canary {
    root: PathBuf,
    before: CanaryFacts,
}

/// Every entry's facts, and the canary directory's own mode, owner and mtime.
type CanaryFacts = (
    BTreeMap<Vec<u8>, crate::helpers::EntryFacts>,
    (u32, u32, u32, i64),
);

impl Canary {
    fn new(work: &Path) -> Self {
        let root = work.join("canary");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("victim.txt"), b"original").expect("write");
        std::fs::write(root.join("sub/secret"), b"private").expect("write");
        std::fs::set_permissions(root.join("sub/secret"), PermissionsExt::from_mode(0o600))
            .expect("chmod");
        let past = filetime::FileTime::from_unix_time(1_600_000_000, 0);
        for p in ["victim.txt", "sub/secret", "sub", ""] {
            filetime::set_file_times(root.join(p), past, past).expect("utimes");
        }
        let before = Canary::facts(&root);
        Canary { root, before }
    }

    fn facts(root: &Path) -> CanaryFacts {
        let meta = std::fs::metadata(root).expect("stat canary");
        (
            snapshot_tree(root),
            (meta.mode(), meta.uid(), meta.gid(), meta.mtime()),
        )
    }

    fn path(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }

    fn assert_untouched(&self) {
        assert_eq!(
            Canary::facts(&self.root),
            self.before,
            "the restore changed something outside its target"
        );
    }
}

fn node(name: Value, node_type: &str) -> Value {
    json!({
        "name": name, "type": node_type, "mode": 0o777, "uid": 4242, "gid": 4242,
        "mtime_ns": 1_000_000_000i64, "ctime_ns": 1_000_000_000i64, "inode": 1, "device": 1
    })
}

fn file(name: &str, content: &[Id], size: u64) -> Value {
    let mut n = node(json!(name), "file");
    n["mode"] = json!(0o644);
    if size > 0 {
        n["size"] = json!(size);
    }
    if !content.is_empty() {
        n["content"] = json!(content);
    }
    n
}

fn dir(name: &str, subtree: Id) -> Value {
    let mut n = node(json!(name), "dir");
    n["mode"] = json!(0o755);
    n["subtree"] = json!(subtree);
    n
}

fn link(name: &str, target: &str) -> Value {
    let mut n = node(json!(name), "symlink");
    n["target"] = json!(target);
    n
}

fn tree(nodes: Vec<Value>) -> Value {
    json!({ "nodes": nodes })
}

fn snapshot(tree: Id, files: u64, dirs: u64, bytes: u64) -> Value {
    json!({
        "version": 1, "time": "2026-11-29T10:00:00Z", "tree": tree, "paths": ["/crafted"],
        "hostname": "attacker", "username": "root", "tags": [], "program": "forged",
        "summary": {
            "files_new": files, "files_changed": 0, "files_unmodified": 0, "dirs": dirs,
            "bytes_read": bytes, "bytes_total": bytes, "bytes_added": 0, "data_blobs_added": 0,
            "tree_blobs_added": 0, "errors": 0, "duration_ms": 1
        }
    })
}

/// A repository holding one crafted snapshot, a canary beside it, and a
/// target to restore into.
struct Crafted {
    work: tempfile::TempDir,
    repo: Repository,
    snapshot: Id,
    canary: Canary,
}

impl Crafted {
    /// `build` stores blobs and returns the snapshot's JSON.
    fn new(build: impl FnOnce(&Forge, &Canary) -> Value) -> Self {
        let work = tempfile::tempdir().expect("tempdir");
        let repo = new_repo(&work.path().join("repo"));
        let canary = Canary::new(work.path());
        let forge = Forge::new(&repo).expect("forge");
        let json = build(&forge, &canary);
        forge.finish().expect("store blobs");
        let snapshot = Forge::snapshot(&repo, &json).expect("store snapshot");
        Crafted {
            work,
            repo,
            snapshot,
            canary,
        }
    }

    fn target(&self) -> PathBuf {
        self.work.path().join("target")
    }

    fn restore(&self) -> haven_engine::Result<RestoreOutcome> {
        let outcome = self.repo.restore(
            &self.snapshot,
            &self.target(),
            &RestoreOptions::default(),
            &NoProgress,
        );
        self.canary.assert_untouched();
        outcome
    }

    /// Restore; the entries at `refused` (target-relative) are reported
    /// as damaged with the snapshot's id and are absent.
    fn restore_refusing(&self, refused: &[&str]) -> RestoreOutcome {
        let outcome = self.restore().expect("the rest of the snapshot restores");
        for path in refused {
            let full = self.target().join(path);
            let failure = outcome
                .failed
                .iter()
                .find(|f| f.path == full)
                .unwrap_or_else(|| panic!("{path} is not reported: {:#?}", outcome.failed));
            assert!(
                failure.error.contains(&self.snapshot.short()) || failure.error.contains("blob"),
                "the error names the snapshot: {}",
                failure.error
            );
        }
        outcome
    }

    /// `repo check` reports damage in this snapshot.
    fn assert_flagged(&self) {
        let report = self
            .repo
            .check(ReadData::All, &NoProgress)
            .expect("check runs");
        assert!(!report.is_ok(), "check found nothing");
        let hex = self.snapshot.to_hex();
        assert!(
            report.damaged.iter().any(|d| d.snapshot == hex),
            "check does not name the snapshot: {:#?}",
            report
        );
    }
}

fn no_partial_files_left(root: &Path) {
    for entry in walk(root) {
        assert!(
            !entry.to_string_lossy().ends_with(".partial"),
            "{} was left behind",
            entry.display()
        );
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        if std::fs::symlink_metadata(&path).expect("lstat").is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

/// Regression: `[file "a", symlink "a" → victim]` wrote the file's bytes
/// through the link and chmod/chowned the victim.
#[test]
fn a_file_and_a_symlink_of_one_name_are_refused() {
    let c = Crafted::new(|forge, canary| {
        let data = forge.data(b"pwned");
        let evil = forge.tree(&tree(vec![
            file("a", &[data], 5),
            link("a", &canary.path("victim.txt")),
        ]));
        let fine = forge.tree(&tree(vec![file("fine", &[data], 5)]));
        let root = forge.tree(&tree(vec![dir("evil", evil), dir("ok", fine)]));
        snapshot(root, 2, 2, 10)
    });
    c.restore_refusing(&["evil"]);
    assert_eq!(
        std::fs::read(c.target().join("ok/fine")).expect("read"),
        b"pwned"
    );
    assert!(!c.target().join("evil").exists());
    c.assert_flagged();
}

/// Regression: `[dir "x" {file "pwned"}, symlink "x" → /etc]` created
/// the file inside the link's target.
#[test]
fn a_directory_and_a_symlink_of_one_name_are_refused() {
    let c = Crafted::new(|forge, canary| {
        let data = forge.data(b"pwned");
        let inner = forge.tree(&tree(vec![file("pwned", &[data], 5)]));
        let evil = forge.tree(&tree(vec![dir("x", inner), link("x", &canary.path("sub"))]));
        let root = forge.tree(&tree(vec![dir("evil", evil)]));
        snapshot(root, 1, 2, 5)
    });
    c.restore_refusing(&["evil"]);
    assert!(!c.canary.root.join("sub/pwned").exists());
    c.assert_flagged();
}

#[test]
fn a_symlink_before_a_directory_of_the_same_name_is_refused() {
    let c = Crafted::new(|forge, canary| {
        let data = forge.data(b"pwned");
        let inner = forge.tree(&tree(vec![file("pwned", &[data], 5)]));
        // Unsorted as well as duplicated: the link first.
        let evil = forge.tree(&tree(vec![link("x", &canary.path("sub")), dir("x", inner)]));
        let root = forge.tree(&tree(vec![dir("evil", evil)]));
        snapshot(root, 1, 2, 5)
    });
    c.restore_refusing(&["evil"]);
    c.assert_flagged();
}

#[test]
fn names_out_of_order_are_refused() {
    let c = Crafted::new(|forge, _| {
        let data = forge.data(b"x");
        let evil = forge.tree(&tree(vec![file("b", &[data], 1), file("a", &[data], 1)]));
        let root = forge.tree(&tree(vec![dir("evil", evil)]));
        snapshot(root, 2, 1, 2)
    });
    c.restore_refusing(&["evil"]);
    c.assert_flagged();
}

#[test]
fn unsafe_names_are_refused() {
    for name in ["", ".", "..", "../escape", "a/b", "nul\0byte"] {
        let c = Crafted::new(|forge, _| {
            let data = forge.data(b"pwned");
            let evil = forge.tree(&tree(vec![file(name, &[data], 5)]));
            let root = forge.tree(&tree(vec![dir("evil", evil)]));
            snapshot(root, 1, 1, 5)
        });
        c.restore_refusing(&["evil"]);
        assert!(!c.work.path().join("escape").exists(), "{name:?}");
        c.assert_flagged();
    }
}

/// One spelling per name: UTF-8 written as base64 is not the format.
#[test]
fn a_utf8_name_spelt_in_base64_is_refused() {
    let c = Crafted::new(|forge, _| {
        let data = forge.data(b"x");
        let mut entry = file("ignored", &[data], 1);
        entry["name"] = json!({"base64": "YQ=="});
        let evil = forge.tree(&tree(vec![entry]));
        let root = forge.tree(&tree(vec![dir("evil", evil)]));
        snapshot(root, 1, 1, 1)
    });
    c.restore_refusing(&["evil"]);
    c.assert_flagged();
}

/// Regression: a size of 2^62 left a 4 EiB sparse file on tmpfs.
#[test]
fn a_size_its_chunks_contradict_is_refused_without_allocating_it() {
    let c = Crafted::new(|forge, _| {
        let data = forge.data(b"small");
        let root = forge.tree(&tree(vec![
            file("huge", &[data], 1 << 62),
            file("longer", &[data], 7),
            file("ok", &[data], 5),
        ]));
        snapshot(root, 3, 0, (1 << 62) + 12)
    });
    let outcome = c.restore_refusing(&["huge", "longer"]);
    assert_eq!(outcome.files, 1);
    assert!(!c.target().join("huge").exists());
    no_partial_files_left(&c.target());
    c.assert_flagged();
}

#[test]
fn an_empty_file_listing_an_empty_chunk_is_refused() {
    let c = Crafted::new(|forge, _| {
        let empty = forge.data(b"");
        let root = forge.tree(&tree(vec![file("empty", &[empty], 0)]));
        snapshot(root, 1, 0, 0)
    });
    c.restore_refusing(&["empty"]);
    c.assert_flagged();
}

#[test]
fn a_missing_chunk_fails_its_file_only() {
    let c = Crafted::new(|forge, _| {
        let data = forge.data(b"here");
        let gone = Id([7; 32]);
        let root = forge.tree(&tree(vec![
            file("broken", &[data, gone], 8),
            file("whole", &[data], 4),
        ]));
        snapshot(root, 2, 0, 12)
    });
    let outcome = c.restore_refusing(&["broken"]);
    assert_eq!(outcome.files, 1);
    assert!(!c.target().join("broken").exists());
    c.assert_flagged();
}

/// Regression: an unknown node type made the whole directory unreadable.
#[test]
fn an_unknown_entry_type_is_refused_alone() {
    let c = Crafted::new(|forge, _| {
        let data = forge.data(b"x");
        let mut fifo = node(json!("b-fifo"), "fifo");
        fifo["mode"] = json!(0o644);
        let root = forge.tree(&tree(vec![
            file("a", &[data], 1),
            fifo,
            file("c", &[data], 1),
        ]));
        snapshot(root, 2, 0, 2)
    });
    let outcome = c.restore_refusing(&["b-fifo"]);
    assert_eq!(outcome.files, 2, "the rest of the directory restores");
    c.assert_flagged();
}

#[test]
fn entries_whose_fields_contradict_their_type_are_refused() {
    let c = Crafted::new(|forge, _| {
        let data = forge.data(b"x");
        let sub = forge.tree(&tree(vec![]));
        let mut dir_with_content = dir("d", sub);
        dir_with_content["content"] = json!([data]);
        let mut bad_mode = file("m", &[data], 1);
        bad_mode["mode"] = json!(0o170_777);
        let mut link_without_target = node(json!("s"), "symlink");
        link_without_target["mode"] = json!(0o777);
        let root = forge.tree(&tree(vec![dir_with_content, bad_mode, link_without_target]));
        snapshot(root, 1, 1, 1)
    });
    c.restore_refusing(&["d", "m", "s"]);
    c.assert_flagged();
}

/// File data named as a subtree is no directory listing.
#[test]
fn data_named_as_a_subtree_is_refused() {
    let c = Crafted::new(|forge, _| {
        let data = forge.data(b"not a directory listing");
        let root = forge.tree(&tree(vec![dir("data-as-tree", data)]));
        snapshot(root, 0, 1, 0)
    });
    c.restore_refusing(&["data-as-tree"]);
    c.assert_flagged();
}

/// 40 levels, each listing one subtree twice: 2^40 paths from 41 blobs.
/// `check` must not walk them, restore must not start on them.
#[test]
fn a_tree_bomb_is_refused_before_anything_is_written() {
    let c = Crafted::new(|forge, _| {
        let data = forge.data(b"boom");
        let mut level = forge.tree(&tree(vec![file("f", &[data], 4)]));
        for _ in 0..40 {
            level = forge.tree(&tree(vec![dir("a", level), dir("b", level)]));
        }
        let root = forge.tree(&tree(vec![dir("bomb", level)]));
        // An innocent-looking summary: one file in a couple of directories.
        snapshot(root, 1, 3, 4)
    });
    let err = c.restore().expect_err("the bomb is refused");
    assert!(err.to_string().contains("summary declares"), "{err}");
    assert!(
        std::fs::read_dir(c.target()).map_or(true, |mut d| d.next().is_none()),
        "nothing was created"
    );
    c.assert_flagged();
    let report = c.repo.check(ReadData::None, &NoProgress).expect("check");
    assert!(
        report.problems.iter().any(|p| p.kind == "summary-mismatch"),
        "{:#?}",
        report.problems
    );
}

/// The same bomb declaring its true size: more entries than a snapshot
/// may hold.
#[test]
fn a_tree_bomb_declaring_its_size_is_unreadable() {
    let c = Crafted::new(|forge, _| {
        let data = forge.data(b"boom");
        let mut level = forge.tree(&tree(vec![file("f", &[data], 4)]));
        for _ in 0..40 {
            level = forge.tree(&tree(vec![dir("a", level), dir("b", level)]));
        }
        snapshot(level, 1 << 40, (1 << 41) - 2, 4 << 40)
    });
    let err = c.restore().expect_err("refused");
    assert!(
        err.to_string().contains("more than a snapshot may hold"),
        "{err}"
    );
    c.assert_flagged();
}

#[test]
fn nesting_beyond_the_format_limit_is_refused_without_exhausting_the_stack() {
    let c = Crafted::new(|forge, _| {
        let data = forge.data(b"deep");
        let mut level = forge.tree(&tree(vec![file("leaf", &[data], 4)]));
        for _ in 0..5000 {
            level = forge.tree(&tree(vec![dir("d", level)]));
        }
        snapshot(level, 1, 5000, 4)
    });
    let outcome = c.restore().expect("restores what is within the limit");
    let deepest = outcome
        .failed
        .iter()
        .find(|f| f.error.contains("deeper than"))
        .unwrap_or_else(|| panic!("{:#?}", outcome.failed));
    assert!(
        deepest.error.contains(&c.snapshot.short()),
        "{}",
        deepest.error
    );
    c.assert_flagged();
}

/// Regression: one garbage file in `snapshots/` broke listing and
/// `restore latest` for the whole repository.
#[test]
fn a_garbage_snapshot_file_hides_no_other_snapshot() {
    let c = Crafted::new(|forge, _| {
        let data = forge.data(b"fine");
        let root = forge.tree(&tree(vec![file("f", &[data], 4)]));
        snapshot(root, 1, 0, 4)
    });
    let garbage = b"this is not a snapshot".to_vec();
    let garbage_id = Id::of_file(&garbage);
    c.repo
        .backend()
        .write_new(&format!("snapshots/{garbage_id}"), garbage)
        .expect("write");
    let list = c.repo.snapshot_list().expect("list");
    assert_eq!(list.snapshots.len(), 1);
    assert_eq!(list.unreadable.len(), 1);
    assert_eq!(list.unreadable[0].0, garbage_id);
    let (latest, _) = c.repo.find_snapshot("latest").expect("latest");
    assert_eq!(latest, c.snapshot);
    c.restore().expect("restore latest");
    let report = c.repo.check(ReadData::None, &NoProgress).expect("check");
    assert!(
        report
            .damaged
            .iter()
            .any(|d| d.snapshot == garbage_id.to_hex())
    );
}

/// A snapshot of a newer format version, or missing its summary, is
/// unreadable on its own; so is one with a known version but no paths.
#[test]
fn snapshots_outside_the_format_are_unreadable_one_by_one() {
    let c = Crafted::new(|forge, _| {
        let data = forge.data(b"fine");
        let root = forge.tree(&tree(vec![file("f", &[data], 4)]));
        snapshot(root, 1, 0, 4)
    });
    let good = c.repo.load_snapshot(&c.snapshot).expect("good snapshot");
    let mut newer = snapshot(good.tree, 1, 0, 4);
    newer["version"] = json!(2);
    let mut no_summary = snapshot(good.tree, 1, 0, 4);
    no_summary
        .as_object_mut()
        .expect("object")
        .remove("summary");
    let mut no_paths = snapshot(good.tree, 1, 0, 4);
    no_paths["paths"] = json!([]);
    for bad in [newer, no_summary, no_paths] {
        let id = Forge::snapshot(&c.repo, &bad).expect("store");
        let err = c.repo.load_snapshot(&id).expect_err("unreadable");
        assert!(err.is_integrity(), "{err}");
    }
    assert_eq!(c.repo.snapshot_list().expect("list").unreadable.len(), 3);
    assert_eq!(
        c.repo.find_snapshot("latest").expect("latest").0,
        c.snapshot
    );
}

/// A target where a directory's name is already a symlink (left by an
/// earlier restore, or placed there): the link is replaced, not followed.
#[test]
fn an_existing_symlink_in_the_target_is_replaced_not_followed() {
    let c = Crafted::new(|forge, _| {
        let data = forge.data(b"inside");
        let inner = forge.tree(&tree(vec![file("victim.txt", &[data], 6)]));
        let root = forge.tree(&tree(vec![dir("d", inner), file("f", &[data], 6)]));
        snapshot(root, 2, 1, 12)
    });
    std::fs::create_dir_all(c.target()).expect("mkdir");
    std::os::unix::fs::symlink(&c.canary.root, c.target().join("d")).expect("link");
    std::os::unix::fs::symlink(c.canary.root.join("victim.txt"), c.target().join("f"))
        .expect("link");
    let outcome = c.restore().expect("restore");
    assert!(outcome.failed.is_empty(), "{:#?}", outcome.failed);
    assert!(
        std::fs::symlink_metadata(c.target().join("d"))
            .expect("lstat")
            .is_dir()
    );
    assert_eq!(
        std::fs::read(c.target().join("d/victim.txt")).expect("read"),
        b"inside"
    );
    assert!(
        std::fs::symlink_metadata(c.target().join("f"))
            .expect("lstat")
            .is_file()
    );
}

/// Symlinks come last: a link named like a directory created from a
/// later snapshot path can never redirect a write (and a link whose
/// target is absolute is restored as it is, not followed).
#[test]
fn symlinks_pointing_outside_are_restored_as_links_only() {
    let c = Crafted::new(|forge, canary| {
        let root = forge.tree(&tree(vec![
            link("escape", &canary.path("victim.txt")),
            link("up", "../../.."),
        ]));
        snapshot(root, 0, 0, 0)
    });
    let outcome = c.restore().expect("restore");
    assert_eq!(outcome.symlinks, 2);
    assert_eq!(
        std::fs::read_link(c.target().join("escape")).expect("readlink"),
        c.canary.root.join("victim.txt")
    );
}
