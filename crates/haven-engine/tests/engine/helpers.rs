//! Shared fixtures: fast repositories and tree comparison.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use haven_engine::format::ChunkerParams;
use haven_engine::{InitOptions, KdfParams, Location, Repository};

pub const PASSWORD: &[u8] = b"correct horse battery staple";

/// Small chunks and packs so small test data spans many chunks and packs;
/// cheap Argon2 so tests do not spend their time deriving keys.
pub fn test_options() -> InitOptions {
    InitOptions {
        kdf: KdfParams {
            m_cost: 1024,
            t_cost: 1,
            p_cost: 1,
        },
        compression_level: 3,
        pack_size: 256 * 1024,
        chunker: ChunkerParams {
            min_size: 4096,
            avg_size: 16384,
            max_size: 65536,
            ..ChunkerParams::default()
        },
    }
}

pub fn new_repo(dir: &Path) -> Repository {
    Repository::init(
        &Location::Local(dir.to_path_buf()),
        PASSWORD,
        &test_options(),
    )
    .expect("init repository")
}

/// Everything about an entry that a restore must reproduce.
#[derive(Debug, PartialEq, Eq)]
pub struct EntryFacts {
    pub kind: &'static str,
    pub mode: u32,
    pub mtime_ns: i64,
    pub uid: u32,
    pub gid: u32,
    pub content: Option<Vec<u8>>,
    pub target: Option<OsString>,
    /// Allocated 512-byte blocks, only compared for sparse files.
    pub sparse_blocks: Option<u64>,
}

/// Facts of every entry below `root`, keyed by relative path bytes.
/// Directory mtimes are included: restore sets them last.
pub fn snapshot_tree(root: &Path) -> BTreeMap<Vec<u8>, EntryFacts> {
    let mut out = BTreeMap::new();
    collect(root, root, &mut out);
    out
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<Vec<u8>, EntryFacts>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).expect("lstat");
        let rel = path
            .strip_prefix(root)
            .expect("under root")
            .as_os_str()
            .as_bytes()
            .to_vec();
        let ft = meta.file_type();
        let (kind, content, target) = if ft.is_dir() {
            collect(root, &path, out);
            ("dir", None, None)
        } else if ft.is_symlink() {
            (
                "symlink",
                None,
                Some(
                    std::fs::read_link(&path)
                        .expect("readlink")
                        .into_os_string(),
                ),
            )
        } else {
            ("file", Some(std::fs::read(&path).expect("read")), None)
        };
        let sparse = kind == "file" && meta.blocks() * 512 < meta.len();
        out.insert(
            rel,
            EntryFacts {
                kind,
                mode: if kind == "symlink" {
                    0
                } else {
                    meta.mode() & 0o7777
                },
                mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
                uid: meta.uid(),
                gid: meta.gid(),
                content,
                target,
                sparse_blocks: sparse.then_some(meta.blocks()),
            },
        );
    }
}

/// The restored copy of `source` inside `target` (absolute path layout).
pub fn restored_root(target: &Path, source: &Path) -> PathBuf {
    target.join(source.strip_prefix("/").expect("absolute source"))
}

/// Deterministic pseudo-random (incompressible) bytes (xorshift64).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    // Spread the seed so neighbouring seeds give unrelated streams.
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
