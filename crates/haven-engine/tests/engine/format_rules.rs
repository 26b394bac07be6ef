//! The engine checked against `docs/format.md`: a repository written by
//! Haven (backups with parents, a stream, a hold, a prune mark) is read
//! here by an independent reader written from the document alone (its own
//! envelope, key derivation and FastCDC), which checks every MUST the
//! document sets for writers, restores every file and cuts every file
//! into the chunks the snapshot lists.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use haven_engine::prune::PruneOptions;
use haven_engine::{BackupOptions, Location, NoProgress, Repository};
use serde_json::Value;

use crate::helpers::{PASSWORD, noise, test_options};

/// The largest plaintext per kind (section 4).
fn max_plaintext(aad: &str) -> usize {
    match aad {
        "haven:config" | "haven:prune-lock" => 64 << 10,
        "haven:key" => 4 << 10,
        "haven:hold" => 1 << 20,
        "haven:snapshot" | "haven:pack-header" => 64 << 20,
        _ => 256 << 20,
    }
}

/// Open an envelope (section 4), checking the writer's rules on it.
fn open(key: &[u8; 32], aad: &str, envelope: &[u8]) -> Vec<u8> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("key"));
    let (nonce, sealed) = envelope.split_at(12);
    let mut buffer = sealed.to_vec();
    let payload = key
        .open_in_place(
            Nonce::try_assume_unique_for_key(nonce).expect("nonce"),
            Aad::from(aad.as_bytes()),
            &mut buffer,
        )
        .unwrap_or_else(|_| panic!("{aad}: the tag does not verify"));
    let (mode, body) = payload.split_first().expect("a mode byte");
    let plain = match mode {
        0 => body.to_vec(),
        1 => {
            let plain = zstd::decode_all(body).expect("one zstd frame");
            assert!(
                body.len() < plain.len(),
                "{aad}: compressed though not smaller"
            );
            plain
        }
        other => panic!("{aad}: mode byte {other}"),
    };
    assert!(plain.len() <= max_plaintext(aad), "{aad}: too large");
    assert!(
        envelope.len() <= plain.len() + 29,
        "{aad}: envelope longer than plaintext + 29"
    );
    plain
}

