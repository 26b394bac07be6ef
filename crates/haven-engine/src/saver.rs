//! The write side of the pipeline: seal (compress + encrypt) → pack → store.
//!
//! ```text
//!  save() ──seal queue──▶ sealers (N threads) ──▶ packer ──▶ uploaders (2) ──▶ backend
//!                                                               └──▶ index files
//! ```
//! Every queue is bounded, so memory stays bounded whatever the data size:
//! roughly `2 × sealers × max chunk + (1 + uploaders) × pack size`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::crypto::{ObjectKind, Sealer};
use crate::error::{Error, Result};
use crate::format::{BlobType, IndexedPack, PackedBlob};
use crate::id::Id;
use crate::index::{Index, PendingIndex};
use crate::repo::{Repository, pack_path};

/// Packs per index file: an interrupted backup loses at most this many
/// packs' index entries (and those are recovered from pack headers anyway).
const PACKS_PER_INDEX_FILE: usize = 64;
const UPLOADERS: usize = 2;

struct SealJob {
    id: Id,
    blob_type: BlobType,
    data: Vec<u8>,
}

struct SealedBlob {
    id: Id,
    blob_type: BlobType,
    raw_length: u32,
    envelope: Vec<u8>,
}

struct FinishedPack {
    id: Id,
    bytes: Vec<u8>,
    blobs: Vec<PackedBlob>,
}

/// Counters of what the saver stored.
#[derive(Debug, Default)]
pub struct SaverStats {
    /// Bytes written to the backend (packs + index files).
    pub bytes_added: AtomicU64,
    /// New data blobs.
    pub data_blobs: AtomicU64,
    /// New tree blobs.
    pub tree_blobs: AtomicU64,
}

struct Shared {
    repo: Repository,
    known: Arc<Index>,
    /// Which of `known`'s packs new data refers to (one bit per pack):
    /// before its snapshot is saved, a backup checks that no prune has
    /// deleted any of them meanwhile.
    referenced: Vec<AtomicU64>,
    /// Packs this saver wrote.
    written: Mutex<Vec<Id>>,
    claimed: Mutex<HashSet<Id>>,
    pending_index: Mutex<PendingIndex>,
    failure: Mutex<Option<Error>>,
    failed: AtomicBool,
    stats: SaverStats,
}

impl Shared {
    /// Is `id` in the repository's index at start? If so, new data may
    /// refer to it, and its pack is recorded as relied on.
    fn refer(&self, id: &Id) -> bool {
        let Some(loc) = self.known.get(id) else {
            return false;
        };
        let (word, bit) = (loc.pack as usize / 64, loc.pack % 64);
        if let Some(bits) = self.referenced.get(word) {
            bits.fetch_or(1 << bit, Ordering::Relaxed);
        }
        true
    }

    fn fail(&self, error: Error) {
        let mut slot = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(error);
        }
        self.failed.store(true, Ordering::SeqCst);
    }
}

/// Stores blobs into packs; cheap to clone into worker threads.
#[derive(Clone)]
pub struct SaverHandle {
    shared: Arc<Shared>,
    seal_tx: Sender<SealJob>,
}

impl SaverHandle {
    /// Has any stage failed? Producers should stop early when it has.
    pub fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::Relaxed)
    }

    /// Keyed id of `data`.
    pub fn blob_id(&self, data: &[u8]) -> Id {
        self.shared.repo.master().blob_id(data)
    }

    /// Can new data refer to `id` without storing it? True when the
    /// repository had it at the start (outside packs marked by a prune)
    /// or this saver stored it.
    pub fn is_known(&self, id: &Id) -> bool {
        self.shared.refer(id)
            || self
                .shared
                .claimed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(id)
    }

    /// Claim `id` for storing: true when neither the repository nor this
    /// saver has it yet (the caller must then `store` it).
    pub fn claim(&self, id: Id) -> bool {
        if self.shared.refer(&id) {
            return false;
        }
        self.shared
            .claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id)
    }

    /// Queue a claimed blob for sealing and packing.
    pub fn store(&self, id: Id, blob_type: BlobType, data: Vec<u8>) -> Result<()> {
        self.seal_tx
            .send(SealJob {
                id,
                blob_type,
                data,
            })
            .map_err(|_| Error::Interrupted)
    }

    /// Store `data` unless the repository already has it; returns its id.
    pub fn save(&self, blob_type: BlobType, data: Vec<u8>) -> Result<Id> {
        let id = self.blob_id(&data);
        if self.claim(id) {
            self.store(id, blob_type, data)?;
        }
        Ok(id)
    }
}

