//! Shared fixtures: fast repositories and tree comparison.
//!
//! Every test gets its repository through [`location`] / [`new_repo`] /
//! [`open_repo`], so the whole suite runs against either backend:
//! a local directory (default), or, with `HAVEN_TEST_BACKEND=s3` and
//! `HAVEN_TEST_S3_ENDPOINT=http://127.0.0.1:PORT`, an S3-protocol server
//! (`scripts/test.sh` runs the suite both ways, against moto on loopback).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use haven_engine::ChunkerParams;
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

/// The repository location a test uses for `dir`: the directory itself,
/// or on S3 a prefix derived from it (so the same `dir` always names the
/// same repository, and every test has its own).
pub fn location(dir: &Path) -> Location {
    match std::env::var("HAVEN_TEST_BACKEND").as_deref() {
        Err(_) | Ok("local") => Location::Local(dir.to_path_buf()),
        Ok("s3") => {
            let endpoint = std::env::var("HAVEN_TEST_S3_ENDPOINT")
                .expect("HAVEN_TEST_BACKEND=s3 needs HAVEN_TEST_S3_ENDPOINT=http://host:port");
            ensure_bucket(&endpoint);
            let prefix = blake3::hash(dir.as_os_str().as_bytes()).to_hex();
            Location::S3 {
                endpoint,
                bucket: BUCKET.into(),
                prefix: format!("t/{}", &prefix[..24]),
            }
        }
        Ok(other) => panic!("HAVEN_TEST_BACKEND={other}: use local or s3"),
    }
}

const BUCKET: &str = "haven-engine-tests";

/// Create the test bucket once per process (moto accepts unsigned
/// requests; credentials come from the environment for Haven itself).
fn ensure_bucket(endpoint: &str) {
    static CREATED: std::sync::Once = std::sync::Once::new();
    CREATED.call_once(|| {
        use std::io::{Read, Write};
        let host = endpoint
            .strip_prefix("http://")
            .expect("the test S3 endpoint is plain http on loopback");
        let mut s = std::net::TcpStream::connect(host).expect("connect to the S3 endpoint");
        write!(
            s,
            "PUT /{BUCKET} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut response = String::new();
        s.read_to_string(&mut response).expect("response");
        assert!(
            response.starts_with("HTTP/1.1 200") || response.contains("BucketAlreadyOwnedByYou"),
            "create bucket: {response}"
        );
    });
}

pub fn new_repo(dir: &Path) -> Repository {
    Repository::init(&location(dir), PASSWORD, &test_options()).expect("init repository")
}

pub fn open_repo(dir: &Path) -> Repository {
    Repository::open(&location(dir), PASSWORD).expect("open repository")
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
