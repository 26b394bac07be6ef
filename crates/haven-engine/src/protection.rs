//! Retention locks and legal holds: what keeps a snapshot from removal.
//!
//! Both live in the repository itself, so they survive the loss of
//! Haven's server and database. A retention lock is a field of the
//! write-once snapshot object; a legal hold is its own object under
//! `holds/`, removed only by an explicit `hold remove`.

use jiff::Timestamp;

use crate::crypto::ObjectKind;
use crate::error::{Error, Result};
use crate::format::{FORMAT_VERSION, Hold, Snapshot};
use crate::id::Id;
use crate::repo::{Repository, SNAPSHOT_DIR};

/// Directory of legal holds.
pub const HOLD_DIR: &str = "holds";

impl Repository {
    /// Place a legal hold on a snapshot.
    pub fn add_hold(&self, snapshot: &Id, reason: &str) -> Result<Id> {
        if reason.trim().is_empty() {
            return Err(Error::InvalidArgument(
                "a legal hold needs a reason (--reason)".into(),
            ));
        }
        self.load_snapshot(snapshot)?;
        let hold = Hold {
            version: FORMAT_VERSION,
            snapshot: *snapshot,
            reason: reason.to_string(),
            created: Timestamp::now(),
            hostname: crate::host::hostname(),
            username: crate::host::username(),
        };
        let json = serde_json::to_vec(&hold)
            .map_err(|e| Error::InvalidArgument(format!("serialisation failed: {e}")))?;
        self.save_file(HOLD_DIR, ObjectKind::Hold, &json)
    }

    /// All legal holds. A hold that cannot be read is an error: ignoring
    /// it could let a held snapshot be removed.
    pub fn holds(&self) -> Result<Vec<(Id, Hold)>> {
        let mut holds = Vec::new();
        for path in self.backend.list(HOLD_DIR)? {
            let name = path.rsplit('/').next().unwrap_or_default();
            let Ok(id) = name.parse::<Id>() else { continue };
            let bytes = self.read_verified(HOLD_DIR, &id, ObjectKind::Hold)?;
            let plain = self.aead.open(ObjectKind::Hold, &bytes, None)?;
            let hold = crate::format::rules::decode_hold(&plain)
                .map_err(|e| Error::corrupt(format!("hold {}", id.short()), e))?;
            holds.push((id, hold));
        }
        holds.sort_by_key(|(_, hold)| hold.created);
        Ok(holds)
    }

    /// Lift a legal hold.
    pub fn remove_hold(&self, hold: &Id) -> Result<()> {
        self.backend.delete(&format!("{HOLD_DIR}/{hold}"))
    }

    /// The hold of `snapshot` to lift: its only one, or the one whose id
    /// starts with `prefix`. Ambiguity and absence are explained.
    pub fn find_hold(&self, snapshot: &Id, prefix: Option<&str>) -> Result<(Id, Hold)> {
        let mut on_snapshot: Vec<(Id, Hold)> = self
            .holds()?
            .into_iter()
            .filter(|(_, h)| h.snapshot == *snapshot)
            .collect();
        if let Some(prefix) = prefix {
            let prefix = prefix.to_ascii_lowercase();
            on_snapshot.retain(|(id, _)| id.to_hex().starts_with(&prefix));
        }
        match on_snapshot.len() {
            1 => Ok(on_snapshot.remove(0)),
            0 if prefix.is_some() => Err(Error::InvalidArgument(format!(
                "--hold {:?} matches no hold of snapshot {}",
                prefix.unwrap_or_default(),
                snapshot.short()
            ))),
            0 => Err(Error::InvalidArgument(format!(
                "snapshot {} has no legal hold",
                snapshot.short()
            ))),
            n => Err(Error::InvalidArgument(format!(
                "snapshot {} has {n} holds; pick one with --hold ({})",
                snapshot.short(),
                on_snapshot
                    .iter()
                    .map(|(h, x)| format!("{}: {}", h.short(), x.reason))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Why `snapshot` must not be removed at `now` (empty: it may be).
    pub fn protection(
        &self,
        id: &Id,
        snapshot: &Snapshot,
        holds: &[(Id, Hold)],
        now: Timestamp,
    ) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some(until) = snapshot.retention_lock_until.filter(|until| *until > now) {
            reasons.push(format!("retention lock until {until}"));
        }
        for (_, hold) in holds.iter().filter(|(_, h)| h.snapshot == *id) {
            reasons.push(format!("legal hold: {}", hold.reason));
        }
        reasons
    }

    /// Remove snapshot files (their data stays until prune reclaims it).
    /// Every removal of a snapshot goes through here: protected snapshots
    /// are refused, and nothing is removed unless every one may be.
    pub fn remove_snapshots(&self, ids: &[Id]) -> Result<()> {
        let holds = self.holds()?;
        let now = Timestamp::now();
        for id in ids {
            let snapshot = self.load_snapshot(id)?;
            let reasons = self.protection(id, &snapshot, &holds, now);
            if !reasons.is_empty() {
                return Err(Error::Protected {
                    snapshot: id.short(),
                    reasons,
                });
            }
        }
        for id in ids {
            self.backend.delete(&format!("{SNAPSHOT_DIR}/{id}"))?;
        }
        Ok(())
    }
}
