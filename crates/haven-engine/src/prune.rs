//! Reclaiming space: a two-phase, lock-free prune.
//!
//! Backups never take a lock, so prune cannot know whether a backup is
//! running and relying on data no snapshot references yet. It therefore
//! works in two phases, possibly days apart:
//!
//! 1. **Mark.** Find the packs no snapshot needs (and the partly used ones
//!    worth repacking, whose needed blobs are first copied to new packs),
//!    and write a *prune mark* (`marks/<id>`) naming them with a
//!    `delete_after` time (now + grace period). Nothing is deleted. From
//!    then on, backups do not deduplicate against marked packs.
//! 2. **Sweep.** A later prune, once `delete_after` has passed, reads every
//!    snapshot again, including those written since the mark. A marked
//!    pack that a snapshot now needs (a backup that was in flight at mark
//!    time deduplicated against it, or wrote it) is kept; the others are
//!    deleted, after index files listing them are replaced.
//!
//! A backup that started before a mark and is still running when the
//! mark's `delete_after` approaches refuses to save its snapshot (see
//! [`Repository::check_prune_race`]); so the grace period only has to be
//! longer than the longest backup. Every step writes new files before
//! deleting old ones, so a prune killed at any point leaves a consistent
//! repository.
//!
//! Retention locks and legal holds need no special case here: they keep
//! their snapshots from being forgotten, and prune keeps everything any
//! existing snapshot needs.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::backup::Saver;
use crate::crypto::ObjectKind;
use crate::error::{Error, Result};
use crate::format::{
    FORMAT_VERSION, IndexFile, IndexedPack, MarkReason, MarkedPack, PackedBlob, PruneLock,
    PruneMark, Snapshot,
};
use crate::id::Id;
use crate::index::{BlobLocation, Index};
use crate::progress::Progress;
use crate::repo::{INDEX_DIR, IndexFiles, Repository, list_ids, pack_path};

/// Directory of prune marks.
pub const MARK_DIR: &str = "marks";
/// The prune lock file.
pub const PRUNE_LOCK: &str = "prune.lock";
/// The default grace period between marking and deleting.
pub const DEFAULT_GRACE: SignedDuration = SignedDuration::from_hours(24);
/// A backup refuses to save its snapshot when a mark created while it ran
/// becomes due within this margin (clock skew between hosts, the time to
/// write the snapshot file).
pub const PRUNE_RACE_MARGIN: SignedDuration = SignedDuration::from_mins(10);

/// How to prune.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// The current time (a parameter so tests can simulate days).
    pub now: Timestamp,
    /// Time between marking packs and deleting them. It must be longer
    /// than the longest backup; zero deletes at once and is only safe
    /// when no backup runs.
    pub grace: SignedDuration,
    /// Tolerated unused space in partly used packs, as a percentage of
    /// the used space; packs are repacked until it is reached.
    pub max_unused_percent: f64,
    /// Plan and report only.
    pub dry_run: bool,
    /// Remove a prune lock left behind, even one this host cannot prove
    /// stale.
    pub break_lock: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            now: Timestamp::now(),
            grace: DEFAULT_GRACE,
            max_unused_percent: 5.0,
            dry_run: false,
            break_lock: false,
        }
    }
}

/// Packs and their total size.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Space {
    /// Number of pack files.
    pub packs: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

impl Space {
    fn add(&mut self, bytes: u64) {
        self.packs += 1;
        self.bytes += bytes;
    }
}

/// What the mark phase found and marked.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MarkSummary {
    /// The new mark's id (none on a dry run or when nothing was marked).
    pub mark: Option<String>,
    /// Packs no snapshot needs.
    pub unused: Space,
    /// Partly used packs whose needed blobs were copied to new packs.
    pub repacked: Space,
    /// Blobs copied out of repacked packs.
    pub blobs_repacked: u64,
    /// Bytes of new packs written by repacking.
    pub repack_bytes_written: u64,
    /// When the marked packs may be deleted.
    pub delete_after: Option<Timestamp>,
}

