//! The prune lock (`prune.lock`): one prune at a time per repository.
//! Backups never take it.

use jiff::Timestamp;

use super::PRUNE_LOCK;
use crate::crypto::ObjectKind;
use crate::error::{Error, Result};
use crate::format::{FORMAT_VERSION, PruneLock};
use crate::repo::Repository;

impl Repository {
    /// Take the prune lock. A lock left by a prune of this host whose
    /// process is gone is taken over; any other needs `break_lock`.
    pub(crate) fn take_prune_lock(&self, break_lock: bool) -> Result<PruneLockGuard> {
        let lock = PruneLock {
            version: FORMAT_VERSION,
            created: Timestamp::now(),
            hostname: crate::host::hostname(),
            pid: std::process::id(),
        };
        let json = serde_json::to_vec(&lock)
            .map_err(|e| Error::InvalidArgument(format!("serialisation failed: {e}")))?;
        for _ in 0..2 {
            let sealed = self.aead.seal_raw(ObjectKind::PruneLock, &json);
            match self.backend.create_exclusive(PRUNE_LOCK, sealed) {
                Ok(()) => {
                    return Ok(PruneLockGuard { repo: self.clone() });
                }
                Err(Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            let holder = self.read_prune_lock();
            let stale = match &holder {
                Ok(h) => h.hostname == lock.hostname && !crate::host::process_alive(h.pid),
                Err(_) => false,
            };
            if !(stale || break_lock) {
                return Err(match holder {
                    Ok(h) => Error::PruneLocked {
                        holder: format!("{} (pid {}) since {}", h.hostname, h.pid, h.created),
                    },
                    Err(e) => Error::PruneLocked {
                        holder: format!("an unreadable lock ({e})"),
                    },
                });
            }
            tracing::warn!("removing a prune lock left by a process that is gone");
            self.backend.delete(PRUNE_LOCK)?;
        }
        Err(Error::PruneLocked {
            holder: "another prune that took the lock meanwhile".into(),
        })
    }

    fn read_prune_lock(&self) -> Result<PruneLock> {
        let bytes = self
            .backend
            .read_at_most(PRUNE_LOCK, ObjectKind::PruneLock.max_envelope())?;
        let plain = self.aead.open(ObjectKind::PruneLock, &bytes, None)?;
        crate::format::rules::decode_prune_lock(&plain).map_err(|e| Error::corrupt("prune lock", e))
    }
}

/// Removes the prune lock when prune ends (a killed prune leaves it; the
/// next prune on the same host sees the process is gone and takes over).
pub(crate) struct PruneLockGuard {
    repo: Repository,
}

impl Drop for PruneLockGuard {
    fn drop(&mut self) {
        if let Err(e) = self.repo.backend.delete(PRUNE_LOCK) {
            tracing::warn!(error = %e, "could not remove the prune lock");
        }
    }
}
