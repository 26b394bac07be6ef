//! Restoring a snapshot (or part of it) into a directory.
//!
//! 1. **Plan** ([`plan`]): read and check the trees, list the entries and
//!    group every file's chunks by pack. A snapshot breaking the format's
//!    rules is refused where it breaks them (a damaged directory, a
//!    damaged entry), and one holding more than its summary declares is
//!    refused before anything is written.
//! 2. **Create**: directories (private, 0700) and empty files (private,
//!    0600, under a `.partial` name), relative to opened directories and
//!    never through a symlink ([`target`]).
//! 3. **Write**: worker threads take one pack at a time, read the needed
//!    span, verify every chunk (AEAD tag and keyed hash) and write it with
//!    `pwrite` wherever it is used. All-zero blocks of sparse files are
//!    not written, so holes stay holes. Whoever writes a file's last chunk
//!    sets its owner, mode and times on the open file and renames it into
//!    place. Memory is bounded by workers × pack size.
//! 4. **Finish**: symlinks last (so no write can pass through one), then
//!    directory metadata, deepest first.
//!
//! A file that cannot be completed is removed and reported; a killed
//! restore leaves only private directories and `.partial` files that are
//! private (0600) or complete with their recorded metadata (killed
//! between the last step and the rename).

mod plan;
mod target;
mod write;

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::{NodeType, Tree};
use crate::id::Id;
use crate::index::Index;
use crate::progress::Progress;
use crate::repo::Repository;
use plan::{Plan, Planner};
use target::{DirCache, Target};

/// What to restore.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Path inside the snapshot to restore (default: everything).
    pub subpath: Option<String>,
    /// Only restore entries matching these globs (full snapshot path or name).
    pub includes: Vec<String>,
}

/// An entry that could not be restored (nothing of it is left in the
/// target).
#[derive(Clone, Debug, Serialize)]
pub struct FailedFile {
    /// Path in the target directory.
    pub path: PathBuf,
    /// Why.
    pub error: String,
}

/// The result of a restore.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RestoreOutcome {
    /// Files restored.
    pub files: u64,
    /// Directories restored.
    pub dirs: u64,
    /// Symlinks restored.
    pub symlinks: u64,
    /// Bytes of restored files.
    pub bytes: u64,
    /// Entries not restored: damaged or missing data, damaged trees,
    /// or local errors (a full disk).
    pub failed: Vec<FailedFile>,
}

/// Names of files being written end with this until they are complete.
const PARTIAL_SUFFIX: &[u8] = b".partial";
/// Longest file name most file systems accept.
const NAME_MAX: usize = 255;

impl Repository {
    /// Restore snapshot `snapshot_id` into `target`.
    pub fn restore(
        &self,
        snapshot_id: &Id,
        target: &Path,
        options: &RestoreOptions,
        progress: &dyn Progress,
    ) -> Result<RestoreOutcome> {
        let snapshot = self.load_snapshot(snapshot_id)?;
        let (index, _) = self.load_index(true)?;
        let includes = build_includes(&options.includes)?;
        let (root, snapshot_path) = self.subpath_tree(
            &index,
            snapshot_id,
            &snapshot.tree,
            options.subpath.as_deref(),
        )?;
        let mut plan = crate::deep::on_deep_stack(|| {
            let mut planner = Planner::new(
                self,
                &index,
                (*snapshot_id, &snapshot),
                includes.as_ref(),
                target,
            );
            planner.tree(&root, None, &snapshot_path, false, 0)?;
            Ok(planner.plan)
        })?;

        let target_dir = Target::open(target).map_err(|e| Error::io("open", target, e))?;
        let mut outcome = RestoreOutcome {
            failed: std::mem::take(&mut plan.refused),
            ..RestoreOutcome::default()
        };
        create_entries(&target_dir, target, &mut plan, &mut outcome.failed);
        progress.set_total(plan.files.iter().map(|f| f.node.size).sum());

        if let Err(e) = write::write_files(self, &index, &target_dir, &plan, progress) {
            // Stopped by a storage error: nothing partial stays behind.
            let mut cache = DirCache::new(&target_dir);
            for file in &plan.files {
                if let Ok(dir) = cache.get(file.dir, plan.relative(file.dir)) {
                    let _ = target::unlink(dir, &file.partial);
                }
            }
            return Err(e);
        }
        finish_entries(&target_dir, target, &plan, &mut outcome, progress);
        Ok(outcome)
    }

