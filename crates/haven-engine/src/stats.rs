//! Repository statistics: what is stored and how well it deduplicates.

use serde::Serialize;

use crate::error::Result;
use crate::format::BlobType;
use crate::repo::Repository;

/// Space and object counts of a repository.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RepoStats {
    /// Snapshots.
    pub snapshots: usize,
    /// Pack files (indexed).
    pub packs: usize,
    /// Bytes in pack files.
    pub pack_bytes: u64,
    /// Distinct data blobs.
    pub data_blobs: usize,
    /// Distinct tree blobs.
    pub tree_blobs: usize,
    /// Plaintext bytes of the distinct data blobs (after dedup, before compression).
    pub unique_bytes: u64,
    /// Stored bytes of those blobs (after compression and encryption).
    pub stored_bytes: u64,
    /// Sum of the file sizes of every snapshot (what restoring them all would write).
    pub snapshot_bytes: u64,
    /// `snapshot_bytes / unique_bytes`.
    pub dedup_ratio: f64,
    /// `unique_bytes / stored_bytes`.
    pub compression_ratio: f64,
    /// Packs that no index lists (from interrupted backups).
    pub unindexed_packs: usize,
}

impl Repository {
    /// Bytes of the indexed pack files: the storage the repository's data
    /// uses (read from the index alone, so cheap enough to measure after
    /// every job: the capacity evidence).
    pub fn pack_bytes(&self) -> Result<u64> {
        let (index, _) = self.load_index(false)?;
        Ok(index.packs().iter().map(|p| p.size).sum())
    }

    /// Compute statistics.
    pub fn stats(&self) -> Result<RepoStats> {
        let (index, load) = self.load_index(true)?;
        let mut stats = RepoStats {
            packs: index.packs().len(),
            pack_bytes: index.packs().iter().map(|p| p.size).sum(),
            unindexed_packs: load.unindexed_packs.len(),
            ..RepoStats::default()
        };
        for (_, loc) in index.blobs() {
            match loc.blob_type {
                BlobType::Data => {
                    stats.data_blobs += 1;
                    stats.unique_bytes += u64::from(loc.raw_length);
                    stats.stored_bytes += u64::from(loc.length);
                }
                BlobType::Tree => stats.tree_blobs += 1,
            }
        }
        for (_, snapshot) in self.snapshots()? {
            stats.snapshots += 1;
            stats.snapshot_bytes += snapshot.summary.bytes_total;
        }
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        stats.dedup_ratio = ratio(stats.snapshot_bytes, stats.unique_bytes);
        stats.compression_ratio = ratio(stats.unique_bytes, stats.stored_bytes);
        Ok(stats)
    }
}
