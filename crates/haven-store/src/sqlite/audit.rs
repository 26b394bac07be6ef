//! The audit log in SQLite: entries and signed checkpoints, append-only
//! (the triggers of migration 0008 refuse UPDATE and DELETE).

use haven_model::audit::{Entry, Hash};
use sqlx::Row;

use super::{SqliteStore, from_json, json_text};
use crate::{Result, StoreError};

impl SqliteStore {
    pub(crate) async fn append_audit_impl(&self, entry: &Entry) -> Result<()> {
        let seq = i64::try_from(entry.seq).map_err(|_| {
            StoreError::Corrupt(format!("audit entry number {} is too large", entry.seq))
        })?;
        sqlx::query("INSERT INTO audit_entries (seq, leaf, record) VALUES (?, ?, ?)")
            .bind(seq)
            .bind(entry.leaf().0.to_vec())
            .bind(json_text(entry)?)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if super::is_unique_violation(&e) {
                    StoreError::AuditTaken(entry.seq)
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    pub(crate) async fn audit_entries_impl(
        &self,
        from: u64,
        limit: u64,
    ) -> Result<Vec<(u64, Entry, Hash)>> {
        let rows = sqlx::query(
            "SELECT seq, leaf, record FROM audit_entries WHERE seq >= ? ORDER BY seq LIMIT ?",
        )
        .bind(i64::try_from(from).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq")?;
                let leaf: Vec<u8> = row.try_get("leaf")?;
                let leaf: [u8; 32] = leaf.try_into().map_err(|_| {
                    StoreError::Corrupt(format!("audit entry {seq}: its leaf hash is not 32 bytes"))
                })?;
                let entry: Entry = from_json(&row.try_get::<String, _>("record")?, "audit entry")?;
                Ok((u64::try_from(seq).unwrap_or(0), entry, Hash(leaf)))
            })
            .collect()
    }

    pub(crate) async fn add_audit_checkpoint_impl(&self, size: u64, note: &str) -> Result<()> {
        sqlx::query("INSERT OR IGNORE INTO audit_checkpoints (size, note) VALUES (?, ?)")
            .bind(i64::try_from(size).unwrap_or(i64::MAX))
            .bind(note)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn audit_checkpoints_impl(&self) -> Result<Vec<(u64, String)>> {
        let rows = sqlx::query("SELECT size, note FROM audit_checkpoints ORDER BY size")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let size: i64 = row.try_get("size")?;
                Ok((u64::try_from(size).unwrap_or(0), row.try_get("note")?))
            })
            .collect()
    }

    pub(crate) async fn newest_audit_checkpoint_impl(&self) -> Result<Option<(u64, String)>> {
        let row =
            sqlx::query("SELECT size, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            let size: i64 = row.try_get("size")?;
            Ok((u64::try_from(size).unwrap_or(0), row.try_get("note")?))
        })
        .transpose()
    }
}
