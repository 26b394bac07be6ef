//! Backing up paths or a byte stream into a snapshot.
//!
//! ```text
//! walker ──file jobs──▶ readers (read → chunk → hash → dedup) ──▶ Saver
//!    └──ordered entries──▶ assembler (waits for each file's ids, builds trees) ──▶ Saver
//! ```
//! The walker visits entries in sorted order and emits them to the
//! assembler in that order; each file entry carries a one-shot slot its
//! reader fills. Trees are therefore built bottom-up in a deterministic
//! order while files are read in parallel. Unchanged files (same size,
//! mtime, ctime and inode as in the parent snapshot) are never read.

mod walk;

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use jiff::Timestamp;
use serde::Serialize;

pub(crate) use crate::saver::{Saver, SaverHandle};

use crate::chunker::Chunker;
use crate::error::{Error, Result};
use crate::format::{
    BlobType, FORMAT_VERSION, NameBytes, Node, NodeType, Snapshot, SnapshotSummary, Tree,
};
use crate::id::Id;
use crate::index::Index;
use crate::progress::{Progress, WritePhase};
use crate::repo::Repository;

/// How to choose the parent snapshot used to skip unchanged files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ParentChoice {
    /// The latest snapshot of the same host and paths.
    #[default]
    Auto,
    /// Read every file.
    None,
    /// This snapshot.
    Snapshot(Id),
}

/// What to back up and how.
#[derive(Clone, Debug, Default)]
pub struct BackupOptions {
    /// Tags recorded in the snapshot.
    pub tags: Vec<String>,
    /// Host name recorded (default: this machine's).
    pub hostname: Option<String>,
    /// Glob patterns of paths to leave out.
    pub excludes: Vec<String>,
    /// Parent snapshot selection.
    pub parent: ParentChoice,
    /// zstd level (default: the repository's).
    pub compression_level: Option<i32>,
    /// Snapshot time (default: now). Tests and imports set it.
    pub time: Option<Timestamp>,
    /// Retention lock: the snapshot cannot be removed before this time.
    pub lock_until: Option<Timestamp>,
    /// Object Lock mode for the retention lock, where the storage has
    /// Object Lock (an S3 bucket with it enabled).
    pub object_lock_mode: crate::object_lock::LockMode,
}

/// A source entry that could not be backed up.
#[derive(Clone, Debug, Serialize)]
pub struct SkippedEntry {
    /// Its path.
    pub path: PathBuf,
    /// Why.
    pub error: String,
}

/// The result of a backup.
#[derive(Clone, Debug)]
pub struct BackupOutcome {
    /// The new snapshot's id.
    pub snapshot_id: Id,
    /// The snapshot.
    pub snapshot: Snapshot,
    /// Entries left out because they could not be read.
    pub skipped: Vec<SkippedEntry>,
    /// Object Lock retention applied for a locked snapshot (None when
    /// there is no lock or the storage has no Object Lock).
    pub object_lock: Option<crate::object_lock::ObjectLockOutcome>,
    /// Bytes of the repository's pack files after the backup: those the
    /// index listed at its start plus those it wrote (packs written by
    /// concurrent writers meanwhile are not counted). Capacity evidence
    /// without reading the index a second time.
    pub repository_bytes: u64,
}

