//! What prune leaves for writers to see, and what writers check before
//! their snapshot becomes visible.
//!
//! Backups take no lock, so a backup running across a prune relies on
//! packs that no snapshot referenced when prune looked. Three things keep
//! such a backup from saving a snapshot whose data is gone:
//!
//! - **Marks** (`marks/`): a backup does not deduplicate against packs
//!   marked when it starts, and refuses to save when a mark made while it
//!   ran is (nearly) due.
//! - **Sweep records** (`sweeps/`): a sweep writes, before it re-reads the
//!   snapshots and long before it deletes, which packs it may delete. A
//!   backup compares the records made while it ran with the packs its data
//!   relies on, before saving its snapshot and again after: a record that
//!   appears after its snapshot was saved belongs to a sweep whose re-read
//!   sees that snapshot and keeps its packs; one that appears before is
//!   seen by the check after saving, and the snapshot is taken back.
//! - **Presence**: before saving, every pack the data relies on must
//!   still be on storage, whatever removed it.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};

use super::{MARK_DIR, PRUNE_RACE_MARGIN};
use crate::crypto::ObjectKind;
use crate::error::{Error, Result};
use crate::format::{FORMAT_VERSION, PruneMark, Snapshot, SweepRecord};
use crate::id::Id;
use crate::progress::{Progress, WritePhase};
use crate::repo::{Repository, SNAPSHOT_DIR, list_ids};

/// Directory of sweep records.
pub const SWEEP_DIR: &str = "sweeps";
/// Sweep records are kept this long (then removed by prune): longer than
/// any backup runs. A backup running longer still is protected by the
/// presence check.
pub const SWEEP_RECORD_RETENTION: SignedDuration = SignedDuration::from_hours(30 * 24);

/// What a writer saw of prune's work when it started. Sweep records are
/// listed before marks, and both before the index is read: a record the
/// writer takes for old was written before it read the marks, so the
/// marks that record sweeps were among those whose packs it excludes (a
/// sweep writes its record after its marks exist, and deletes them last).
#[derive(Debug, Default)]
pub(crate) struct PruneWatch {
    /// Mark files present (readable or not).
    pub marks: HashSet<Id>,
    /// Sweep records present.
    pub sweeps: HashSet<Id>,
}

