//! Repairing a repository whose data was lost (a pack deleted by hand or
//! by an old prune, a disk error): the index is rebuilt from the packs
//! that are really there, and the snapshots whose data is gone are named
//! (and, when asked, removed), so that new backups store that data again
//! instead of deduplicating against what no longer exists.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::check::trees::TreeWalker;
use crate::error::{Error, Result};
use crate::format::IndexedPack;
use crate::id::Id;
use crate::progress::Progress;
use crate::repo::{INDEX_DIR, Repository, SNAPSHOT_DIR};

/// What to repair.
#[derive(Clone, Copy, Debug, Default)]
pub struct RepairOptions {
    /// Remove the snapshots whose data is gone (never locked or held ones).
    pub forget_damaged: bool,
}

/// A snapshot whose data is (partly) gone.
#[derive(Clone, Debug, Serialize)]
pub struct DamagedSnapshot {
    /// Snapshot id.
    pub id: String,
    /// Damaged paths in it (up to a hundred are listed per directory).
    pub paths: Vec<String>,
    /// What is wrong, for the first path.
    pub problem: String,
    /// Removed (with `forget_damaged`).
    pub forgotten: bool,
    /// Why it was not removed (a retention lock, a legal hold).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_because: Option<String>,
}

/// The result of a repair.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RepairReport {
    /// Packs on storage whose headers were read.
    pub packs: usize,
    /// Packs whose header is unreadable: their blobs are kept from the
    /// old index where it listed them, else lost.
    pub unreadable_packs: Vec<String>,
    /// Index files replaced by the rebuilt index.
    pub index_files_replaced: usize,
    /// Index entries dropped because their packs are gone.
    pub packs_gone: usize,
    /// Bytes of temporary files left by writers that are gone, removed.
    pub tmp_bytes_freed: u64,
    /// Snapshots whose data is gone, or whose files cannot be read.
    pub damaged: Vec<DamagedSnapshot>,
}

impl RepairReport {
    /// True when no damaged snapshot remains.
    pub fn is_clean(&self) -> bool {
        self.damaged.iter().all(|d| d.forgotten)
    }
}

impl Repository {
    /// Rebuild the index from the packs present and find the snapshots
    /// whose data is gone (see the module docs).
    pub fn repair(&self, options: RepairOptions, progress: &dyn Progress) -> Result<RepairReport> {
        let mut report = RepairReport {
            tmp_bytes_freed: self.backend.clean_stale_tmp()?,
            ..RepairReport::default()
        };
        // Prune rewrites the index too: one of them at a time.
        let _lock = self.take_prune_lock(false)?;
        self.rebuild_index(&mut report, progress)?;
        let damaged = self.find_damaged_snapshots()?;
        let holds = self.holds()?;
        let now = jiff::Timestamp::now();
        for mut snapshot in damaged {
            if options.forget_damaged {
                let id: Id = snapshot
                    .id
                    .parse()
                    .map_err(|_| Error::InvalidArgument("snapshot id".into()))?;
                let reasons = match self.load_snapshot(&id) {
                    Ok(s) => self.protection(&id, &s, &holds, now),
                    // An unreadable snapshot file protects nothing.
                    Err(_) => Vec::new(),
                };
                if reasons.is_empty() {
                    self.backend.delete(&format!("{SNAPSHOT_DIR}/{id}"))?;
                    snapshot.forgotten = true;
                } else {
                    snapshot.kept_because = Some(reasons.join("; "));
                }
            }
            report.damaged.push(snapshot);
        }
        Ok(report)
    }

    /// Write an index listing exactly the packs on storage (from their
    /// headers), superseding every index file, then remove those.
    fn rebuild_index(&self, report: &mut RepairReport, progress: &dyn Progress) -> Result<()> {
        let old = self.load_index_files(false)?;
        let listed: HashMap<Id, &IndexedPack> = old
            .files
            .iter()
            .flat_map(|(_, f)| f.packs.iter().map(|p| (p.id, p)))
            .collect();
        let on_storage = self.list_packs()?;
        progress.set_message("reading pack headers");
        progress.set_total(on_storage.len() as u64);
        let mut packs = Vec::new();
        for (id, size) in &on_storage {
            match self.read_pack_header(id, *size) {
                Ok(header) => packs.push(IndexedPack {
                    id: *id,
                    size: *size,
                    blobs: header.blobs,
                }),
                Err(e) if e.is_integrity() => {
                    report.unreadable_packs.push(format!("{id}: {e}"));
                    if let Some(known) = listed.get(id) {
                        packs.push((*known).clone());
                    }
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            progress.add_items(1);
        }
        report.packs = on_storage.len();
        let present: HashSet<Id> = on_storage.iter().map(|(id, _)| *id).collect();
        report.packs_gone = listed.keys().filter(|id| !present.contains(id)).count();
        let mut replaced: Vec<Id> = old.files.iter().map(|(id, _)| *id).collect();
        replaced.extend(old.superseded.iter().copied());
        replaced.extend(old.report.damaged_index_files.iter().map(|(id, _)| *id));
        self.save_index_files(packs, replaced.clone())?;
        for id in &replaced {
            self.backend.delete(&format!("{INDEX_DIR}/{id}"))?;
        }
        report.index_files_replaced = replaced.len();
        Ok(())
    }

    /// Every snapshot some of whose data is missing or unreadable.
    fn find_damaged_snapshots(&self) -> Result<Vec<DamagedSnapshot>> {
        let (index, _) = self.load_index(true)?;
        let list = self.snapshot_list()?;
        let mut damaged: Vec<DamagedSnapshot> = list
            .unreadable
            .iter()
            .map(|(id, e)| DamagedSnapshot {
                id: id.to_hex(),
                paths: vec!["/".into()],
                problem: format!("the snapshot file cannot be read: {e}"),
                forgotten: false,
                kept_because: None,
            })
            .collect();
        let found = crate::deep::on_deep_stack(|| {
            let (no_bad_blobs, nothing_gone) = (HashMap::new(), HashMap::new());
            let mut walker = TreeWalker::new(self, &index, &no_bad_blobs, &nothing_gone);
            let mut found = Vec::new();
            for (id, snapshot) in &list.snapshots {
                let damage = walker.snapshot(id, snapshot);
                if let Some((_, problem)) = damage.first() {
                    found.push(DamagedSnapshot {
                        id: id.to_hex(),
                        problem: problem.clone(),
                        paths: damage.into_iter().map(|(path, _)| path).collect(),
                        forgotten: false,
                        kept_because: None,
                    });
                }
            }
            Ok(found)
        })?;
        damaged.extend(found);
        Ok(damaged)
    }
}
