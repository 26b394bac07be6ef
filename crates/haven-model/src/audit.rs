//! The audit log, decided without I/O: what an entry is, how it becomes a
//! leaf of an append-only Merkle tree (RFC 6962 hashing: a leaf is
//! SHA-256(0x00 ‖ entry), a node SHA-256(0x01 ‖ left ‖ right)), how the
//! tree head is written as a C2SP `tlog-checkpoint` signed note, and how
//! a log is checked against its signed checkpoints: an edited, inserted,
//! deleted or reordered entry, and a truncated or rebuilt log, are found
//! and the first bad entry named.
//!
//! Each entry carries its own number, and each stored row its leaf hash:
//! a row edited, swapped or renumbered by hand says so itself. Whatever
//! the tamperer also rewrote, the first signed checkpoint whose root no
//! longer matches the entries names the first bad entry: the one after
//! the last checkpoint that still matches (Haven signs one per entry). Checkpoints kept
//! outside the database (the SIEM export, repositories) catch a log that
//! was truncated or rebuilt with its own checkpoints deleted.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
pub use tlog_tiles::Hash;
use tlog_tiles::{HashReader, record_hash, stored_hash_count, tree_hash};

/// Row problems listed one by one; the rest are counted.
const ROW_PROBLEMS: usize = 10;
/// Problems listed in all (earliest first); the rest are counted.
const MAX_PROBLEMS: usize = 20;

/// One entry: who did what to what, when, from where, with what outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Entry {
    /// Its number in the log (0 first): its leaf index.
    pub seq: u64,
    /// When.
    pub at: Timestamp,
    /// Who: a person (`local:ana`), a token, or Haven's own automation
    /// (`haven`).
    pub actor: String,
    /// The role they acted in, once roles exist.
    pub role: Option<String>,
    /// What (`recovery.start`, `alert.acknowledge`, …).
    pub action: String,
    /// What it was done to (`recovery:3`, `alert:12`).
    pub target: String,
    /// From where (`cli`, `api 127.0.0.1`, `scheduler`).
    pub origin: String,
    /// `success`, `refused`, `failed`.
    pub outcome: String,
    /// SHA-256 of the request, hex (what was asked, without secrets).
    pub digest: Option<String>,
}

impl Entry {
    /// The bytes its leaf hashes: its JSON, fields in declaration order.
    pub fn leaf_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Its leaf hash.
    pub fn leaf(&self) -> Hash {
        record_hash(&self.leaf_bytes())
    }
}

/// The digest of a request, for an entry (hex SHA-256 of its JSON).
pub fn digest_of<T: Serialize>(request: &T) -> String {
    use sha2::Digest as _;
    let bytes = serde_json::to_vec(request).unwrap_or_default();
    hex_of(&sha2::Sha256::digest(&bytes))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stored hashes of a tree being built leaf by leaf (in memory).
#[derive(Clone, Debug, Default)]
pub struct Tree {
    hashes: Vec<Hash>,
    size: u64,
}

impl HashReader for Tree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.hashes.get(i).copied())
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

impl Tree {
    /// Add the next leaf.
    pub fn push(&mut self, leaf: Hash) {
        let stored = tlog_tiles::stored_hashes_for_record_hash(self.size, leaf, self)
            .expect("the tree holds every hash it stored");
        self.hashes.extend(stored);
        self.size += 1;
        debug_assert_eq!(self.hashes.len() as u64, stored_hash_count(self.size));
    }

    /// How many leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root of its first `size` leaves.
    pub fn root(&self, size: u64) -> Option<Hash> {
        (size <= self.size)
            .then(|| tree_hash(size, self).ok())
            .flatten()
    }
}

/// The checkpoint text for a tree head (C2SP tlog-checkpoint).
pub fn checkpoint_text(origin: &str, size: u64, root: Hash) -> Result<Vec<u8>, String> {
    tlog_tiles::Checkpoint::new(origin, size, root, "")
        .map(|c| c.to_bytes())
        .map_err(|_| format!("{origin:?} cannot name a log (an empty origin?)"))
}

/// A signed checkpoint as found somewhere (the database, the export, a
/// repository).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchored {
    /// Where it was found.
    pub place: String,
    /// The signed note.
    pub note: String,
}

/// One problem `verify` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Problem {
    /// The first entry it concerns (the first bad entry), if one can be
    /// named.
    pub first_bad: Option<u64>,
    /// What is wrong, in words.
    pub detail: String,
}

/// What `verify` found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Verification {
    /// Entries read.
    pub entries: u64,
    /// Checkpoints whose signature and root held.
    pub checkpoints_ok: u64,
    /// The largest size a valid checkpoint covers.
    pub covered: u64,
    /// What is wrong (empty: the log is intact).
    pub problems: Vec<Problem>,
}

impl Verification {
    /// The first bad entry, if any problem names one.
    pub fn first_bad(&self) -> Option<u64> {
        self.problems.iter().filter_map(|p| p.first_bad).min()
    }
}

