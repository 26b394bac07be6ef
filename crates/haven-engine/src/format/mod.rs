//! The serialised shapes of repository objects (see `docs/format.md`).
//!
//! Readers ignore fields they do not know, so later versions can add fields
//! without breaking older readers; incompatible changes bump [`FORMAT_VERSION`].
//! Every object read from a repository is untrusted: [`rules`] holds the
//! format's limits and the checks applied to each object after decoding
//! and before anything is done with it.

pub mod rules;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::crypto::KdfParams;
use crate::id::Id;

/// Repository format version written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// The plaintext wrapper stored in the `config` file.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConfigFile {
    /// Always `"haven-repository"`.
    pub format: String,
    /// Format version; readers refuse versions they do not know.
    pub version: u32,
    /// Envelope (kind `config`) holding [`RepoConfig`] as JSON, base64.
    #[serde(with = "crate::crypto::b64_vec")]
    pub encrypted: Vec<u8>,
}

/// Repository-wide settings, encrypted with the master key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepoConfig {
    /// Format version (same as the wrapper's).
    pub version: u32,
    /// Random repository id.
    pub id: Id,
    /// When the repository was created.
    pub created: Timestamp,
    /// Content-defined chunking parameters (the seed is in the master key).
    pub chunker: ChunkerParams,
    /// Target size of pack files in bytes.
    pub pack_size: u64,
    /// Default zstd level for new data (0 = no compression).
    pub compression_level: i32,
}

/// FastCDC (2020) parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// Always `"fastcdc-2020"`.
    pub algorithm: String,
    /// Smallest chunk (except a file's last).
    pub min_size: u32,
    /// Target average chunk size.
    pub avg_size: u32,
    /// Largest chunk.
    pub max_size: u32,
    /// FastCDC normalisation level.
    pub normalization: u8,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            algorithm: "fastcdc-2020".into(),
            min_size: 512 * 1024,
            avg_size: 1024 * 1024,
            max_size: 8 * 1024 * 1024,
            normalization: 1,
        }
    }
}

/// Which key capabilities a key file grants. Only `full` exists today;
/// `write-only` (backup hosts that cannot read) is reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// Reads and writes everything.
    Full,
}

/// A key file under `keys/`: the master key wrapped by a password.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyFile {
    /// Key file version.
    pub version: u32,
    /// What the key can do.
    pub kind: KeyKind,
    /// When the key was added.
    pub created: Timestamp,
    /// Host that added it (informational).
    pub hostname: String,
    /// User that added it (informational).
    pub username: String,
    /// Always `"argon2id"` (version 0x13).
    pub kdf: String,
    /// Argon2id cost parameters.
    pub kdf_params: KdfParams,
    /// Argon2 salt (16 random bytes).
    #[serde(with = "crate::crypto::b64_vec")]
    pub salt: Vec<u8>,
    /// Envelope (kind `key`) holding the master key JSON, sealed with the
    /// password-derived key.
    #[serde(with = "crate::crypto::b64_vec")]
    pub master_key: Vec<u8>,
}

/// Blob types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobType {
    /// File content.
    Data,
    /// A directory listing.
    Tree,
}

/// One blob's entry in a pack header or index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedBlob {
    /// Keyed BLAKE3 of the plaintext.
    pub id: Id,
    /// Data or tree.
    #[serde(rename = "type")]
    pub blob_type: BlobType,
    /// Byte offset of the blob's envelope in the pack.
    pub offset: u32,
    /// Length of the envelope.
    pub length: u32,
    /// Length of the plaintext.
    pub raw_length: u32,
}

/// The header at the end of a pack.
#[derive(Debug, Serialize, Deserialize)]
pub struct PackHeader {
    /// Blobs in pack order.
    pub blobs: Vec<PackedBlob>,
}

/// An index file: where blobs live.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct IndexFile {
    /// Index format version.
    pub version: u32,
    /// Packs described by this index.
    pub packs: Vec<IndexedPack>,
    /// Index files this one replaces (written by prune; reserved).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supersedes: Vec<Id>,
}

/// One pack in an index file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IndexedPack {
    /// Pack id (BLAKE3 of the pack file).
    pub id: Id,
    /// Pack file size in bytes.
    pub size: u64,
    /// The pack's blobs (same as its header).
    pub blobs: Vec<PackedBlob>,
}