fn b64(value: &Value) -> Vec<u8> {
    STANDARD
        .decode(value.as_str().expect("base64 string"))
        .expect("canonical base64")
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

fn u64_of(value: &Value, member: &str) -> u64 {
    value[member]
        .as_u64()
        .unwrap_or_else(|| panic!("{member} is required: {value}"))
}

/// Everything read from the repository by this reader.
struct Reader {
    root: PathBuf,
    encryption: [u8; 32],
    blob_key: [u8; 32],
    seed: u64,
    chunker: Value,
    /// blob id → (pack, offset, length, raw_length, type)
    blobs: BTreeMap<String, (String, u64, u64, u64, String)>,
}

impl Reader {
    fn open(root: &Path) -> Self {
        let wrapper = json(&std::fs::read(root.join("config")).expect("config"));
        assert_eq!(wrapper["format"], "haven-repository");
        assert_eq!(wrapper["version"], 1);
        let mut master = None;
        for entry in std::fs::read_dir(root.join("keys")).expect("keys") {
            let bytes = std::fs::read(entry.expect("entry").path()).expect("key file");
            assert!(bytes.len() <= 64 << 10);
            let key = json(&bytes);
            for member in [
                "version",
                "kind",
                "created",
                "hostname",
                "username",
                "kdf",
                "kdf_params",
                "salt",
                "master_key",
            ] {
                assert!(!key[member].is_null(), "key file lacks {member}");
            }
            assert_eq!(key["kdf"], "argon2id");
            let salt = b64(&key["salt"]);
            assert_eq!(salt.len(), 16);
            let p = &key["kdf_params"];
            let params = argon2::Params::new(
                u64_of(p, "m_cost") as u32,
                u64_of(p, "t_cost") as u32,
                u64_of(p, "p_cost") as u32,
                Some(32),
            )
            .expect("Argon2 parameters");
            let mut kek = [0u8; 32];
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(PASSWORD, &salt, &mut kek)
                .expect("derive");
            master = Some(json(&open(&kek, "haven:key", &b64(&key["master_key"]))));
        }
        let master = master.expect("a key file");
        let array = |v: &Value| -> [u8; 32] { b64(v).try_into().expect("32 bytes") };
        let encryption = array(&master["encryption"]);
        let config = json(&open(
            &encryption,
            "haven:config",
            &b64(&wrapper["encrypted"]),
        ));
        assert_eq!(config["version"], 1);
        let seed = u64_of(&master, "chunker_seed");
        assert_ne!(seed, 0);
        let mut reader = Reader {
            root: root.to_path_buf(),
            encryption,
            blob_key: array(&master["blob_id"]),
            seed,
            chunker: config["chunker"].clone(),
            blobs: BTreeMap::new(),
        };
        reader.read_index();
        reader
    }

    /// Content-addressed files of a directory: name = BLAKE3(bytes).
    fn objects(&self, dir: &str) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for entry in walkdir(&self.root.join(dir)) {
            let bytes = std::fs::read(&entry).expect("read");
            let name = entry
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            assert_eq!(
                name,
                blake3::hash(&bytes).to_hex().to_string(),
                "{}",
                entry.display()
            );
            out.push((name, bytes));
        }
        out
    }

    /// Index files (section 9), checked against the packs' headers.
    fn read_index(&mut self) {
        for (_, bytes) in self.objects("index") {
            let file = json(&open(&self.encryption, "haven:index", &bytes));
            assert_eq!(file["version"], 1);
            for pack in file["packs"].as_array().expect("packs") {
                let id = pack["id"].as_str().expect("id").to_string();
                let path = self.root.join("data").join(&id[..2]).join(&id);
                let data = std::fs::read(&path).expect("every indexed pack is there");
                assert_eq!(data.len() as u64, u64_of(pack, "size"));
                let header = self.pack_header(&data);
                assert_eq!(header["blobs"], pack["blobs"], "index and header agree");
                for blob in pack["blobs"].as_array().expect("blobs") {
                    self.blob_entry(&id, blob, &data);
                }
            }
        }
    }

    fn pack_header(&self, pack: &[u8]) -> Value {
        let n = pack.len();
        let length = u32::from_le_bytes(pack[n - 4..].try_into().expect("4 bytes")) as usize;
        assert!(length <= 64 << 20 && length + 4 <= n);
        json(&open(
            &self.encryption,
            "haven:pack-header",
            &pack[n - 4 - length..n - 4],
        ))
    }

    /// One blob entry (section 8.1), and the blob itself (section 7).
    fn blob_entry(&mut self, pack: &str, blob: &Value, data: &[u8]) {
        let (offset, length, raw) = (
            u64_of(blob, "offset"),
            u64_of(blob, "length"),
            u64_of(blob, "raw_length"),
        );
        let kind = blob["type"].as_str().expect("type").to_string();
        let max = if kind == "data" { 16 << 20 } else { 256 << 20 };
        assert!((1..=max).contains(&raw), "{blob}");
        assert!((29..=raw + 29).contains(&length), "{blob}");
        let envelope = &data[offset as usize..(offset + length) as usize];
        let plain = open(&self.encryption, "haven:blob", envelope);
        assert_eq!(plain.len() as u64, raw);
        let id = blob["id"].as_str().expect("id").to_string();
        assert_eq!(
            blake3::keyed_hash(&self.blob_key, &plain)
                .to_hex()
                .to_string(),
            id
        );
        self.blobs
            .insert(id, (pack.to_string(), offset, length, raw, kind));
    }

    fn blob(&self, id: &str) -> Vec<u8> {
        let (pack, offset, length, _, _) = &self.blobs[id];
        let data = std::fs::read(self.root.join("data").join(&pack[..2]).join(pack)).expect("pack");
        open(
            &self.encryption,
            "haven:blob",
            &data[*offset as usize..(*offset + *length) as usize],
        )
    }
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// FastCDC 2020 as section 7.1 describes it.
struct Cdc {
    gear: [u64; 256],
    gear_ls: [u64; 256],
    masks: (u64, u64),
    min: usize,
    avg: usize,
    max: usize,
}

const MASKS: [u64; 26] = [
    0,
    0,
    0,
    0,
    0,
    0x1804110,
    0x1803110,
    0x18035100,
    0x1800035300,
    0x19000353000,
    0x590003530000,
    0xd90003530000,
    0xd90103530000,
    0xd90303530000,
    0xd90313530000,
    0xd90f03530000,
    0xd90303537000,
    0xd90703537000,
    0xd90707537000,
    0xd91707537000,
    0xd91747537000,
    0xd91767537000,
    0xd93767537000,
    0xd93777537000,
    0xd93777577000,
    0xdb3777577000,
];

impl Cdc {
    fn new(chunker: &Value, seed: u64) -> Self {
        use md5::Digest as _;
        let mut gear = [0u64; 256];
        let mut gear_ls = [0u64; 256];
        for i in 0..256 {
            let digest = md5::Md5::digest([i as u8; 64]);
            let g = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
            gear[i] = g ^ seed;
            gear_ls[i] = (g << 1) ^ (seed << 1);
        }
        let avg = u64_of(chunker, "avg_size") as usize;
        let bits = (avg as f64).log2().round() as usize;
        let n = u64_of(chunker, "normalization") as usize;
        Cdc {
            gear,
            gear_ls,
            masks: (MASKS[bits + n], MASKS[bits - n]),
            min: u64_of(chunker, "min_size") as usize,
            avg,
            max: u64_of(chunker, "max_size") as usize,
        }
    }

    fn cut(&self, b: &[u8]) -> usize {
        if b.len() <= self.min {
            return b.len();
        }
        let end = b.len().min(self.max);
        let center = self.avg.min(end);
        let mut hash: u64 = 0;
        let mut i = self.min / 2;
        for (limit, mask) in [(center / 2, self.masks.0), (end / 2, self.masks.1)] {
            while i < limit {
                let a = 2 * i;
                hash = (hash << 2).wrapping_add(self.gear_ls[b[a] as usize]);
                if hash & (mask << 1) == 0 {
                    return a;
                }
                hash = hash.wrapping_add(self.gear[b[a + 1] as usize]);
                if hash & mask == 0 {
                    return a + 1;
                }
                i += 1;
            }
        }
        end
    }

    fn chunks<'a>(&self, mut data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let (chunk, rest) = data.split_at(self.cut(data));
            out.push(chunk);
            data = rest;
        }
        out
    }
}

