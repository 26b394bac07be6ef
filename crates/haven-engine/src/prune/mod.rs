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

mod lock;
mod plan;
pub mod race;

use crate::crypto::ObjectKind;
use crate::error::{Error, Result};
use crate::format::{
    FORMAT_VERSION, IndexFile, IndexedPack, MarkReason, MarkedPack, PruneMark, Snapshot,
};
use crate::id::Id;
use crate::index::{BlobLocation, Index};
use crate::progress::Progress;
use crate::repo::{INDEX_DIR, IndexFiles, Repository, pack_path};
use crate::saver::Saver;
use lock::PruneLockGuard;
use plan::{
    MarkPlan, check_grace, estimate, is_due, marked_packs, pack_space, pending, plan_marks,
    still_needed,
};
pub(crate) use race::PruneWatch;

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
    /// No backup can be running (the caller knows): a grace period shorter
    /// than the longest backup is allowed, and on a full disk unused
    /// packs are deleted before anything is written.
    pub backups_stopped: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            now: Timestamp::now(),
            grace: DEFAULT_GRACE,
            max_unused_percent: 5.0,
            dry_run: false,
            break_lock: false,
            backups_stopped: false,
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
    /// Bytes of temporary files left by writers that are gone, removed.
    pub tmp_bytes_freed: u64,
    /// Sweep records past their retention, removed.
    pub sweep_records_expired: u64,
}

/// Everything prune needs to know about the repository at one moment.
struct RepoView {
    index_files: IndexFiles,
    /// Packs on storage with their blobs (indexed or read from headers).
    packs: HashMap<Id, IndexedPack>,
    /// Pack ids in index order (first-listed location wins for a blob).
    order: Vec<Id>,
    /// Packs that index files list but storage no longer holds.
    absent: HashSet<Id>,
    snapshot_ids: BTreeSet<Id>,
    /// Blobs (data and trees) that some snapshot needs.
    used: HashSet<Id>,
    /// The longest backup recorded, and the snapshot it made.
    longest_backup: Option<(SignedDuration, Id)>,
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
        let mut report = PruneReport {
            dry_run: options.dry_run,
            ..PruneReport::default()
        };
        let _lock = if options.dry_run {
            None
        } else {
            // Writers that are gone (killed, or stopped by a full disk)
            // may have left temporary files: they go first, which also
            // makes room for the lock on a full disk.
            report.tmp_bytes_freed = self.backend.clean_stale_tmp()?;
            Some(self.lock_for_prune(options, progress)?)
        };
        let mut marks = self.prune_marks(!options.dry_run)?;
        progress.set_message("reading snapshots");
        let view = self.view(None, progress)?;
        report.before = view.on_storage;
        report.snapshots = view.snapshot_ids.len();
        if !options.dry_run {
            check_grace(&view, options)?;
        }

