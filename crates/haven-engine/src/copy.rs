//! Copying snapshots to a second repository (3-2-1): `haven copy`.
//!
//! Each repository has its own keys, blob-id key and secret chunker seed,
//! so blobs cannot be moved as they are. A file's content is read from the
//! source (every blob verified), cut again with the target's chunker and
//! hashed with the target's key; only chunks the target lacks are stored.
//! Trees are rebuilt bottom-up with the new ids and the same metadata. The
//! copied snapshot records its `original`, which makes copying idempotent:
//! a snapshot whose original the target holds is not copied again.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use serde::Serialize;

use crate::backup::{ChunkFailure, serialize_tree, start_writing, thread_count};
use crate::chunker::Chunker;
use crate::error::{Error, Result};
use crate::format::{BlobType, NodeType, Snapshot, Tree, rules};
use crate::id::Id;
use crate::index::Index;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::saver::{Saver, SaverHandle};

/// What happened to one snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct CopiedSnapshot {
    /// The snapshot in the source repository.
    pub source: Id,
    /// Its copy in the target.
    pub target: Id,
    /// `copied` now, or already `present` in the target.
    pub status: CopyStatus,
    /// Bytes written to the target for this snapshot (packs + index).
    pub bytes_added: u64,
    /// Bytes of file content read from the source.
    pub bytes_read: u64,
    /// With `verify`: the copy read back and matched the source.
    pub verified: bool,
}

/// Whether a snapshot was copied or found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyStatus {
    /// Copied in this run.
    Copied,
    /// The target already held a copy.
    Present,
}

impl Repository {
    /// Copy `snapshots` of `self` into `target`. With `verify`, every
    /// copied or present snapshot is read back from the target and
    /// compared with the source, file by file.
    pub fn copy_to(
        &self,
        target: &Repository,
        snapshots: &[Id],
        verify: bool,
        progress: &dyn Progress,
    ) -> Result<Vec<CopiedSnapshot>> {
        if self.config.id == target.config.id {
            return Err(Error::InvalidArgument(
                "source and target are the same repository".into(),
            ));
        }
        // Copying and verifying recurse once per directory level.
        crate::deep::on_deep_stack(|| self.copy_all(target, snapshots, verify, progress))
    }

    fn copy_all(
        &self,
        target: &Repository,
        snapshots: &[Id],
        verify: bool,
        progress: &dyn Progress,
    ) -> Result<Vec<CopiedSnapshot>> {
        let (source_index, _) = self.load_index(true)?;
        let mut results = Vec::new();
        let mut memo = Translations::default();
        // For --verify: the target's index, and the tree pairs already
        // compared in this run (snapshots share most of their trees).
        let mut target_index: Option<Index> = None;
        let mut verified: HashSet<(Id, Id)> = HashSet::new();
        // Original snapshot id → its copy (or itself) in the target.
        let mut in_target: HashMap<Id, Id> = HashMap::new();
        for (tid, s) in target.snapshots()? {
            in_target.insert(s.original.unwrap_or(tid), tid);
        }
        for id in snapshots {
            let snapshot = self.load_snapshot(id)?;
            let original = snapshot.original.unwrap_or(*id);
            let mut result = match in_target.get(&original) {
                Some(target_id) => CopiedSnapshot {
                    source: *id,
                    target: *target_id,
                    status: CopyStatus::Present,
                    bytes_added: 0,
                    bytes_read: 0,
                    verified: false,
                },
                None => {
                    progress.set_message(&format!("copying snapshot {}", id.short()));
                    // The copy of this snapshot's parent, if the target has
                    // one: what did not change since needs no re-reading.
                    let parent = match snapshot.parent {
                        Some(p) => match self.load_snapshot(&p) {
                            Ok(ps) => in_target
                                .get(&ps.original.unwrap_or(p))
                                .map(|t| (ps.tree, *t)),
                            Err(_) => None,
                        },
                        None => None,
                    };
                    let copied = self.copy_one(
                        target,
                        &source_index,
                        (*id, &snapshot),
                        parent,
                        &mut memo,
                        progress,
                    )?;
                    in_target.insert(original, copied.target);
                    copied
                }
            };
            if verify {
                progress.set_message(&format!("verifying snapshot {}", result.target.short()));
                // The target's index changes only when something was copied.
                if result.status == CopyStatus::Copied {
                    target_index = None;
                }
                let target_index: &Index = match &mut target_index {
                    Some(index) => index,
                    slot @ None => slot.insert(target.load_index(true)?.0),
                };
                let copy = target.load_snapshot(&result.target)?;
                let mut verifier = Verifier {
                    source: (self, &source_index),
                    target: (target, target_index),
                    caches: (PackCache::default(), PackCache::default()),
                    verified: &mut verified,
                };
                verifier.tree(snapshot.tree, copy.tree, "/")?;
                result.verified = true;
            }
            results.push(result);
        }
        Ok(results)
    }

