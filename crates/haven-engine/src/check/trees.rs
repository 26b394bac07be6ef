//! What a snapshot's trees *mean*, checked against the format: names (by
//! decoding), every entry's fields and type, file sizes against their
//! chunks, nesting depth, and the totals the snapshot's summary declares.
//!
//! Every tree is read once whatever the number of paths leading to it
//! (results are kept per tree id), so a *tree bomb* (few blobs, each
//! listing one subtree many times: astronomically many paths) costs no
//! more than its blobs, and shows up as trees holding far more than the
//! summary declares.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::rc::Rc;

use super::CheckProblem;
use crate::format::rules::{self, ContentDefect};
use crate::format::{Node, NodeType, Snapshot, Tree};
use crate::id::Id;
use crate::index::Index;
use crate::repo::Repository;

/// Damaged paths kept per tree; beyond them only a count (a damaged leaf
/// of a tree bomb would otherwise be listed at every one of its paths).
const DAMAGE_LISTED_PER_TREE: usize = 100;

/// What one tree and everything below it holds.
#[derive(Debug, Default)]
pub(super) struct TreeFacts {
    /// Damaged paths, relative to the tree, with what is wrong.
    damage: Vec<(PathBuf, String)>,
    /// Damaged paths beyond those listed.
    unlisted_damage: u64,
    files: u64,
    dirs: u64,
    bytes: u64,
    /// False when part of it could not be read, so its totals are short.
    complete: bool,
}

impl TreeFacts {
    fn add_damage(&mut self, path: PathBuf, problem: String) {
        if self.damage.len() < DAMAGE_LISTED_PER_TREE {
            self.damage.push((path, problem));
        } else {
            self.unlisted_damage = self.unlisted_damage.saturating_add(1);
        }
    }

    fn unreadable(problem: String) -> Self {
        TreeFacts {
            damage: vec![(PathBuf::new(), problem)],
            ..TreeFacts::default()
        }
    }
}

/// Walks trees once each and remembers what it found.
pub(crate) struct TreeWalker<'a> {
    pub repo: &'a Repository,
    pub index: &'a Index,
    /// Blobs found damaged by reading packs.
    pub bad_blobs: &'a HashMap<Id, String>,
    /// Blobs of packs that index files list but storage lost: blob → pack.
    pub gone: &'a HashMap<Id, Id>,
    /// The packs of `gone` some snapshot needs.
    pub needed_gone: HashSet<Id>,
    memo: HashMap<Id, Rc<TreeFacts>>,
    reported: HashSet<Id>,
    pub problems: Vec<CheckProblem>,
}

impl<'a> TreeWalker<'a> {
    pub fn new(
        repo: &'a Repository,
        index: &'a Index,
        bad_blobs: &'a HashMap<Id, String>,
        gone: &'a HashMap<Id, Id>,
    ) -> Self {
        TreeWalker {
            repo,
            index,
            bad_blobs,
            gone,
            needed_gone: HashSet::new(),
            memo: HashMap::new(),
            reported: HashSet::new(),
            problems: Vec::new(),
        }
    }

    /// Trees read.
    pub fn trees(&self) -> usize {
        self.memo.len()
    }

    /// The damaged paths of a snapshot (absolute), including a summary
    /// that contradicts what its trees hold.
    pub fn snapshot(&mut self, id: &Id, snapshot: &Snapshot) -> Vec<(String, String)> {
        let facts = self.facts(&snapshot.tree, 0);
        let mut damage: Vec<(String, String)> = facts
            .damage
            .iter()
            .map(|(p, problem)| {
                (
                    PathBuf::from("/").join(p).display().to_string(),
                    problem.clone(),
                )
            })
            .collect();
        if facts.unlisted_damage > 0 {
            damage.push((
                "/".into(),
                format!("and {} more damaged paths", facts.unlisted_damage),
            ));
        }
        if facts.complete
            && let Some(mismatch) = summary_mismatch(&facts, snapshot)
        {
            self.problems.push(CheckProblem {
                kind: "summary-mismatch".into(),
                object: format!("snapshot {id}"),
                detail: mismatch.clone(),
            });
            damage.push(("/".into(), mismatch));
        }
        damage
    }

    /// The facts of tree `id`, found at `depth` directories below a root.
    fn facts(&mut self, id: &Id, depth: usize) -> Rc<TreeFacts> {
        if let Some(known) = self.memo.get(id) {
            return known.clone();
        }
        let facts = match self.read_tree(id) {
            Err(problem) => TreeFacts::unreadable(problem),
            Ok(tree) => self.tree_facts(id, &tree, depth),
        };
        let facts = Rc::new(facts);
        self.memo.insert(*id, facts.clone());
        facts
    }