impl Repository {
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
        crate::format::rules::decode_mark(&plain)
            .map_err(|e| Error::corrupt(format!("prune mark {}", id.short()), e))
    }

    /// The sweep records present.
    pub(crate) fn sweep_record_ids(&self) -> Result<HashSet<Id>> {
        Ok(list_ids(&self.backend, SWEEP_DIR)?.into_iter().collect())
    }

    pub(crate) fn load_sweep_record(&self, id: &Id) -> Result<SweepRecord> {
        let damaged = |e: String| Error::corrupt(format!("sweep record {}", id.short()), e);
        let bytes = self.read_verified(SWEEP_DIR, id, ObjectKind::SweepRecord)?;
        let plain = self
            .aead
            .open(ObjectKind::SweepRecord, &bytes, None)
            .map_err(|e| damaged(e.to_string()))?;
        crate::format::rules::decode_sweep_record(&plain).map_err(damaged)
    }

    /// Record that a sweep may delete `packs` (written before it re-reads
    /// the snapshots; see the module docs).
    pub(super) fn save_sweep_record(
        &self,
        marks: Vec<Id>,
        packs: Vec<Id>,
        now: Timestamp,
    ) -> Result<Id> {
        let record = SweepRecord {
            version: FORMAT_VERSION,
            created: now,
            marks,
            packs,
            hostname: crate::host::hostname(),
        };
        let json = serde_json::to_vec(&record)
            .map_err(|e| Error::InvalidArgument(format!("serialisation failed: {e}")))?;
        self.save_file(SWEEP_DIR, ObjectKind::SweepRecord, &json)
    }

    /// Remove sweep records older than [`SWEEP_RECORD_RETENTION`].
    pub(super) fn expire_sweep_records(&self, now: Timestamp) -> Result<u64> {
        let mut removed = 0;
        for id in self.sweep_record_ids()? {
            let expired = match self.load_sweep_record(&id) {
                Ok(record) => record.created + SWEEP_RECORD_RETENTION < now,
                // Unreadable: it protects no one (writers cannot read it
                // either, and treat it as a conflict only while it is new).
                Err(e) if e.is_integrity() => true,
                Err(e) if e.is_not_found() => false,
                Err(e) => return Err(e),
            };
            if expired {
                self.backend.delete(&format!("{SWEEP_DIR}/{id}"))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// What a writer records of prune's work when it starts, and the
    /// readable marks (whose packs it must not rely on).
    pub(crate) fn watch_prunes(&self) -> Result<(PruneWatch, Vec<(Id, PruneMark)>)> {
        let sweeps = self.sweep_record_ids()?;
        let MarkFiles { ids, marks } = self.read_marks(false)?;
        Ok((PruneWatch { marks: ids, sweeps }, marks))
    }

    /// Save a writer's snapshot, unless a prune may have deleted data it
    /// relies on (`relied_on`: every pack it wrote or refers to) since the
    /// writer started; if a sweep that started before the snapshot was
    /// saved condemns such data, the snapshot is removed again. Either way
    /// the writer fails, and what it stored is reused by its next run.
    pub(crate) fn commit_snapshot(
        &self,
        watch: &PruneWatch,
        relied_on: &[Id],
        snapshot: &Snapshot,
        progress: &dyn Progress,
    ) -> Result<Id> {
        self.check_prune_race(&watch.marks, Timestamp::now())?;
        self.check_sweeps(watch, relied_on)?;
        self.check_packs_present(relied_on)?;
        progress.phase(WritePhase::Checked);
        let id = self.save_snapshot(snapshot)?;
        progress.phase(WritePhase::SnapshotSaved);
        if let Err(race) = self.check_sweeps(watch, relied_on) {
            self.backend
                .delete(&format!("{SNAPSHOT_DIR}/{id}"))
                .map_err(|e| {
                    Error::InvalidArgument(format!(
                        "{race}; removing the snapshot {id} again failed too ({e}): remove it with `haven forget {}`",
                        id.short()
                    ))
                })?;
            return Err(race);
        }
        Ok(id)
    }

    /// Fails when a sweep record made since the writer started names a
    /// pack its data relies on.
    fn check_sweeps(&self, watch: &PruneWatch, relied_on: &[Id]) -> Result<()> {
        let new: Vec<Id> = self
            .sweep_record_ids()?
            .into_iter()
            .filter(|id| !watch.sweeps.contains(id))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let relied: HashSet<&Id> = relied_on.iter().collect();
        for id in new {
            let condemned = match self.load_sweep_record(&id) {
                Ok(record) => record.packs.iter().filter(|p| relied.contains(p)).count(),
                // Expired and removed meanwhile: older than any backup.
                Err(e) if e.is_not_found() => 0,
                // Unreadable: assume the worst.
                Err(e) if e.is_integrity() => relied.len(),
                Err(e) => return Err(e),
            };
            if condemned > 0 {
                return Err(Error::PruneSwept { packs: condemned });
            }
        }
        Ok(())
    }

    /// Fails when a pack the writer's data relies on is gone.
    fn check_packs_present(&self, relied_on: &[Id]) -> Result<()> {
        if relied_on.is_empty() {
            return Ok(());
        }
        let present: HashSet<Id> = self.list_packs()?.into_iter().map(|(id, _)| id).collect();
        let missing = relied_on.iter().filter(|p| !present.contains(p)).count();
        if missing > 0 {
            return Err(Error::PruneSwept { packs: missing });
        }
        Ok(())
    }

    /// Fails when a prune mark that was not there when the writer started
    /// (`seen`) is due, or nearly: the writer may rely on packs that mark
    /// condemns, and a sweep may delete them at any moment.
    pub fn check_prune_race(&self, seen: &HashSet<Id>, now: Timestamp) -> Result<()> {
        for id in list_ids(&self.backend, MARK_DIR)? {
            if seen.contains(&id) {
                continue;
            }
            let mark = match self.load_mark(&id) {
                Ok(mark) => mark,
                // Swept meanwhile: its sweep left a record, checked next.
                Err(e) if e.is_not_found() => continue,
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
}

/// The mark files of a repository at one moment.
pub(crate) struct MarkFiles {
    /// Ids of every mark file, readable or not.
    pub ids: HashSet<Id>,
    /// The readable marks, oldest first.
    pub marks: Vec<(Id, PruneMark)>,
}
