//! Storage of repository files through OpenDAL, behind a small blocking API.
//!
//! The engine's pipeline runs on plain threads; this module owns a small
//! tokio runtime that drives OpenDAL's async services.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use opendal::{ErrorKind, Operator, blocking, options::WriteOptions};

use crate::error::{Error, Result};
use crate::object_lock::{LockMode, ObjectLockApi};

/// Where a repository lives, parsed from the user's `--repo` string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A local directory (`/path`, `./path` or `local:/path`).
    Local(PathBuf),
    /// An S3-compatible bucket: `s3:http(s)://host:port/bucket/prefix`.
    S3 {
        /// `http(s)://host:port`.
        endpoint: String,
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket (may be empty).
        prefix: String,
    },
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
        if let Some(rest) = input.strip_prefix("s3:") {
            return parse_s3(input, rest);
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
                "unknown scheme `{scheme}:`; use a directory path, `local:PATH` or `s3:http(s)://host:port/bucket/prefix`"
            )));
        }
        Ok(Location::Local(PathBuf::from(input)))
    }
}

fn parse_s3(input: &str, rest: &str) -> Result<Location> {
    let invalid = |reason: &str| Error::InvalidLocation {
        location: input.to_string(),
        reason: reason.to_string(),
    };
    let (scheme, after) = rest
        .split_once("://")
        .ok_or_else(|| invalid("expected s3:http(s)://host:port/bucket/prefix"))?;
    if scheme != "http" && scheme != "https" {
        return Err(invalid("the endpoint must start with http:// or https://"));
    }
    let (host, path) = after.split_once('/').unwrap_or((after, ""));
    if host.is_empty() {
        return Err(invalid("the endpoint has no host"));
    }
    let mut parts = path.splitn(2, '/');
    let bucket = parts.next().unwrap_or_default();
    let prefix = parts.next().unwrap_or_default().trim_matches('/');
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !valid_bucket {
        return Err(invalid(&format!(
            "{bucket:?} is not a bucket name (3-63 characters: a-z, 0-9, '-', '.')"
        )));
    }
    Ok(Location::S3 {
        endpoint: format!("{scheme}://{host}"),
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
    })
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 {
                endpoint,
                bucket,
                prefix,
            } => write!(f, "s3:{endpoint}/{bucket}/{prefix}"),
        }
    }
}

/// HTTP for object storage: reqwest with rustls on the aws-lc-rs provider
/// (Haven's one crypto provider). Both calls are first-install-wins and
/// safe to repeat.
fn install_tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    opendal_http_transport_reqwest::install_default();
}

fn s3_region() -> String {
    std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| "us-east-1".into())
}

