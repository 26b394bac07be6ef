//! The format's rules for readers (`docs/format.md`, "Limits" and "What a
//! reader checks"). Every object decoded from a repository passes through
//! here before it is used: a repository is untrusted input (any backup
//! client holds its password), so nothing it says about names, sizes,
//! lengths or types is acted on before it is checked against the format.
//!
//! The checks are pure: they see one decoded object (and, for file
//! content, a lookup of chunk lengths) and say what is wrong in words a
//! person can act on.

use crate::crypto::{ENVELOPE_OVERHEAD, KdfParams};
use crate::format::{
    BlobType, ConfigFile, FORMAT_VERSION, Hold, IndexFile, KeyFile, Node, NodeType, PackHeader,
    PackedBlob, PruneLock, PruneMark, RepoConfig, Snapshot, SweepRecord, Tree,
};
use crate::id::Id;
pub use crate::limits::{
    MAX_DATA_BLOB, MAX_DEPTH, MAX_ENTRIES, MAX_KDF_MEMORY_KIB, MAX_LINK_TARGET, MAX_NAME,
    MAX_PACK_HEADER, MAX_PACK_SIZE, MAX_TREE_BLOB, PACK_SIZE_RANGE,
};

/// The envelope of an empty payload: nonce, mode byte, tag.
pub const MIN_ENVELOPE: usize = ENVELOPE_OVERHEAD + 1;

/// Parse a tree blob's plaintext and check its names (see [`check_tree`]).
pub fn decode_tree(plain: &[u8]) -> Result<Tree, String> {
    let tree: Tree = parse(plain)?;
    check_tree(&tree)?;
    Ok(tree)
}

/// Parse and check a snapshot's plaintext.
pub fn decode_snapshot(plain: &[u8]) -> Result<Snapshot, String> {
    let snapshot: Snapshot = parse(plain)?;
    check_snapshot(&snapshot)?;
    Ok(snapshot)
}

/// Parse and check an index file's plaintext.
pub fn decode_index_file(plain: &[u8]) -> Result<IndexFile, String> {
    let file: IndexFile = parse(plain)?;
    check_index_file(&file)?;
    Ok(file)
}

/// Parse and check a pack header's plaintext; its envelope starts at
/// `data_end` in the pack.
pub fn decode_pack_header(plain: &[u8], data_end: u64) -> Result<PackHeader, String> {
    let header: PackHeader = parse(plain)?;
    check_pack_header(&header, data_end)?;
    Ok(header)
}

/// Parse and check a key file (plaintext JSON).
pub fn decode_key_file(bytes: &[u8]) -> Result<KeyFile, String> {
    let key: KeyFile = parse(bytes)?;
    check_key_file(&key)?;
    Ok(key)
}

/// Parse the `config` file's plaintext wrapper. Its `format` and
/// `version` are for the caller to judge (a newer version is not damage).
pub fn decode_config_file(bytes: &[u8]) -> Result<ConfigFile, String> {
    parse(bytes)
}

/// Parse and check the decrypted repository settings.
pub fn decode_repo_config(plain: &[u8]) -> Result<RepoConfig, String> {
    let config: RepoConfig = parse(plain)?;
    check_config(&config)?;
    Ok(config)
}

/// Parse and check a legal hold.
pub fn decode_hold(plain: &[u8]) -> Result<Hold, String> {
    let hold: Hold = parse(plain)?;
    version_is_known("legal hold", hold.version)?;
    Ok(hold)
}

/// Parse and check a prune mark.
pub fn decode_mark(plain: &[u8]) -> Result<PruneMark, String> {
    let mark: PruneMark = parse(plain)?;
    version_is_known("prune mark", mark.version)?;
    Ok(mark)
}

/// Parse and check a sweep record.
pub fn decode_sweep_record(plain: &[u8]) -> Result<SweepRecord, String> {
    let record: SweepRecord = parse(plain)?;
    version_is_known("sweep record", record.version)?;
    Ok(record)
}

