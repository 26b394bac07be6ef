//! S3-compatible object storage through OpenDAL, driven by a small tokio
//! runtime of its own (the engine's pipeline runs on plain threads).

use std::sync::Arc;

use opendal::{ErrorKind, Operator, blocking, options::WriteOptions};

use super::object_lock::{LockMode, ObjectLockApi};
use super::{FileInfo, Location};
use crate::error::{Error, Result};

/// One bucket prefix.
pub(super) struct ObjectStore {
    op: blocking::Operator,
    object_lock: ObjectLockApi,
    // Drives OpenDAL; alive for as long as the store.
    runtime: tokio::runtime::Runtime,
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

impl ObjectStore {
    pub(super) fn connect(
        location: &Location,
        endpoint: &str,
        bucket: &str,
        prefix: &str,
    ) -> Result<Arc<Self>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("haven-io")
            .enable_all()
            .build()
            .map_err(|e| Error::io("start I/O runtime for", std::path::PathBuf::from("."), e))?;
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
        let op = op.layer(
            opendal::layers::RetryLayer::new()
                .with_jitter()
                .with_min_delay(std::time::Duration::from_millis(100))
                .with_max_delay(std::time::Duration::from_secs(5))
                .with_max_times(5),
        );
        let op = {
            let _guard = runtime.enter();
            blocking::Operator::new(op).map_err(|e| storage_error("/", e))?
        };
        let store = ObjectStore {
            op,
            object_lock: ObjectLockApi::new(endpoint, bucket, prefix, &region),
            runtime,
        };
        store.check_bucket(bucket, endpoint)?;
        Ok(Arc::new(store))
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

    pub(super) fn size(&self, path: &str) -> Result<u64> {
        Ok(self
            .op
            .stat(path)
            .map_err(|e| storage_error(path, e))?
            .content_length())
    }

    pub(super) fn read_into(
        &self,
        path: &str,
        offset: u64,
        length: u64,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        self.op
            .reader(path)
            .and_then(|r| r.read_into(buf, offset..offset + length))
            .map(|_| ())
            .map_err(|e| storage_error(path, e))
    }

    /// Write unless the object exists: `Ok(false)` when it did.
    pub(super) fn write_if_absent(&self, path: &str, bytes: Vec<u8>) -> Result<bool> {
        let options = WriteOptions {
            if_not_exists: true,
            ..Default::default()
        };
        match self.op.write_options(path, bytes, options) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::ConditionNotMatch => Ok(false),
            Err(e) => Err(storage_error(path, e)),
        }
    }

    pub(super) fn exists(&self, path: &str) -> Result<bool> {
        self.op.exists(path).map_err(|e| storage_error(path, e))
    }

    /// Objects under `dir`, recursively (a missing prefix is empty).
    pub(super) fn list(&self, dir: &str, sizes: bool) -> Result<Vec<FileInfo>> {
        let options = opendal::options::ListOptions {
            recursive: true,
            ..Default::default()
        };
        let entries = match self.op.list_options(dir, options) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(storage_error(dir, e)),
        };
        let mut files = Vec::new();
        for entry in entries {
            if entry.metadata().is_dir() {
                continue;
            }
            let size = match entry.metadata().content_length() {
                0 if sizes => self.size(entry.path())?,
                n => n,
            };
            files.push(FileInfo {
                path: entry.path().to_string(),
                size,
            });
        }
        Ok(files)
    }

    pub(super) fn delete(&self, path: &str) -> Result<()> {
        self.op.delete(path).map_err(|e| storage_error(path, e))
    }

    pub(super) fn object_lock_enabled(&self) -> Result<bool> {
        self.runtime.block_on(self.object_lock.enabled())
    }

    pub(super) fn retain_until(
        &self,
        path: &str,
        mode: LockMode,
        until: jiff::Timestamp,
    ) -> Result<bool> {
        self.runtime.block_on(async {
            match self.object_lock.retention(path).await? {
                Some(current) if current >= until => Ok(false),
                _ => self
                    .object_lock
                    .set_retention(path, mode, until)
                    .await
                    .map(|()| true),
            }
        })
    }
}

fn storage_error(path: &str, source: opendal::Error) -> Error {
    Error::object_storage(path, source)
}