impl BackupOutcome {
    /// The statistics recorded with the snapshot.
    pub fn summary(&self) -> &SnapshotSummary {
        &self.snapshot.summary
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub files_new: AtomicU64,
    pub files_changed: AtomicU64,
    pub files_unmodified: AtomicU64,
    pub dirs: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_total: AtomicU64,
}

pub(crate) fn thread_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// What a backup knows about the repository when it starts.
pub(crate) struct WriteStart {
    /// Every blob stored, for reading (e.g. the parent snapshot's trees).
    pub(crate) all: Arc<Index>,
    /// The blobs the backup may deduplicate against: those outside packs
    /// a prune has marked for deletion.
    pub(crate) known: Arc<Index>,
    /// Packs left by an interrupted backup, to list in this one's index.
    pub(crate) adopt: Vec<crate::format::IndexedPack>,
    /// The prune marks and sweep records present at the start (see
    /// `prune::race`).
    pub(crate) watch: crate::prune::PruneWatch,
}

pub(crate) fn start_writing(repo: &Repository) -> Result<WriteStart> {
    // Temporary files of writers that are gone (a full disk's cause,
    // often) are removed before anything is written.
    repo.backend.clean_stale_tmp()?;
    // Sweep records, then marks, then the index: see `PruneWatch`.
    let (watch, marks) = repo.watch_prunes()?;
    let files = repo.load_index_files(true)?;
    // New data never relies on packs a prune condemned or deleted.
    let mut excluded: HashSet<Id> = marks
        .iter()
        .flat_map(|(_, m)| m.packs.iter().map(|p| p.id))
        .collect();
    let marked = excluded.clone();
    excluded.extend(files.absent_packs());
    let all = Arc::new(files.to_index(&HashSet::new()));
    let known = if excluded.is_empty() {
        all.clone()
    } else {
        Arc::new(files.to_index(&excluded))
    };
    let adopt: Vec<_> = files
        .report
        .unindexed_packs
        .into_iter()
        .filter(|p| !marked.contains(&p.id))
        .collect();
    if !adopt.is_empty() {
        tracing::info!(
            packs = adopt.len(),
            "reusing packs left by an interrupted backup"
        );
    }
    Ok(WriteStart {
        all,
        known,
        adopt,
        watch,
    })
}

impl Repository {
    /// Back up `paths` into a new snapshot.
    pub fn backup(
        &self,
        paths: &[PathBuf],
        options: &BackupOptions,
        progress: &dyn Progress,
    ) -> Result<BackupOutcome> {
        let started = Instant::now();
        let time = options.time.unwrap_or_else(Timestamp::now);
        let hostname = options
            .hostname
            .clone()
            .unwrap_or_else(crate::host::hostname);
        let targets = walk::resolve_targets(paths)?;
        let excludes = walk::Excludes::new(&options.excludes)?;
        let display_paths: Vec<String> = targets
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();

        let start = start_writing(self)?;
        progress.phase(WritePhase::Started);
        let parent = self.choose_parent(&options.parent, &hostname, &display_paths)?;
        let parent_tree = match &parent {
            Some((_, snap)) => Some(self.read_tree(&start.all, &snap.tree)?),
            None => None,
        };
        let level = options
            .compression_level
            .unwrap_or(self.config.compression_level);
        let saver = Saver::start(
            self,
            start.known.clone(),
            start.adopt,
            level,
            thread_count(),
        )?;
        let counters = Arc::new(Counters::default());
        let chunker = Chunker::new(&self.config.chunker, self.master.chunker_seed);

        let walk_result = walk::run(walk::WalkContext {
            repo: self,
            index: &start.all,
            saver: saver.handle(),
            chunker,
            counters: counters.clone(),
            excludes,
            progress,
            readers: thread_count().max(2),
            targets: &targets,
            parent_tree,
        });
        let saver_result = saver.finish();
        let ((root, skipped), stored) = first_cause(walk_result, saver_result)?;
        progress.phase(WritePhase::DataStored);

        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let summary = SnapshotSummary {
            files_new: load(&counters.files_new),
            files_changed: load(&counters.files_changed),
            files_unmodified: load(&counters.files_unmodified),
            dirs: load(&counters.dirs),
            bytes_read: load(&counters.bytes_read),
            bytes_total: load(&counters.bytes_total),
            bytes_added: stored.bytes_added,
            data_blobs_added: stored.data_blobs,
            tree_blobs_added: stored.tree_blobs,
            errors: skipped.len() as u64,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        let mut outcome = self.finish_snapshot(
            (&start.watch, &stored.relied_on),
            time,
            root,
            display_paths,
            hostname,
            options,
            parent.map(|p| p.0),
            summary,
            skipped,
            progress,
        )?;
        outcome.repository_bytes =
            start.all.packs().iter().map(|p| p.size).sum::<u64>() + outcome.summary().bytes_added;
        Ok(outcome)
    }

    /// Back up a byte stream (e.g. a database dump) as one file `name`.
    pub fn backup_stream(
        &self,
        reader: &mut dyn Read,
        name: &str,
        options: &BackupOptions,
        progress: &dyn Progress,
    ) -> Result<BackupOutcome> {
        if let Err(why) = crate::format::rules::check_name(name.as_bytes()) {
            return Err(Error::InvalidArgument(format!(
                "stream name {name:?} {why}: give a file name (one path component)"
            )));
        }
        let started = Instant::now();
        let time = options.time.unwrap_or_else(Timestamp::now);
        let hostname = options
            .hostname
            .clone()
            .unwrap_or_else(crate::host::hostname);
        let start = start_writing(self)?;
        progress.phase(WritePhase::Started);
        let level = options
            .compression_level
            .unwrap_or(self.config.compression_level);
        let saver = Saver::start(self, start.known, start.adopt, level, thread_count())?;
        let handle = saver.handle();
        let chunker = Chunker::new(&self.config.chunker, self.master.chunker_seed);
        let mut content = Vec::new();
        let mut size = 0u64;
        let mut window = Vec::new();
        let streamed = chunker.chunk_stream(reader, &mut window, |chunk| {
            size += chunk.len() as u64;
            progress.add_bytes(chunk.len() as u64);
            let id = handle
                .save(BlobType::Data, chunk.to_vec())
                .map_err(ChunkFailure::Save)?;
            content.push(id);
            if handle.failed() {
                return Err(ChunkFailure::Save(Error::Interrupted));
            }
            Ok(())
        });
        let read_error = streamed.err().map(|e| match e {
            ChunkFailure::Read(io) => Error::Stream(io.to_string()),
            ChunkFailure::Save(e) => e,
        });
        let now_ns = time.as_nanosecond() as i64;
        let node = Node {
            name: NameBytes(name.as_bytes().to_vec()),
            node_type: NodeType::File,
            mode: 0o600,
            uid: crate::host::current_uid(),
            gid: crate::host::current_gid(),
            mtime_ns: now_ns,
            ctime_ns: now_ns,
            inode: 0,
            device: 0,
            size,
            sparse: false,
            content,
            subtree: None,
            target: None,
        };
        let tree_bytes = serialize_tree(&Tree { nodes: vec![node] })?;
        let root = handle.save(BlobType::Tree, tree_bytes);
        drop(handle);
        let stored = saver.finish();
        let streamed = match read_error {
            Some(e) => Err(e),
            None => root,
        };
        let (root, stored) = first_cause(streamed, stored)?;
        progress.phase(WritePhase::DataStored);
        let summary = SnapshotSummary {
            files_new: 1,
            bytes_read: size,
            bytes_total: size,
            bytes_added: stored.bytes_added,
            data_blobs_added: stored.data_blobs,
            tree_blobs_added: stored.tree_blobs,
            duration_ms: started.elapsed().as_millis() as u64,
            ..SnapshotSummary::default()
        };
        let mut outcome = self.finish_snapshot(
            (&start.watch, &stored.relied_on),
            time,
            root,
            vec![name.to_string()],
            hostname,
            options,
            None,
            summary,
            Vec::new(),
            progress,
        )?;
        outcome.repository_bytes =
            start.all.packs().iter().map(|p| p.size).sum::<u64>() + outcome.summary().bytes_added;
        Ok(outcome)
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_snapshot(
        &self,
        (watch, relied_on): (&crate::prune::PruneWatch, &[Id]),
        time: Timestamp,
        tree: Id,
        paths: Vec<String>,
        hostname: String,
        options: &BackupOptions,
        parent: Option<Id>,
        summary: SnapshotSummary,
        skipped: Vec<SkippedEntry>,
        progress: &dyn Progress,
    ) -> Result<BackupOutcome> {
        let snapshot = Snapshot {
            version: FORMAT_VERSION,
            time,
            tree,
            paths,
            hostname,
            username: crate::host::username(),
            tags: options.tags.clone(),
            parent,
            program: format!("haven {}", env!("CARGO_PKG_VERSION")),
            summary,
            retention_lock_until: options.lock_until,
            original: None,
        };
        // Written last: until this file exists, nothing of the backup is
        // visible, and its packs are merely unreferenced. Not written when
        // a prune may have deleted data it relies on meanwhile.
        let snapshot_id = self.commit_snapshot(watch, relied_on, &snapshot, progress)?;
        let object_lock = self.apply_object_lock(&snapshot_id, &snapshot, options.object_lock_mode);
        Ok(BackupOutcome {
            snapshot_id,
            snapshot,
            skipped,
            object_lock,
            repository_bytes: 0, // set by the caller, which knows the index
        })
    }

    fn choose_parent(
        &self,
        choice: &ParentChoice,
        hostname: &str,
        paths: &[String],
    ) -> Result<Option<(Id, Snapshot)>> {
        match choice {
            ParentChoice::None => Ok(None),
            ParentChoice::Snapshot(id) => Ok(Some((*id, self.load_snapshot(id)?))),
            ParentChoice::Auto => {
                let mut candidates = Vec::new();
                for id in self.snapshot_ids()? {
                    match self.load_snapshot(&id) {
                        Ok(s) if s.hostname == hostname && s.paths == paths => {
                            candidates.push((id, s))
                        }
                        Ok(_) => {}
                        // A damaged snapshot must not stop new backups.
                        Err(e) => {
                            tracing::warn!(snapshot = %id.short(), error = %e, "skipping snapshot")
                        }
                    }
                }
                Ok(candidates
                    .into_iter()
                    .max_by(|a, b| a.1.time.cmp(&b.1.time)))
            }
        }
    }
}

/// Combine the producer's and the pipeline's results. When the pipeline
/// failed, producers stop with `Interrupted`; the pipeline's error is the
/// cause the user must see (e.g. the storage error, not "interrupted").
fn first_cause<T, U>(produced: Result<T>, stored: Result<U>) -> Result<(T, U)> {
    match (produced, stored) {
        (Ok(p), Ok(s)) => Ok((p, s)),
        (Err(Error::Interrupted), Err(e)) | (Ok(_), Err(e)) => Err(e),
        (Err(e), _) => Err(e),
    }
}

/// Why chunking a byte source stopped: reading it failed, or storing a
/// chunk did (stream backups, copies).
pub(crate) enum ChunkFailure {
    Read(std::io::Error),
    Save(Error),
}

impl From<std::io::Error> for ChunkFailure {
    fn from(e: std::io::Error) -> Self {
        ChunkFailure::Read(e)
    }
}

/// A tree's JSON, refused when readers would refuse it (too large).
pub(crate) fn serialize_tree(tree: &Tree) -> Result<Vec<u8>> {
    let bytes = serde_json::to_vec(tree)
        .map_err(|e| Error::InvalidArgument(format!("tree serialisation: {e}")))?;
    if bytes.len() > crate::format::rules::MAX_TREE_BLOB as usize {
        return Err(Error::InvalidArgument(format!(
            "a directory of {} entries needs a {}-byte listing, more than the format allows ({} bytes); back up its subdirectories separately or exclude part of it",
            tree.nodes.len(),
            bytes.len(),
            crate::format::rules::MAX_TREE_BLOB
        )));
    }
    Ok(bytes)
}

pub(crate) fn path_of(base: &Path, name: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    base.join(std::ffi::OsStr::from_bytes(name))
}
