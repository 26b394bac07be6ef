//! Walking the source tree, reading files in parallel, assembling trees.

use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, Sender, bounded};
use globset::{Glob, GlobSet, GlobSetBuilder};

use super::{Counters, SaverHandle, SkippedEntry, path_of, serialize_tree};
use crate::chunker::Chunker;
use crate::error::{Error, Result};
use crate::format::{BlobType, NameBytes, Node, NodeType, Tree};
use crate::id::Id;
use crate::index::Index;
use crate::progress::Progress;
use crate::repo::Repository;

/// Make the backup paths absolute and lexically clean, check they exist,
/// and drop paths nested in other paths.
pub(super) fn resolve_targets(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if paths.is_empty() {
        return Err(Error::InvalidArgument(
            "nothing to back up: give at least one path".into(),
        ));
    }
    let mut resolved = Vec::new();
    for path in paths {
        let absolute = std::path::absolute(path).map_err(|e| Error::io("resolve", path, e))?;
        let mut clean = PathBuf::from("/");
        for component in absolute.components() {
            match component {
                Component::Normal(c) => clean.push(c),
                Component::ParentDir => {
                    clean.pop();
                }
                _ => {}
            }
        }
        std::fs::symlink_metadata(&clean).map_err(|cause| Error::SourceUnreadable {
            path: clean.clone(),
            cause,
        })?;
        resolved.push(clean);
    }
    resolved.sort();
    resolved.dedup();
    let mut kept: Vec<PathBuf> = Vec::new();
    for path in resolved {
        if !kept.iter().any(|k| path.starts_with(k)) {
            kept.push(path);
        }
    }
    Ok(kept)
}

/// Exclude patterns, matched against the full path and the file name.
pub(super) struct Excludes(Option<GlobSet>);

impl Excludes {
    pub(super) fn new(patterns: &[String]) -> Result<Self> {
        if patterns.is_empty() {
            return Ok(Excludes(None));
        }
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            let glob = Glob::new(p).map_err(|e| {
                Error::InvalidArgument(format!("invalid --exclude pattern {p:?}: {e}"))
            })?;
            builder.add(glob);
        }
        let set = builder
            .build()
            .map_err(|e| Error::InvalidArgument(format!("invalid --exclude patterns: {e}")))?;
        Ok(Excludes(Some(set)))
    }

    fn matches(&self, path: &Path) -> bool {
        match &self.0 {
            None => false,
            Some(set) => set.is_match(path) || path.file_name().is_some_and(|n| set.is_match(n)),
        }
    }
}

pub(super) struct WalkContext<'a> {
    pub repo: &'a Repository,
    pub index: &'a Arc<Index>,
    pub saver: SaverHandle,
    pub chunker: Chunker,
    pub counters: Arc<Counters>,
    pub excludes: Excludes,
    pub progress: &'a dyn Progress,
    pub readers: usize,
    pub targets: &'a [PathBuf],
    pub parent_tree: Option<crate::format::Tree>,
}

#[derive(Clone, Copy)]
enum Change {
    New,
    Changed,
}

/// A read file: content ids, bytes read, whether it has holes.
type FileSlot = Result<(Vec<Id>, u64, bool), String>;

enum Entry {
    DirStart(Node),
    DirEnd,
    Leaf(Node),
    File {
        node: Node,
        path: PathBuf,
        change: Change,
        slot: Receiver<FileSlot>,
    },
    Skipped(SkippedEntry),
}

struct FileJob {
    path: PathBuf,
    size: u64,
    slot: Sender<FileSlot>,
}

/// The backup paths arranged as a tree of path components.
#[derive(Default)]
struct VirtualDir {
    children: BTreeMap<Vec<u8>, VirtualNode>,
    is_target: bool,
}

enum VirtualNode {
    Target,
    Dir(VirtualDir),
}

fn virtual_root(targets: &[PathBuf]) -> VirtualDir {
    let mut root = VirtualDir::default();
    for target in targets {
        let parts: Vec<Vec<u8>> = target
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.as_bytes().to_vec()),
                _ => None,
            })
            .collect();
        if parts.is_empty() {
            root.is_target = true;
            continue;
        }
        let mut dir = &mut root;
        for (i, part) in parts.iter().enumerate() {
            if i + 1 == parts.len() {
                dir.children.insert(part.clone(), VirtualNode::Target);
                break;
            }
            let next = dir
                .children
                .entry(part.clone())
                .or_insert_with(|| VirtualNode::Dir(VirtualDir::default()));
            dir = match next {
                VirtualNode::Dir(d) => d,
                // A nested target was dropped by resolve_targets.
                VirtualNode::Target => break,
            };
        }
    }
    root
}