    fn copy_one(
        &self,
        target: &Repository,
        source_index: &Index,
        (id, snapshot): (Id, &Snapshot),
        parent: Option<(Id, Id)>,
        memo: &mut Translations,
        progress: &dyn Progress,
    ) -> Result<CopiedSnapshot> {
        let start = start_writing(target)?;
        // Translations are only valid while the target still has their
        // blobs (it does, unless a prune intervened).
        memo.trees.retain(|_, t| start.known.contains(t));
        let mut target_parent = None;
        if let Some((source_tree, target_snapshot)) = parent {
            let target_tree = target.load_snapshot(&target_snapshot)?.tree;
            target_parent = Some(target_snapshot);
            if !memo.trees.contains_key(&source_tree) {
                // Learning is an optimisation: a damaged tree only means
                // more is read from the source.
                if let Err(e) = memo.learn(
                    (self, source_index, source_tree),
                    (target, &start.all, target_tree),
                ) {
                    tracing::warn!(error = %e, "cannot reuse the parent's copy; reading everything");
                }
            }
        }
        let saver = Saver::start(
            target,
            start.known.clone(),
            start.adopt,
            target.config.compression_level,
            thread_count(),
        )?;
        let mut copier = TreeCopier {
            source: self,
            source_index,
            cache: PackCache::default(),
            saver: saver.handle(),
            chunker: Chunker::new(&target.config.chunker, target.master.chunker_seed),
            window: Vec::new(),
            memo,
            bytes_read: 0,
            progress,
        };
        let root = copier.copy_tree(snapshot.tree, 0);
        let bytes_read = copier.bytes_read;
        drop(copier);
        let stored = saver.finish();
        let root = root?;
        let stored = stored?;
        let copy = Snapshot {
            parent: target_parent,
            original: Some(snapshot.original.unwrap_or(id)),
            tree: root,
            ..snapshot.clone()
        };
        let target_id = target.commit_snapshot(&start.watch, &stored.relied_on, &copy, progress)?;
        Ok(CopiedSnapshot {
            source: id,
            target: target_id,
            status: CopyStatus::Copied,
            bytes_added: stored.bytes_added,
            bytes_read,
            verified: false,
        })
    }
}

struct TreeCopier<'a> {
    source: &'a Repository,
    source_index: &'a Index,
    /// The source pack read last: files' blobs mostly lie in order in
    /// one pack, so reading whole packs turns thousands of small reads
    /// into one per pack.
    cache: PackCache,
    saver: SaverHandle,
    chunker: Chunker,
    window: Vec<u8>,
    memo: &'a mut Translations,
    bytes_read: u64,
    progress: &'a dyn Progress,
}

impl TreeCopier<'_> {
    /// Copy a source tree and everything below it; returns the target id.
    /// A copy is made only of what the format allows: a damaged entry
    /// stops the copy of its snapshot, naming it.
    fn copy_tree(&mut self, id: Id, depth: usize) -> Result<Id> {
        if let Some(done) = self.memo.trees.get(&id) {
            return Ok(*done);
        }
        let damaged = |detail: String| Error::corrupt(format!("tree {}", id.short()), detail);
        if depth > rules::MAX_DEPTH {
            return Err(damaged(format!(
                "directories nest deeper than {} levels",
                rules::MAX_DEPTH
            )));
        }
        let mut tree = self.source.read_tree(self.source_index, &id)?;
        for node in &mut tree.nodes {
            if let Some(defect) = rules::node_defect(node) {
                return Err(damaged(format!("entry {:?} is {defect}", node.name)));
            }
            match node.node_type {
                NodeType::Dir => {
                    if let Some(sub) = node.subtree {
                        node.subtree = Some(self.copy_tree(sub, depth + 1)?);
                    }
                }
                NodeType::File => {
                    let index = self.source_index;
                    rules::content_defect(node, |id| index.get(id).map(|l| l.raw_length)).map_err(
                        |defect| match defect {
                            rules::ContentDefect::Missing(blob) => Error::MissingBlob(blob),
                            rules::ContentDefect::Invalid(why) => {
                                damaged(format!("file {:?}: {why}", node.name))
                            }
                        },
                    )?;
                    node.content = self.copy_content(&node.content, node.size)?;
                }
                NodeType::Symlink | NodeType::Unknown => {}
            }
        }
        let copied = self.saver.save(BlobType::Tree, serialize_tree(&tree)?)?;
        self.memo.trees.insert(id, copied);
        Ok(copied)
    }

    /// Re-chunk a file's content into the target; returns its blob ids.
    fn copy_content(&mut self, content: &[Id], size: u64) -> Result<Vec<Id>> {
        if content.is_empty() {
            return Ok(Vec::new());
        }
        let key = content_key(content);
        if let Some(done) = self.memo.files.get(&key)
            && done.iter().all(|id| self.saver.is_known(id))
        {
            return Ok(done.clone());
        }
        let copied = self.rechunk(content, size)?;
        self.memo.files.insert(key, copied.clone());
        Ok(copied)
    }

    /// Read a file's content from the source and cut it for the target.
    fn rechunk(&mut self, content: &[Id], size: u64) -> Result<Vec<Id>> {
        if size <= self.chunker.min_size() as u64 {
            // Small files are one chunk whatever the chunker: no window.
            let mut data = Vec::with_capacity(size as usize);
            for id in content {
                data.extend(self.cache.read_blob(self.source, self.source_index, id)?);
            }
            if data.len() <= self.chunker.min_size() {
                self.bytes_read += data.len() as u64;
                self.progress.add_bytes(data.len() as u64);
                return Ok(vec![self.saver.save(BlobType::Data, data)?]);
            }
        }
        let mut reader = BlobReader::new(self.source, self.source_index, &mut self.cache, content);
        let mut ids = Vec::new();
        let saver = &self.saver;
        let progress = self.progress;
        let mut read = 0u64;
        let result = self
            .chunker
            .chunk_stream(&mut reader, &mut self.window, |chunk| {
                read += chunk.len() as u64;
                progress.add_bytes(chunk.len() as u64);
                let id = saver
                    .save(BlobType::Data, chunk.to_vec())
                    .map_err(ChunkFailure::Save)?;
                ids.push(id);
                Ok::<(), ChunkFailure>(())
            });
        self.bytes_read += read;
        match result {
            Ok(()) => Ok(ids),
            Err(ChunkFailure::Save(e)) => Err(e),
            Err(ChunkFailure::Read(io)) => {
                Err(reader.error.take().unwrap_or(Error::Stream(io.to_string())))
            }
        }
    }
}

