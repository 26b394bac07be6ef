//! Anchors: small public documents Haven keeps in a repository so a copy
//! of them lives where the backups live, outside Haven's database (the
//! audit log's signed checkpoints). Plaintext (a signed note is public
//! and proves itself), named by their BLAKE3 id like every file of a
//! repository, never overwritten; a reader verifies the id and ignores
//! what does not match.

use crate::error::Result;
use crate::id::Id;
use crate::repo::Repository;

/// The directory of anchors.
pub const ANCHOR_DIR: &str = "anchors";
/// An anchor larger than this is not one (and is not read).
const MAX_ANCHOR: u64 = 64 * 1024;

impl Repository {
    /// Keep `bytes` as an anchor (a no-op when the same bytes are there
    /// already); its id.
    pub fn put_anchor(&self, bytes: &[u8]) -> Result<Id> {
        let id = Id::of_file(bytes);
        self.backend()
            .write_new(&format!("{ANCHOR_DIR}/{}", id.to_hex()), bytes.to_vec())?;
        Ok(id)
    }

    /// Keep `bytes` as an anchor and, where the storage enforces Object
    /// Lock (an S3 bucket with it), retain it `mode` until `until`, so
    /// not even the repository's owner deletes it sooner. Answers the
    /// retention date set (none: the storage has no Object Lock).
    pub fn put_anchor_retained(
        &self,
        bytes: &[u8],
        mode: crate::object_lock::LockMode,
        until: jiff::Timestamp,
    ) -> Result<(Id, Option<jiff::Timestamp>)> {
        let id = self.put_anchor(bytes)?;
        let backend = self.backend();
        if !backend.is_object_storage() || !backend.object_lock_enabled()? {
            return Ok((id, None));
        }
        backend.retain_until(&format!("{ANCHOR_DIR}/{}", id.to_hex()), mode, until)?;
        Ok((id, Some(until)))
    }

    /// Every anchor whose name is its id (others, and files that cannot
    /// be read, are ignored).
    pub fn anchors(&self) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for path in self.backend().list(ANCHOR_DIR)? {
            let name = path.rsplit('/').next().unwrap_or_default();
            let Ok(id) = name.parse::<Id>() else {
                continue;
            };
            // One oversized or unreadable file is not an anchor; the
            // others still are.
            let Ok(bytes) = self.backend().read_at_most(&path, MAX_ANCHOR) else {
                continue;
            };
            if Id::of_file(&bytes) == id {
                out.push(bytes);
            }
        }
        Ok(out)
    }
}