/// What one sweep of a due mark did.
#[derive(Clone, Debug, Serialize)]
pub struct SweepSummary {
    /// The mark's id.
    pub mark: String,
    /// When it was created.
    pub created: Timestamp,
    /// Packs deleted.
    pub deleted: Space,
    /// Marked packs kept because a snapshot written since needs them.
    pub kept: Space,
}

/// A mark whose grace period has not passed yet.
#[derive(Clone, Debug, Serialize)]
pub struct PendingMark {
    /// The mark's id.
    pub mark: String,
    /// When it was created.
    pub created: Timestamp,
    /// Its packs are deleted by a prune run after this time.
    pub delete_after: Timestamp,
    /// The marked packs.
    pub packs: Space,
}

/// The result of a prune run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    /// Nothing was written or deleted.
    pub dry_run: bool,
    /// Snapshots whose data was kept.
    pub snapshots: usize,
    /// Pack files before the run.
    pub before: Space,
    /// Pack files after the run (on a dry run: what they would be).
    pub after: Space,
    /// Bytes of blobs that snapshots need.
    pub used_bytes: u64,
    /// Bytes of blobs that no snapshot needs, in packs not yet marked.
    pub unused_bytes: u64,
    /// The mark phase.
    pub mark: MarkSummary,
    /// Marks swept in this run.
    pub swept: Vec<SweepSummary>,
    /// Marks still in their grace period.
    pub pending: Vec<PendingMark>,
    /// Index files replaced (listing deleted packs, or superseded earlier).
    pub index_files_replaced: u64,
}

/// Everything prune needs to know about the repository at one moment.
struct RepoView {
    index_files: IndexFiles,
    /// Packs on storage with their blobs (indexed or read from headers).
    packs: HashMap<Id, IndexedPack>,
    /// Pack ids in index order (first-listed location wins for a blob).
    order: Vec<Id>,
    snapshot_ids: BTreeSet<Id>,
    /// Blobs (data and trees) that some snapshot needs.
    used: HashSet<Id>,
    on_storage: Space,
}

impl Repository {
    /// Reclaim the space of data no snapshot needs (see the module docs).
    pub fn prune(&self, options: &PruneOptions, progress: &dyn Progress) -> Result<PruneReport> {
        if !(0.0..=100.0).contains(&options.max_unused_percent) {
            return Err(Error::InvalidArgument(format!(
                "--max-unused {}% is not between 0 and 100",
                options.max_unused_percent
            )));
        }
        if options.grace.is_negative() {
            return Err(Error::InvalidArgument(
                "the grace period must not be negative".into(),
            ));
        }
        let _lock = if options.dry_run {
            None
        } else {
            Some(self.take_prune_lock(options.break_lock)?)
        };
        let mut report = PruneReport {
            dry_run: options.dry_run,
            ..PruneReport::default()
        };
        let mut marks = self.prune_marks(!options.dry_run)?;
        progress.set_message("reading snapshots");
        let view = self.view(None, progress)?;
        report.before = view.on_storage;
        report.snapshots = view.snapshot_ids.len();

        // Phase 1: mark.
        let already_marked: HashSet<Id> = marks
            .iter()
            .flat_map(|(_, m)| m.packs.iter().map(|p| p.id))
            .collect();
        let plan = plan_marks(&view, &already_marked, options.max_unused_percent);
        report.used_bytes = plan.used_bytes;
        report.unused_bytes = plan.unused_bytes;
        let marked_packs: Vec<MarkedPack> = plan
            .unused
            .iter()
            .map(|id| (id, MarkReason::Unused))
            .chain(plan.repack.iter().map(|id| (id, MarkReason::Repacked)))
            .map(|(id, reason)| MarkedPack {
                id: *id,
                size: view.packs[id].size,
                reason,
            })
            .collect();
        let (unused, repacked): (Vec<MarkedPack>, Vec<MarkedPack>) = marked_packs
            .iter()
            .cloned()
            .partition(|p| p.reason == MarkReason::Unused);
        report.mark.unused = pack_space(&unused);
        report.mark.repacked = pack_space(&repacked);
        report.mark.blobs_repacked = plan.repack_blobs.values().map(|b| b.len() as u64).sum();
        if !marked_packs.is_empty() {
            report.mark.delete_after = Some(options.now + options.grace);
        }
        if options.dry_run {
            estimate(&mut report, &view, &plan, &marks, &marked_packs, options);
            return Ok(report);
        }

        if !plan.repack.is_empty() {
            progress.set_message("repacking partly used packs");
            let (blobs, written) = self.repack(&view, &plan, progress)?;
            report.mark.blobs_repacked = blobs;
            report.mark.repack_bytes_written = written;
        }
        if !marked_packs.is_empty() {
            let mark = PruneMark {
                version: FORMAT_VERSION,
                created: options.now,
                delete_after: options.now + options.grace,
                packs: marked_packs,
                hostname: crate::host::hostname(),
                username: crate::host::username(),
            };
            let json = serde_json::to_vec(&mark)
                .map_err(|e| Error::InvalidArgument(format!("serialisation failed: {e}")))?;
            let id = self.save_file(MARK_DIR, ObjectKind::PruneMark, &json)?;
            report.mark.mark = Some(id.to_hex());
            marks.push((id, mark));
        }

        // Phase 2: sweep the marks whose grace period has passed.
        let (due, not_due): (Vec<_>, Vec<_>) =
            marks.into_iter().partition(|(_, m)| is_due(m, options));
        report.pending = not_due.iter().map(|(id, m)| pending(id, m)).collect();
        // Nothing due and no index files left superseded by an interrupted
        // sweep: there is nothing to delete, so no second look is needed.
        if !due.is_empty() || !view.index_files.superseded.is_empty() {
            let reuse = (plan.repack.is_empty()).then_some(view);
            progress.set_message("re-reading snapshots before deleting");
            let view = self.view(reuse, progress)?;
            let (swept, replaced) = self.sweep(&view, &due, progress)?;
            report.swept = swept;
            report.index_files_replaced = replaced;
        }
        report.after = self.pack_space()?;
        Ok(report)
    }

