//! Planning a restore: the snapshot's trees are read and checked, the
//! entries to create are listed, and every file's chunks are grouped by
//! the pack holding them. Nothing is written while planning, so a snapshot
//! that breaks the format's rules where it matters, or holds more than its
//! summary declares (a *tree bomb*: few blobs, astronomically many paths),
//! is refused before anything is created.
//!
//! A damaged directory listing (duplicate, unsorted or unsafe names) is
//! refused as a whole, and so is a damaged entry (unknown type, a size its
//! chunks contradict); the rest of the snapshot is restored and every
//! refusal is reported with the snapshot path it concerns.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64};

use globset::GlobSet;

use super::FailedFile;
use crate::error::{Error, Result};
use crate::format::rules::{self, ContentDefect};
use crate::format::{Node, NodeType, Snapshot, Tree};
use crate::id::Id;
use crate::index::{BlobLocation, Index};
use crate::repo::Repository;

/// A directory to create.
pub(super) struct PlannedDir {
    /// Its parent in the plan (`None`: the target itself).
    pub parent: Option<usize>,
    pub name: Vec<u8>,
    /// Its path below the target, names joined by `/`.
    pub relative: Vec<u8>,
    pub node: Node,
}

/// A file to create and fill.
pub(super) struct PlannedFile {
    pub dir: Option<usize>,
    pub name: Vec<u8>,
    /// The private name it is written under until complete (chosen when
    /// it is created).
    pub partial: Vec<u8>,
    pub node: Node,
    /// Chunk writes still to do; whoever does the last one finishes it.
    pub remaining: AtomicU32,
    pub written_end: AtomicU64,
    pub failed: Mutex<Option<String>>,
}

/// A symlink, created once every file is complete.
pub(super) struct PlannedLink {
    pub dir: Option<usize>,
    pub name: Vec<u8>,
    pub node: Node,
}

pub(super) struct BlobUse {
    pub file: usize,
    pub offset: u64,
}

pub(super) struct PlannedBlob {
    pub id: Id,
    pub loc: BlobLocation,
    pub uses: Vec<BlobUse>,
}

#[derive(Default)]
pub(super) struct Plan {
    pub dirs: Vec<PlannedDir>,
    pub files: Vec<PlannedFile>,
    pub links: Vec<PlannedLink>,
    /// Chunks to read, per pack position in the index.
    pub packs: HashMap<u32, Vec<PlannedBlob>>,
    /// Where each chunk sits in `packs`: (pack, position).
    blob_slots: HashMap<Id, (u32, usize)>,
    /// Entries refused while planning, with why.
    pub refused: Vec<FailedFile>,
}

impl Plan {
    /// The path below the target of directory `dir`.
    pub fn relative(&self, dir: Option<usize>) -> &[u8] {
        dir.map_or(&[][..], |d| self.dirs[d].relative.as_slice())
    }

    /// Where `name` in `dir` is restored.
    pub fn target_path(&self, target: &Path, dir: Option<usize>, name: &[u8]) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let mut path = target.join(std::ffi::OsStr::from_bytes(self.relative(dir)));
        path.push(std::ffi::OsStr::from_bytes(name));
        path
    }
}

/// Files, directories and bytes.
#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    files: u64,
    dirs: u64,
    bytes: u64,
}

/// Walks a snapshot's trees into a [`Plan`].
pub(super) struct Planner<'a> {
    pub repo: &'a Repository,
    pub index: &'a Index,
    pub snapshot_id: Id,
    pub includes: Option<&'a GlobSet>,
    pub target: &'a Path,
    declared: Totals,
    seen: Totals,
    pub plan: Plan,
}

impl<'a> Planner<'a> {
    pub fn new(
        repo: &'a Repository,
        index: &'a Index,
        (snapshot_id, snapshot): (Id, &Snapshot),
        includes: Option<&'a GlobSet>,
        target: &'a Path,
    ) -> Self {
        let s = &snapshot.summary;
        Planner {
            repo,
            index,
            snapshot_id,
            includes,
            target,
            declared: Totals {
                files: s
                    .files_new
                    .saturating_add(s.files_changed)
                    .saturating_add(s.files_unmodified),
                dirs: s.dirs,
                bytes: s.bytes_total,
            },
            seen: Totals::default(),
            plan: Plan::default(),
        }
    }

    /// Plan the entries of `tree`, restored into `dir` (its snapshot path
    /// `snapshot_dir`). `selected`: an include pattern matched an
    /// ancestor. Returns whether anything was planned.
    pub fn tree(
        &mut self,
        tree: &Tree,
        dir: Option<usize>,
        snapshot_dir: &Path,
        selected: bool,
        depth: usize,
    ) -> Result<bool> {
        let mut any = false;
        for node in &tree.nodes {
            let snapshot_path = snapshot_dir.join(node.name.as_os_str());
            let selected = selected || self.includes.is_none_or(|set| matches(set, &snapshot_path));
            if let Some(defect) = rules::node_defect(node) {
                if selected || node.node_type == NodeType::Dir {
                    self.refuse(dir, node, &snapshot_path, format!("the entry is {defect}"));
                }
                continue;
            }
            any |= match node.node_type {
                NodeType::Dir => self.dir(node, dir, &snapshot_path, selected, depth)?,
                _ if !selected => false,
                NodeType::File => self.file(node, dir, &snapshot_path)?,
                NodeType::Symlink => {
                    self.plan.links.push(PlannedLink {
                        dir,
                        name: node.name.0.clone(),
                        node: node.clone(),
                    });
                    true
                }
                NodeType::Unknown => false, // refused above
            };
        }
        Ok(any)
    }

