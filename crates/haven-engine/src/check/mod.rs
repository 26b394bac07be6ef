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
use std::sync::Mutex;

use rand::seq::SliceRandom;
use serde::Serialize;

pub(crate) mod trees;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::Index;
use crate::progress::Progress;
use crate::repo::{Repository, pack_path};
use trees::TreeWalker;

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

/// The problem kind of a private file other users can read.
pub const EXPOSED: &str = "exposed-file";

/// One problem found.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CheckProblem {
    /// Stable kind: `damaged-index`, `damaged-snapshot`, `missing-pack`,
    /// `damaged-pack`, `damaged-blob`, `missing-blob`, `damaged-tree`,
    /// `damaged-entry`, `summary-mismatch`, `exposed-file`.
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
    /// Packs index files list that are gone and that no snapshot needs
    /// (left by an interrupted prune; the next prune drops them).
    pub stale_index_entries: usize,
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

    /// True when the only problems are private files other users can read
    /// (the data itself is sound).
    pub fn only_exposed(&self) -> bool {
        !self.problems.is_empty() && self.problems.iter().all(|p| p.kind == EXPOSED)
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

        // Every indexed pack must have its indexed size. (Packs that are
        // gone are not in the index; the walk finds what needed them.)
        let on_disk: HashMap<Id, u64> = self.list_packs()?.into_iter().collect();
        for pack in index.packs() {
            match on_disk.get(&pack.id) {
                Some(&size) if size != pack.size => report.problem(
                    "damaged-pack",
                    format!("pack {}", pack.id),
                    format!("size is {size} bytes, index says {}", pack.size),
                ),
                _ => {}
            }
        }
        let gone: HashMap<Id, Id> = load
            .absent_packs
            .iter()
            .flat_map(|p| p.blobs.iter().map(move |b| (b.id, p.id)))
            .collect();
        let missing_packs: HashSet<Id> = load.absent_packs.iter().map(|p| p.id).collect();

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

        let (trees, mut problems, damaged, needed_gone) = crate::deep::on_deep_stack(|| {
            let mut walker = TreeWalker::new(self, &index, &bad_blobs, &gone);
            let mut damaged = Vec::new();
            for (id, snap) in &snapshots {
                for (path, problem) in walker.snapshot(id, snap) {
                    damaged.push(DamagedPath {
                        snapshot: id.to_hex(),
                        path,
                        problem,
                    });
                }
            }
            Ok((walker.trees(), walker.problems, damaged, walker.needed_gone))
        })?;
        report.trees = trees;
        // A pack that is gone is damage when a snapshot needed it; else
        // only its index entries are left over (prune or repair drop them).
        for pack in &load.absent_packs {
            if needed_gone.contains(&pack.id) {
                report.problem(
                    "missing-pack",
                    format!("pack {}", pack.id),
                    "pack file is missing".into(),
                );
            } else {
                report.stale_index_entries += 1;
            }
        }
        report.problems.append(&mut problems);
        report.damaged.extend(damaged);
        self.check_private_files(&mut report)?;
        Ok(report)
    }

    /// A local repository's key files (the master key, wrapped by a
    /// password: an offline guessing target) and its directory must be
    /// private to their owner.
    fn check_private_files(&self, report: &mut CheckReport) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let Some(root) = self.backend.local_root() else {
            return Ok(());
        };
        let mut exposed = |path: std::path::PathBuf, private: u32| -> Result<()> {
            let meta =
                std::fs::symlink_metadata(&path).map_err(|e| Error::io("inspect", &path, e))?;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                report.problem(
                    EXPOSED,
                    path.display().to_string(),
                    format!(
                        "mode {mode:o} lets other users read it; run `chmod {private:o} {}`",
                        path.display()
                    ),
                );
            }
            Ok(())
        };
        exposed(root.to_path_buf(), 0o700)?;
        for path in self.backend.list(crate::repo::KEY_DIR)? {
            exposed(root.join(path), 0o600)?;
        }
        Ok(())
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
        let header = match bytes.len().checked_sub(4) {
            None => Err("too small to hold a header".to_string()),
            Some(n) => {
                let len = u32::from_le_bytes([bytes[n], bytes[n + 1], bytes[n + 2], bytes[n + 3]]);
                crate::repo::pack_data_end(bytes.len() as u64, u64::from(len)).and_then(|end| {
                    crate::repo::parse_pack_header(&self.aead, &bytes[end as usize..n], end)
                        .map_err(|e| e.to_string())
                })
            }
        };
        match header {
            Ok(h) => {
                let listed: HashSet<Id> = h.blobs.iter().map(|b| b.id).collect();
                if blobs.iter().any(|(id, _)| !listed.contains(id)) {
                    problem("header does not list every indexed blob".into());
                }
            }
            Err(e) => problem(format!("header: {e}")),
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
