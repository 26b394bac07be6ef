//! Verifying a repository: structure always, stored data on request.
//!
//! Structure: every index and snapshot file hashes to its name and
//! decrypts; every indexed pack exists with the indexed size; every tree
//! reachable from a snapshot decrypts and every blob it references is
//! indexed. With read-data (all or a percentage of packs), each selected
//! pack is read whole: its hash, header and every blob (AEAD tag + keyed
//! hash) are verified. Every problem is traced to the snapshots and paths
//! it affects.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;

use rand::seq::SliceRandom;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::{NodeType, Tree};
use crate::id::Id;
use crate::index::Index;
use crate::progress::Progress;
use crate::repo::{Repository, pack_path};

/// How much stored data to read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ReadData {
    /// Structure only.
    #[default]
    None,
    /// Every pack.
    All,
    /// A random share of packs, in percent (0–100).
    Subset(f64),
}

/// One problem found.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CheckProblem {
    /// Stable kind: `damaged-index`, `damaged-snapshot`, `missing-pack`,
    /// `damaged-pack`, `damaged-blob`, `missing-blob`, `damaged-tree`.
    pub kind: String,
    /// The object ("pack 1a2b3c4d", "snapshot …").
    pub object: String,
    /// What is wrong.
    pub detail: String,
}

/// A snapshot path whose data is damaged or missing.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DamagedPath {
    /// Snapshot id (full hex).
    pub snapshot: String,
    /// Path inside the snapshot.
    pub path: String,
    /// What is wrong with it.
    pub problem: String,
}

/// The result of a check.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckReport {
    /// Snapshots checked.
    pub snapshots: usize,
    /// Packs in the index.
    pub packs: usize,
    /// Distinct blobs in the index.
    pub blobs: usize,
    /// Trees walked.
    pub trees: usize,
    /// Packs read whole (read-data).
    pub packs_read: usize,
    /// Bytes read (read-data).
    pub bytes_read: u64,
    /// Packs no index lists (left by interrupted backups; reclaimable).
    pub unindexed_packs: usize,
    /// Problems found.
    pub problems: Vec<CheckProblem>,
    /// Snapshot paths affected by the problems.
    pub damaged: Vec<DamagedPath>,
}

impl CheckReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, kind: &str, object: String, detail: String) {
        self.problems.push(CheckProblem {
            kind: kind.into(),
            object,
            detail,
        });
    }
}

impl Repository {
    /// Check the repository.
    pub fn check(&self, read_data: ReadData, progress: &dyn Progress) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let (index, load) = self.load_index(true)?;
        for (id, e) in &load.damaged_index_files {
            report.problem("damaged-index", format!("index {id}"), e.clone());
        }
        for (id, e) in &load.unreadable_packs {
            report.problem(
                "damaged-pack",
                format!("pack {id}"),
                format!("not indexed and header unreadable: {e}"),
            );
        }
        report.unindexed_packs = load.unindexed_packs.len();
        report.packs = index.packs().len();
        report.blobs = index.blob_count();

        // Every indexed pack must exist with its indexed size.
        let on_disk: HashMap<Id, u64> = self.list_packs()?.into_iter().collect();
        let mut missing_packs = HashSet::new();
        for pack in index.packs() {
            match on_disk.get(&pack.id) {
                None => {
                    report.problem(
                        "missing-pack",
                        format!("pack {}", pack.id),
                        "pack file is missing".into(),
                    );
                    missing_packs.insert(pack.id);
                }
                Some(&size) if size != pack.size => report.problem(
                    "damaged-pack",
                    format!("pack {}", pack.id),
                    format!("size is {size} bytes, index says {}", pack.size),
                ),
                Some(_) => {}
            }
        }

        let bad_blobs =
            self.read_packs(&index, read_data, &missing_packs, progress, &mut report)?;

        let mut snapshots = Vec::new();
        for id in self.snapshot_ids()? {
            match self.load_snapshot(&id) {
                Ok(s) => snapshots.push((id, s)),
                Err(e) => {
                    report.problem("damaged-snapshot", format!("snapshot {id}"), e.to_string());
                    report.damaged.push(DamagedPath {
                        snapshot: id.to_hex(),
                        path: "/".into(),
                        problem: "snapshot file is damaged; the whole snapshot is unreadable"
                            .into(),
                    });
                }
            }
        }
        report.snapshots = snapshots.len();