    /// The tree to restore and its path in the snapshot: the root, or the
    /// entry at `subpath` (a single file or symlink becomes a one-entry
    /// tree restored into the target).
    fn subpath_tree(
        &self,
        index: &Index,
        snapshot_id: &Id,
        root: &Id,
        subpath: Option<&str>,
    ) -> Result<(Tree, PathBuf)> {
        let mut tree = self.read_tree(index, root)?;
        let mut snapshot_path = PathBuf::from("/");
        let Some(sub) = subpath.filter(|s| !s.trim_matches('/').is_empty()) else {
            return Ok((tree, snapshot_path));
        };
        let not_found = || Error::PathNotInSnapshot {
            path: sub.to_string(),
            snapshot: snapshot_id.short(),
        };
        let parts: Vec<&str> = sub.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            let node = tree
                .nodes
                .iter()
                .find(|n| n.name.0 == part.as_bytes())
                .cloned()
                .ok_or_else(not_found)?;
            snapshot_path.push(part);
            match (node.node_type, node.subtree) {
                (NodeType::Dir, Some(sub_id)) => tree = self.read_tree(index, &sub_id)?,
                _ if i + 1 == parts.len() => {
                    tree = Tree { nodes: vec![node] };
                    snapshot_path.pop();
                }
                _ => return Err(not_found()),
            }
        }
        Ok((tree, snapshot_path))
    }
}

/// Create every directory, and an empty private file for every file of
/// several chunks (a file of at most one is created when it is written).
/// An entry that cannot be created fails, with everything below it.
fn create_entries(
    target: &Target,
    target_path: &Path,
    plan: &mut Plan,
    failed: &mut Vec<FailedFile>,
) {
    let mut cache = DirCache::new(target);
    let mut dir_ok = vec![true; plan.dirs.len()];
    // Directories this restore created: nothing can be in the way in them.
    let mut fresh = vec![false; plan.dirs.len()];
    for position in 0..plan.dirs.len() {
        let dir = &plan.dirs[position];
        if dir.parent.is_some_and(|p| !dir_ok[p]) {
            dir_ok[position] = false;
            continue;
        }
        let created = cache
            .get(dir.parent, plan.relative(dir.parent))
            .and_then(|parent| target::make_dir(parent, &dir.name));
        match created {
            Ok(new) => fresh[position] = new,
            Err(e) => {
                dir_ok[position] = false;
                failed.push(FailedFile {
                    path: plan.target_path(target_path, dir.parent, &dir.name),
                    error: format!("cannot create the directory: {e}"),
                });
            }
        }
    }
    for file in &mut plan.files {
        let failed = file.failed.get_mut().unwrap_or_else(|p| p.into_inner());
        if file.dir.is_some_and(|d| !dir_ok[d]) {
            *failed = Some("its directory could not be created".into());
            continue;
        }
        let in_fresh_dir = file.dir.map_or(target.created(), |d| fresh[d]);
        let whole = file.node.content.len() <= 1;
        if in_fresh_dir && whole {
            continue;
        }
        let relative = file
            .dir
            .map_or(&[][..], |d| plan.dirs[d].relative.as_slice());
        let created = cache.get(file.dir, relative).and_then(|parent| {
            if !in_fresh_dir {
                target::clear_for_leaf(parent, &file.name)?;
            }
            if whole {
                return Ok(None);
            }
            target::create_file(parent, &partial_name(&file.name)).map(|(name, _)| Some(name))
        });
        match created {
            Ok(Some(name)) => file.partial = name,
            Ok(None) => {}
            Err(e) => *failed = Some(format!("cannot create the file: {e}")),
        }
    }
}