/// Owns the pipeline threads; `finish` drains them and writes the index.
pub struct Saver {
    handle: SaverHandle,
    threads: Vec<JoinHandle<()>>,
}

impl Saver {
    /// Start the pipeline. `known` is the repository's index at start.
    /// `adopt` lists packs found in no index (left by an interrupted
    /// backup): this saver's index files will list them, so their data is
    /// reused rather than stored again.
    pub fn start(
        repo: &Repository,
        known: Arc<Index>,
        adopt: Vec<IndexedPack>,
        compression_level: i32,
        sealers: usize,
    ) -> Result<Self> {
        let mut pending = PendingIndex::default();
        for pack in adopt {
            pending.push(pack);
        }
        let referenced = (0..known.packs().len().div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect();
        let shared = Arc::new(Shared {
            repo: repo.clone(),
            known,
            referenced,
            written: Mutex::new(Vec::new()),
            claimed: Mutex::new(HashSet::new()),
            pending_index: Mutex::new(pending),
            failure: Mutex::new(None),
            failed: AtomicBool::new(false),
            stats: SaverStats::default(),
        });
        let sealers = sealers.max(1);
        let (seal_tx, seal_rx) = bounded::<SealJob>(sealers);
        let (pack_tx, pack_rx) = bounded::<SealedBlob>(sealers);
        // Rendezvous: a finished pack is handed straight to an idle uploader,
        // so at most `1 + UPLOADERS` packs are in memory.
        let (upload_tx, upload_rx) = bounded::<FinishedPack>(0);
        let mut threads = Vec::new();
        for n in 0..sealers {
            let sealer = Sealer::new(repo.aead.clone(), compression_level)?;
            let (rx, tx, shared) = (seal_rx.clone(), pack_tx.clone(), shared.clone());
            threads.push(spawn(&format!("haven-seal-{n}"), move || {
                seal_loop(sealer, rx, tx, &shared)
            }));
        }
        drop(pack_tx);
        {
            let shared = shared.clone();
            let target = repo.config.pack_size as usize;
            threads.push(spawn("haven-pack", move || {
                pack_loop(target, pack_rx, upload_tx, &shared)
            }));
        }
        for n in 0..UPLOADERS {
            let (rx, shared) = (upload_rx.clone(), shared.clone());
            threads.push(spawn(&format!("haven-upload-{n}"), move || {
                upload_loop(rx, &shared)
            }));
        }
        Ok(Saver {
            handle: SaverHandle { shared, seal_tx },
            threads,
        })
    }

    /// A handle for producers.
    pub fn handle(&self) -> SaverHandle {
        self.handle.clone()
    }

    /// Wait for everything queued to be stored and indexed.
    pub fn finish(self) -> Result<Arc<SaverStatsSnapshot>> {
        let Saver { handle, threads } = self;
        let shared = handle.shared.clone();
        drop(handle);
        for t in threads {
            if t.join().is_err() {
                shared.fail(Error::InvalidArgument("a pipeline thread panicked".into()));
            }
        }
        if let Some(error) = shared
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(error);
        }
        flush_index(&shared, true)?;
        let mut relied_on: Vec<Id> = shared
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (word, bits) in shared.referenced.iter().enumerate() {
            let bits = bits.load(Ordering::Relaxed);
            for bit in (0..64).filter(|b| bits & (1 << b) != 0) {
                relied_on.push(shared.known.pack((word * 64 + bit) as u32).id);
            }
        }
        Ok(Arc::new(SaverStatsSnapshot {
            bytes_added: shared.stats.bytes_added.load(Ordering::Relaxed),
            data_blobs: shared.stats.data_blobs.load(Ordering::Relaxed),
            tree_blobs: shared.stats.tree_blobs.load(Ordering::Relaxed),
            relied_on,
        }))
    }
}

/// Final counters of a saver.
#[derive(Clone, Debug, Default)]
pub struct SaverStatsSnapshot {
    /// Every pack the stored data needs: those written, and those of the
    /// repository's earlier data it refers to instead of storing again.
    pub relied_on: Vec<Id>,
    /// Bytes written (packs + index files).
    pub bytes_added: u64,
    /// New data blobs.
    pub data_blobs: u64,
    /// New tree blobs.
    pub tree_blobs: u64,
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    #[allow(clippy::expect_used)]
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("the OS refused to start a thread")
}

