//! The in-memory index: which pack holds each blob.

use std::collections::HashMap;

use crate::format::{BlobType, IndexFile, IndexedPack, PackedBlob};
use crate::id::Id;

/// Where one blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    /// Position of the pack in [`Index::packs`].
    pub pack: u32,
    /// Data or tree.
    pub blob_type: BlobType,
    /// Envelope offset in the pack.
    pub offset: u32,
    /// Envelope length.
    pub length: u32,
    /// Plaintext length.
    pub raw_length: u32,
}

/// A pack known to the index.
#[derive(Clone, Debug)]
pub struct PackInfo {
    /// Pack id.
    pub id: Id,
    /// Pack file size.
    pub size: u64,
}

/// All blobs of a repository, merged from its index files.
#[derive(Default, Debug)]
pub struct Index {
    packs: Vec<PackInfo>,
    pack_positions: HashMap<Id, u32>,
    blobs: HashMap<Id, BlobLocation>,
}

impl Index {
    /// Add a pack and its blobs. A blob stored in several packs (two backups
    /// racing) keeps its first location; either copy is valid.
    pub fn add_pack(&mut self, id: Id, size: u64, blobs: &[PackedBlob]) {
        if self.pack_positions.contains_key(&id) {
            return;
        }
        let pack = u32::try_from(self.packs.len()).unwrap_or(u32::MAX);
        self.packs.push(PackInfo { id, size });
        self.pack_positions.insert(id, pack);
        for b in blobs {
            self.blobs.entry(b.id).or_insert(BlobLocation {
                pack,
                blob_type: b.blob_type,
                offset: b.offset,
                length: b.length,
                raw_length: b.raw_length,
            });
        }
    }

    /// Location of a blob.
    pub fn get(&self, id: &Id) -> Option<BlobLocation> {
        self.blobs.get(id).copied()
    }

    /// Is the blob stored?
    pub fn contains(&self, id: &Id) -> bool {
        self.blobs.contains_key(id)
    }

    /// Pack by position.
    pub fn pack(&self, position: u32) -> &PackInfo {
        &self.packs[position as usize]
    }

    /// All packs.
    pub fn packs(&self) -> &[PackInfo] {
        &self.packs
    }

    /// All blobs with their locations.
    pub fn blobs(&self) -> impl Iterator<Item = (&Id, &BlobLocation)> {
        self.blobs.iter()
    }

    /// Number of distinct blobs.
    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }
}

/// Index entries gathered while writing, to be saved as an index file.
#[derive(Default)]
pub struct PendingIndex {
    packs: Vec<IndexedPack>,
}

impl PendingIndex {
    /// Record a stored pack.
    pub fn push(&mut self, pack: IndexedPack) {
        self.packs.push(pack);
    }

    /// Number of packs recorded.
    pub fn len(&self) -> usize {
        self.packs.len()
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.packs.is_empty()
    }

    /// Take the recorded packs as an index file.
    pub fn take(&mut self) -> IndexFile {
        IndexFile {
            version: crate::format::FORMAT_VERSION,
            packs: std::mem::take(&mut self.packs),
            supersedes: Vec::new(),
        }
    }
}