    /// Delete the packs of `due` marks that no snapshot needs now.
    fn sweep(
        &self,
        view: &RepoView,
        due: &[(Id, PruneMark)],
        progress: &dyn Progress,
    ) -> Result<(Vec<SweepSummary>, u64)> {
        let condemned: HashSet<Id> = due
            .iter()
            .flat_map(|(_, m)| m.packs.iter().map(|p| p.id))
            .collect();
        // A blob some snapshot needs must survive somewhere: outside the
        // condemned packs, or else in a condemned pack that is then kept.
        let mut available: HashSet<Id> = view
            .packs
            .values()
            .filter(|p| !condemned.contains(&p.id))
            .flat_map(|p| p.blobs.iter().map(|b| b.id))
            .collect();
        let mut kept: HashSet<Id> = HashSet::new();
        for pack_id in view.order.iter().filter(|id| condemned.contains(id)) {
            let pack = &view.packs[pack_id];
            if pack
                .blobs
                .iter()
                .any(|b| view.used.contains(&b.id) && !available.contains(&b.id))
            {
                tracing::info!(pack = %pack_id.short(), "a marked pack is needed again; kept");
                kept.insert(*pack_id);
                available.extend(pack.blobs.iter().map(|b| b.id));
            }
        }
        let doomed: HashSet<Id> = condemned.difference(&kept).copied().collect();

        // New index first: one file listing what the affected files listed
        // minus the doomed packs, superseding them. Files superseded by an
        // earlier, interrupted sweep are deleted too.
        let mut replaced: Vec<Id> = view.index_files.superseded.clone();
        let mut remaining: Vec<IndexedPack> = Vec::new();
        let mut seen = HashSet::new();
        let mut rewritten = Vec::new();
        for (file_id, file) in &view.index_files.files {
            if file.packs.iter().any(|p| doomed.contains(&p.id)) {
                rewritten.push(*file_id);
                for pack in file.packs.iter().filter(|p| !doomed.contains(&p.id)) {
                    if seen.insert(pack.id) {
                        remaining.push(pack.clone());
                    }
                }
            }
        }
        if !rewritten.is_empty() {
            self.save_index(&IndexFile {
                version: FORMAT_VERSION,
                packs: remaining,
                supersedes: rewritten.clone(),
            })?;
            replaced.extend(rewritten);
        }
        progress.set_message("deleting packs");
        for id in &doomed {
            self.backend.delete(&pack_path(id))?;
            progress.add_items(1);
        }
        for id in &replaced {
            self.backend.delete(&format!("{INDEX_DIR}/{id}"))?;
        }
        let mut summaries = Vec::new();
        for (id, mark) in due {
            let mut summary = SweepSummary {
                mark: id.to_hex(),
                created: mark.created,
                deleted: Space::default(),
                kept: Space::default(),
            };
            for pack in &mark.packs {
                if kept.contains(&pack.id) {
                    summary.kept.add(pack.size);
                } else if view.packs.contains_key(&pack.id) {
                    summary.deleted.add(pack.size);
                }
            }
            // Last: a prune killed before this sweeps the mark again.
            self.backend.delete(&format!("{MARK_DIR}/{id}"))?;
            summaries.push(summary);
        }
        Ok((summaries, replaced.len() as u64))
    }

