//! Opening, creating and reading a repository.

use std::collections::HashSet;
use std::sync::Arc;

use jiff::Timestamp;

use crate::backend::{Backend, Location};
use crate::crypto::{AeadKey, KdfParams, MasterKey, ObjectKind, random_bytes};
use crate::error::{Error, Result};
use crate::format::{
    ChunkerParams, ConfigFile, FORMAT_VERSION, IndexFile, IndexedPack, KeyFile, KeyKind,
    PackHeader, RepoConfig, Snapshot, Tree, rules,
};
use crate::id::Id;
use crate::index::{BlobLocation, Index};
pub use crate::layout::{CONFIG_FILE, DATA_DIR, INDEX_DIR, KEY_DIR, SNAPSHOT_DIR, pack_path};

/// Options for creating a repository.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Argon2id cost of the first key.
    pub kdf: KdfParams,
    /// Default zstd level (0 disables compression).
    pub compression_level: i32,
    /// Target pack size in bytes.
    pub pack_size: u64,
    /// Chunking parameters.
    pub chunker: ChunkerParams,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            kdf: KdfParams::default(),
            compression_level: 3,
            pack_size: 16 * 1024 * 1024,
            chunker: ChunkerParams::default(),
        }
    }
}

/// An open repository: backend plus decrypted keys and settings.
#[derive(Clone)]
pub struct Repository {
    pub(crate) backend: Backend,
    pub(crate) master: Arc<MasterKey>,
    pub(crate) aead: AeadKey,
    pub(crate) config: RepoConfig,
    /// The key file this handle was opened with.
    pub(crate) key_id: Id,
}

/// The snapshot files of a repository, as read by
/// [`Repository::snapshot_list`].
#[derive(Debug, Default)]
pub struct SnapshotList {
    /// Readable snapshots, oldest first.
    pub snapshots: Vec<(Id, Snapshot)>,
    /// Snapshot files that cannot be read, with the reason.
    pub unreadable: Vec<(Id, String)>,
}

/// The index files in force, as loaded by [`Repository::load_index_files`].
#[derive(Debug, Default)]
pub struct IndexFiles {
    /// Readable, not superseded index files.
    pub files: Vec<(Id, IndexFile)>,
    /// Index files still present though another one supersedes them
    /// (left by an interrupted prune).
    pub superseded: Vec<Id>,
    /// Damaged files and unindexed packs.
    pub report: IndexLoadReport,
    /// Packs on storage (listed only when unindexed packs were looked for).
    pub present: Option<HashSet<Id>>,
}

impl IndexFiles {
    /// Packs the index files list that storage does not hold (deleted by
    /// a prune after a writer indexed them): nothing may rely on them.
    pub fn absent_packs(&self) -> HashSet<Id> {
        let Some(present) = &self.present else {
            return HashSet::new();
        };
        self.files
            .iter()
            .flat_map(|(_, f)| f.packs.iter().map(|p| p.id))
            .filter(|id| !present.contains(id))
            .collect()
    }
}

impl IndexFiles {
    /// The blobs of all listed and unindexed packs, except those in
    /// `exclude`.
    pub fn to_index(&self, exclude: &HashSet<Id>) -> Index {
        let mut index = Index::default();
        let packs = self
            .files
            .iter()
            .flat_map(|(_, f)| f.packs.iter())
            .chain(self.report.unindexed_packs.iter());
        for pack in packs.filter(|p| !exclude.contains(&p.id)) {
            index.add_pack(pack.id, pack.size, &pack.blobs);
        }
        index
    }
}

/// What loading the index found besides the blobs.
#[derive(Debug, Default)]
pub struct IndexLoadReport {
    /// Index files that failed their hash or decryption, with the reason.
    pub damaged_index_files: Vec<(Id, String)>,
    /// Packs in `data/` that no index lists (left by an interrupted backup
    /// or a damaged index); their headers were read and their blobs added.
    pub unindexed_packs: Vec<IndexedPack>,
    /// Unindexed packs whose header could not be read.
    pub unreadable_packs: Vec<(Id, String)>,
    /// Packs index files list that storage no longer holds (when storage
    /// was listed). Their blobs are not in the index: nothing is read
    /// from, or deduplicated against, a pack that is gone.
    pub absent_packs: Vec<IndexedPack>,
}