fn seal_loop(mut sealer: Sealer, rx: Receiver<SealJob>, tx: Sender<SealedBlob>, shared: &Shared) {
    for job in rx {
        if shared.failed.load(Ordering::Relaxed) {
            continue; // drain so producers never block on a dead pipeline
        }
        let Ok(raw_length) = u32::try_from(job.data.len()) else {
            shared.fail(Error::InvalidArgument("blob larger than 4 GiB".into()));
            continue;
        };
        let envelope = sealer.seal(ObjectKind::Blob, &job.data);
        let sealed = SealedBlob {
            id: job.id,
            blob_type: job.blob_type,
            raw_length,
            envelope,
        };
        if tx.send(sealed).is_err() {
            return;
        }
    }
}

fn pack_loop(target: usize, rx: Receiver<SealedBlob>, tx: Sender<FinishedPack>, shared: &Shared) {
    let mut buffer: Vec<u8> = Vec::with_capacity(target + target / 8);
    let mut blobs: Vec<PackedBlob> = Vec::new();
    for blob in rx {
        if shared.failed.load(Ordering::Relaxed) {
            continue;
        }
        let (Ok(offset), Ok(length)) = (
            u32::try_from(buffer.len()),
            u32::try_from(blob.envelope.len()),
        ) else {
            shared.fail(Error::InvalidArgument("pack offset overflow".into()));
            continue;
        };
        buffer.extend_from_slice(&blob.envelope);
        blobs.push(PackedBlob {
            id: blob.id,
            blob_type: blob.blob_type,
            offset,
            length,
            raw_length: blob.raw_length,
        });
        if buffer.len() >= target {
            let full = std::mem::replace(&mut buffer, Vec::with_capacity(target + target / 8));
            if !finish_pack(full, std::mem::take(&mut blobs), &tx, shared) {
                return;
            }
        }
    }
    if !blobs.is_empty() && !shared.failed.load(Ordering::Relaxed) {
        finish_pack(buffer, blobs, &tx, shared);
    }
}

/// Append the encrypted header and its length; false when uploaders are gone.
fn finish_pack(
    mut bytes: Vec<u8>,
    blobs: Vec<PackedBlob>,
    tx: &Sender<FinishedPack>,
    shared: &Shared,
) -> bool {
    let header = crate::format::PackHeader { blobs };
    let json = match serde_json::to_vec(&header) {
        Ok(j) => j,
        Err(e) => {
            shared.fail(Error::InvalidArgument(format!("pack header: {e}")));
            return true;
        }
    };
    let envelope = shared.repo.aead.seal_raw(ObjectKind::PackHeader, &json);
    bytes.extend_from_slice(&envelope);
    bytes.extend_from_slice(&(envelope.len() as u32).to_le_bytes());
    let id = Id::of_file(&bytes);
    tx.send(FinishedPack {
        id,
        bytes,
        blobs: header.blobs,
    })
    .is_ok()
}

fn upload_loop(rx: Receiver<FinishedPack>, shared: &Shared) {
    for pack in rx {
        if shared.failed.load(Ordering::Relaxed) {
            continue;
        }
        let size = pack.bytes.len() as u64;
        let (data, trees) = pack
            .blobs
            .iter()
            .fold((0, 0), |(d, t), b| match b.blob_type {
                BlobType::Data => (d + 1, t),
                BlobType::Tree => (d, t + 1),
            });
        if let Err(e) = shared
            .repo
            .backend
            .write_new(&pack_path(&pack.id), pack.bytes)
        {
            shared.fail(e);
            continue;
        }
        shared
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(pack.id);
        shared.stats.bytes_added.fetch_add(size, Ordering::Relaxed);
        shared.stats.data_blobs.fetch_add(data, Ordering::Relaxed);
        shared.stats.tree_blobs.fetch_add(trees, Ordering::Relaxed);
        shared
            .pending_index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(IndexedPack {
                id: pack.id,
                size,
                blobs: pack.blobs,
            });
        if let Err(e) = flush_index(shared, false) {
            shared.fail(e);
        }
    }
}

/// Write an index file for the stored packs, when enough have gathered or
/// when `force`d at the end.
fn flush_index(shared: &Shared, force: bool) -> Result<()> {
    let file = {
        let mut pending = shared
            .pending_index
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if pending.is_empty() || (!force && pending.len() < PACKS_PER_INDEX_FILE) {
            return Ok(());
        }
        pending.take()
    };
    shared.repo.save_index(&file)?;
    Ok(())
}