/// Parse and check the prune lock.
pub fn decode_prune_lock(plain: &[u8]) -> Result<PruneLock, String> {
    let lock: PruneLock = parse(plain)?;
    version_is_known("prune lock", lock.version)?;
    Ok(lock)
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

fn version_is_known(what: &str, version: u32) -> Result<(), String> {
    if version == FORMAT_VERSION {
        Ok(())
    } else {
        Err(newer_version(what, version))
    }
}

/// A directory listing is usable only as a whole: every name must be a
/// single path component, and names must be strictly increasing in byte
/// order (which also rules out duplicates). A tree breaking this is
/// damaged, and so is the directory it lists.
pub fn check_tree(tree: &Tree) -> Result<(), String> {
    let mut previous: Option<&[u8]> = None;
    for (position, node) in tree.nodes.iter().enumerate() {
        let name = node.name.0.as_slice();
        check_name(name).map_err(|why| format!("entry {position} ({:?}) {why}", node.name))?;
        if let Some(before) = previous {
            if before == name {
                return Err(format!(
                    "two entries are named {:?}: names in a directory must be unique",
                    node.name
                ));
            }
            if before > name {
                return Err(format!(
                    "entries are not in byte order: {:?} comes after {:?}",
                    node.name,
                    String::from_utf8_lossy(before)
                ));
            }
        }
        previous = Some(name);
    }
    Ok(())
}

/// A name must be one path component: not empty, not `.` or `..`, with
/// no `/` and no NUL byte, at most [`MAX_NAME`] bytes.
pub fn check_name(name: &[u8]) -> Result<(), String> {
    if name.is_empty() {
        return Err("has an empty name".into());
    }
    if name == b"." || name == b".." {
        return Err("is named like a directory's self or parent link".into());
    }
    if name.contains(&b'/') {
        return Err("has a `/` in its name".into());
    }
    if name.contains(&0) {
        return Err("has a NUL byte in its name".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "has a name of {} bytes (at most {MAX_NAME})",
            name.len()
        ));
    }
    Ok(())
}

/// What is wrong with one entry's own fields, if anything. Such an entry
/// is damaged (readers skip and report it); the rest of its directory is
/// not affected.
pub fn node_defect(node: &Node) -> Option<String> {
    if node.mode > 0o7777 {
        return Some(format!(
            "mode {:o} has bits outside the permission bits (0o7777)",
            node.mode
        ));
    }
    let has_content = !node.content.is_empty() || node.size != 0 || node.sparse;
    match node.node_type {
        NodeType::Unknown => {
            Some("its type is not one this version knows (file, dir or symlink)".into())
        }
        NodeType::File => {
            if node.subtree.is_some() || node.target.is_some() {
                Some("a file with a subtree or a link target".into())
            } else if node.size == 0 && !node.content.is_empty() {
                Some("an empty file (size 0) that lists content: empty files list none".into())
            } else if node.size > 0 && node.content.is_empty() {
                Some(format!(
                    "a file of {} bytes that lists no content",
                    node.size
                ))
            } else {
                None
            }
        }
        NodeType::Dir => {
            if node.subtree.is_none() {
                Some("a directory without a subtree".into())
            } else if has_content || node.target.is_some() {
                Some("a directory with file content or a link target".into())
            } else {
                None
            }
        }
        NodeType::Symlink => match &node.target {
            None => Some("a symlink without a target".into()),
            Some(_) if has_content || node.subtree.is_some() => {
                Some("a symlink with file content or a subtree".into())
            }
            Some(target) => check_link_target(&target.0).err(),
        },
    }
}

fn check_link_target(target: &[u8]) -> Result<(), String> {
    if target.is_empty() {
        Err("a symlink with an empty target".into())
    } else if target.contains(&0) {
        Err("a symlink whose target has a NUL byte".into())
    } else if target.len() > MAX_LINK_TARGET {
        Err(format!(
            "a symlink target of {} bytes (at most {MAX_LINK_TARGET})",
            target.len()
        ))
    } else {
        Ok(())
    }
}

/// Why a file's content cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContentDefect {
    /// A chunk is in no index and no pack.
    Missing(Id),
    /// The content contradicts the format.
    Invalid(String),
}