fn connect_s3(location: &Location, endpoint: &str, bucket: &str, prefix: &str) -> Result<Operator> {
    install_tls_provider();
    let region = s3_region();
    // Credentials come from the usual AWS_* variables (or profile files).
    let builder = opendal::services::S3::default()
        .endpoint(endpoint)
        .bucket(bucket)
        .root(&format!("/{prefix}"))
        .region(&region);
    let op = Operator::new(builder).map_err(|e| Error::InvalidLocation {
        location: location.to_string(),
        reason: e.to_string(),
    })?;
    // Transient failures (connection refused or reset, 5xx, throttling)
    // are retried with jittered exponential backoff, then reported.
    Ok(op.layer(
        opendal::layers::RetryLayer::new()
            .with_jitter()
            .with_min_delay(std::time::Duration::from_millis(100))
            .with_max_delay(std::time::Duration::from_secs(5))
            .with_max_times(5),
    ))
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
    /// Object Lock calls (S3 only).
    object_lock: Option<Arc<ObjectLockApi>>,
    // Drives OpenDAL; alive for as long as any clone of the backend.
    runtime: Arc<tokio::runtime::Runtime>,
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
            Location::S3 {
                endpoint,
                bucket,
                prefix,
            } => connect_s3(location, endpoint, bucket, prefix)?,
        };
        let _guard = runtime.enter();
        let op = blocking::Operator::new(op).map_err(|e| storage_error("/", e))?;
        let object_lock = match location {
            Location::S3 {
                endpoint,
                bucket,
                prefix,
            } => Some(Arc::new(ObjectLockApi::new(
                endpoint,
                bucket,
                prefix,
                &s3_region(),
            ))),
            Location::Local(_) => None,
        };
        let backend = Backend {
            op,
            location: location.clone(),
            object_lock,
            runtime: Arc::new(runtime),
        };
        if let Location::S3 {
            bucket, endpoint, ..
        } = location
        {
            backend.check_bucket(bucket, endpoint)?;
        }
        Ok(backend)
    }

    /// A missing bucket is a clear error, not an empty repository.
    fn check_bucket(&self, bucket: &str, endpoint: &str) -> Result<()> {
        match self.op.list_options(
            "/",
            opendal::options::ListOptions {
                limit: Some(1),
                ..Default::default()
            },
        ) {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("NoSuchBucket") => Err(Error::BucketNotFound {
                bucket: bucket.to_string(),
                endpoint: endpoint.to_string(),
            }),
            Err(e) => Err(storage_error("/", e)),
        }
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

    /// Write a file unless one exists under that name.
    fn write_if_absent(&self, path: &str, bytes: Vec<u8>) -> opendal::Result<()> {
        let options = WriteOptions {
            if_not_exists: true,
            ..Default::default()
        };
        self.op.write_options(path, bytes, options).map(|_| ())
    }

    /// Write a new file. Files are content-addressed, so a file that already
    /// exists under the same name is left as it is (never overwritten).
    pub fn write_new(&self, path: &str, bytes: Vec<u8>) -> Result<()> {
        match self.write_if_absent(path, bytes) {
            Err(e) if e.kind() != ErrorKind::ConditionNotMatch => Err(storage_error(path, e)),
            _ => Ok(()),
        }
    }

    /// Write a file that must not exist yet (config, key files at init).
    pub fn create_exclusive(&self, path: &str, bytes: Vec<u8>) -> Result<()> {
        self.write_if_absent(path, bytes)
            .map_err(|e| storage_error(path, e))
    }

    /// Does the file exist?
    pub fn exists(&self, path: &str) -> Result<bool> {
        self.op.exists(path).map_err(|e| storage_error(path, e))
    }

    /// Paths of the files under `dir` (recursively). A missing directory
    /// is empty. No sizes: some services (local files) only give them at
    /// the cost of a stat per file; see [`Self::list_with_sizes`].
    pub fn list(&self, dir: &str) -> Result<Vec<String>> {
        Ok(self
            .list_entries(dir)?
            .into_iter()
            .filter(|e| !e.metadata().is_dir())
            .map(|e| e.path().to_string())
            .collect())
    }

    /// Files under `dir` with their sizes (a stat per file where the
    /// listing does not carry sizes, as on local directories).
    pub fn list_with_sizes(&self, dir: &str) -> Result<Vec<FileInfo>> {
        let mut files = Vec::new();
        for entry in self.list_entries(dir)? {
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

    fn list_entries(&self, dir: &str) -> Result<Vec<opendal::Entry>> {
        let options = opendal::options::ListOptions {
            recursive: true,
            ..Default::default()
        };
        match self.op.list_options(dir, options) {
            Ok(entries) => Ok(entries),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(storage_error(dir, e)),
        }
    }

    /// Does the storage enforce retention dates (an S3 bucket with Object
    /// Lock enabled)?
    pub fn object_lock_enabled(&self) -> Result<bool> {
        match &self.object_lock {
            Some(api) => self.runtime.block_on(api.enabled()),
            None => Ok(false),
        }
    }

    /// Make sure `path` is retained at least until `until` (extending, never
    /// shortening, its Object Lock retention). Returns whether it changed.
    pub fn retain_until(&self, path: &str, mode: LockMode, until: jiff::Timestamp) -> Result<bool> {
        let Some(api) = &self.object_lock else {
            return Ok(false);
        };
        self.runtime.block_on(async {
            match api.retention(path).await? {
                Some(current) if current >= until => Ok(false),
                _ => api.set_retention(path, mode, until).await.map(|()| true),
            }
        })
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
        assert_eq!(
            Location::parse("s3:https://minio.local:9000/backups/site-a/db").expect("s3"),
            Location::S3 {
                endpoint: "https://minio.local:9000".into(),
                bucket: "backups".into(),
                prefix: "site-a/db".into(),
            }
        );
        for bad in [
            "s3:minio/bucket",
            "s3:ftp://h/b",
            "s3:http:///b",
            "s3:http://h/",
            "s3:http://h/UPPER",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad} must be rejected");
        }
        assert!(Location::parse("local:").is_err());
    }
}