impl Repository {
    /// Create a repository at `location`, protected by `password`.
    pub fn init(location: &Location, password: &[u8], options: &InitOptions) -> Result<Self> {
        if password.is_empty() {
            return Err(Error::InvalidArgument(
                "the repository password must not be empty".into(),
            ));
        }
        validate_chunker(&options.chunker)?;
        let backend = Backend::connect(location, true)?;
        if backend.exists(CONFIG_FILE)? {
            return Err(Error::RepositoryExists {
                location: location.to_string(),
            });
        }
        let master = MasterKey::generate();
        let mut repo_id = [0u8; 32];
        random_bytes(&mut repo_id);
        let config = RepoConfig {
            version: FORMAT_VERSION,
            id: Id(repo_id),
            created: Timestamp::now(),
            chunker: options.chunker.clone(),
            pack_size: options.pack_size,
            compression_level: options.compression_level,
        };
        let mut repo = Repository {
            backend,
            aead: master.aead(),
            master: Arc::new(master),
            config,
            key_id: Id([0; 32]),
        };
        repo.key_id = repo.add_key(password, options.kdf)?;
        let config_json = serde_json::to_vec(&repo.config).map_err(json_error)?;
        let wrapper = ConfigFile {
            format: "haven-repository".into(),
            version: FORMAT_VERSION,
            encrypted: repo.aead.seal_raw(ObjectKind::Config, &config_json),
        };
        // The config is written last: a repository exists once it is there.
        repo.backend.create_exclusive(
            CONFIG_FILE,
            serde_json::to_vec_pretty(&wrapper).map_err(json_error)?,
        )?;
        Ok(repo)
    }