/// A snapshot: one point-in-time copy of some paths.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// Snapshot format version.
    pub version: u32,
    /// When the backup started.
    pub time: Timestamp,
    /// Root tree.
    pub tree: Id,
    /// Absolute paths backed up (or the stream name).
    pub paths: Vec<String>,
    /// Host the data came from.
    pub hostname: String,
    /// User that ran the backup.
    pub username: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Snapshot used to skip unchanged files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Id>,
    /// Version of the program that wrote it.
    pub program: String,
    /// Backup statistics; the totals (files, dirs, bytes) are what the
    /// snapshot's trees hold, which bounds the work of reading them.
    pub summary: SnapshotSummary,
    /// Retention lock: no command removes the snapshot (or data it needs)
    /// before this time. Part of the write-once snapshot object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_lock_until: Option<Timestamp>,
    /// For a copy made by `haven copy`: the id of the original snapshot
    /// (in the repository where the backup ran). Copying skips snapshots
    /// whose original the target already holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Id>,
}

/// A legal hold on a snapshot (`holds/<id>`): while it exists, the
/// snapshot and the data it needs cannot be removed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hold {
    /// Hold format version.
    pub version: u32,
    /// The held snapshot.
    pub snapshot: Id,
    /// Why (case, matter, ticket).
    pub reason: String,
    /// When the hold was placed.
    pub created: Timestamp,
    /// Host that placed it.
    pub hostname: String,
    /// User that placed it.
    pub username: String,
}

/// A prune mark (`marks/<id>`): packs that no snapshot needed when prune
/// looked. They are deleted only after `delete_after`, and only if no
/// snapshot needs them then; until then backups do not deduplicate
/// against them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PruneMark {
    /// Mark format version.
    pub version: u32,
    /// When the packs were marked.
    pub created: Timestamp,
    /// Not deleted before this time (`created` + the grace period).
    pub delete_after: Timestamp,
    /// The marked packs.
    pub packs: Vec<MarkedPack>,
    /// Host that ran the prune.
    pub hostname: String,
    /// User that ran the prune.
    pub username: String,
}

/// One pack of a prune mark.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MarkedPack {
    /// Pack id.
    pub id: Id,
    /// Pack size in bytes.
    pub size: u64,
    /// `unused` (no snapshot needs any of its blobs) or `repacked` (its
    /// needed blobs were copied to new packs).
    pub reason: MarkReason,
}

/// Why a pack was marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarkReason {
    /// No snapshot needed any of its blobs.
    Unused,
    /// Its needed blobs were copied into new packs.
    Repacked,
}

/// A sweep record (`sweeps/<id>`): written by a prune before it re-reads
/// the snapshots to delete the packs of due marks, so that writers that
/// ran meanwhile see which packs may be gone (see `prune::race`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepRecord {
    /// Record format version.
    pub version: u32,
    /// When the sweep began.
    pub created: Timestamp,
    /// The marks being swept.
    pub marks: Vec<Id>,
    /// Every pack the sweep may delete.
    pub packs: Vec<Id>,
    /// Host that ran the prune.
    pub hostname: String,
}

/// The prune lock (`prune.lock`): one prune at a time per repository.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PruneLock {
    /// Lock format version.
    pub version: u32,
    /// When it was taken.
    pub created: Timestamp,
    /// Host of the prune.
    pub hostname: String,
    /// Process id of the prune on that host.
    pub pid: u32,
}

/// Statistics recorded with a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    /// Files not in the parent snapshot.
    pub files_new: u64,
    /// Files whose metadata changed since the parent.
    pub files_changed: u64,
    /// Files skipped as unchanged.
    pub files_unmodified: u64,
    /// Directories.
    pub dirs: u64,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Bytes of all files in the snapshot.
    pub bytes_total: u64,
    /// Stored bytes added (after dedup, compression, encryption).
    pub bytes_added: u64,
    /// New data blobs.
    pub data_blobs_added: u64,
    /// New tree blobs.
    pub tree_blobs_added: u64,
    /// Source entries that could not be read (they are not in the snapshot).
    pub errors: u64,
    /// Wall time of the backup in milliseconds.
    pub duration_ms: u64,
}

