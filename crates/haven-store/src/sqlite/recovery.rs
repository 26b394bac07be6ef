//! Recovery runs and their steps in SQLite.

use haven_model::recovery::run::{RecoveryRun, StepRecord};
use sqlx::Row;

use super::{SqliteStore, from_json, json_text, ms, returned_id};
use crate::{Result, StoreError};

impl SqliteStore {
    pub(crate) async fn create_recovery_impl(
        &self,
        run: &RecoveryRun,
        steps: &[StepRecord],
    ) -> Result<RecoveryRun> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "INSERT INTO recovery_runs (started_at, state, record) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(ms(run.started_at))
        .bind(run.state.as_str())
        .bind(json_text(run)?)
        .fetch_all(&mut *tx)
        .await?;
        let run = RecoveryRun {
            id: returned_id(&rows)?,
            ..run.clone()
        };
        // The id is in the record too: write it again with it.
        sqlx::query("UPDATE recovery_runs SET record = ? WHERE id = ?")
            .bind(json_text(&run)?)
            .bind(run.id)
            .execute(&mut *tx)
            .await?;
        for step in steps {
            sqlx::query("INSERT INTO recovery_steps (run_id, number, record) VALUES (?, ?, ?)")
                .bind(run.id)
                .bind(i64::from(step.number))
                .bind(json_text(step)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(run)
    }

    pub(crate) async fn update_recovery_impl(&self, run: &RecoveryRun) -> Result<()> {
        let done = sqlx::query("UPDATE recovery_runs SET state = ?, record = ? WHERE id = ?")
            .bind(run.state.as_str())
            .bind(json_text(run)?)
            .bind(run.id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Corrupt(format!("no recovery run {}", run.id)));
        }
        Ok(())
    }

    pub(crate) async fn put_recovery_step_impl(&self, run: i64, step: &StepRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO recovery_steps (run_id, number, record) VALUES (?, ?, ?) \
             ON CONFLICT (run_id, number) DO UPDATE SET record = excluded.record",
        )
        .bind(run)
        .bind(i64::from(step.number))
        .bind(json_text(step)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn recovery_impl(
        &self,
        id: i64,
    ) -> Result<Option<(RecoveryRun, Vec<StepRecord>)>> {
        let Some(row) = sqlx::query("SELECT record FROM recovery_runs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let run: RecoveryRun = from_json(&row.try_get::<String, _>("record")?, "recovery run")?;
        let rows =
            sqlx::query("SELECT record FROM recovery_steps WHERE run_id = ? ORDER BY number")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        let steps = rows
            .iter()
            .map(|r| from_json(&r.try_get::<String, _>("record")?, "recovery step"))
            .collect::<Result<Vec<StepRecord>>>()?;
        Ok(Some((run, steps)))
    }

    pub(crate) async fn recovery_step_impl(
        &self,
        run: i64,
        number: u32,
    ) -> Result<Option<StepRecord>> {
        let row = sqlx::query("SELECT record FROM recovery_steps WHERE run_id = ? AND number = ?")
            .bind(run)
            .bind(i64::from(number))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| from_json(&r.try_get::<String, _>("record")?, "recovery step"))
            .transpose()
    }

    pub(crate) async fn recoveries_impl(&self, limit: u32) -> Result<Vec<RecoveryRun>> {
        let rows = sqlx::query(
            "SELECT record FROM recovery_runs ORDER BY started_at DESC, id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| from_json(&r.try_get::<String, _>("record")?, "recovery run"))
            .collect()
    }
}
