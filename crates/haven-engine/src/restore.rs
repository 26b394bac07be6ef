//! Restoring a snapshot (or part of it) into a directory.
//!
//! Plan first, then stream: the trees are walked to create directories and
//! symlinks and to list, per pack, which blobs go to which file offsets.
//! Worker threads then take one pack at a time, read the needed span,
//! verify every blob (AEAD tag and keyed hash) and write it with `pwrite`
//! to every place that uses it. All-zero chunks are not written, so holes
//! stay holes. The worker that writes a file's last chunk sets its metadata.
//! Memory is bounded by workers × pack size, whatever the snapshot's size.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::{Node, NodeType};
use crate::id::Id;
use crate::index::{BlobLocation, Index};
use crate::progress::Progress;
use crate::repo::{Repository, pack_path};

/// What to restore.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Path inside the snapshot to restore (default: everything).
    pub subpath: Option<String>,
    /// Only restore entries matching these globs (full snapshot path or name).
    pub includes: Vec<String>,
}

/// A file that could not be restored (it is removed from the target).
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
    /// Files whose data was damaged or missing (not restored).
    pub failed: Vec<FailedFile>,
}

struct PlannedFile {
    path: PathBuf,
    node: Node,
    remaining: AtomicU32,
    written_end: AtomicU64,
    failed: Mutex<Option<String>>,
}

struct BlobUse {
    file: usize,
    offset: u64,
}

struct PlannedBlob {
    id: Id,
    loc: BlobLocation,
    uses: Vec<BlobUse>,
}