/// Totals of a walk, compared with the summary.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    files: u64,
    dirs: u64,
    bytes: u64,
}

fn name_bytes(name: &Value) -> Vec<u8> {
    match name {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Object(o) => {
            let bytes = b64(&o["base64"]);
            assert!(
                std::str::from_utf8(&bytes).is_err(),
                "UTF-8 spelt as base64"
            );
            bytes
        }
        other => panic!("a name is a string or {{\"base64\"}}: {other}"),
    }
}

/// Walk a tree (section 10.2) and restore it under `out`, checking every
/// rule; chunks are cut again from the restored bytes.
fn walk(reader: &Reader, cdc: &Cdc, tree_id: &str, out: &Path, depth: usize, totals: &mut Totals) {
    assert!(depth <= 1024);
    let tree = json(&reader.blob(tree_id));
    let mut previous: Option<Vec<u8>> = None;
    for node in tree["nodes"].as_array().expect("nodes") {
        let name = name_bytes(&node["name"]);
        assert!(!name.is_empty() && name != b"." && name != b"..");
        assert!(!name.contains(&b'/') && !name.contains(&0) && name.len() <= 1024);
        if let Some(before) = &previous {
            assert!(*before < name, "names strictly increasing");
        }
        previous = Some(name.clone());
        for member in [
            "mode", "uid", "gid", "mtime_ns", "ctime_ns", "inode", "device",
        ] {
            assert!(node[member].is_number(), "{member} is required: {node}");
        }
        assert!(u64_of(node, "mode") <= 0o7777);
        let path = out.join(std::ffi::OsStr::from_bytes(&name));
        match node["type"].as_str().expect("type") {
            "dir" => {
                totals.dirs += 1;
                assert!(
                    node["content"].is_null() && node["size"].is_null() && node["target"].is_null()
                );
                std::fs::create_dir(&path).expect("mkdir");
                walk(
                    reader,
                    cdc,
                    node["subtree"].as_str().expect("subtree"),
                    &path,
                    depth + 1,
                    totals,
                );
            }
            "file" => {
                totals.files += 1;
                assert!(node["subtree"].is_null() && node["target"].is_null());
                let size = node["size"].as_u64().unwrap_or(0);
                let content: Vec<&str> = node["content"]
                    .as_array()
                    .map(|c| c.iter().map(|id| id.as_str().expect("id")).collect())
                    .unwrap_or_default();
                assert_eq!(size == 0, content.is_empty(), "empty files list no content");
                if !node["size"].is_null() {
                    assert_ne!(size, 0, "size is omitted when 0");
                }
                let mut bytes = Vec::new();
                for id in &content {
                    let chunk = reader.blob(id);
                    assert!(!chunk.is_empty());
                    bytes.extend(chunk);
                }
                assert_eq!(bytes.len() as u64, size, "the chunks add up to the size");
                totals.bytes += size;
                let recut: Vec<String> = cdc
                    .chunks(&bytes)
                    .iter()
                    .map(|c| blake3::keyed_hash(&reader.blob_key, c).to_hex().to_string())
                    .collect();
                assert_eq!(
                    recut,
                    content,
                    "{}: cut as section 7.1 says",
                    path.display()
                );
                std::fs::write(&path, bytes).expect("write");
            }
            "symlink" => {
                assert!(
                    node["content"].is_null()
                        && node["size"].is_null()
                        && node["subtree"].is_null()
                );
                let target = name_bytes(&node["target"]);
                assert!(!target.is_empty() && target.len() <= 4096 && !target.contains(&0));
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), &path)
                    .expect("link");
            }
            other => panic!("type {other} is not written by version 1"),
        }
    }
}