/// Walk, read and assemble; returns the root tree id and skipped entries.
pub(super) fn run(ctx: WalkContext<'_>) -> Result<(Id, Vec<SkippedEntry>)> {
    let (job_tx, job_rx) = bounded::<FileJob>(ctx.readers * 4);
    let (entry_tx, entry_rx) = bounded::<Entry>(4096);
    std::thread::scope(|scope| {
        for n in 0..ctx.readers {
            let rx = job_rx.clone();
            let ctx = &ctx;
            std::thread::Builder::new()
                .name(format!("haven-read-{n}"))
                .spawn_scoped(scope, move || {
                    // One chunking window per reader, reused for every file.
                    let mut window = Vec::new();
                    for job in rx {
                        let result = read_file(ctx, &job, &mut window);
                        let _ = job.slot.send(result);
                    }
                })
                .map_err(|e| Error::io("start reader thread for", PathBuf::from("."), e))?;
        }
        drop(job_rx);
        let assembler = std::thread::Builder::new()
            .name("haven-assemble".into())
            .spawn_scoped(scope, || assemble(entry_rx, &ctx))
            .map_err(|e| Error::io("start assembler thread for", PathBuf::from("."), e))?;
        let walker = Walker {
            ctx: &ctx,
            jobs: job_tx,
            entries: entry_tx,
        };
        let root = virtual_root(ctx.targets);
        let walked = walker.walk_root(&root);
        drop(walker);
        let assembled = assembler
            .join()
            .map_err(|_| Error::InvalidArgument("the tree assembler panicked".into()))?;
        // A walker stopped by a dead pipeline reports Interrupted; prefer the
        // assembler's (more specific) error in that case.
        match (walked, assembled) {
            (Ok(()), result) => result,
            (Err(Error::Interrupted), Err(e)) => Err(e),
            (Err(e), _) => Err(e),
        }
    })
}

struct Walker<'a, 'b> {
    ctx: &'a WalkContext<'b>,
    jobs: Sender<FileJob>,
    entries: Sender<Entry>,
}

impl Walker<'_, '_> {
    fn emit(&self, entry: Entry) -> Result<()> {
        self.entries.send(entry).map_err(|_| Error::Interrupted)
    }

    fn walk_root(&self, root: &VirtualDir) -> Result<()> {
        let parent = self.ctx.parent_tree.as_ref();
        if root.is_target {
            return self.walk_dir_contents(Path::new("/"), parent);
        }
        self.walk_virtual(root, Path::new("/"), parent)
    }

    fn walk_virtual(&self, dir: &VirtualDir, real: &Path, parent: Option<&Tree>) -> Result<()> {
        for (name, child) in &dir.children {
            let path = path_of(real, name);
            let parent_node = parent.and_then(|t| find_node(t, name));
            match child {
                VirtualNode::Target => self.walk_entry(&path, name, parent_node)?,
                VirtualNode::Dir(sub) => {
                    let meta = match std::fs::symlink_metadata(&path) {
                        Ok(m) => m,
                        Err(e) => {
                            self.skip(&path, &e)?;
                            continue;
                        }
                    };
                    self.emit(Entry::DirStart(node_from(name, &meta, NodeType::Dir)))?;
                    let subtree = self.parent_subtree(parent_node);
                    self.walk_virtual(sub, &path, subtree.as_ref())?;
                    self.emit(Entry::DirEnd)?;
                }
            }
        }
        Ok(())
    }

    fn skip(&self, path: &Path, error: &std::io::Error) -> Result<()> {
        tracing::warn!(path = %path.display(), %error, "cannot back up");
        self.emit(Entry::Skipped(SkippedEntry {
            path: path.to_path_buf(),
            error: error.to_string(),
        }))
    }

    fn parent_subtree(&self, parent_node: Option<&Node>) -> Option<Tree> {
        let id = parent_node
            .filter(|n| n.node_type == NodeType::Dir)?
            .subtree?;
        match self.ctx.repo.read_tree(self.ctx.index, &id) {
            Ok(tree) => Some(tree),
            Err(e) => {
                tracing::warn!(tree = %id.short(), error = %e, "parent tree unreadable; reading files again");
                None
            }
        }
    }