    /// Copy the needed blobs of the packs to repack into new packs (with
    /// their own index file). Returns blobs copied and bytes written.
    fn repack(
        &self,
        view: &RepoView,
        plan: &MarkPlan,
        progress: &dyn Progress,
    ) -> Result<(u64, u64)> {
        let saver = Saver::start(
            self,
            Arc::new(Index::default()),
            Vec::new(),
            self.config.compression_level,
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )?;
        let handle = saver.handle();
        let mut copied = 0u64;
        let mut buffer = Vec::new();
        let total: u64 = plan.repack.iter().map(|id| view.packs[id].size).sum();
        progress.set_total(total);
        let result = (|| -> Result<()> {
            for pack_id in &plan.repack {
                let pack = &view.packs[pack_id];
                self.backend
                    .read_range_into(&pack_path(pack_id), 0, pack.size, &mut buffer)?;
                for blob in &plan.repack_blobs[pack_id] {
                    let start = blob.offset as usize;
                    let end = start + blob.length as usize;
                    let envelope = buffer.get(start..end).ok_or_else(|| {
                        Error::corrupt(
                            format!("pack {}", pack_id.short()),
                            "a blob lies beyond the end of the pack",
                        )
                    })?;
                    let location = BlobLocation {
                        pack: 0,
                        blob_type: blob.blob_type,
                        offset: blob.offset,
                        length: blob.length,
                        raw_length: blob.raw_length,
                    };
                    // Decrypting verifies the blob: damage is never copied
                    // into a fresh pack (prune stops instead).
                    let plain = self.open_blob(&blob.id, &location, envelope)?;
                    if handle.claim(blob.id) {
                        handle.store(blob.id, blob.blob_type, plain)?;
                        copied += 1;
                    }
                }
                progress.add_bytes(pack.size);
                progress.add_items(1);
            }
            Ok(())
        })();
        drop(handle);
        let stored = saver.finish();
        result?;
        Ok((copied, stored?.bytes_added))
    }

    /// Pack files on storage.
    fn pack_space(&self) -> Result<Space> {
        let mut space = Space::default();
        for (_, size) in self.list_packs()? {
            space.add(size);
        }
        Ok(space)
    }

    /// Read the index, pack list and snapshots, and find the blobs in use.
    /// `previous` is reused for the in-use set when the snapshots have not
    /// changed since (snapshots are immutable, so the same ids mean the
    /// same trees).
    fn view(&self, previous: Option<RepoView>, progress: &dyn Progress) -> Result<RepoView> {
        let index_files = self.load_index_files(true)?;
        if let Some((id, e)) = index_files.report.unreadable_packs.first() {
            tracing::warn!(pack = %id.short(), error = %e, "pack header unreadable; pack left alone");
        }
        let on_disk: HashMap<Id, u64> = self.list_packs()?.into_iter().collect();
        let mut packs = HashMap::new();
        let mut order = Vec::new();
        let listed = index_files
            .files
            .iter()
            .flat_map(|(_, f)| f.packs.iter())
            .chain(index_files.report.unindexed_packs.iter());
        for pack in listed {
            if on_disk.contains_key(&pack.id) && !packs.contains_key(&pack.id) {
                order.push(pack.id);
                packs.insert(pack.id, pack.clone());
            }
        }
        let mut on_storage = Space::default();
        for size in on_disk.values() {
            on_storage.add(*size);
        }
        let snapshot_ids: BTreeSet<Id> = self.snapshot_ids()?.into_iter().collect();
        let used = match previous {
            Some(p) if p.snapshot_ids == snapshot_ids => p.used,
            _ => {
                let mut index = Index::default();
                for id in &order {
                    let p = &packs[id];
                    index.add_pack(p.id, p.size, &p.blobs);
                }
                let mut snapshots = Vec::new();
                for id in &snapshot_ids {
                    snapshots.push((*id, self.load_snapshot(id)?));
                }
                self.used_blobs(&index, &snapshots, progress)?
            }
        };
        Ok(RepoView {
            index_files,
            packs,
            order,
            snapshot_ids,
            used,
            on_storage,
        })
    }