/// What a run has learnt about source → target ids: trees, and file
/// contents (keyed by the hash of their source blob list).
#[derive(Default)]
struct Translations {
    trees: HashMap<Id, Id>,
    files: HashMap<Id, Vec<Id>>,
}

impl Translations {
    /// Learn from an existing copy: a copy has the same structure as its
    /// source, so walking both trees side by side pairs every directory
    /// and file. Only tree blobs are read.
    fn learn(
        &mut self,
        source: (&Repository, &Index, Id),
        target: (&Repository, &Index, Id),
    ) -> Result<()> {
        let (s_repo, s_index, s_id) = source;
        let (t_repo, t_index, t_id) = target;
        if self.trees.contains_key(&s_id) {
            return Ok(());
        }
        let s_tree = s_repo.read_tree(s_index, &s_id)?;
        let t_tree = t_repo.read_tree(t_index, &t_id)?;
        if s_tree.nodes.len() != t_tree.nodes.len() {
            return Ok(()); // not a copy of this tree; learn nothing here
        }
        for (s, t) in s_tree.nodes.iter().zip(&t_tree.nodes) {
            if s.name != t.name || s.node_type != t.node_type || s.size != t.size {
                return Ok(());
            }
        }
        for (s, t) in s_tree.nodes.iter().zip(&t_tree.nodes) {
            match (s.subtree, t.subtree) {
                (Some(s_sub), Some(t_sub)) => {
                    self.learn((s_repo, s_index, s_sub), (t_repo, t_index, t_sub))?
                }
                _ if s.node_type == NodeType::File && !s.content.is_empty() => {
                    self.files
                        .insert(content_key(&s.content), t.content.clone());
                }
                _ => {}
            }
        }
        self.trees.insert(s_id, t_id);
        Ok(())
    }
}

fn content_key(content: &[Id]) -> Id {
    let mut hasher = blake3::Hasher::new();
    for id in content {
        hasher.update(&id.0);
    }
    Id(*hasher.finalize().as_bytes())
}

/// The source packs read last, whole (most recently used first).
#[derive(Default)]
struct PackCache {
    packs: Vec<(u32, Vec<u8>)>,
}

/// Packs kept in memory while copying (each up to the pack size).
const CACHED_PACKS: usize = 4;

