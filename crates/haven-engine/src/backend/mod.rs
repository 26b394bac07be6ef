//! Storage of repository files behind a small blocking API: a local
//! directory ([`local`]) or S3-compatible object storage through OpenDAL
//! ([`object`]). Both hold the same layout (`docs/format.md`).

mod local;
mod location;
mod object;
mod object_lock;

use std::path::Path;
use std::sync::Arc;

pub use location::Location;
pub use object_lock::LockMode;

use crate::error::{Error, Result};
use local::LocalStore;
use object::ObjectStore;

/// Most a read reserves up front (see [`Backend::read_range_into`]).
const RESERVE_LIMIT: u64 = 64 << 20;

/// A stored file's name and size.
#[derive(Clone, Debug)]
pub struct FileInfo {
    /// Path relative to the repository root.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

#[derive(Clone)]
enum Store {
    Local(Arc<LocalStore>),
    Object(Arc<ObjectStore>),
}

/// Blocking access to the files of one repository; cheap to clone.
#[derive(Clone)]
pub struct Backend {
    store: Store,
    location: Location,
}

impl Backend {
    /// Connect to `location`. With `create`, a missing local directory is
    /// created (private); otherwise it must exist and be a repository.
    pub fn connect(location: &Location, create: bool) -> Result<Self> {
        let store = match location {
            Location::Local(path) => {
                if !create {
                    let reason = if !path.is_dir() {
                        Some("the directory does not exist")
                    } else if !path.join(crate::layout::CONFIG_FILE).exists() {
                        // Checked first: opening must not write into a
                        // directory that is not a repository.
                        Some("there is no `config` file (not initialised?)")
                    } else {
                        None
                    };
                    if let Some(reason) = reason {
                        return Err(Error::RepositoryNotFound {
                            location: location.to_string(),
                            reason: reason.into(),
                        });
                    }
                }
                Store::Local(Arc::new(LocalStore::open(path, create)?))
            }
            Location::S3 {
                endpoint,
                bucket,
                prefix,
            } => Store::Object(ObjectStore::connect(location, endpoint, bucket, prefix)?),
        };
        Ok(Backend {
            store,
            location: location.clone(),
        })
    }

    /// The location this backend serves.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The directory of a local repository.
    pub fn local_root(&self) -> Option<&Path> {
        match &self.store {
            Store::Local(local) => Some(local.root()),
            Store::Object(_) => None,
        }
    }

    /// Size of a file.
    pub fn size(&self, path: &str) -> Result<u64> {
        match &self.store {
            Store::Local(s) => s.size(path),
            Store::Object(s) => s.size(path),
        }
    }

    /// Read a whole file.
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        self.read_at_most(path, u64::MAX)
    }

    /// Read a whole file of at most `max` bytes: a larger one is damaged
    /// (no object of its kind is that large) and is not read.
    pub fn read_at_most(&self, path: &str, max: u64) -> Result<Vec<u8>> {
        let size = self.size(path)?;
        if size > max {
            return Err(Error::corrupt(
                path.to_string(),
                format!(
                    "the file is {size} bytes, larger than any object stored there may be ({max})"
                ),
            ));
        }
        self.read_range(path, 0, size)
    }

    /// Read `length` bytes at `offset`, into one buffer of exactly that size
    /// (no intermediate chunks to concatenate: packs are tens of MB).
    pub fn read_range(&self, path: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_range_into(path, offset, length, &mut buf)?;
        Ok(buf)
    }