/// Check a file's content against its size. `chunk_length` looks a blob
/// up: its plaintext length, or `None` when it is not stored. A file's
/// bytes are the concatenation of its chunks, so their lengths must add
/// up to `size` exactly (neither is trusted to win), and no chunk is
/// empty (an empty file lists no content). A blob's id does not depend
/// on its type, so content may use a blob stored as a tree: its bytes
/// are the same.
pub fn content_defect(
    node: &Node,
    chunk_length: impl Fn(&Id) -> Option<u32>,
) -> Result<(), ContentDefect> {
    let mut total: u64 = 0;
    for id in &node.content {
        let length = chunk_length(id).ok_or(ContentDefect::Missing(*id))?;
        if length == 0 {
            return Err(ContentDefect::Invalid(format!(
                "chunk {} is empty (files list only non-empty chunks)",
                id.short()
            )));
        }
        total += u64::from(length);
    }
    if total != node.size {
        return Err(ContentDefect::Invalid(format!(
            "its size is {} bytes but its chunks hold {total} bytes",
            node.size
        )));
    }
    Ok(())
}

/// Check one blob entry of a pack header or index file. `data_end` is
/// where the pack's blobs end (its header starts), when known.
pub fn check_packed_blob(blob: &PackedBlob, data_end: Option<u64>) -> Result<(), String> {
    let id = blob.id.short();
    let max = match blob.blob_type {
        BlobType::Data => MAX_DATA_BLOB,
        BlobType::Tree => MAX_TREE_BLOB,
    };
    if blob.raw_length > max {
        return Err(format!(
            "blob {id} claims {} bytes, above the {max}-byte limit for its type",
            blob.raw_length
        ));
    }
    let length = u64::from(blob.length);
    if length < MIN_ENVELOPE as u64 {
        return Err(format!(
            "blob {id} is stored in {length} bytes, fewer than an envelope needs ({MIN_ENVELOPE})"
        ));
    }
    // Writers store a blob raw when compressing does not make it smaller.
    if length > u64::from(blob.raw_length) + MIN_ENVELOPE as u64 {
        return Err(format!(
            "blob {id} is stored in {length} bytes, more than its {} bytes of content need",
            blob.raw_length
        ));
    }
    let end = u64::from(blob.offset) + length;
    match data_end {
        Some(limit) if end > limit => Err(format!(
            "blob {id} ends at byte {end}, past the end of the pack's blobs ({limit})"
        )),
        _ => Ok(()),
    }
}

/// Check a decoded pack header: `data_end` is where its envelope starts.
pub fn check_pack_header(header: &PackHeader, data_end: u64) -> Result<(), String> {
    header
        .blobs
        .iter()
        .try_for_each(|b| check_packed_blob(b, Some(data_end)))
}

/// Check a decoded index file.
pub fn check_index_file(file: &IndexFile) -> Result<(), String> {
    if file.version != FORMAT_VERSION {
        return Err(newer_version("index file", file.version));
    }
    for pack in &file.packs {
        if pack.size > MAX_PACK_SIZE || pack.size < 4 {
            return Err(format!(
                "pack {} has a size of {} bytes (packs are 4 bytes to 4 GiB)",
                pack.id.short(),
                pack.size
            ));
        }
        for blob in &pack.blobs {
            check_packed_blob(blob, Some(pack.size - 4))
                .map_err(|e| format!("pack {}: {e}", pack.id.short()))?;
        }
    }
    Ok(())
}

/// Check a decoded snapshot.
pub fn check_snapshot(snapshot: &Snapshot) -> Result<(), String> {
    if snapshot.version != FORMAT_VERSION {
        return Err(newer_version("snapshot", snapshot.version));
    }
    if snapshot.paths.is_empty() {
        return Err("it lists no backed-up paths".into());
    }
    let entries = declared_entries(snapshot);
    if entries > MAX_ENTRIES {
        return Err(format!(
            "its summary declares {entries} entries, more than a snapshot may hold ({MAX_ENTRIES})"
        ));
    }
    Ok(())
}

/// Files and directories a snapshot's summary says its trees hold.
pub fn declared_entries(snapshot: &Snapshot) -> u64 {
    let s = &snapshot.summary;
    s.files_new
        .saturating_add(s.files_changed)
        .saturating_add(s.files_unmodified)
        .saturating_add(s.dirs)
}

/// Check a decoded key file before deriving anything from it: Argon2's
/// memory cost is allocated as asked, so it is bounded first.
pub fn check_key_file(key: &KeyFile) -> Result<(), String> {
    if key.version != FORMAT_VERSION {
        return Err(newer_version("key file", key.version));
    }
    if key.kdf != "argon2id" {
        return Err(format!("its key derivation {:?} is not argon2id", key.kdf));
    }
    if key.salt.len() != 16 {
        return Err(format!("its salt is {} bytes, not 16", key.salt.len()));
    }
    check_kdf(&key.kdf_params)
}