/// A directory listing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// Entries sorted by name bytes.
    pub nodes: Vec<Node>,
}

/// Kinds of tree entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeType {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// A type this version does not know. It makes that one entry damaged
    /// (readers skip and report it), never its whole directory; it is
    /// never written.
    Unknown,
}

impl NodeType {
    /// The name used in trees.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::File => "file",
            NodeType::Dir => "dir",
            NodeType::Symlink => "symlink",
            NodeType::Unknown => "unknown",
        }
    }
}

impl Serialize for NodeType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            NodeType::Unknown => Err(serde::ser::Error::custom(
                "an entry of unknown type cannot be written",
            )),
            known => s.serialize_str(known.as_str()),
        }
    }
}

impl<'de> Deserialize<'de> for NodeType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(match name.as_ref() {
            "file" => NodeType::File,
            "dir" => NodeType::Dir,
            "symlink" => NodeType::Symlink,
            _ => NodeType::Unknown,
        })
    }
}

/// One entry of a tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// File name (exact bytes).
    pub name: NameBytes,
    /// Entry type.
    #[serde(rename = "type")]
    pub node_type: NodeType,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Status change time, nanoseconds since the Unix epoch.
    pub ctime_ns: i64,
    /// Inode number at backup time.
    pub inode: u64,
    /// Device number at backup time.
    pub device: u64,
    /// File size in bytes (files only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// The file had holes (fewer blocks allocated than its size); restore
    /// recreates holes for its all-zero blocks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sparse: bool,
    /// Content blobs in order (files only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<Id>,
    /// Subtree (directories only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<Id>,
    /// Link target (symlinks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<NameBytes>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Exact bytes of a name: a JSON string when they are UTF-8, otherwise
/// `{"base64": "…"}`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NameBytes(pub Vec<u8>);

impl NameBytes {
    /// The name as an OS string.
    pub fn as_os_str(&self) -> &OsStr {
        OsStr::from_bytes(&self.0)
    }

    /// A lossy UTF-8 rendering for messages.
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl std::fmt::Debug for NameBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.display())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum NameRepr {
    Utf8(String),
    Raw { base64: String },
}

impl Serialize for NameBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => NameRepr::Raw {
                base64: STANDARD.encode(&self.0),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for NameBytes {
    /// One spelling per name: bytes that are valid UTF-8 must be a JSON
    /// string; the base64 form is only for the others.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NameRepr::deserialize(d)? {
            NameRepr::Utf8(text) => Ok(NameBytes(text.into_bytes())),
            NameRepr::Raw { base64 } => {
                let bytes = STANDARD.decode(base64).map_err(serde::de::Error::custom)?;
                if std::str::from_utf8(&bytes).is_ok() {
                    return Err(serde::de::Error::custom(
                        "a name that is valid UTF-8 must be written as a JSON string, not as base64",
                    ));
                }
                Ok(NameBytes(bytes))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_utf8_and_raw() {
        for raw in [b"plain.txt".to_vec(), vec![0x66, 0xff, 0xfe, 0x2e]] {
            let name = NameBytes(raw.clone());
            let json = serde_json::to_string(&name).expect("serialises");
            let back: NameBytes = serde_json::from_str(&json).expect("parses");
            assert_eq!(back.0, raw);
        }
        assert_eq!(
            serde_json::to_string(&NameBytes(b"a".to_vec())).expect("ser"),
            "\"a\""
        );
        assert_eq!(
            serde_json::to_string(&NameBytes(vec![0xff])).expect("ser"),
            r#"{"base64":"/w=="}"#
        );
    }

    #[test]
    fn a_utf8_name_spelt_as_base64_is_rejected() {
        let err = serde_json::from_str::<NameBytes>(r#"{"base64":"YQ=="}"#)
            .expect_err("\"a\" must be a JSON string");
        assert!(err.to_string().contains("JSON string"), "{err}");
    }

    #[test]
    fn unknown_node_types_parse_and_are_never_written() {
        let t: NodeType = serde_json::from_str(r#""fifo""#).expect("parses");
        assert_eq!(t, NodeType::Unknown);
        assert!(serde_json::to_string(&NodeType::Unknown).is_err());
        assert_eq!(
            serde_json::to_string(&NodeType::Dir).expect("ser"),
            r#""dir""#
        );
    }
}