    /// Open the repository at `location` with `password`.
    pub fn open(location: &Location, password: &[u8]) -> Result<Self> {
        let backend = Backend::connect(location, false)?;
        let not_found = |reason: &str| Error::RepositoryNotFound {
            location: location.to_string(),
            reason: reason.into(),
        };
        if !backend.exists(CONFIG_FILE)? {
            return Err(not_found("there is no `config` file (not initialised?)"));
        }
        let config_bytes = backend.read_at_most(CONFIG_FILE, MAX_PLAIN_FILE)?;
        let wrapper =
            rules::decode_config_file(&config_bytes).map_err(|e| Error::corrupt("config", e))?;
        if wrapper.format != "haven-repository" {
            return Err(not_found(
                "the `config` file is not a Haven repository config",
            ));
        }
        if wrapper.version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: wrapper.version,
                supported: FORMAT_VERSION,
            });
        }
        let (master, key_id) = Self::unlock(&backend, password)?;
        let aead = master.aead();
        let config =
            rules::decode_repo_config(&aead.open(ObjectKind::Config, &wrapper.encrypted, None)?)
                .map_err(|e| Error::corrupt("config", e))?;
        validate_chunker(&config.chunker)?;
        Ok(Repository {
            backend,
            aead,
            master: Arc::new(master),
            config,
            key_id,
        })
    }

    /// The master key and the id of the key file the password opens.
    fn unlock(backend: &Backend, password: &[u8]) -> Result<(MasterKey, Id)> {
        let keys = backend.list(KEY_DIR)?;
        if keys.is_empty() {
            return Err(Error::RepositoryNotFound {
                location: backend.location().to_string(),
                reason: "it has no key files".into(),
            });
        }
        for path in keys {
            let key_file = match read_key_file(backend, &path) {
                Ok(key_file) => key_file,
                Err(e) => {
                    tracing::warn!(path = %path, error = %e, "skipping unreadable key file");
                    continue;
                }
            };
            let kek = key_file.kdf_params.derive(password, &key_file.salt)?;
            if let Ok(plain) = kek.open(ObjectKind::Key, &key_file.master_key, None) {
                let master = serde_json::from_slice(&plain)
                    .map_err(|e| Error::corrupt(path.clone(), e.to_string()))?;
                let name = path.rsplit('/').next().unwrap_or_default();
                let id = name
                    .parse()
                    .map_err(|_| Error::corrupt(path.clone(), "key file name is not an id"))?;
                return Ok((master, id));
            }
        }
        Err(Error::WrongPassword {
            location: backend.location().to_string(),
        })
    }

    /// Wrap the master key with a new password; returns the key file id.
    pub fn add_key(&self, password: &[u8], kdf: KdfParams) -> Result<Id> {
        let mut salt = vec![0u8; 16];
        random_bytes(&mut salt);
        let kek = kdf.derive(password, &salt)?;
        let master_json = serde_json::to_vec(&*self.master).map_err(json_error)?;
        let key_file = KeyFile {
            version: FORMAT_VERSION,
            kind: KeyKind::Full,
            created: Timestamp::now(),
            hostname: crate::host::hostname(),
            username: crate::host::username(),
            kdf: "argon2id".into(),
            kdf_params: kdf,
            salt,
            master_key: kek.seal_raw(ObjectKind::Key, &master_json),
        };
        let bytes = serde_json::to_vec_pretty(&key_file).map_err(json_error)?;
        let id = Id::of_file(&bytes);
        self.backend
            .create_exclusive(&format!("{KEY_DIR}/{id}"), bytes)?;
        Ok(id)
    }

    /// The repository's settings.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// The storage backend.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The master key (for pipeline workers).
    pub(crate) fn master(&self) -> &MasterKey {
        &self.master
    }

    /// Read a whole repository file of `kind` and check that its bytes
    /// hash to its name. A file larger than any object of its kind may be
    /// is damaged, and is not read.
    pub(crate) fn read_verified(&self, dir: &str, id: &Id, kind: ObjectKind) -> Result<Vec<u8>> {
        let path = format!("{dir}/{id}");
        let bytes = self.backend.read_at_most(&path, kind.max_envelope())?;
        if Id::of_file(&bytes) != *id {
            return Err(Error::corrupt(
                path,
                "content does not match its name (BLAKE3 mismatch)",
            ));
        }
        Ok(bytes)
    }

    /// Ids of all snapshot files.
    pub fn snapshot_ids(&self) -> Result<Vec<Id>> {
        list_ids(&self.backend, SNAPSHOT_DIR)
    }

    /// Read and decrypt one snapshot, checked against the format.
    pub fn load_snapshot(&self, id: &Id) -> Result<Snapshot> {
        let damaged = |detail: String| Error::corrupt(format!("snapshot {}", id.short()), detail);
        let bytes = self.read_verified(SNAPSHOT_DIR, id, ObjectKind::Snapshot)?;
        let plain = self
            .aead
            .open(ObjectKind::Snapshot, &bytes, None)
            .map_err(|e| damaged(e.to_string()))?;
        rules::decode_snapshot(&plain).map_err(damaged)
    }

    /// Every snapshot file: the readable ones, oldest first, and those
    /// that cannot be read, with why. One damaged file never hides the
    /// others.
    pub fn snapshot_list(&self) -> Result<SnapshotList> {
        let mut list = SnapshotList::default();
        for id in self.snapshot_ids()? {
            match self.load_snapshot(&id) {
                Ok(snapshot) => list.snapshots.push((id, snapshot)),
                Err(e) if e.is_integrity() => list.unreadable.push((id, e.to_string())),
                // Removed by a forget since it was listed.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        list.snapshots
            .sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        Ok(list)
    }

    /// The readable snapshots, oldest first. Unreadable snapshot files are
    /// logged as warnings and left out (`repo check` reports them).
    pub fn snapshots(&self) -> Result<Vec<(Id, Snapshot)>> {
        let list = self.snapshot_list()?;
        for (id, error) in &list.unreadable {
            tracing::warn!(snapshot = %id.short(), %error, "skipping an unreadable snapshot file (run `haven repo check`)");
        }
        Ok(list.snapshots)
    }

    /// Resolve `latest` or an id prefix to a snapshot. `latest` is the
    /// newest readable snapshot.
    pub fn find_snapshot(&self, selector: &str) -> Result<(Id, Snapshot)> {
        if selector == "latest" {
            return self
                .snapshots()?
                .pop()
                .ok_or_else(|| Error::SnapshotNotFound(selector.into()));
        }
        let wanted = selector.to_ascii_lowercase();
        if wanted.is_empty() || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidArgument(format!(
                "{selector:?} is not a snapshot selector: give `latest` or a hex id prefix"
            )));
        }
        let matches: Vec<Id> = self
            .snapshot_ids()?
            .into_iter()
            .filter(|id| id.to_hex().starts_with(&wanted))
            .collect();
        match matches.as_slice() {
            [] => Err(Error::SnapshotNotFound(selector.into())),
            [id] => Ok((*id, self.load_snapshot(id)?)),
            many => Err(Error::AmbiguousSnapshot {
                prefix: selector.into(),
                count: many.len(),
            }),
        }
    }

    /// Encrypt and store a snapshot; it becomes visible at once.
    pub fn save_snapshot(&self, snapshot: &Snapshot) -> Result<Id> {
        let json = serde_json::to_vec(snapshot).map_err(json_error)?;
        self.save_file(SNAPSHOT_DIR, ObjectKind::Snapshot, &json)
    }

    /// Encrypt and store an index file.
    pub fn save_index(&self, index: &IndexFile) -> Result<Id> {
        let json = serde_json::to_vec(index).map_err(json_error)?;
        self.save_file(INDEX_DIR, ObjectKind::Index, &json)
    }

    /// Save `packs` as index files of moderate size (a reader's limit is
    /// far above them). The last file written supersedes `supersedes`, so
    /// until it exists the old files are still in force.
    pub(crate) fn save_index_files(
        &self,
        packs: Vec<IndexedPack>,
        supersedes: Vec<Id>,
    ) -> Result<()> {
        let mut files: Vec<IndexFile> = Vec::new();
        let mut blobs = 0;
        for pack in packs {
            if files.is_empty() || blobs + pack.blobs.len() > BLOBS_PER_INDEX_FILE {
                files.push(IndexFile {
                    version: FORMAT_VERSION,
                    ..IndexFile::default()
                });
                blobs = 0;
            }
            blobs += pack.blobs.len();
            if let Some(file) = files.last_mut() {
                file.packs.push(pack);
            }
        }
        let mut last = files.pop().unwrap_or(IndexFile {
            version: FORMAT_VERSION,
            ..IndexFile::default()
        });
        for file in &files {
            self.save_index(file)?;
        }
        last.supersedes = supersedes;
        self.save_index(&last)?;
        Ok(())
    }

    pub(crate) fn save_file(&self, dir: &str, kind: ObjectKind, plain: &[u8]) -> Result<Id> {
        let mut sealer =
            crate::crypto::Sealer::new(self.aead.clone(), self.config.compression_level)?;
        let bytes = sealer.seal(kind, plain);
        let id = Id::of_file(&bytes);
        self.backend.write_new(&format!("{dir}/{id}"), bytes)?;
        Ok(id)
    }

    /// Load one index file, checked against the format.
    pub fn load_index_file(&self, id: &Id) -> Result<IndexFile> {
        let damaged = |detail: String| Error::corrupt(format!("index {}", id.short()), detail);
        let bytes = self.read_verified(INDEX_DIR, id, ObjectKind::Index)?;
        let plain = self.aead.open(ObjectKind::Index, &bytes, None)?;
        rules::decode_index_file(&plain).map_err(damaged)
    }

    /// Load every index file. With `scan_unindexed`, packs that no index
    /// lists have their headers read so their blobs are usable too.
    pub fn load_index(&self, scan_unindexed: bool) -> Result<(Index, IndexLoadReport)> {
        self.load_index_excluding(scan_unindexed, &HashSet::new())
    }

    /// Like [`Self::load_index`], leaving out the packs in `exclude`
    /// (packs a prune has marked for deletion: writers must not rely on
    /// them).
    pub fn load_index_excluding(
        &self,
        scan_unindexed: bool,
        exclude: &HashSet<Id>,
    ) -> Result<(Index, IndexLoadReport)> {
        let files = self.load_index_files(scan_unindexed)?;
        let absent = files.absent_packs();
        let index = if absent.is_empty() {
            files.to_index(exclude)
        } else {
            files.to_index(&exclude.union(&absent).copied().collect())
        };
        let mut report = files.report;
        report.unindexed_packs.retain(|p| !exclude.contains(&p.id));
        let mut seen = HashSet::new();
        report.absent_packs = files
            .files
            .iter()
            .flat_map(|(_, f)| f.packs.iter())
            .filter(|p| absent.contains(&p.id) && seen.insert(p.id))
            .cloned()
            .collect();
        Ok((index, report))
    }

    /// The index files in force (damaged and superseded ones left out),
    /// and, with `scan_unindexed`, the packs none of them lists.
    pub fn load_index_files(&self, scan_unindexed: bool) -> Result<IndexFiles> {
        let mut files = Vec::new();
        let mut report = IndexLoadReport::default();
        for id in list_ids(&self.backend, INDEX_DIR)? {
            match self.load_index_file(&id) {
                Ok(file) => files.push((id, file)),
                Err(e) if e.is_integrity() => report.damaged_index_files.push((id, e.to_string())),
                Err(e) => return Err(e),
            }
        }
        // A file written by prune replaces the ones it names; until prune
        // deletes them, both exist and the replaced ones are ignored.
        let superseded: HashSet<Id> = files
            .iter()
            .flat_map(|(_, f)| f.supersedes.iter().copied())
            .collect();
        let (replaced, files): (Vec<_>, Vec<_>) = files
            .into_iter()
            .partition(|(id, _)| superseded.contains(id));
        let superseded: Vec<Id> = replaced.into_iter().map(|(id, _)| id).collect();
        let mut present = None;
        if scan_unindexed {
            let indexed: HashSet<Id> = files
                .iter()
                .flat_map(|(_, f)| f.packs.iter().map(|p| p.id))
                .collect();
            let on_storage = self.list_packs()?;
            present = Some(on_storage.iter().map(|(id, _)| *id).collect());
            for (id, size) in on_storage {
                if indexed.contains(&id) {
                    continue;
                }
                match self.read_pack_header(&id, size) {
                    Ok(header) => report.unindexed_packs.push(IndexedPack {
                        id,
                        size,
                        blobs: header.blobs,
                    }),
                    Err(e) if e.is_integrity() => report.unreadable_packs.push((id, e.to_string())),
                    // Deleted by a prune since it was listed.
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if !report.damaged_index_files.is_empty() {
            tracing::warn!(
                count = report.damaged_index_files.len(),
                "damaged index files ignored"
            );
        }
        Ok(IndexFiles {
            files,
            superseded,
            report,
            present,
        })
    }

    /// All pack files with their sizes.
    pub fn list_packs(&self) -> Result<Vec<(Id, u64)>> {
        let mut packs = Vec::new();
        for info in self.backend.list_with_sizes(DATA_DIR)? {
            let name = info.path.rsplit('/').next().unwrap_or_default();
            if let Ok(id) = name.parse::<Id>() {
                packs.push((id, info.size));
            }
        }
        Ok(packs)
    }

    /// Read and decrypt a pack's header (from the pack's tail).
    pub fn read_pack_header(&self, id: &Id, size: u64) -> Result<PackHeader> {
        let path = pack_path(id);
        let what = || format!("pack {}", id.short());
        if size < 4 {
            return Err(Error::corrupt(what(), "too small to hold a header"));
        }
        if size > rules::MAX_PACK_SIZE {
            return Err(Error::corrupt(
                what(),
                format!("{size} bytes is larger than a pack may be (4 GiB)"),
            ));
        }
        let tail = self.backend.read_range(&path, size - 4, 4)?;
        let header_len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
        let data_end = pack_data_end(size, header_len).map_err(|e| Error::corrupt(what(), e))?;
        let envelope = self.backend.read_range(&path, data_end, header_len)?;
        parse_pack_header(&self.aead, &envelope, data_end)
            .map_err(|e| Error::corrupt(what(), e.to_string()))
    }

    /// Decrypt a blob envelope and check that it hashes to `id`.
    pub(crate) fn open_blob(
        &self,
        id: &Id,
        loc: &BlobLocation,
        envelope: &[u8],
    ) -> Result<Vec<u8>> {
        let mut copy = envelope.to_vec();
        self.open_blob_in_place(id, loc, &mut copy)
            .map(std::borrow::Cow::into_owned)
    }

    /// Like [`Self::open_blob`], decrypting inside `envelope`'s buffer.
    pub(crate) fn open_blob_in_place<'a>(
        &self,
        id: &Id,
        loc: &BlobLocation,
        envelope: &'a mut [u8],
    ) -> Result<std::borrow::Cow<'a, [u8]>> {
        let what = || format!("blob {} in pack", id.short());
        let plain = self
            .aead
            .open_in_place(ObjectKind::Blob, envelope, Some(loc.raw_length as usize))
            .map_err(|e| Error::corrupt(what(), e.to_string()))?;
        if plain.len() != loc.raw_length as usize || self.master.blob_id(&plain) != *id {
            return Err(Error::corrupt(what(), "content does not match its id"));
        }
        Ok(plain)
    }

    /// Read, decrypt and verify one blob.
    pub fn read_blob(&self, index: &Index, id: &Id) -> Result<Vec<u8>> {
        let loc = index.get(id).ok_or(Error::MissingBlob(*id))?;
        let pack = index.pack(loc.pack);
        let envelope = self
            .backend
            .read_range(
                &pack_path(&pack.id),
                u64::from(loc.offset),
                u64::from(loc.length),
            )
            .map_err(|e| {
                if e.is_not_found() {
                    Error::corrupt(format!("pack {}", pack.id.short()), "pack file is missing")
                } else {
                    e
                }
            })?;
        self.open_blob(id, &loc, &envelope)
    }

    /// Read and parse a tree blob, checked against the format (names
    /// single components, strictly increasing).
    pub fn read_tree(&self, index: &Index, id: &Id) -> Result<Tree> {
        let bytes = self.read_blob(index, id)?;
        rules::decode_tree(&bytes).map_err(|e| Error::corrupt(format!("tree {}", id.short()), e))
    }
}

