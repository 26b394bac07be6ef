//! Storage of repository files through OpenDAL, behind a small blocking API.
//!
//! The engine's pipeline runs on plain threads; this module owns a small
//! tokio runtime that drives OpenDAL's async services.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use opendal::{ErrorKind, Operator, blocking, options::WriteOptions};

use crate::error::{Error, Result};

/// Where a repository lives, parsed from the user's `--repo` string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A local directory (`/path`, `./path` or `local:/path`).
    Local(PathBuf),
}

impl Location {
    /// Parse a repository location.
    pub fn parse(input: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidLocation {
            location: input.to_string(),
            reason: reason.to_string(),
        };
        if input.trim().is_empty() {
            return Err(invalid("it is empty; give a directory path"));
        }
        if let Some(path) = input.strip_prefix("local:") {
            if path.is_empty() {
                return Err(invalid("`local:` needs a path after it"));
            }
            return Ok(Location::Local(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = input.split_once(':')
            && !scheme.is_empty()
            && scheme.chars().all(|c| c.is_ascii_alphanumeric())
            && !Path::new(input).exists()
        {
            return Err(invalid(&format!(
                "unknown scheme `{scheme}:`; use a directory path or `local:PATH`"
            )));
        }
        Ok(Location::Local(PathBuf::from(input)))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A stored file's name and size.
#[derive(Clone, Debug)]
pub struct FileInfo {
    /// Path relative to the repository root.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// Blocking access to the files of one repository.
#[derive(Clone)]
pub struct Backend {
    op: blocking::Operator,
    location: Location,
    // Keeps the runtime alive for as long as any clone of the backend.
    _runtime: Arc<tokio::runtime::Runtime>,
}

impl Backend {
    /// Connect to `location`. With `create`, a missing local directory is
    /// created; otherwise it must exist.
    pub fn connect(location: &Location, create: bool) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("haven-io")
            .enable_all()
            .build()
            .map_err(|e| Error::io("start I/O runtime for", PathBuf::from("."), e))?;
        let op = match location {
            Location::Local(path) => {
                if create {
                    std::fs::create_dir_all(path).map_err(|e| Error::io("create", path, e))?;
                } else if !path.is_dir() {
                    return Err(Error::RepositoryNotFound {
                        location: location.to_string(),
                        reason: "the directory does not exist".into(),
                    });
                } else if !path.join(crate::repo::CONFIG_FILE).exists() {
                    // Checked before OpenDAL creates tmp/: opening must not
                    // write into a directory that is not a repository.
                    return Err(Error::RepositoryNotFound {
                        location: location.to_string(),
                        reason: "there is no `config` file (not initialised?)".into(),
                    });
                }
                let root = path
                    .canonicalize()
                    .map_err(|e| Error::io("resolve", path, e))?;
                // Files are written under tmp/ (created by OpenDAL) and
                // renamed into place, so a killed writer never leaves a
                // partial file under a real name.
                let tmp = root.join("tmp");
                let builder = opendal::services::Fs::default()
                    .root(&root.to_string_lossy())
                    .atomic_write_dir(&tmp.to_string_lossy());
                Operator::new(builder).map_err(|e| storage_error("/", e))?
            }
        };
        let _guard = runtime.enter();
        let op = blocking::Operator::new(op).map_err(|e| storage_error("/", e))?;
        Ok(Backend {
            op,
            location: location.clone(),
            _runtime: Arc::new(runtime),
        })
    }

    /// The location this backend serves.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Read a whole file.
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        let size = self
            .op
            .stat(path)
            .map_err(|e| storage_error(path, e))?
            .content_length();
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
    /// memory for every pack.
    pub fn read_range_into(
        &self,
        path: &str,
        offset: u64,
        length: u64,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        buf.clear();
        buf.reserve(length as usize);
        if length > 0 {
            self.op
                .reader(path)
                .and_then(|r| r.read_into(buf, offset..offset + length))
                .map_err(|e| storage_error(path, e))?;
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

    /// Write a new file. Files are content-addressed, so a file that already
    /// exists under the same name is left as it is (never overwritten).
    pub fn write_new(&self, path: &str, bytes: Vec<u8>) -> Result<()> {
        match self.op.write_options(
            path,
            bytes,
            WriteOptions {
                if_not_exists: true,
                ..Default::default()
            },
        ) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::ConditionNotMatch => Ok(()),
            Err(e) => Err(storage_error(path, e)),
        }
    }

    /// Write a file that must not exist yet (config, key files at init).
    pub fn create_exclusive(&self, path: &str, bytes: Vec<u8>) -> Result<()> {
        self.op
            .write_options(
                path,
                bytes,
                WriteOptions {
                    if_not_exists: true,
                    ..Default::default()
                },
            )
            .map(|_| ())
            .map_err(|e| storage_error(path, e))
    }

    /// Does the file exist?
    pub fn exists(&self, path: &str) -> Result<bool> {
        self.op.exists(path).map_err(|e| storage_error(path, e))
    }

    /// Files under `dir` (recursively), with sizes. A missing directory is empty.
    pub fn list(&self, dir: &str) -> Result<Vec<FileInfo>> {
        let entries = match self.op.list_options(
            dir,
            opendal::options::ListOptions {
                recursive: true,
                ..Default::default()
            },
        ) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(storage_error(dir, e)),
        };
        let mut files = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.metadata().is_dir() {
                continue;
            }
            let size = match entry.metadata().content_length() {
                0 => self
                    .op
                    .stat(entry.path())
                    .map_err(|e| storage_error(entry.path(), e))?
                    .content_length(),
                n => n,
            };
            files.push(FileInfo {
                path: entry.path().to_string(),
                size,
            });
        }
        Ok(files)
    }

    /// Delete a file (missing files are not an error).
    pub fn delete(&self, path: &str) -> Result<()> {
        self.op.delete(path).map_err(|e| storage_error(path, e))
    }
}

fn storage_error(path: &str, source: opendal::Error) -> Error {
    Error::Storage {
        path: path.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(
            Location::parse("/srv/repo").expect("path"),
            Location::Local("/srv/repo".into())
        );
        assert_eq!(
            Location::parse("local:rel/dir").expect("local"),
            Location::Local("rel/dir".into())
        );
        let err = Location::parse("ftp://host/x").expect_err("unknown scheme");
        assert!(err.to_string().contains("unknown scheme `ftp:`"), "{err}");
        assert!(Location::parse("").is_err());
        assert!(Location::parse("local:").is_err());
    }
}