impl PackCache {
    /// Read and verify one blob, through the cached packs.
    fn read_blob(&mut self, repo: &Repository, index: &Index, id: &Id) -> Result<Vec<u8>> {
        let loc = index.get(id).ok_or(Error::MissingBlob(*id))?;
        match self.packs.iter().position(|(p, _)| *p == loc.pack) {
            Some(0) => {}
            Some(i) => {
                let hit = self.packs.remove(i);
                self.packs.insert(0, hit);
            }
            None => {
                let pack = index.pack(loc.pack);
                let mut bytes = if self.packs.len() >= CACHED_PACKS {
                    self.packs.pop().map(|(_, b)| b).unwrap_or_default()
                } else {
                    Vec::new()
                };
                repo.backend.read_range_into(
                    &crate::repo::pack_path(&pack.id),
                    0,
                    pack.size,
                    &mut bytes,
                )?;
                self.packs.insert(0, (loc.pack, bytes));
            }
        }
        let start = loc.offset as usize;
        let envelope = self.packs[0]
            .1
            .get(start..start + loc.length as usize)
            .ok_or_else(|| {
                Error::corrupt(format!("blob {}", id.short()), "lies beyond its pack")
            })?;
        repo.open_blob(id, &loc, envelope)
    }
}

/// A file's content read blob by blob (each blob verified), as a reader.
struct BlobReader<'a> {
    repo: &'a Repository,
    index: &'a Index,
    cache: &'a mut PackCache,
    blobs: std::slice::Iter<'a, Id>,
    current: Vec<u8>,
    position: usize,
    /// The engine error behind an I/O error returned from `read`.
    error: Option<Error>,
}

impl<'a> BlobReader<'a> {
    fn new(
        repo: &'a Repository,
        index: &'a Index,
        cache: &'a mut PackCache,
        blobs: &'a [Id],
    ) -> Self {
        BlobReader {
            repo,
            index,
            cache,
            blobs: blobs.iter(),
            current: Vec::new(),
            position: 0,
            error: None,
        }
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.position == self.current.len() {
            let Some(id) = self.blobs.next() else {
                return Ok(0);
            };
            match self.cache.read_blob(self.repo, self.index, id) {
                Ok(data) => {
                    self.current = data;
                    self.position = 0;
                }
                Err(e) => {
                    let message = e.to_string();
                    self.error = Some(e);
                    return Err(std::io::Error::other(message));
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.position);
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

/// Compares a copy with its source, entry by entry and byte by byte.
struct Verifier<'a> {
    source: (&'a Repository, &'a Index),
    target: (&'a Repository, &'a Index),
    /// Whole-pack reads, one cache per side.
    caches: (PackCache, PackCache),
    /// (source tree, target tree) pairs found equal in this run.
    verified: &'a mut HashSet<(Id, Id)>,
}

impl Verifier<'_> {
    /// Compare two trees, recursively: same entries, metadata and bytes.
    fn tree(&mut self, s_id: Id, t_id: Id, path: &str) -> Result<()> {
        if self.verified.contains(&(s_id, t_id)) {
            return Ok(());
        }
        let s_tree: Tree = self.source.0.read_tree(self.source.1, &s_id)?;
        let t_tree: Tree = self.target.0.read_tree(self.target.1, &t_id)?;
        let mismatch = |detail: String| Error::corrupt(format!("copy of {path}"), detail);
        if s_tree.nodes.len() != t_tree.nodes.len() {
            return Err(mismatch(format!(
                "{} entries in the source, {} in the copy",
                s_tree.nodes.len(),
                t_tree.nodes.len()
            )));
        }
        for (s, t) in s_tree.nodes.iter().zip(&t_tree.nodes) {
            let child = format!("{}/{}", path.trim_end_matches('/'), s.name.display());
            let same_metadata = s.name == t.name
                && s.node_type == t.node_type
                && s.mode == t.mode
                && s.uid == t.uid
                && s.gid == t.gid
                && s.mtime_ns == t.mtime_ns
                && s.size == t.size
                && s.sparse == t.sparse
                && s.target == t.target;
            if !same_metadata {
                return Err(mismatch(format!("entry {child} differs")));
            }
            match (s.subtree, t.subtree) {
                (Some(s_sub), Some(t_sub)) => self.tree(s_sub, t_sub, &child)?,
                (None, None) => {}
                _ => return Err(mismatch(format!("directory {child} differs"))),
            }
            if s.node_type == NodeType::File {
                let (s_repo, s_index) = self.source;
                let (t_repo, t_index) = self.target;
                let s_digest = content_digest(&mut self.caches.0, s_repo, s_index, &s.content)?;
                let t_digest = content_digest(&mut self.caches.1, t_repo, t_index, &t.content)?;
                if s_digest != t_digest {
                    return Err(mismatch(format!("the content of {child} differs")));
                }
            }
        }
        self.verified.insert((s_id, t_id));
        Ok(())
    }
}

/// BLAKE3 and length of a file's content (every blob verified on the way).
fn content_digest(
    cache: &mut PackCache,
    repo: &Repository,
    index: &Index,
    content: &[Id],
) -> Result<(blake3::Hash, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut len = 0u64;
    for id in content {
        let data = cache.read_blob(repo, index, id)?;
        len += data.len() as u64;
        hasher.update(&data);
    }
    Ok((hasher.finalize(), len))
}