/// Where a pack's blobs end (its header starts), from its size and the
/// header length stored in its last four bytes.
pub fn pack_data_end(size: u64, header_len: u64) -> std::result::Result<u64, String> {
    if header_len > rules::MAX_PACK_HEADER {
        return Err(format!(
            "its header claims {header_len} bytes, more than a header may hold"
        ));
    }
    size.checked_sub(4 + header_len)
        .ok_or_else(|| format!("its header claims {header_len} bytes, more than the pack holds"))
}

/// Decrypt and check a pack header whose envelope starts at `data_end`.
pub fn parse_pack_header(aead: &AeadKey, envelope: &[u8], data_end: u64) -> Result<PackHeader> {
    let plain = aead.open(ObjectKind::PackHeader, envelope, None)?;
    rules::decode_pack_header(&plain, data_end).map_err(|e| Error::corrupt("pack header", e))
}

/// Blobs per index file written by prune and repair (about 16 MiB of JSON).
const BLOBS_PER_INDEX_FILE: usize = 100_000;

/// Largest plaintext JSON file (config wrapper, key file) a reader reads.
const MAX_PLAIN_FILE: u64 = 64 << 10;

/// Read and check a key file (plaintext JSON).
pub(crate) fn read_key_file(backend: &Backend, path: &str) -> Result<KeyFile> {
    let bytes = backend.read_at_most(path, MAX_PLAIN_FILE)?;
    rules::decode_key_file(&bytes).map_err(|e| Error::corrupt(path.to_string(), e))
}