        // Phase 1: mark.
        let already_marked: HashSet<Id> = marks
            .iter()
            .flat_map(|(_, m)| m.packs.iter().map(|p| p.id))
            .collect();
        let plan = plan_marks(&view, &already_marked, options.max_unused_percent);
        report.used_bytes = plan.used_bytes;
        report.unused_bytes = plan.unused_bytes;
        let marked_packs = marked_packs(&view, &plan);
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
            estimate(
                &mut report,
                &view,
                &plan,
                &marks,
                &marked_packs,
                options,
                self.config.pack_size,
            );
            return Ok(report);
        }

        if !plan.repack.is_empty() {
            progress.set_message("repacking partly used packs");
            let (blobs, written) = self.repack(&view, &plan, progress)?;
            report.mark.blobs_repacked = blobs;
            report.mark.repack_bytes_written = written;
        }
        if !marked_packs.is_empty() {
            let (id, mark) = self.save_mark(marked_packs, options)?;
            report.mark.mark = Some(id.to_hex());
            marks.push((id, mark));
        }

        // Phase 2: sweep the marks whose grace period has passed.
        let (due, not_due): (Vec<_>, Vec<_>) =
            marks.into_iter().partition(|(_, m)| is_due(m, options));
        report.pending = not_due.iter().map(|(id, m)| pending(id, m)).collect();
        // Nothing due, no index files left superseded by an interrupted
        // sweep and none listing packs that are gone: nothing to delete
        // or rewrite, so no second look is needed.
        if !due.is_empty() || !view.index_files.superseded.is_empty() || !view.absent.is_empty() {
            if !due.is_empty() {
                // Before the second look: a backup that saves its snapshot
                // after this record exists sees it (see `race`).
                let condemned = due
                    .iter()
                    .flat_map(|(_, m)| m.packs.iter().map(|p| p.id))
                    .collect();
                let marks = due.iter().map(|(id, _)| *id).collect();
                self.save_sweep_record(marks, condemned, options.now)?;
            }
            let reuse = (plan.repack.is_empty()).then_some(view);
            progress.set_message("re-reading snapshots before deleting");
            let view = self.view(reuse, progress)?;
            let (swept, replaced) = self.sweep(&view, &due, progress)?;
            report.swept = swept;
            report.index_files_replaced = replaced;
        }
        report.sweep_records_expired = self.expire_sweep_records(options.now)?;
        report.after = self.pack_space()?;
        Ok(report)
    }

    /// Take the prune lock. On a disk too full to write even the lock,
    /// when no backup can be running (the caller says so) and the grace
    /// period is zero, unused packs are deleted first: nobody can write
    /// to a full disk, so no other prune is half-way through anything.
    fn lock_for_prune(
        &self,
        options: &PruneOptions,
        progress: &dyn Progress,
    ) -> Result<PruneLockGuard> {
        match self.take_prune_lock(options.break_lock) {
            Err(e)
                if e.is_storage_full()
                    && options.backups_stopped
                    && options.grace.is_zero()
                    && !self.backend.exists(PRUNE_LOCK)? =>
            {
                tracing::warn!(
                    "the repository's disk is full: deleting unused packs before anything is written"
                );
                let view = self.view(None, progress)?;
                let plan = plan_marks(&view, &HashSet::new(), 100.0);
                for id in &plan.unused {
                    self.backend.delete(&pack_path(id))?;
                }
                // Index entries of the deleted packs are rewritten by the
                // sweep that follows (they list packs that are gone).
                self.take_prune_lock(options.break_lock)
            }
            other => other,
        }
    }

    fn save_mark(&self, packs: Vec<MarkedPack>, options: &PruneOptions) -> Result<(Id, PruneMark)> {
        let mark = PruneMark {
            version: FORMAT_VERSION,
            created: options.now,
            delete_after: options.now + options.grace,
            packs,
            hostname: crate::host::hostname(),
            username: crate::host::username(),
        };
        let json = serde_json::to_vec(&mark)
            .map_err(|e| Error::InvalidArgument(format!("serialisation failed: {e}")))?;
        let id = self.save_file(MARK_DIR, ObjectKind::PruneMark, &json)?;
        Ok((id, mark))
    }

    /// Delete the packs of `due` marks that no snapshot needs now, and
    /// drop index entries of packs that are gone.
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
        let kept = still_needed(view, &condemned);
        let doomed: HashSet<Id> = condemned.difference(&kept).copied().collect();
        let gone: HashSet<Id> = doomed.union(&view.absent).copied().collect();

        // New index first, then delete: a prune killed in between leaves
        // both index files (the old one superseded), never entries for
        // deleted packs. On a full disk the order is turned around (the
        // index cannot be written before space is freed).
        let rewrite = self.rewrite_index(&view.index_files.files, &gone);
        let mut replaced: Vec<Id> = view.index_files.superseded.clone();
        let rewritten = match rewrite {
            Err(e) if e.is_storage_full() => {
                tracing::warn!(
                    "the repository's disk is full: deleting packs before writing the index"
                );
                self.delete_packs(&doomed, progress)?;
                self.rewrite_index(&view.index_files.files, &gone)?
            }
            other => {
                let rewritten = other?;
                self.delete_packs(&doomed, progress)?;
                rewritten
            }
        };
        replaced.extend(rewritten);
        for id in &replaced {
            self.backend.delete(&format!("{INDEX_DIR}/{id}"))?;
        }
        // A writer may have indexed a doomed pack since the second look
        // (its snapshot is then refused): its entries go as well.
        let late = self.load_index_files(false)?;
        let known: HashSet<Id> = view.index_files.files.iter().map(|(id, _)| *id).collect();
        let late: Vec<(Id, IndexFile)> = late
            .files
            .into_iter()
            .filter(|(id, _)| !known.contains(id))
            .collect();
        let late_rewritten = self.rewrite_index(&late, &doomed)?;
        for id in &late_rewritten {
            self.backend.delete(&format!("{INDEX_DIR}/{id}"))?;
        }
        let summaries = self.finish_marks(view, due, &kept)?;
        Ok((summaries, (replaced.len() + late_rewritten.len()) as u64))
    }

    fn delete_packs(&self, doomed: &HashSet<Id>, progress: &dyn Progress) -> Result<()> {
        progress.set_message("deleting packs");
        for id in doomed {
            self.backend.delete(&pack_path(id))?;
            progress.add_items(1);
        }
        Ok(())
    }

    /// Write index files listing what `files` list minus the packs in
    /// `gone`, superseding those of `files` that list any of them. Returns
    /// the superseded files (to delete once the packs are gone).
    fn rewrite_index(&self, files: &[(Id, IndexFile)], gone: &HashSet<Id>) -> Result<Vec<Id>> {
        let mut remaining: Vec<IndexedPack> = Vec::new();
        let mut seen = HashSet::new();
        let mut rewritten = Vec::new();
        for (file_id, file) in files {
            if file.packs.iter().any(|p| gone.contains(&p.id)) {
                rewritten.push(*file_id);
                for pack in file.packs.iter().filter(|p| !gone.contains(&p.id)) {
                    if seen.insert(pack.id) {
                        remaining.push(pack.clone());
                    }
                }
            }
        }
        if !rewritten.is_empty() {
            self.save_index_files(remaining, rewritten.clone())?;
        }
        Ok(rewritten)
    }

    /// Report each swept mark and delete it (last: a prune killed before
    /// this sweeps the mark again).
    fn finish_marks(
        &self,
        view: &RepoView,
        due: &[(Id, PruneMark)],
        kept: &HashSet<Id>,
    ) -> Result<Vec<SweepSummary>> {
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
            self.backend.delete(&format!("{MARK_DIR}/{id}"))?;
            summaries.push(summary);
        }
        Ok(summaries)
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
        let mut absent = HashSet::new();
        let listed = index_files
            .files
            .iter()
            .flat_map(|(_, f)| f.packs.iter())
            .chain(index_files.report.unindexed_packs.iter());
        for pack in listed {
            if !on_disk.contains_key(&pack.id) {
                absent.insert(pack.id);
            } else if let std::collections::hash_map::Entry::Vacant(slot) = packs.entry(pack.id) {
                order.push(pack.id);
                slot.insert(pack.clone());
            }
        }
        let mut on_storage = Space::default();
        for size in on_disk.values() {
            on_storage.add(*size);
        }
        let snapshot_ids: BTreeSet<Id> = self.snapshot_ids()?.into_iter().collect();
        let (used, longest_backup) = match previous {
            Some(p) if p.snapshot_ids == snapshot_ids => (p.used, p.longest_backup),
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
                let longest = snapshots
                    .iter()
                    .max_by_key(|(_, s)| s.summary.duration_ms)
                    .map(|(id, s)| {
                        (
                            SignedDuration::from_millis(s.summary.duration_ms as i64),
                            *id,
                        )
                    });
                (self.used_blobs(&index, &snapshots, progress)?, longest)
            }
        };
        Ok(RepoView {
            index_files,
            packs,
            order,
            absent,
            snapshot_ids,
            used,
            longest_backup,
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
}