        let mut walker = TreeWalker {
            repo: self,
            index: &index,
            bad_blobs: &bad_blobs,
            missing_packs: &missing_packs,
            memo: HashMap::new(),
            reported_blobs: HashSet::new(),
            problems: Vec::new(),
        };
        for (id, snap) in &snapshots {
            for (path, problem) in walker.damage(&snap.tree, PathBuf::from("/")) {
                report.damaged.push(DamagedPath {
                    snapshot: id.to_hex(),
                    path: path.to_string_lossy().into_owned(),
                    problem,
                });
            }
        }
        report.trees = walker.memo.len();
        report.problems.append(&mut walker.problems);
        Ok(report)
    }

    /// Read whole packs and verify them; returns damaged blob ids.
    fn read_packs(
        &self,
        index: &Index,
        read_data: ReadData,
        missing: &HashSet<Id>,
        progress: &dyn Progress,
        report: &mut CheckReport,
    ) -> Result<HashMap<Id, String>> {
        let mut packs: Vec<u32> = (0..index.packs().len() as u32)
            .filter(|p| !missing.contains(&index.pack(*p).id))
            .collect();
        match read_data {
            ReadData::None => return Ok(HashMap::new()),
            ReadData::All => {}
            ReadData::Subset(pct) => {
                if !(0.0..=100.0).contains(&pct) {
                    return Err(Error::InvalidArgument(format!(
                        "read-data subset {pct}% is not between 0 and 100"
                    )));
                }
                let count = ((packs.len() as f64) * pct / 100.0).ceil() as usize;
                packs.shuffle(&mut rand::rng());
                packs.truncate(count);
            }
        }
        let mut blobs_by_pack: HashMap<u32, Vec<(Id, crate::index::BlobLocation)>> = HashMap::new();
        for (id, loc) in index.blobs() {
            blobs_by_pack.entry(loc.pack).or_default().push((*id, *loc));
        }
        progress.set_total(packs.iter().map(|p| index.pack(*p).size).sum());
        let queue = Mutex::new(packs);
        let tally: Mutex<ReadTally> = Mutex::default();
        let fatal: Mutex<Option<Error>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    // One pack-sized buffer per worker, reused for every pack.
                    let mut buffer = Vec::new();
                    loop {
                        let Some(pack) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop()
                        else {
                            return;
                        };
                        let blobs = blobs_by_pack
                            .get(&pack)
                            .map(Vec::as_slice)
                            .unwrap_or_default();
                        match self.verify_pack(index, pack, blobs, &mut buffer) {
                            Ok(verdict) => {
                                progress.add_bytes(verdict.size);
                                progress.add_items(1);
                                let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                                t.problems.extend(verdict.problems);
                                t.bad_blobs.extend(verdict.bad_blobs);
                                t.packs += 1;
                                t.bytes += verdict.size;
                            }
                            // A pack that cannot be read whole is a finding, not
                            // a reason to stop checking the others.
                            Err(e) if e.is_integrity() => {
                                let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                                t.problems.push(CheckProblem {
                                    kind: "damaged-pack".into(),
                                    object: format!("pack {}", index.pack(pack).id),
                                    detail: e.to_string(),
                                });
                                for (id, _) in blobs {
                                    t.bad_blobs.insert(*id, format!("pack unreadable: {e}"));
                                }
                            }
                            Err(e) => {
                                fatal
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .get_or_insert(e);
                                return;
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = fatal.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        let tally = tally.into_inner().unwrap_or_else(|p| p.into_inner());
        report.problems.extend(tally.problems);
        report.packs_read = tally.packs;
        report.bytes_read = tally.bytes;
        Ok(tally.bad_blobs)
    }

    /// Verify one pack read whole: file hash, header, every indexed blob.
    fn verify_pack(
        &self,
        index: &Index,
        pack: u32,
        blobs: &[(Id, crate::index::BlobLocation)],
        buffer: &mut Vec<u8>,
    ) -> Result<PackVerdict> {
        let info = index.pack(pack);
        let object = format!("pack {}", info.id);
        self.backend
            .read_range_into(&pack_path(&info.id), 0, info.size, buffer)?;
        let bytes = buffer;
        let mut problems = Vec::new();
        let mut bad = Vec::new();
        let mut problem = |detail: String| {
            problems.push(CheckProblem {
                kind: "damaged-pack".into(),
                object: object.clone(),
                detail,
            })
        };
        if Id::of_file(bytes) != info.id {
            problem("content does not match its name (BLAKE3 mismatch)".into());
        }
        let header = (bytes.len() >= 4)
            .then(|| {
                let n = bytes.len();
                let len =
                    u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]])
                        as usize;
                (len + 4 <= n)
                    .then(|| crate::repo::parse_pack_header(&self.aead, &bytes[n - 4 - len..n - 4]))
            })
            .flatten();
        match header {
            Some(Ok(h)) => {
                let listed: HashSet<Id> = h.blobs.iter().map(|b| b.id).collect();
                if blobs.iter().any(|(id, _)| !listed.contains(id)) {
                    problem("header does not list every indexed blob".into());
                }
            }
            Some(Err(e)) => problem(format!("header: {e}")),
            None => problem("header length is invalid".into()),
        }
        for (id, loc) in blobs {
            let start = loc.offset as usize;
            let end = start + loc.length as usize;
            // Decrypted in place: the pack is not needed intact afterwards.
            let result = match bytes.get_mut(start..end) {
                Some(envelope) => self.open_blob_in_place(id, loc, envelope).map(|_| ()),
                None => Err(Error::corrupt(
                    format!("blob {}", id.short()),
                    "lies beyond the end of the pack",
                )),
            };
            if let Err(e) = result {
                bad.push((*id, format!("{e} (pack {})", info.id.short())));
                problems.push(CheckProblem {
                    kind: "damaged-blob".into(),
                    object: format!("blob {id}"),
                    detail: format!("in pack {}: {e}", info.id),
                });
            }
        }
        Ok(PackVerdict {
            problems,
            bad_blobs: bad,
            size: bytes.len() as u64,
        })
    }
}