    fn walk_entry(&self, path: &Path, name: &[u8], parent_node: Option<&Node>) -> Result<()> {
        if self.ctx.saver.failed() {
            return Err(Error::Interrupted);
        }
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => return self.skip(path, &e),
        };
        let file_type = meta.file_type();
        if file_type.is_file() {
            self.walk_file(path, name, &meta, parent_node)
        } else if file_type.is_dir() {
            self.emit(Entry::DirStart(node_from(name, &meta, NodeType::Dir)))?;
            let subtree = self.parent_subtree(parent_node);
            self.walk_dir_contents(path, subtree.as_ref())?;
            self.emit(Entry::DirEnd)
        } else if file_type.is_symlink() {
            match std::fs::read_link(path) {
                Ok(target) => {
                    let mut node = node_from(name, &meta, NodeType::Symlink);
                    node.target = Some(NameBytes(target.as_os_str().as_bytes().to_vec()));
                    self.emit(Entry::Leaf(node))
                }
                Err(e) => self.skip(path, &e),
            }
        } else {
            let kind = if file_type.is_fifo() {
                "FIFO"
            } else if file_type.is_socket() {
                "socket"
            } else {
                "device file"
            };
            tracing::info!(path = %path.display(), "not backing up {kind}");
            Ok(())
        }
    }

    fn walk_dir_contents(&self, dir: &Path, parent: Option<&Tree>) -> Result<()> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        let read = std::fs::read_dir(dir).and_then(|entries| {
            for entry in entries {
                names.push(entry?.file_name().as_bytes().to_vec());
            }
            Ok(())
        });
        if let Err(e) = read {
            // The directory itself is kept (empty); the failure is reported.
            return self.skip(dir, &e);
        }
        names.sort();
        for name in names {
            let path = path_of(dir, &name);
            if self.ctx.excludes.matches(&path) {
                continue;
            }
            let parent_node = parent.and_then(|t| find_node(t, &name));
            self.walk_entry(&path, &name, parent_node)?;
        }
        Ok(())
    }

    fn walk_file(
        &self,
        path: &Path,
        name: &[u8],
        meta: &Metadata,
        parent_node: Option<&Node>,
    ) -> Result<()> {
        let node = node_from(name, meta, NodeType::File);
        let counters = &self.ctx.counters;
        if let Some(old) = parent_node.filter(|p| p.node_type == NodeType::File) {
            let unchanged = old.size == node.size
                && old.mtime_ns == node.mtime_ns
                && old.ctime_ns == node.ctime_ns
                && old.inode == node.inode
                && old.content.iter().all(|id| self.ctx.saver.is_known(id));
            if unchanged {
                let mut reused = node;
                reused.content = old.content.clone();
                reused.sparse = old.sparse;
                counters.files_unmodified.fetch_add(1, Ordering::Relaxed);
                counters
                    .bytes_total
                    .fetch_add(reused.size, Ordering::Relaxed);
                self.ctx.progress.add_items(1);
                return self.emit(Entry::Leaf(reused));
            }
        }
        let change = if parent_node.is_some() {
            Change::Changed
        } else {
            Change::New
        };
        let (slot_tx, slot_rx) = bounded(1);
        self.jobs
            .send(FileJob {
                path: path.to_path_buf(),
                size: node.size,
                slot: slot_tx,
            })
            .map_err(|_| Error::Interrupted)?;
        self.emit(Entry::File {
            node,
            path: path.to_path_buf(),
            change,
            slot: slot_rx,
        })
    }
}

fn find_node<'t>(tree: &'t Tree, name: &[u8]) -> Option<&'t Node> {
    tree.nodes
        .binary_search_by(|n| n.name.0.as_slice().cmp(name))
        .ok()
        .map(|i| &tree.nodes[i])
}

fn node_from(name: &[u8], meta: &Metadata, node_type: NodeType) -> Node {
    Node {
        name: NameBytes(name.to_vec()),
        node_type,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        inode: meta.ino(),
        device: meta.dev(),
        sparse: false,
        size: if node_type == NodeType::File {
            meta.len()
        } else {
            0
        },
        content: Vec::new(),
        subtree: None,
        target: None,
    }
}