    /// Every blob the snapshots reference: their trees and file contents.
    /// A tree that cannot be read stops prune: without it, prune cannot
    /// know what is in use.
    pub(crate) fn used_blobs(
        &self,
        index: &Index,
        snapshots: &[(Id, Snapshot)],
        progress: &dyn Progress,
    ) -> Result<HashSet<Id>> {
        let mut used = HashSet::new();
        for (snapshot_id, snapshot) in snapshots {
            let mut stack = vec![snapshot.tree];
            while let Some(tree_id) = stack.pop() {
                if !used.insert(tree_id) {
                    continue;
                }
                let tree = self.read_tree(index, &tree_id).map_err(|e| {
                    Error::corrupt(
                        format!("snapshot {}", snapshot_id.short()),
                        format!(
                            "tree {} is unreadable ({e}); prune cannot tell which data is in use, so it stops. Run `haven repo check` to see the damage",
                            tree_id.short()
                        ),
                    )
                })?;
                for node in tree.nodes {
                    used.extend(node.content);
                    if let Some(sub) = node.subtree {
                        stack.push(sub);
                    }
                }
            }
            progress.add_items(1);
        }
        Ok(used)
    }

    /// All prune marks. An unreadable mark is removed when `repair` is set
    /// (removing a mark only unmarks packs; a later prune marks again
    /// what is still unused), otherwise skipped.
    pub fn prune_marks(&self, repair: bool) -> Result<Vec<(Id, PruneMark)>> {
        Ok(self.read_marks(repair)?.marks)
    }