    fn tree_facts(&mut self, id: &Id, tree: &Tree, depth: usize) -> TreeFacts {
        let mut facts = TreeFacts {
            complete: true,
            ..TreeFacts::default()
        };
        for node in &tree.nodes {
            let name = PathBuf::from(node.name.as_os_str());
            if let Some(defect) = rules::node_defect(node) {
                self.entry_problem(id, node, &defect);
                facts.add_damage(name.clone(), format!("damaged entry: {defect}"));
            }
            match node.node_type {
                NodeType::Dir => {
                    facts.dirs = facts.dirs.saturating_add(1);
                    let Some(sub) = node.subtree else { continue };
                    if depth + 1 > rules::MAX_DEPTH {
                        // Not descended: deeper nesting is damage (and the
                        // walk's own depth stays bounded).
                        self.deep_problem(id);
                        facts.complete = false;
                        facts.add_damage(
                            name,
                            format!("directories nest deeper than {} levels", rules::MAX_DEPTH),
                        );
                        continue;
                    }
                    let below = self.facts(&sub, depth + 1);
                    facts.files = facts.files.saturating_add(below.files);
                    facts.dirs = facts.dirs.saturating_add(below.dirs);
                    facts.bytes = facts.bytes.saturating_add(below.bytes);
                    facts.complete &= below.complete;
                    facts.unlisted_damage =
                        facts.unlisted_damage.saturating_add(below.unlisted_damage);
                    for (path, problem) in &below.damage {
                        facts.add_damage(name.join(path), problem.clone());
                    }
                }
                NodeType::File => {
                    facts.files = facts.files.saturating_add(1);
                    facts.bytes = facts.bytes.saturating_add(node.size);
                    if let Some(problem) = self.content_problem(id, node) {
                        facts.add_damage(name, problem);
                    }
                }
                NodeType::Symlink | NodeType::Unknown => {}
            }
        }
        facts
    }

    /// Why a file's content cannot be restored, if it cannot.
    fn content_problem(&mut self, tree: &Id, node: &Node) -> Option<String> {
        if rules::node_defect(node).is_some() {
            return None; // reported as a damaged entry
        }
        let index = self.index;
        match rules::content_defect(node, |id| index.get(id).map(|l| l.raw_length)) {
            Ok(()) => node.content.iter().find_map(|b| self.blob_problem(b)),
            Err(ContentDefect::Missing(blob)) => self.blob_problem(&blob),
            Err(ContentDefect::Invalid(defect)) => {
                self.entry_problem(tree, node, &defect);
                Some(format!("damaged entry: {defect}"))
            }
        }
    }

    fn entry_problem(&mut self, tree: &Id, node: &Node, defect: &str) {
        self.problems.push(CheckProblem {
            kind: "damaged-entry".into(),
            object: format!("tree {tree}"),
            detail: format!("entry {:?} is {defect}", node.name),
        });
    }

    fn deep_problem(&mut self, tree: &Id) {
        if self.reported.insert(*tree) {
            self.problems.push(CheckProblem {
                kind: "damaged-tree".into(),
                object: format!("tree {tree}"),
                detail: format!(
                    "its directories nest deeper than {} levels below a snapshot's root",
                    rules::MAX_DEPTH
                ),
            });
        }
    }

    fn read_tree(&mut self, id: &Id) -> Result<Tree, String> {
        if let Some(problem) = self.blob_problem(id) {
            return Err(format!("directory listing lost: {problem}"));
        }
        self.repo.read_tree(self.index, id).map_err(|e| {
            if self.reported.insert(*id) {
                self.problems.push(CheckProblem {
                    kind: "damaged-tree".into(),
                    object: format!("tree {id}"),
                    detail: e.to_string(),
                });
            }
            format!("directory listing lost: {e}")
        })
    }

    fn blob_problem(&mut self, id: &Id) -> Option<String> {
        if let Some(problem) = self.bad_blobs.get(id) {
            return Some(format!("damaged data: {problem}"));
        }
        if self.index.get(id).is_some() {
            return None;
        }
        if let Some(pack) = self.gone.get(id) {
            self.needed_gone.insert(*pack);
            return Some(format!("pack {} holding its data is missing", pack.short()));
        }
        {
            if self.reported.insert(*id) {
                self.problems.push(CheckProblem {
                    kind: "missing-blob".into(),
                    object: format!("blob {id}"),
                    detail: "referenced by a snapshot but in no index or pack".into(),
                });
            }
            Some(format!("blob {} is missing", id.short()))
        }
    }
}

/// How a snapshot's trees contradict its summary, if they do.
fn summary_mismatch(facts: &TreeFacts, snapshot: &Snapshot) -> Option<String> {
    let s = &snapshot.summary;
    let declared_files = s
        .files_new
        .saturating_add(s.files_changed)
        .saturating_add(s.files_unmodified);
    if facts.files == declared_files && facts.dirs == s.dirs && facts.bytes == s.bytes_total {
        return None;
    }
    let more = facts.files > declared_files || facts.dirs > s.dirs || facts.bytes > s.bytes_total;
    Some(format!(
        "its trees hold {} files, {} directories and {} bytes, but its summary declares {declared_files} files, {} directories and {} bytes: the snapshot is damaged or crafted{}",
        facts.files,
        facts.dirs,
        facts.bytes,
        s.dirs,
        s.bytes_total,
        if more {
            " (trees listing subtrees many times hold more than was backed up), and restore refuses it"
        } else {
            ""
        }
    ))
}