/// Argon2id costs a key file may ask for.
pub fn check_kdf(p: &KdfParams) -> Result<(), String> {
    if p.m_cost > MAX_KDF_MEMORY_KIB
        || !(1..=64).contains(&p.p_cost)
        || !(1..=100).contains(&p.t_cost)
    {
        return Err(format!(
            "its Argon2id costs (memory {} KiB, {} passes, {} lanes) are outside the format's limits (at most {MAX_KDF_MEMORY_KIB} KiB, 100 passes, 64 lanes)",
            p.m_cost, p.t_cost, p.p_cost
        ));
    }
    Ok(())
}

/// Check the decrypted repository settings.
pub fn check_config(config: &RepoConfig) -> Result<(), String> {
    if config.version != FORMAT_VERSION {
        return Err(newer_version("config", config.version));
    }
    if !PACK_SIZE_RANGE.contains(&config.pack_size) {
        return Err(format!(
            "its pack size of {} bytes is outside {} to {} bytes",
            config.pack_size,
            PACK_SIZE_RANGE.start(),
            PACK_SIZE_RANGE.end()
        ));
    }
    if !(0..=22).contains(&config.compression_level) {
        return Err(format!(
            "its compression level {} is not a zstd level (0 to 22)",
            config.compression_level
        ));
    }
    Ok(())
}

fn newer_version(what: &str, found: u32) -> String {
    format!("the {what} is format version {found}; this haven reads version {FORMAT_VERSION}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::NameBytes;

    fn node(name: &[u8], node_type: NodeType) -> Node {
        Node {
            name: NameBytes(name.to_vec()),
            node_type,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            inode: 0,
            device: 0,
            size: 0,
            sparse: false,
            content: Vec::new(),
            subtree: None,
            target: None,
        }
    }

    #[test]
    fn names_must_be_single_components_in_strict_byte_order() {
        let tree = |names: &[&[u8]]| Tree {
            nodes: names.iter().map(|n| node(n, NodeType::File)).collect(),
        };
        assert!(check_tree(&tree(&[b"a", b"b", b"\xff"])).is_ok());
        for (names, why) in [
            (&[b"a".as_slice(), b"a"][..], "two entries"),
            (&[b"b", b"a"], "byte order"),
            (&[b""], "empty name"),
            (&[b".."], "parent link"),
            (&[b"."], "self"),
            (&[b"x/y"], "`/`"),
            (&[b"x\0"], "NUL"),
        ] {
            let err = check_tree(&tree(names)).expect_err("rejected");
            assert!(err.contains(why), "{names:?}: {err}");
        }
    }

    #[test]
    fn sizes_must_equal_the_chunks() {
        let mut file = node(b"f", NodeType::File);
        file.size = 10;
        file.content = vec![Id([1; 32]), Id([2; 32])];
        let lengths = |id: &Id| Some(if id.0[0] == 1 { 4 } else { 6 });
        assert_eq!(content_defect(&file, lengths), Ok(()));
        file.size = 1 << 62;
        assert!(matches!(
            content_defect(&file, lengths),
            Err(ContentDefect::Invalid(e)) if e.contains("chunks hold 10 bytes")
        ));
        assert_eq!(
            content_defect(&file, |_| None),
            Err(ContentDefect::Missing(Id([1; 32])))
        );
        file.size = 0;
        file.content.clear();
        assert_eq!(node_defect(&file), None);
        file.content.push(Id([1; 32]));
        assert!(node_defect(&file).is_some_and(|e| e.contains("empty file")));
    }

    #[test]
    fn blob_entries_are_bounded() {
        let blob = |raw_length: u32, length: u32| PackedBlob {
            id: Id([0; 32]),
            blob_type: BlobType::Data,
            offset: 0,
            length,
            raw_length,
        };
        assert!(check_packed_blob(&blob(100, 129), Some(129)).is_ok());
        assert!(
            check_packed_blob(&blob(100, 130), None).is_err(),
            "too long"
        );
        assert!(
            check_packed_blob(&blob(100, 129), Some(128)).is_err(),
            "past the end"
        );
        assert!(check_packed_blob(&blob(MAX_DATA_BLOB + 1, 40), None).is_err());
        assert!(
            check_packed_blob(&blob(0, 10), None).is_err(),
            "shorter than an envelope"
        );
    }
}
