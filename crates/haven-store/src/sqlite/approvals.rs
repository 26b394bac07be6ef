//! Four-eyes requests in SQLite.

use haven_model::approval::{ApprovalRequest, RequestState};
use sqlx::Row;

use super::{SqliteStore, from_json, json_text, ms, record_of, returned_id};
use crate::Result;

impl SqliteStore {
    pub(crate) async fn add_approval_impl(
        &self,
        request: &ApprovalRequest,
    ) -> Result<ApprovalRequest> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "INSERT INTO approval_requests (requested_at, state, record) VALUES (?, ?, ?) \
             RETURNING id",
        )
        .bind(ms(request.requested_at))
        .bind(request.state.as_str())
        .bind(json_text(request)?)
        .fetch_all(&mut *tx)
        .await?;
        let request = ApprovalRequest {
            id: returned_id(&rows)?,
            ..request.clone()
        };
        // The id is in the record too: write it again with it.
        sqlx::query("UPDATE approval_requests SET record = ? WHERE id = ?")
            .bind(json_text(&request)?)
            .bind(request.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(request)
    }

    pub(crate) async fn update_approval_impl(
        &self,
        request: &ApprovalRequest,
        was: RequestState,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE approval_requests SET state = ?, record = ? WHERE id = ? AND state = ?",
        )
        .bind(request.state.as_str())
        .bind(json_text(request)?)
        .bind(request.id)
        .bind(was.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn approvals_impl(&self, limit: u32) -> Result<Vec<ApprovalRequest>> {
        let rows = sqlx::query("SELECT record FROM approval_requests ORDER BY id DESC LIMIT ?")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| from_json(&r.try_get::<String, _>("record")?, "approval request"))
            .collect()
    }

    pub(crate) async fn approval_impl(&self, id: i64) -> Result<Option<ApprovalRequest>> {
        let row = sqlx::query("SELECT record FROM approval_requests WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        record_of(row, "approval request")
    }
}