/// Check a log: `rows` are `(row number, entry, stored leaf)` in row
/// order; `checkpoints` every signed checkpoint found, verified with
/// `verifier_key` (a signed-note verifier key) for `origin`.
pub fn verify(
    rows: &[(u64, Entry, Hash)],
    checkpoints: &[Anchored],
    verifier_key: &str,
    origin: &str,
) -> Verification {
    let (tree, mut problems) = rows_to_tree(rows);
    // One gap or shift makes every later row look wrong: the first few.
    cap(&mut problems, ROW_PROBLEMS, "entries out of place");
    let mut out = Verification {
        entries: rows.len() as u64,
        problems,
        ..Verification::default()
    };
    let verifier = match verifier_for(verifier_key) {
        Ok(v) => v,
        Err(detail) => {
            out.problems.push(Problem {
                first_bad: None,
                detail,
            });
            return out;
        }
    };
    let mut heads = Vec::new();
    for anchored in checkpoints {
        match checked_head(anchored, &verifier, origin) {
            Ok((size, root)) => heads.push((size, root, anchored.place.clone())),
            Err(detail) => out.problems.push(Problem {
                first_bad: None,
                detail: format!("checkpoint in {}: {detail}", anchored.place),
            }),
        }
    }
    check_heads(&tree, heads, &mut out);
    // Earliest first (those naming no entry last), the first few only.
    out.problems
        .sort_by_key(|p| (p.first_bad.is_none(), p.first_bad.unwrap_or(0)));
    cap(&mut out.problems, MAX_PROBLEMS, "problems");
    if out.covered < out.entries {
        out.problems.push(Problem {
            first_bad: Some(out.covered),
            detail: format!(
                "entries from {} on are covered by no signed checkpoint (every entry gets one as it is written): checkpoints were removed, or entries added behind Haven's back",
                out.covered
            ),
        });
    }
    out
}

/// The tree of the entries as they are now, and the rows that give
/// themselves away: a missing number, an entry in another's place, a
/// record that no longer matches its stored leaf.
fn rows_to_tree(rows: &[(u64, Entry, Hash)]) -> (Tree, Vec<Problem>) {
    let mut tree = Tree::default();
    let mut problems = Vec::new();
    for (position, (row, entry, stored)) in rows.iter().enumerate() {
        let position = position as u64;
        let detail = if *row != position {
            Some(format!(
                "entry {position} is missing: the next row is numbered {row} (deleted, or renumbered)"
            ))
        } else if entry.seq != position {
            Some(format!(
                "entry {position} says it is entry {} (moved or inserted)",
                entry.seq
            ))
        } else if entry.leaf() != *stored {
            Some(format!(
                "entry {position} was changed after it was written (its leaf hash no longer matches)"
            ))
        } else {
            None
        };
        problems.extend(detail.map(|detail| Problem {
            first_bad: Some(position),
            detail,
        }));
        tree.push(entry.leaf());
    }
    (tree, problems)
}

/// Each verified checkpoint against the tree: a root that matches
/// vouches for the entries up to its size; a bad one points after the
/// largest good checkpoint below it (two valid checkpoints of one size
/// that disagree: the log was rebuilt); one larger than the log means it
/// was truncated.
fn check_heads(tree: &Tree, mut heads: Vec<(u64, Hash, String)>, out: &mut Verification) {
    heads.sort_by_key(|(size, _, _)| *size);
    let good: Vec<u64> = heads
        .iter()
        .filter(|(size, root, _)| tree.root(*size) == Some(*root))
        .map(|(size, _, _)| *size)
        .collect();
    let vouched_below = |size: u64| {
        good.iter()
            .copied()
            .filter(|g| *g < size)
            .max()
            .unwrap_or(0)
    };
    for (size, root, place) in heads {
        match tree.root(size) {
            None => out.problems.push(Problem {
                first_bad: Some(tree.size()),
                detail: format!(
                    "the log holds {} entries, but a checkpoint signed for {size} entries is in {place}: entries {}..{} are gone (truncated)",
                    tree.size(),
                    tree.size(),
                    size - 1
                ),
            }),
            Some(now) if now != root => {
                let from = vouched_below(size);
                out.problems.push(Problem {
                    first_bad: Some(from),
                    detail: format!(
                        "the first {size} entries no longer hash to the root signed in {place}: entry {from} (or one after it, up to {}) was changed, inserted, removed or reordered",
                        size - 1
                    ),
                });
            }
            Some(_) => {
                out.checkpoints_ok += 1;
                out.covered = out.covered.max(size);
            }
        }
    }
}

/// Keep the first `max` problems and say how many more there were.
fn cap(problems: &mut Vec<Problem>, max: usize, what: &str) {
    if problems.len() > max {
        let more = problems.len() - max;
        problems.truncate(max);
        problems.push(Problem {
            first_bad: None,
            detail: format!("… and {more} more {what}"),
        });
    }
}