/// Ids of the content-addressed files in `dir` (other names ignored).
pub(crate) fn list_ids(backend: &Backend, dir: &str) -> Result<Vec<Id>> {
    let mut ids = Vec::new();
    for path in backend.list(dir)? {
        let name = path.rsplit('/').next().unwrap_or_default();
        match name.parse::<Id>() {
            Ok(id) => ids.push(id),
            Err(_) => tracing::debug!(path = %path, "ignoring file with a non-id name"),
        }
    }
    ids.sort();
    Ok(ids)
}

fn validate_chunker(c: &ChunkerParams) -> Result<()> {
    use fastcdc::v2020::{
        AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN,
    };
    let (min, avg, max) = (
        c.min_size as usize,
        c.avg_size as usize,
        c.max_size as usize,
    );
    let ok = c.algorithm == "fastcdc-2020"
        && (MINIMUM_MIN..=MINIMUM_MAX).contains(&min)
        && (AVERAGE_MIN..=AVERAGE_MAX).contains(&avg)
        && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&max)
        && min <= avg
        && avg <= max
        && min % 2 == 0
        && avg % 2 == 0
        && max % 2 == 0;
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "unsupported chunker parameters {c:?}"
        )))
    }
}

fn json_error(e: serde_json::Error) -> Error {
    Error::InvalidArgument(format!("serialisation failed: {e}"))
}