#[derive(Default)]
struct Plan {
    dirs: Vec<(PathBuf, Node)>,
    files: Vec<PlannedFile>,
    symlinks: Vec<(PathBuf, Node)>,
    packs: HashMap<u32, Vec<PlannedBlob>>,
    /// Where each blob sits in `packs`: (pack, position).
    blob_slots: HashMap<Id, (u32, usize)>,
}

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
        std::fs::create_dir_all(target).map_err(|e| Error::io("create", target, e))?;

        let mut plan = Plan::default();
        let mut root_tree = self.read_tree(&index, &snapshot.tree)?;
        let mut snapshot_path = PathBuf::from("/");
        if let Some(sub) = options
            .subpath
            .as_deref()
            .filter(|s| !s.trim_matches('/').is_empty())
        {
            let not_found = || Error::PathNotInSnapshot {
                path: sub.to_string(),
                snapshot: snapshot_id.short(),
            };
            let parts: Vec<&str> = sub.split('/').filter(|p| !p.is_empty()).collect();
            for (i, part) in parts.iter().enumerate() {
                let node = root_tree
                    .nodes
                    .iter()
                    .find(|n| n.name.0 == part.as_bytes())
                    .cloned()
                    .ok_or_else(not_found)?;
                snapshot_path.push(part);
                let last = i + 1 == parts.len();
                match (node.node_type, node.subtree) {
                    (NodeType::Dir, Some(sub_id)) => root_tree = self.read_tree(&index, &sub_id)?,
                    _ if last => {
                        // A single file or symlink: restore it into target.
                        root_tree = crate::format::Tree { nodes: vec![node] };
                        snapshot_path.pop();
                    }
                    _ => return Err(not_found()),
                }
            }
        }
        self.plan_tree(
            &index,
            &root_tree,
            target,
            &snapshot_path,
            includes.as_ref(),
            false,
            &mut plan,
        )?;
        let total: u64 = plan.files.iter().map(|f| f.node.size).sum();
        progress.set_total(total);

        self.write_files(&index, &plan, progress)?;

        let mut outcome = RestoreOutcome::default();
        for file in &plan.files {
            let failure = file.failed.lock().unwrap_or_else(|p| p.into_inner()).take();
            match failure {
                Some(error) => {
                    // Never leave wrong or partial data under a real name.
                    let _ = std::fs::remove_file(&file.path);
                    outcome.failed.push(FailedFile {
                        path: file.path.clone(),
                        error,
                    });
                }
                None => {
                    if file.node.content.is_empty() {
                        finish_file(file, None)?;
                    }
                    outcome.files += 1;
                    outcome.bytes += file.node.size;
                }
            }
        }
        for (path, node) in &plan.symlinks {
            apply_symlink_metadata(path, node)?;
            outcome.symlinks += 1;
        }
        // Deepest first, so setting a parent's mtime is the last change to it.
        for (path, node) in plan.dirs.iter().rev() {
            apply_dir_metadata(path, node)?;
            outcome.dirs += 1;
        }
        Ok(outcome)
    }

    #[allow(clippy::too_many_arguments)]
    fn plan_tree(
        &self,
        index: &Index,
        tree: &crate::format::Tree,
        dir: &Path,
        snapshot_dir: &Path,
        includes: Option<&GlobSet>,
        included: bool,
        plan: &mut Plan,
    ) -> Result<bool> {
        let mut any = false;
        for node in &tree.nodes {
            let name = node.name.as_os_str();
            if name.is_empty() || name == "." || name == ".." || node.name.0.contains(&b'/') {
                return Err(Error::corrupt(
                    "tree",
                    format!("unsafe file name {:?}", node.name),
                ));
            }
            let path = dir.join(name);
            let snapshot_path = snapshot_dir.join(name);
            let selected = included || includes.is_none_or(|set| matches(set, &snapshot_path));
            match node.node_type {
                NodeType::Dir => {
                    let Some(subtree) = node.subtree else {
                        return Err(Error::corrupt(
                            "tree",
                            format!("directory {:?} has no subtree", node.name),
                        ));
                    };
                    let sub = self.read_tree(index, &subtree)?;
                    let position = plan.dirs.len();
                    plan.dirs.push((path.clone(), node.clone()));
                    create_dir(&path)?;
                    let inner = self.plan_tree(
                        index,
                        &sub,
                        &path,
                        &snapshot_path,
                        includes,
                        selected,
                        plan,
                    )?;
                    if !(inner || selected) {
                        // Nothing inside was wanted: undo the directory.
                        plan.dirs.truncate(position);
                        let _ = std::fs::remove_dir(&path);
                    } else {
                        any = true;
                    }
                }
                _ if !selected => {}
                NodeType::File => {
                    remove_existing(&path)?;
                    let file = plan.files.len();
                    let mut offset = 0u64;
                    for id in &node.content {
                        let loc = index.get(id).ok_or(Error::MissingBlob(*id));
                        match loc {
                            Ok(loc) => {
                                let blobs = plan.packs.entry(loc.pack).or_default();
                                match plan.blob_slots.get(id) {
                                    Some(&(_, position)) => {
                                        blobs[position].uses.push(BlobUse { file, offset })
                                    }
                                    None => {
                                        plan.blob_slots.insert(*id, (loc.pack, blobs.len()));
                                        blobs.push(PlannedBlob {
                                            id: *id,
                                            loc,
                                            uses: vec![BlobUse { file, offset }],
                                        });
                                    }
                                }
                                offset += u64::from(loc.raw_length);
                            }
                            Err(e) => {
                                plan.files.push(planned(&path, node));
                                *plan.files[file]
                                    .failed
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                                break;
                            }
                        }
                    }
                    if plan.files.len() == file {
                        plan.files.push(planned(&path, node));
                    }
                    any = true;
                }
                NodeType::Symlink => {
                    remove_existing(&path)?;
                    let target = node.target.as_ref().ok_or_else(|| {
                        Error::corrupt("tree", format!("symlink {:?} has no target", node.name))
                    })?;
                    std::os::unix::fs::symlink(target.as_os_str(), &path)
                        .map_err(|e| Error::io("create symlink", &path, e))?;
                    plan.symlinks.push((path, node.clone()));
                    any = true;
                }
            }
        }
        Ok(any)
    }

    fn write_files(&self, index: &Index, plan: &Plan, progress: &dyn Progress) -> Result<()> {
        let mut packs: Vec<(&u32, &Vec<PlannedBlob>)> = plan.packs.iter().collect();
        packs.sort_by_key(|(p, _)| **p);
        let (tx, rx) = crossbeam_channel::unbounded();
        for p in packs {
            let _ = tx.send(p);
        }
        drop(tx);
        let abort = AtomicBool::new(false);
        let fatal: Mutex<Option<Error>> = Mutex::new(None);
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let rx = rx.clone();
                let (abort, fatal) = (&abort, &fatal);
                scope.spawn(move || {
                    // One pack-sized buffer per worker, reused for every pack.
                    let mut buffer = Vec::new();
                    for (pack, blobs) in rx {
                        if abort.load(Ordering::Relaxed) {
                            return;
                        }
                        let restored =
                            self.restore_pack(index, *pack, blobs, plan, progress, &mut buffer);
                        if let Err(e) = restored {
                            abort.store(true, Ordering::Relaxed);
                            fatal
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(e);
                            return;
                        }
                    }
                });
            }
        });
        match fatal.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Restore the blobs of one pack. Damaged blobs fail their files;
    /// local write errors are returned (they stop the restore).
    fn restore_pack(
        &self,
        index: &Index,
        pack: u32,
        blobs: &[PlannedBlob],
        plan: &Plan,
        progress: &dyn Progress,
        buffer: &mut Vec<u8>,
    ) -> Result<()> {
        let pack_id = index.pack(pack).id;
        let path = pack_path(&pack_id);
        let start = blobs
            .iter()
            .map(|b| u64::from(b.loc.offset))
            .min()
            .unwrap_or(0);
        let end = blobs
            .iter()
            .map(|b| u64::from(b.loc.offset) + u64::from(b.loc.length))
            .max()
            .unwrap_or(0);
        let needed: u64 = blobs.iter().map(|b| u64::from(b.loc.length)).sum();
        // One read of the span when it is mostly wanted, else blob by blob.
        let mut span = if needed * 2 >= end - start {
            match self
                .backend
                .read_range_into(&path, start, end - start, buffer)
            {
                Ok(()) => Some(buffer),
                Err(e) if is_integrity_or_missing(&e) => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let fail_uses = |blob: &PlannedBlob, e: &Error| {
            let message = format!("{e} (pack {})", pack_id.short());
            for u in &blob.uses {
                let mut slot = plan.files[u.file]
                    .failed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert_with(|| message.clone());
            }
        };
        for blob in blobs {
            let offset = u64::from(blob.loc.offset);
            let length = blob.loc.length as usize;
            let mut fetched: Vec<u8>;
            // Blobs are decrypted in place, in the span or in their own read.
            let envelope: &mut [u8] = match span.as_mut() {
                Some(bytes) => {
                    let from = (offset - start) as usize;
                    &mut bytes[from..from + length]
                }
                None => match self.backend.read_range(&path, offset, length as u64) {
                    Ok(bytes) => {
                        fetched = bytes;
                        &mut fetched
                    }
                    Err(e) if is_integrity_or_missing(&e) => {
                        fail_uses(blob, &e);
                        continue;
                    }
                    Err(e) => return Err(e),
                },
            };
            let data = match self.open_blob_in_place(&blob.id, &blob.loc, envelope) {
                Ok(d) => d,
                Err(e) if is_integrity_or_missing(&e) => {
                    fail_uses(blob, &e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            for u in &blob.uses {
                let file = &plan.files[u.file];
                if file
                    .failed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_some()
                {
                    continue;
                }
                let handle = write_blob(file, &data, u.offset)?;
                progress.add_bytes(data.len() as u64);
                if file.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    finish_file(file, handle)?;
                    progress.add_items(1);
                }
            }
        }
        Ok(())
    }
}

/// Block size for hole detection in sparse files.
const HOLE_BLOCK: usize = 4096;

/// Write `data` at `offset`. For sparse files, aligned all-zero blocks are
/// skipped so they stay holes. Returns the open file if anything was written.
fn write_blob(file: &PlannedFile, data: &[u8], offset: u64) -> Result<Option<File>> {
    let mut handle: Option<File> = None;
    let mut write = |bytes: &[u8], at: u64| -> Result<()> {
        if handle.is_none() {
            handle = Some(open_for_write(&file.path)?);
        }
        if let Some(f) = &handle {
            f.write_all_at(bytes, at)
                .map_err(|e| Error::io("write", &file.path, e))?;
        }
        file.written_end
            .fetch_max(at + bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    };
    if !file.node.sparse {
        write(data, offset)?;
        return Ok(handle);
    }
    // Split at file-offset-aligned block boundaries; write runs of non-zero blocks.
    let mut pos = 0usize;
    let mut run_start: Option<usize> = None;
    while pos < data.len() {
        let abs = offset + pos as u64;
        let block_end = (pos + HOLE_BLOCK - (abs % HOLE_BLOCK as u64) as usize).min(data.len());
        let zero = data[pos..block_end].iter().all(|&b| b == 0);
        match (zero, run_start) {
            (false, None) => run_start = Some(pos),
            (true, Some(start)) => {
                write(&data[start..pos], offset + start as u64)?;
                run_start = None;
            }
            _ => {}
        }
        pos = block_end;
    }
    if let Some(start) = run_start {
        write(&data[start..], offset + start as u64)?;
    }
    Ok(handle)
}

fn is_integrity_or_missing(e: &Error) -> bool {
    e.is_not_found() || e.is_integrity()
}

fn planned(path: &Path, node: &Node) -> PlannedFile {
    PlannedFile {
        path: path.to_path_buf(),
        node: node.clone(),
        remaining: AtomicU32::new(node.content.len() as u32),
        written_end: AtomicU64::new(0),
        failed: Mutex::new(None),
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

fn matches(set: &GlobSet, path: &Path) -> bool {
    set.is_match(path) || path.file_name().is_some_and(|n| set.is_match(n))
}

fn create_dir(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => {
            remove_existing(path)?;
            std::fs::create_dir(path).map_err(|e| Error::io("create directory", path, e))
        }
        Err(_) => std::fs::create_dir(path).map_err(|e| Error::io("create directory", path, e)),
    }
}

/// Remove a file or symlink in the way of a restored entry.
fn remove_existing(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            std::fs::remove_dir_all(path).map_err(|e| Error::io("replace", path, e))
        }
        Ok(_) => std::fs::remove_file(path).map_err(|e| Error::io("replace", path, e)),
        Err(_) => Ok(()),
    }
}

fn open_for_write(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("create", path, e))
}

/// Size (holes included), owner, mode and times of a fully written file.
fn finish_file(file: &PlannedFile, handle: Option<File>) -> Result<()> {
    let path = &file.path;
    let f = match handle {
        Some(f) => f,
        None => open_for_write(path)?,
    };
    if file.written_end.load(Ordering::Relaxed) < file.node.size {
        f.set_len(file.node.size)
            .map_err(|e| Error::io("extend", path, e))?;
    }
    let node = &file.node;
    chown_if_permitted(
        std::os::unix::fs::fchown(&f, Some(node.uid), Some(node.gid)),
        path,
    )?;
    f.set_permissions(std::fs::Permissions::from_mode(node.mode))
        .map_err(|e| Error::io("set permissions of", path, e))?;
    let mtime = system_time(node.mtime_ns);
    f.set_times(
        std::fs::FileTimes::new()
            .set_modified(mtime)
            .set_accessed(mtime),
    )
    .map_err(|e| Error::io("set times of", path, e))
}

fn apply_dir_metadata(path: &Path, node: &Node) -> Result<()> {
    chown_if_permitted(
        std::os::unix::fs::chown(path, Some(node.uid), Some(node.gid)),
        path,
    )?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(node.mode))
        .map_err(|e| Error::io("set permissions of", path, e))?;
    let mtime = filetime::FileTime::from_unix_time(
        node.mtime_ns.div_euclid(1_000_000_000),
        node.mtime_ns.rem_euclid(1_000_000_000) as u32,
    );
    filetime::set_file_times(path, mtime, mtime).map_err(|e| Error::io("set times of", path, e))
}

fn apply_symlink_metadata(path: &Path, node: &Node) -> Result<()> {
    chown_if_permitted(
        std::os::unix::fs::lchown(path, Some(node.uid), Some(node.gid)),
        path,
    )?;
    let mtime = filetime::FileTime::from_unix_time(
        node.mtime_ns.div_euclid(1_000_000_000),
        node.mtime_ns.rem_euclid(1_000_000_000) as u32,
    );
    filetime::set_symlink_file_times(path, mtime, mtime)
        .map_err(|e| Error::io("set times of", path, e))
}

/// Ownership is restored where the OS permits (as root); otherwise the
/// restoring user keeps ownership, as every backup tool does.
fn chown_if_permitted(result: std::io::Result<()>, path: &Path) -> Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
        Err(e) => Err(Error::io("set owner of", path, e)),
    }
}

fn system_time(ns: i64) -> std::time::SystemTime {
    let base = std::time::UNIX_EPOCH;
    if ns >= 0 {
        base + std::time::Duration::from_nanos(ns as u64)
    } else {
        base - std::time::Duration::from_nanos(ns.unsigned_abs())
    }
}