fn source_tree(root: &Path) {
    std::fs::create_dir_all(root.join("deep/er/still")).expect("mkdir");
    std::fs::write(root.join("empty"), b"").expect("write");
    std::fs::write(root.join("small.txt"), b"hello").expect("write");
    std::fs::write(root.join("large.bin"), noise(400_000, 1)).expect("write");
    std::fs::write(root.join("deep/er/still/text"), b"haven ".repeat(20_000)).expect("write");
    std::fs::write(
        root.join(std::ffi::OsStr::from_bytes(b"raw\xff\xfename")),
        b"bytes",
    )
    .expect("write");
    std::os::unix::fs::symlink("../../etc/passwd", root.join("link")).expect("link");
    for i in 0..50 {
        std::fs::write(
            root.join("deep").join(format!("f{i:02}")),
            noise(3000 + i * 97, i as u64),
        )
        .expect("write");
    }
}

fn files_of(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walkdir(root)
        .into_iter()
        .filter(|p| std::fs::symlink_metadata(p).expect("lstat").is_file())
        .map(|p| {
            (
                p.strip_prefix(root).expect("under").to_path_buf(),
                std::fs::read(&p).expect("read"),
            )
        })
        .collect()
}

#[test]
fn a_repository_haven_writes_obeys_docs_format_md() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path().join("repo");
    let repo =
        Repository::init(&Location::Local(root.clone()), PASSWORD, &test_options()).expect("init");
    let source = work.path().join("src");
    source_tree(&source);
    let first = repo
        .backup(
            std::slice::from_ref(&source),
            &BackupOptions::default(),
            &NoProgress,
        )
        .expect("backup");
    std::fs::write(source.join("small.txt"), b"changed").expect("write");
    repo.backup(
        std::slice::from_ref(&source),
        &BackupOptions::default(),
        &NoProgress,
    )
    .expect("backup");
    repo.backup_stream(
        &mut &noise(200_000, 9)[..],
        "db.dump",
        &BackupOptions::default(),
        &NoProgress,
    )
    .expect("stream");
    repo.add_hold(&first.snapshot_id, "case 1").expect("hold");
    let forgotten = repo
        .backup_stream(
            &mut &noise(100_000, 10)[..],
            "old.dump",
            &BackupOptions::default(),
            &NoProgress,
        )
        .expect("stream");
    repo.remove_snapshots(&[forgotten.snapshot_id])
        .expect("forget");
    repo.prune(
        &PruneOptions {
            grace: jiff::SignedDuration::from_hours(24),
            ..PruneOptions::default()
        },
        &NoProgress,
    )
    .expect("prune marks");

    // Local repositories are private (section 2).
    for path in walkdir(&root) {
        assert_eq!(
            std::fs::metadata(&path).expect("stat").mode() & 0o777,
            0o600,
            "{}",
            path.display()
        );
    }
    assert_eq!(
        std::fs::metadata(&root).expect("stat").permissions().mode() & 0o777,
        0o700
    );

    let reader = Reader::open(&root);
    let cdc = Cdc::new(&reader.chunker, reader.seed);
    for (_, bytes) in reader.objects("holds") {
        let hold = json(&open(&reader.encryption, "haven:hold", &bytes));
        assert_eq!(hold["version"], 1);
    }
    let marks = reader.objects("marks");
    assert_eq!(marks.len(), 1);
    let mark = json(&open(&reader.encryption, "haven:prune-mark", &marks[0].1));
    assert_eq!(mark["version"], 1);

    let snapshots = reader.objects("snapshots");
    assert_eq!(snapshots.len(), 3);
    for (id, bytes) in snapshots {
        let snapshot = json(&open(&reader.encryption, "haven:snapshot", &bytes));
        assert_eq!(snapshot["version"], 1);
        for member in ["time", "tree", "hostname", "username", "program"] {
            assert!(snapshot[member].is_string(), "{member} is required");
        }
        assert!(!snapshot["paths"].as_array().expect("paths").is_empty());
        let summary = &snapshot["summary"];
        let out = work.path().join(format!("read-{}", &id[..8]));
        std::fs::create_dir(&out).expect("mkdir");
        let mut totals = Totals::default();
        walk(
            &reader,
            &cdc,
            snapshot["tree"].as_str().expect("tree"),
            &out,
            0,
            &mut totals,
        );
        assert_eq!(
            totals,
            Totals {
                files: u64_of(summary, "files_new")
                    + u64_of(summary, "files_changed")
                    + u64_of(summary, "files_unmodified"),
                dirs: u64_of(summary, "dirs"),
                bytes: u64_of(summary, "bytes_total"),
            },
            "the summary declares what the trees hold"
        );
        let paths = snapshot["paths"].as_array().expect("paths");
        if paths[0] == "db.dump" {
            assert_eq!(
                std::fs::read(out.join("db.dump")).expect("read"),
                noise(200_000, 9)
            );
        } else {
            let restored = out.join(source.strip_prefix("/").expect("absolute"));
            let mut expected = files_of(&source);
            if id == first.snapshot_id.to_hex() {
                expected.insert(PathBuf::from("small.txt"), b"hello".to_vec());
            }
            assert_eq!(files_of(&restored), expected);
        }
    }
}

