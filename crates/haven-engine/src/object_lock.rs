//! S3 Object Lock: retention dates on stored objects, enforced by the
//! object store itself, so not even a stolen administrator credential
//! (COMPLIANCE mode) can delete a locked snapshot's data before its date.
//! The signed S3 calls are the backend's (`backend/object_lock.rs`).

use jiff::Timestamp;

pub use crate::backend::LockMode;
use crate::error::Result;

/// What applying Object Lock to a locked snapshot did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ObjectLockOutcome {
    /// Retention mode used.
    pub mode: LockMode,
    /// Retention date (the snapshot's lock).
    pub until: Timestamp,
    /// Objects covered: config, key files, the snapshot file and every
    /// pack holding data the snapshot needs.
    pub objects: u64,
    /// Objects whose retention was set or extended now (the others were
    /// already retained at least as long).
    pub extended: u64,
    /// Set when retention could not be applied to every object. The
    /// snapshot is saved and Haven still refuses to remove it.
    pub error: Option<String>,
}

impl crate::repo::Repository {
    /// Give every object a locked snapshot needs an Object Lock retention
    /// at least until the snapshot's lock. `None` when the snapshot has no
    /// lock or the storage has no Object Lock (local directories, buckets
    /// without it). Failures are reported in the outcome, not returned:
    /// the snapshot is saved either way.
    pub fn apply_object_lock(
        &self,
        snapshot_id: &crate::id::Id,
        snapshot: &crate::format::Snapshot,
        mode: LockMode,
    ) -> Option<ObjectLockOutcome> {
        let until = snapshot.retention_lock_until?;
        // A local directory has no Object Lock to speak of (the lock is
        // Haven's, as always): nothing to apply and nothing to say.
        if !self.backend.is_object_storage() {
            return None;
        }
        let mut outcome = ObjectLockOutcome {
            mode,
            until,
            objects: 0,
            extended: 0,
            error: None,
        };
        match self.backend.object_lock_enabled() {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(
                    "the bucket has no Object Lock: the retention lock is enforced by Haven only"
                );
                return None;
            }
            Err(e) => {
                outcome.error = Some(e.to_string());
                return Some(outcome);
            }
        }
        let result = (|| -> Result<()> {
            let (index, _) = self.load_index(true)?;
            let used = self.used_blobs(
                &index,
                &[(*snapshot_id, snapshot.clone())],
                &crate::progress::NoProgress,
            )?;
            let mut packs: Vec<crate::id::Id> = used
                .iter()
                .filter_map(|blob| index.get(blob))
                .map(|loc| index.pack(loc.pack).id)
                .collect();
            packs.sort();
            packs.dedup();
            let mut objects = vec![
                crate::repo::CONFIG_FILE.to_string(),
                format!("{}/{snapshot_id}", crate::repo::SNAPSHOT_DIR),
            ];
            objects.extend(self.backend.list(crate::repo::KEY_DIR)?);
            objects.extend(packs.iter().map(crate::repo::pack_path));
            for object in &objects {
                if self.backend.retain_until(object, mode, until)? {
                    outcome.extended += 1;
                }
                outcome.objects += 1;
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::warn!(error = %e, "Object Lock retention was not applied to every object");
            outcome.error = Some(e.to_string());
        }
        Some(outcome)
    }
}