    /// Every mark file present and the readable marks.
    pub(crate) fn read_marks(&self, repair: bool) -> Result<MarkFiles> {
        let ids = list_ids(&self.backend, MARK_DIR)?;
        let mut marks = Vec::new();
        for id in &ids {
            match self.load_mark(id) {
                Ok(mark) => marks.push((*id, mark)),
                Err(e) if e.is_integrity() => {
                    tracing::warn!(mark = %id.short(), error = %e, "unreadable prune mark ignored");
                    if repair {
                        self.backend.delete(&format!("{MARK_DIR}/{id}"))?;
                    }
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        marks.sort_by_key(|(_, m)| m.created);
        Ok(MarkFiles {
            ids: ids.into_iter().collect(),
            marks,
        })
    }

    fn load_mark(&self, id: &Id) -> Result<PruneMark> {
        let bytes = self.read_verified(MARK_DIR, id, ObjectKind::PruneMark)?;
        let plain = self
            .aead
            .open(ObjectKind::PruneMark, &bytes, None)
            .map_err(|e| Error::corrupt(format!("prune mark {}", id.short()), e.to_string()))?;
        serde_json::from_slice(&plain)
            .map_err(|e| Error::corrupt(format!("prune mark {}", id.short()), e.to_string()))
    }

    /// Called by a backup just before it saves its snapshot: fails when a
    /// prune mark that was not there when the backup started (`seen`) is
    /// due, or nearly: the backup may have deduplicated against packs that
    /// mark condemns, and a sweep may delete them at any moment.
    pub fn check_prune_race(&self, seen: &HashSet<Id>, now: Timestamp) -> Result<()> {
        for id in list_ids(&self.backend, MARK_DIR)? {
            if seen.contains(&id) {
                continue;
            }
            let mark = match self.load_mark(&id) {
                Ok(mark) => mark,
                // Swept meanwhile: then its packs may be gone already.
                Err(e) if e.is_not_found() => {
                    return Err(Error::PruneRace { delete_after: now });
                }
                // No prune can sweep a mark it cannot read (it removes it
                // instead), so an unreadable mark endangers nothing.
                Err(e) if e.is_integrity() => {
                    tracing::warn!(mark = %id.short(), error = %e, "unreadable prune mark ignored");
                    continue;
                }
                Err(e) => return Err(e),
            };
            if now + PRUNE_RACE_MARGIN >= mark.delete_after {
                return Err(Error::PruneRace {
                    delete_after: mark.delete_after,
                });
            }
        }
        Ok(())
    }

    /// Take the prune lock. A lock left by a prune of this host whose
    /// process is gone is taken over; any other needs `break_lock`.
    fn take_prune_lock(&self, break_lock: bool) -> Result<PruneLockGuard> {
        let lock = PruneLock {
            version: FORMAT_VERSION,
            created: Timestamp::now(),
            hostname: crate::host::hostname(),
            pid: std::process::id(),
        };
        let json = serde_json::to_vec(&lock)
            .map_err(|e| Error::InvalidArgument(format!("serialisation failed: {e}")))?;
        for _ in 0..2 {
            let sealed = self.aead.seal_raw(ObjectKind::PruneLock, &json);
            match self.backend.create_exclusive(PRUNE_LOCK, sealed) {
                Ok(()) => {
                    return Ok(PruneLockGuard { repo: self.clone() });
                }
                Err(Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            let holder = self.read_prune_lock();
            let stale = match &holder {
                Ok(h) => h.hostname == lock.hostname && !crate::host::process_alive(h.pid),
                Err(_) => false,
            };
            if !(stale || break_lock) {
                return Err(match holder {
                    Ok(h) => Error::PruneLocked {
                        holder: format!("{} (pid {}) since {}", h.hostname, h.pid, h.created),
                    },
                    Err(e) => Error::PruneLocked {
                        holder: format!("an unreadable lock ({e})"),
                    },
                });
            }
            tracing::warn!("removing a prune lock left by a process that is gone");
            self.backend.delete(PRUNE_LOCK)?;
        }
        Err(Error::PruneLocked {
            holder: "another prune that took the lock meanwhile".into(),
        })
    }

    fn read_prune_lock(&self) -> Result<PruneLock> {
        let bytes = self
            .backend
            .read_at_most(PRUNE_LOCK, ObjectKind::PruneLock.max_envelope())?;
        let plain = self.aead.open(ObjectKind::PruneLock, &bytes, None)?;
        serde_json::from_slice(&plain).map_err(|e| Error::corrupt("prune lock", e.to_string()))
    }
}

/// The mark files of a repository at one moment.
pub(crate) struct MarkFiles {
    /// Ids of every mark file, readable or not.
    pub ids: HashSet<Id>,
    /// The readable marks, oldest first.
    pub marks: Vec<(Id, PruneMark)>,
}

/// Removes the prune lock when prune ends (a killed prune leaves it; the
/// next prune on the same host sees the process is gone and takes over).
struct PruneLockGuard {
    repo: Repository,
}

impl Drop for PruneLockGuard {
    fn drop(&mut self) {
        if let Err(e) = self.repo.backend.delete(PRUNE_LOCK) {
            tracing::warn!(error = %e, "could not remove the prune lock");
        }
    }
}

/// What a run would do, for `--dry-run`: marks due now count as deleted
/// (the re-check that may keep some of their packs is not run), and with a
/// zero grace period so do the packs this run would mark.
fn estimate(
    report: &mut PruneReport,
    view: &RepoView,
    plan: &MarkPlan,
    marks: &[(Id, PruneMark)],
    marked_packs: &[MarkedPack],
    options: &PruneOptions,
) {
    let repack_estimate: u64 = plan
        .repack_blobs
        .values()
        .flatten()
        .map(|b| u64::from(b.length))
        .sum();
    report.mark.repack_bytes_written = repack_estimate;
    let mut after = view.on_storage;
    let mut remove = |space: Space| {
        after.packs -= space.packs.min(after.packs);
        after.bytes -= space.bytes.min(after.bytes);
    };
    for (id, mark) in marks {
        if is_due(mark, options) {
            let space = pack_space(&mark.packs);
            remove(space);
            report.swept.push(SweepSummary {
                mark: id.to_hex(),
                created: mark.created,
                deleted: space,
                kept: Space::default(),
            });
        } else {
            report.pending.push(pending(id, mark));
        }
    }
    if options.grace.is_zero() {
        remove(pack_space(marked_packs));
    }
    after.bytes += repack_estimate;
    report.after = after;
}

/// A mark is swept once the grace period it was made with has passed, or
/// the grace period of this run, if shorter (`--grace 0s` after an
/// ordinary prune deletes what that prune marked).
fn is_due(mark: &PruneMark, options: &PruneOptions) -> bool {
    mark.delete_after <= options.now || mark.created + options.grace <= options.now
}

fn pending(id: &Id, mark: &PruneMark) -> PendingMark {
    PendingMark {
        mark: id.to_hex(),
        created: mark.created,
        delete_after: mark.delete_after,
        packs: pack_space(&mark.packs),
    }
}

fn pack_space(packs: &[MarkedPack]) -> Space {
    packs.iter().fold(Space::default(), |mut s, p| {
        s.add(p.size);
        s
    })
}

/// What the mark phase decided.
#[derive(Debug, Default)]
struct MarkPlan {
    /// Packs no snapshot needs.
    unused: Vec<Id>,
    /// Partly used packs to repack, most wasteful first.
    repack: Vec<Id>,
    /// The needed blobs to copy out of each repacked pack.
    repack_blobs: HashMap<Id, Vec<PackedBlob>>,
    used_bytes: u64,
    unused_bytes: u64,
}

/// Decide which packs to mark: pure, over a view of the repository.
///
/// Each needed blob is attributed to one pack holding it (the first in
/// index order that is not already marked); other copies count as unused.
/// Packs with nothing attributed are unused. Partly used packs are
/// repacked, most wasteful first, until the unused bytes left in them are
/// at most `max_unused_percent` of the used bytes.
fn plan_marks(view: &RepoView, already_marked: &HashSet<Id>, max_unused_percent: f64) -> MarkPlan {
    let live: Vec<&IndexedPack> = view
        .order
        .iter()
        .filter(|id| !already_marked.contains(id))
        .map(|id| &view.packs[id])
        .collect();
    let mut owner: HashMap<Id, Id> = HashMap::new();
    for pack in &live {
        for blob in &pack.blobs {
            if view.used.contains(&blob.id) {
                owner.entry(blob.id).or_insert(pack.id);
            }
        }
    }
    let mut plan = MarkPlan::default();
    let mut partly: Vec<(Id, u64, u64)> = Vec::new(); // (pack, used, unused)
    for pack in &live {
        let (mut used, mut unused) = (0u64, 0u64);
        for blob in &pack.blobs {
            if owner.get(&blob.id) == Some(&pack.id) {
                used += u64::from(blob.length);
            } else {
                unused += u64::from(blob.length);
            }
        }
        plan.used_bytes += used;
        plan.unused_bytes += unused;
        if used == 0 {
            plan.unused.push(pack.id);
        } else if unused > 0 {
            partly.push((pack.id, used, unused));
        }
    }
    let allowed = (plan.used_bytes as f64 * max_unused_percent / 100.0) as u64;
    let mut remaining: u64 = partly.iter().map(|(_, _, unused)| unused).sum();
    partly.sort_by(|a, b| {
        let ratio = |(_, used, unused): &(Id, u64, u64)| *unused as f64 / (*used + *unused) as f64;
        ratio(b).total_cmp(&ratio(a)).then(a.0.cmp(&b.0))
    });
    for (pack_id, _, unused) in partly {
        if remaining <= allowed {
            break;
        }
        remaining -= unused;
        let blobs = view.packs[&pack_id]
            .blobs
            .iter()
            .filter(|b| owner.get(&b.id) == Some(&pack_id))
            .cloned()
            .collect();
        plan.repack_blobs.insert(pack_id, blobs);
        plan.repack.push(pack_id);
    }
    plan
}