/// The signed-note verifier of the log's public key.
fn verifier_for(verifier_key: &str) -> Result<signed_note::VerifierList, String> {
    signed_note::StandardVerifier::new(verifier_key)
        .map(|v| signed_note::VerifierList::new(vec![Box::new(v)]))
        .map_err(|e| format!("the log's public key cannot be read: {e}"))
}

/// A checkpoint's size and root, its signature and origin checked.
fn checked_head(
    anchored: &Anchored,
    verifier: &signed_note::VerifierList,
    origin: &str,
) -> Result<(u64, Hash), String> {
    let note = signed_note::Note::from_bytes(anchored.note.as_bytes())
        .map_err(|e| format!("not a signed note: {e}"))?;
    note.verify(verifier)
        .map_err(|e| format!("its signature does not verify with the log's key: {e}"))?;
    let head = tlog_tiles::Checkpoint::from_bytes(note.text())
        .map_err(|_| "not a tlog checkpoint".to_string())?;
    if head.origin() != origin {
        return Err(format!(
            "it is for the log {:?}, not {origin:?}",
            head.origin()
        ));
    }
    Ok((head.size(), *head.hash()))
}

/// The format name of an export.
pub const EXPORT_FORMAT: &str = "haven-audit-export/1";

/// Entries with inclusion proofs and the signed checkpoint they are
/// proved against: verifiable offline, without the database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Export {
    /// [`EXPORT_FORMAT`].
    pub format: String,
    /// The log's public key (compare it with the published one).
    pub verifier_key: String,
    /// The signed checkpoint every proof leads to.
    pub checkpoint: String,
    /// The entries.
    pub entries: Vec<ExportedEntry>,
}

/// One entry of an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExportedEntry {
    /// Its number (leaf index).
    pub seq: u64,
    /// The exact bytes its leaf hashes (the entry's JSON).
    pub record: String,
    /// The inclusion proof (RFC 6962 audit path, base64 hashes).
    pub proof: Vec<String>,
}

impl Tree {
    /// The inclusion proof of leaf `n` in the tree of the first `size`
    /// leaves.
    pub fn prove(&self, size: u64, n: u64) -> Result<Vec<String>, String> {
        tlog_tiles::prove_record(size, n, self)
            .map(|p| p.iter().map(|h| h.to_string()).collect())
            .map_err(|e| format!("cannot prove entry {n} in {size}: {e}"))
    }
}

/// What an export proved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportCheck {
    /// The entries proved included in the signed log.
    pub entries: u64,
    /// The checkpoint's tree size.
    pub size: u64,
    /// The key it was checked with.
    pub verifier_key: String,
}

/// Check an export offline: the checkpoint's signature with
/// `verifier_key` (else the key the export carries), and every entry's
/// inclusion proof against the checkpoint's root.
pub fn check_export(export: &Export, verifier_key: Option<&str>) -> Result<ExportCheck, String> {
    if export.format != EXPORT_FORMAT {
        return Err(format!(
            "not a Haven audit export (format {:?}, expected {EXPORT_FORMAT:?})",
            export.format
        ));
    }
    let key = verifier_key.unwrap_or(&export.verifier_key);
    let list = verifier_for(key)?;
    let (size, root) = checked_head(
        &Anchored {
            place: "the export".into(),
            note: export.checkpoint.clone(),
        },
        &list,
        &origin_of_key(key),
    )
    .map_err(|e| format!("the export's checkpoint: {e}"))?;
    for entry in &export.entries {
        let parsed: Entry = serde_json::from_str(&entry.record)
            .map_err(|e| format!("entry {}: not an audit entry: {e}", entry.seq))?;
        if parsed.seq != entry.seq {
            return Err(format!(
                "entry {} says it is entry {}",
                entry.seq, parsed.seq
            ));
        }
        // An audit path is at most one hash per level of the tree.
        if entry.proof.len() > 64 {
            return Err(format!("entry {}: its proof is too long", entry.seq));
        }
        let proof = entry
            .proof
            .iter()
            .map(|h| Hash::parse_hash(h))
            .collect::<Result<Vec<Hash>, _>>()
            .map_err(|e| format!("entry {}: a proof hash cannot be read: {e}", entry.seq))?;
        let leaf = record_hash(entry.record.as_bytes());
        tlog_tiles::check_record(&proof, size, root, entry.seq, leaf).map_err(|_| {
            format!(
                "entry {} is not in the log signed at {size} entries (changed, or not the log's)",
                entry.seq
            )
        })?;
    }
    Ok(ExportCheck {
        entries: export.entries.len() as u64,
        size,
        verifier_key: key.to_string(),
    })
}

/// A log's name in its checkpoints: its key's name.
pub fn origin_of_key(verifier_key: &str) -> String {
    verifier_key
        .split('+')
        .next()
        .unwrap_or("haven-audit")
        .to_string()
}