    /// Like [`Self::read_range`], into `buf` (cleared first). Workers that
    /// read pack after pack reuse one buffer instead of faulting in fresh
    /// memory for every pack. Fewer bytes than asked is damage.
    pub fn read_range_into(
        &self,
        path: &str,
        offset: u64,
        length: u64,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        buf.clear();
        // Lengths come from index entries, which are untrusted: beyond a
        // pack's worth, the buffer grows with what is really read.
        buf.reserve(length.min(RESERVE_LIMIT) as usize);
        if length > 0 {
            match &self.store {
                Store::Local(s) => s.read_into(path, offset, length, buf)?,
                Store::Object(s) => s.read_into(path, offset, length, buf)?,
            }
        }
        if buf.len() as u64 != length {
            return Err(Error::corrupt(
                path.to_string(),
                format!(
                    "short read: wanted {length} bytes at offset {offset}, got {}",
                    buf.len()
                ),
            ));
        }
        Ok(())
    }

    /// Write unless a file of that name exists: `Ok(false)` when it did.
    fn write_if_absent(&self, path: &str, bytes: Vec<u8>) -> Result<bool> {
        match &self.store {
            Store::Local(s) => s.write_if_absent(path, &bytes),
            Store::Object(s) => s.write_if_absent(path, bytes),
        }
    }

    /// Write a new file. Files are content-addressed, so a file that already
    /// exists under the same name is left as it is (never overwritten).
    pub fn write_new(&self, path: &str, bytes: Vec<u8>) -> Result<()> {
        self.write_if_absent(path, bytes).map(|_| ())
    }

    /// Write a file that must not exist yet (config, key files, the prune
    /// lock): atomic, so of two writers exactly one succeeds.
    pub fn create_exclusive(&self, path: &str, bytes: Vec<u8>) -> Result<()> {
        match self.write_if_absent(path, bytes)? {
            true => Ok(()),
            false => Err(Error::AlreadyExists {
                path: path.to_string(),
            }),
        }
    }

    /// Does the file exist?
    pub fn exists(&self, path: &str) -> Result<bool> {
        match &self.store {
            Store::Local(s) => s.exists(path),
            Store::Object(s) => s.exists(path),
        }
    }

    /// Paths of the files under `dir` (recursively). A missing directory
    /// is empty.
    pub fn list(&self, dir: &str) -> Result<Vec<String>> {
        Ok(self
            .list_files(dir, false)?
            .into_iter()
            .map(|f| f.path)
            .collect())
    }

    /// Files under `dir` with their sizes.
    pub fn list_with_sizes(&self, dir: &str) -> Result<Vec<FileInfo>> {
        self.list_files(dir, true)
    }

    fn list_files(&self, dir: &str, sizes: bool) -> Result<Vec<FileInfo>> {
        match &self.store {
            Store::Local(s) => s.list(dir, sizes),
            Store::Object(s) => s.list(dir, sizes),
        }
    }

    /// Delete a file (missing files are not an error).
    pub fn delete(&self, path: &str) -> Result<()> {
        match &self.store {
            Store::Local(s) => s.delete(path),
            Store::Object(s) => s.delete(path),
        }
    }

    /// Remove temporary files left by writers that are gone (killed, or
    /// stopped by a full disk). Object stores write whole objects and have
    /// none. Returns the bytes freed.
    pub fn clean_stale_tmp(&self) -> Result<u64> {
        match &self.store {
            Store::Local(s) => s.clean_stale_tmp(),
            Store::Object(_) => Ok(0),
        }
    }

    /// True for S3-compatible object storage (Object Lock is possible),
    /// false for a local directory.
    pub fn is_object_storage(&self) -> bool {
        matches!(self.store, Store::Object(_))
    }

    /// Does the storage enforce retention dates (an S3 bucket with Object
    /// Lock enabled)?
    pub fn object_lock_enabled(&self) -> Result<bool> {
        match &self.store {
            Store::Object(s) => s.object_lock_enabled(),
            Store::Local(_) => Ok(false),
        }
    }

    /// Make sure `path` is retained at least until `until` (extending, never
    /// shortening, its Object Lock retention). Returns whether it changed.
    pub fn retain_until(&self, path: &str, mode: LockMode, until: jiff::Timestamp) -> Result<bool> {
        match &self.store {
            Store::Object(s) => s.retain_until(path, mode, until),
            Store::Local(_) => Ok(false),
        }
    }
}