/// What reading one pack found.
struct PackVerdict {
    problems: Vec<CheckProblem>,
    bad_blobs: Vec<(Id, String)>,
    size: u64,
}

/// Results gathered from the pack-reading workers.
#[derive(Default)]
struct ReadTally {
    problems: Vec<CheckProblem>,
    bad_blobs: HashMap<Id, String>,
    packs: usize,
    bytes: u64,
}

struct TreeWalker<'a> {
    repo: &'a Repository,
    index: &'a Index,
    bad_blobs: &'a HashMap<Id, String>,
    missing_packs: &'a HashSet<Id>,
    /// Damaged paths (relative) per tree, so shared subtrees are read once.
    memo: HashMap<Id, Vec<(PathBuf, String)>>,
    reported_blobs: HashSet<Id>,
    problems: Vec<CheckProblem>,
}

impl TreeWalker<'_> {
    /// Damaged paths under tree `id`, prefixed with `base`.
    fn damage(&mut self, id: &Id, base: PathBuf) -> Vec<(PathBuf, String)> {
        let relative = self.tree_damage(id);
        relative
            .into_iter()
            .map(|(p, problem)| {
                (
                    if p.as_os_str().is_empty() {
                        base.clone()
                    } else {
                        base.join(p)
                    },
                    problem,
                )
            })
            .collect()
    }

    fn tree_damage(&mut self, id: &Id) -> Vec<(PathBuf, String)> {
        if let Some(known) = self.memo.get(id) {
            return known.clone();
        }
        let mut found = Vec::new();
        match self.read_tree(id) {
            Err(problem) => found.push((PathBuf::new(), problem)),
            Ok(tree) => {
                for node in &tree.nodes {
                    let name = PathBuf::from(node.name.as_os_str());
                    match node.node_type {
                        NodeType::Dir => match &node.subtree {
                            Some(sub) => {
                                for (p, problem) in self.tree_damage(sub) {
                                    found.push((name.join(p), problem));
                                }
                            }
                            None => found.push((name, "directory without a subtree".into())),
                        },
                        NodeType::File => {
                            if let Some(problem) =
                                node.content.iter().find_map(|b| self.blob_problem(b))
                            {
                                found.push((name, problem));
                            }
                        }
                        NodeType::Symlink => {}
                    }
                }
            }
        }
        self.memo.insert(*id, found.clone());
        found
    }

    fn read_tree(&mut self, id: &Id) -> std::result::Result<Tree, String> {
        if let Some(problem) = self.blob_problem(id) {
            return Err(format!("directory listing lost: {problem}"));
        }
        self.repo.read_tree(self.index, id).map_err(|e| {
            if self.reported_blobs.insert(*id) {
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
        let Some(loc) = self.index.get(id) else {
            if self.reported_blobs.insert(*id) {
                self.problems.push(CheckProblem {
                    kind: "missing-blob".into(),
                    object: format!("blob {id}"),
                    detail: "referenced by a snapshot but in no index or pack".into(),
                });
            }
            return Some(format!("blob {} is missing", id.short()));
        };
        let pack = self.index.pack(loc.pack).id;
        self.missing_packs
            .contains(&pack)
            .then(|| format!("pack {} holding its data is missing", pack.short()))
    }
}