/// `name.partial`, or a short stand-in when that would be too long.
fn partial_name(name: &[u8]) -> Vec<u8> {
    if name.len() + PARTIAL_SUFFIX.len() <= NAME_MAX {
        [name, PARTIAL_SUFFIX].concat()
    } else {
        [&name[..NAME_MAX / 2], b"~", PARTIAL_SUFFIX].concat()
    }
}

/// Complete empty files, drop failed ones, then create symlinks and set
/// directory metadata (deepest first, so a directory's own times are the
/// last thing changed in it).
fn finish_entries(
    target: &Target,
    target_path: &Path,
    plan: &Plan,
    outcome: &mut RestoreOutcome,
    progress: &dyn Progress,
) {
    let mut cache = DirCache::new(target);
    finish_files(&mut cache, target_path, plan, outcome, progress);
    make_links(&mut cache, target_path, plan, outcome);
    apply_dir_metadata(target, target_path, plan, outcome);
}

/// Empty files get their metadata and name; failed files are removed and
/// listed; the others are counted.
fn finish_files(
    cache: &mut DirCache<'_>,
    target_path: &Path,
    plan: &Plan,
    outcome: &mut RestoreOutcome,
    progress: &dyn Progress,
) {
    for file in &plan.files {
        let path = || plan.target_path(target_path, file.dir, &file.name);
        if file.node.content.is_empty()
            && file
                .failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_none()
        {
            let made = cache
                .get(file.dir, plan.relative(file.dir))
                .and_then(|dir| write::write_whole(dir, file, &[]));
            match made {
                Ok(()) => progress.add_items(1),
                Err(e) => write::fail(file, format!("cannot create the file: {e}")),
            }
        }
        let failure = file.failed.lock().unwrap_or_else(|p| p.into_inner()).take();
        match failure {
            Some(error) => {
                // Never leave wrong or partial data behind.
                if !file.partial.is_empty()
                    && let Ok(dir) = cache.get(file.dir, plan.relative(file.dir))
                {
                    let _ = target::unlink(dir, &file.partial);
                }
                outcome.failed.push(FailedFile {
                    path: path(),
                    error,
                });
            }
            None => {
                outcome.files += 1;
                outcome.bytes += file.node.size;
            }
        }
    }
}

/// Symlinks, once every file is complete: no write can pass through one.
fn make_links(
    cache: &mut DirCache<'_>,
    target_path: &Path,
    plan: &Plan,
    outcome: &mut RestoreOutcome,
) {
    for link in &plan.links {
        let made = cache
            .get(link.dir, plan.relative(link.dir))
            .and_then(|dir| target::make_symlink(dir, &link.name, &link.node));
        match made {
            Ok(()) => outcome.symlinks += 1,
            Err(e) => outcome.failed.push(FailedFile {
                path: plan.target_path(target_path, link.dir, &link.name),
                error: format!("cannot create the symlink: {e}"),
            }),
        }
    }
}

/// Directory owners, modes and times, deepest first.
fn apply_dir_metadata(
    target: &Target,
    target_path: &Path,
    plan: &Plan,
    outcome: &mut RestoreOutcome,
) {
    for dir in plan.dirs.iter().rev() {
        let applied = target
            .open_dir(&dir.relative)
            .and_then(|fd| target::apply_metadata(std::os::fd::AsFd::as_fd(&fd), &dir.node));
        match applied {
            Ok(()) => outcome.dirs += 1,
            // A directory that could not be created was reported already.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => outcome.failed.push(FailedFile {
                path: plan.target_path(target_path, dir.parent, &dir.name),
                error: format!("cannot set the directory's metadata: {e}"),
            }),
        }
    }
}

fn build_includes(patterns: &[String]) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        builder.add(Glob::new(p).map_err(|e| {
            Error::InvalidArgument(format!("invalid --include pattern {p:?}: {e}"))
        })?);
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| Error::InvalidArgument(format!("invalid --include patterns: {e}")))
}