/// Section 7.1 against the engine's chunker on data and parameters it
/// was not tuned to: the document is enough to cut the same chunks.
#[test]
fn the_chunker_cuts_as_the_document_says() {
    for (min, avg, max, normalization, seed) in [
        (4096u64, 16384u64, 65536u64, 1u64, 7u64),
        (2048, 8192, 32768, 0, 123_456_789),
        (512 << 10, 1 << 20, 8 << 20, 1, u64::MAX),
        (64, 256, 1024, 3, 42),
        (1024, 3000, 8192, 2, 9),
    ] {
        let params = haven_engine::ChunkerParams {
            min_size: min as u32,
            avg_size: avg as u32,
            max_size: max as u32,
            normalization: normalization as u8,
            ..haven_engine::ChunkerParams::default()
        };
        let engine = haven_engine::testing::Chunker::new(&params, seed);
        let cdc = Cdc::new(&serde_json::to_value(&params).expect("json"), seed);
        for data in [
            noise(3 << 20, seed ^ 1),
            vec![0u8; 100_000],
            b"abc".repeat(50_000),
        ] {
            let ours: Vec<usize> = cdc.chunks(&data).iter().map(|c| c.len()).collect();
            let engine_cuts: Vec<usize> = engine.cut_points(&data).iter().map(|c| c.1).collect();
            assert_eq!(
                ours, engine_cuts,
                "min {min} avg {avg} max {max} n {normalization}"
            );
        }
    }
}