    fn dir(
        &mut self,
        node: &Node,
        parent: Option<usize>,
        snapshot_path: &Path,
        selected: bool,
        depth: usize,
    ) -> Result<bool> {
        self.seen.dirs += 1;
        if self.seen.dirs > self.declared.dirs {
            return Err(self.overflow("directories", self.declared.dirs));
        }
        if depth >= rules::MAX_DEPTH {
            self.refuse(
                parent,
                node,
                snapshot_path,
                format!(
                    "directories nest deeper than {} levels here",
                    rules::MAX_DEPTH
                ),
            );
            return Ok(false);
        }
        // node_defect guarantees a dir has a subtree.
        let Some(subtree) = node.subtree else {
            return Ok(false);
        };
        let tree = match self.repo.read_tree(self.index, &subtree) {
            Ok(tree) => tree,
            Err(e) if e.is_integrity() || e.is_not_found() => {
                self.refuse(
                    parent,
                    node,
                    snapshot_path,
                    format!("its directory listing is damaged: {e}"),
                );
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let mut relative = self.plan.relative(parent).to_vec();
        if !relative.is_empty() {
            relative.push(b'/');
        }
        relative.extend_from_slice(&node.name.0);
        let position = self.plan.dirs.len();
        self.plan.dirs.push(PlannedDir {
            parent,
            name: node.name.0.clone(),
            relative,
            node: node.clone(),
        });
        let inner = self.tree(&tree, Some(position), snapshot_path, selected, depth + 1)?;
        if inner || selected {
            return Ok(true);
        }
        // Nothing inside was wanted: the directory is not created either.
        self.plan.dirs.truncate(position);
        Ok(false)
    }

    fn file(&mut self, node: &Node, dir: Option<usize>, snapshot_path: &Path) -> Result<bool> {
        self.seen.files += 1;
        self.seen.bytes = self.seen.bytes.saturating_add(node.size);
        if self.seen.files > self.declared.files {
            return Err(self.overflow("files", self.declared.files));
        }
        if self.seen.bytes > self.declared.bytes {
            return Err(self.overflow("bytes of file content", self.declared.bytes));
        }
        let index = self.index;
        let checked = rules::content_defect(node, |id| index.get(id).map(|l| l.raw_length));
        match checked {
            Ok(()) => {}
            Err(ContentDefect::Missing(blob)) => {
                let path = self.plan.target_path(self.target, dir, &node.name.0);
                self.plan.refused.push(FailedFile {
                    path,
                    error: Error::MissingBlob(blob).to_string(),
                });
                return Ok(true);
            }
            Err(ContentDefect::Invalid(why)) => {
                self.refuse(
                    dir,
                    node,
                    snapshot_path,
                    format!("the file is damaged: {why}"),
                );
                return Ok(true);
            }
        }
        let file = self.plan.files.len();
        let mut offset = 0u64;
        for id in &node.content {
            // Present: content_defect looked every chunk up.
            let Some(loc) = self.index.get(id) else {
                continue;
            };
            let blobs = self.plan.packs.entry(loc.pack).or_default();
            match self.plan.blob_slots.get(id) {
                Some(&(_, position)) => blobs[position].uses.push(BlobUse { file, offset }),
                None => {
                    self.plan.blob_slots.insert(*id, (loc.pack, blobs.len()));
                    blobs.push(PlannedBlob {
                        id: *id,
                        loc,
                        uses: vec![BlobUse { file, offset }],
                    });
                }
            }
            offset += u64::from(loc.raw_length);
        }
        self.plan.files.push(PlannedFile {
            dir,
            name: node.name.0.clone(),
            partial: Vec::new(),
            node: node.clone(),
            remaining: AtomicU32::new(node.content.len() as u32),
            written_end: AtomicU64::new(0),
            failed: Mutex::new(None),
        });
        Ok(true)
    }

    /// Record an entry that is not restored, naming the snapshot and path.
    fn refuse(&mut self, dir: Option<usize>, node: &Node, snapshot_path: &Path, why: String) {
        let path = self.plan.target_path(self.target, dir, &node.name.0);
        self.plan.refused.push(FailedFile {
            path,
            error: format!(
                "snapshot {} holds a damaged entry at {}: {why}",
                self.snapshot_id.short(),
                snapshot_path.display()
            ),
        });
    }

    /// The error when the trees hold more than the summary declares.
    fn overflow(&self, what: &str, declared: u64) -> Error {
        Error::corrupt(
            format!("snapshot {}", self.snapshot_id.short()),
            format!(
                "its trees hold more {what} than its summary declares ({declared}); nothing was restored. The snapshot is damaged or crafted (run `haven repo check`)"
            ),
        )
    }
}

/// Does an include pattern match the snapshot path or its file name?
pub(super) fn matches(set: &GlobSet, path: &Path) -> bool {
    set.is_match(path) || path.file_name().is_some_and(|n| set.is_match(n))
}