/// Read, chunk, hash and deduplicate one file. Errors reading the source
/// are returned as text (the file is skipped); pipeline failures as
/// "interrupted".
fn read_file(ctx: &WalkContext<'_>, job: &FileJob, window: &mut Vec<u8>) -> FileSlot {
    let saver = &ctx.saver;
    let describe = |e: std::io::Error| e.to_string();
    let mut file = File::open(&job.path).map_err(describe)?;
    let sparse = has_holes(&file, job.size);
    let mut content = Vec::new();
    let mut total = 0u64;
    let mut take = |data: Vec<u8>, content: &mut Vec<Id>| -> Result<(), String> {
        let len = data.len() as u64;
        let id = saver.blob_id(&data);
        if saver.claim(id) {
            saver
                .store(id, BlobType::Data, data)
                .map_err(|e| e.to_string())?;
        }
        content.push(id);
        total += len;
        ctx.counters.bytes_read.fetch_add(len, Ordering::Relaxed);
        ctx.progress.add_bytes(len);
        Ok(())
    };
    if job.size <= ctx.chunker.min_size() as u64 {
        // Small files are read whole: one allocation, exactly one chunk.
        let mut data = Vec::with_capacity(job.size as usize + 1);
        file.read_to_end(&mut data).map_err(describe)?;
        if data.is_empty() {
            // An empty file lists no content (docs/format.md).
        } else if data.len() <= ctx.chunker.min_size() {
            take(data, &mut content)?;
        } else {
            // The file grew since it was listed.
            for (offset, length) in ctx.chunker.cut_points(&data) {
                take(data[offset..offset + length].to_vec(), &mut content)?;
            }
        }
    } else {
        ctx.chunker
            .chunk_stream(&mut file, window, |chunk| {
                match take(chunk.to_vec(), &mut content) {
                    Ok(()) if saver.failed() => Err(ReadFailure::Pipeline),
                    Ok(()) => Ok(()),
                    Err(_) => Err(ReadFailure::Pipeline),
                }
            })
            .map_err(|e| match e {
                ReadFailure::Source(io) => io.to_string(),
                ReadFailure::Pipeline => Error::Interrupted.to_string(),
            })?;
    }
    Ok((content, total, sparse))
}

/// Why reading a file stopped: its source failed, or the pipeline did.
enum ReadFailure {
    Source(std::io::Error),
    Pipeline,
}

impl From<std::io::Error> for ReadFailure {
    fn from(e: std::io::Error) -> Self {
        ReadFailure::Source(e)
    }
}

/// Does the file have holes? `SEEK_HOLE` is authoritative where `st_blocks`
/// is not (delayed allocation under-reports blocks of fresh files). The
/// end of the file counts as a hole, so a hole before `size` means sparse.
fn has_holes(file: &File, size: u64) -> bool {
    if size == 0 {
        return false;
    }
    let sparse = rustix::fs::seek(file, rustix::fs::SeekFrom::Hole(0))
        .is_ok_and(|first_hole| first_hole < size);
    // The probe moved the file offset; reading starts at 0.
    let _ = rustix::fs::seek(file, rustix::fs::SeekFrom::Start(0));
    sparse
}

fn assemble(rx: Receiver<Entry>, ctx: &WalkContext<'_>) -> Result<(Id, Vec<SkippedEntry>)> {
    let counters = &ctx.counters;
    let mut stack: Vec<(Option<Node>, Vec<Node>)> = vec![(None, Vec::new())];
    let mut skipped = Vec::new();
    let save_tree = |nodes: Vec<Node>| -> Result<Id> {
        let bytes = serialize_tree(&Tree { nodes })?;
        ctx.saver.save(BlobType::Tree, bytes)
    };
    for entry in rx {
        if ctx.saver.failed() {
            return Err(Error::Interrupted);
        }
        match entry {
            Entry::DirStart(node) => stack.push((Some(node), Vec::new())),
            Entry::DirEnd => {
                let Some((Some(mut node), children)) = stack.pop() else {
                    return Err(Error::InvalidArgument("unbalanced directory walk".into()));
                };
                node.subtree = Some(save_tree(children)?);
                counters.dirs.fetch_add(1, Ordering::Relaxed);
                push_child(&mut stack, node)?;
            }
            Entry::Leaf(node) => push_child(&mut stack, node)?,
            Entry::File {
                mut node,
                path,
                change,
                slot,
            } => match slot.recv() {
                Ok(Ok((content, size, sparse))) => {
                    node.content = content;
                    node.size = size;
                    node.sparse = sparse;
                    let counter = match change {
                        Change::New => &counters.files_new,
                        Change::Changed => &counters.files_changed,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    counters.bytes_total.fetch_add(size, Ordering::Relaxed);
                    ctx.progress.add_items(1);
                    push_child(&mut stack, node)?;
                }
                Ok(Err(error)) => {
                    if ctx.saver.failed() {
                        return Err(Error::Interrupted);
                    }
                    tracing::warn!(path = %path.display(), %error, "cannot back up");
                    skipped.push(SkippedEntry { path, error });
                }
                Err(_) => return Err(Error::Interrupted),
            },
            Entry::Skipped(s) => skipped.push(s),
        }
    }
    match stack.pop() {
        Some((None, children)) if stack.is_empty() => Ok((save_tree(children)?, skipped)),
        _ => Err(Error::Interrupted),
    }
}

fn push_child(stack: &mut [(Option<Node>, Vec<Node>)], node: Node) -> Result<()> {
    stack
        .last_mut()
        .map(|top| top.1.push(node))
        .ok_or_else(|| Error::InvalidArgument("unbalanced directory walk".into()))
}
