//! The embedded store: one SQLite file in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use haven_model::jobs::{
    Failure, FailureClass, Job, JobKind, JobStats, Layer, Outcome, SetState, Trigger,
};
use jiff::Timestamp;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use haven_model::alerts::{
    Alert, AlertState, Delivery, PendingNotification, Rule, Severity, Subject,
};
use haven_model::catalog::watch::Scope;
use haven_model::maintenance::Recorded;

use crate::{AlertFilter, JobCount, JobEnd, JobFilter, Result, Store, StoreError};
use haven_model::access::{Session, Token, User};
use haven_model::approval::{ApprovalRequest, RequestState};
use haven_model::audit::{Entry, Hash};
use haven_model::drills::{Drill, ServiceDrill};
use haven_model::recovery::run::{RecoveryRun, StepRecord};

mod access;
mod approvals;
mod audit;
mod recovery;
use haven_model::jobs::NewJob;

/// A store in one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const JOB_COLUMNS: &str = "id, kind, task, system, backup_set, policy, repository, trigger, attempt, \
    scheduled_at, started_at, ended_at, outcome, files_new, files_changed, files_unmodified, \
    bytes_changed, bytes_total, bytes_added, snapshot_id, failure_class, failure_detail, \
    failure_layer, message, log, repository_bytes";

impl SqliteStore {
    /// Open (creating if needed) the database at `sqlite://PATH` and
    /// bring its schema up to date.
    pub async fn open(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL loses at most the last transactions on
            // power loss, never consistency; FULL on every commit would
            // cost an fsync per job record.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        private_database(options.get_filename())?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { pool })
    }
}

/// The database holds job logs and alert text: it is created private
/// (0600) before SQLite opens it, so its `-wal` and `-shm` files, which
/// SQLite creates with the database's mode, are private too; files an
/// older version left readable are narrowed.
fn private_database(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let failed = |source: std::io::Error| StoreError::File {
        path: path.display().to_string(),
        source,
    };
    if path.as_os_str() == ":memory:" || path.as_os_str().is_empty() {
        return Ok(());
    }
    if !path.exists() {
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        match created {
            Ok(file) => file
                .set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(failed)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(failed(e)),
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = std::path::PathBuf::from(file);
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(failed)?;
        }
    }
    Ok(())
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn from_ms(ms: i64) -> Result<Timestamp> {
    Timestamp::from_millisecond(ms).map_err(|e| StoreError::Corrupt(format!("time {ms}: {e}")))
}

fn opt_ms(ms: Option<i64>) -> Result<Option<Timestamp>> {
    ms.map(from_ms).transpose()
}

fn parsed<T>(value: &str, what: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    parse(value).ok_or_else(|| StoreError::Corrupt(format!("{what} {value:?}")))
}

fn job_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Job> {
    let class: Option<String> = row.try_get("failure_class")?;
    let failure = match class {
        Some(class) => Some(Failure {
            class: parsed(&class, "failure class", FailureClass::parse)?,
            detail: row
                .try_get::<Option<String>, _>("failure_detail")?
                .unwrap_or_default(),
            layer: parsed(
                &row.try_get::<Option<String>, _>("failure_layer")?
                    .unwrap_or_default(),
                "layer",
                Layer::parse,
            )?,
        }),
        None => None,
    };
    let count = |name: &str| -> Result<u64> { Ok(row.try_get::<i64, _>(name)?.max(0) as u64) };
    Ok(Job {
        id: row.try_get("id")?,
        planned: NewJob {
            kind: parsed(
                &row.try_get::<String, _>("kind")?,
                "job kind",
                JobKind::parse,
            )?,
            task: row.try_get("task")?,
            system: row.try_get("system")?,
            backup_set: row.try_get("backup_set")?,
            policy: row.try_get("policy")?,
            repository: row.try_get("repository")?,
            trigger: parsed(
                &row.try_get::<String, _>("trigger")?,
                "trigger",
                Trigger::parse,
            )?,
            attempt: row
                .try_get::<i64, _>("attempt")?
                .clamp(0, i64::from(u32::MAX)) as u32,
            scheduled_at: from_ms(row.try_get("scheduled_at")?)?,
        },
        started_at: opt_ms(row.try_get("started_at")?)?,
        ended_at: opt_ms(row.try_get("ended_at")?)?,
        outcome: parsed(
            &row.try_get::<String, _>("outcome")?,
            "outcome",
            Outcome::parse,
        )?,
        stats: JobStats {
            files_new: count("files_new")?,
            files_changed: count("files_changed")?,
            files_unmodified: count("files_unmodified")?,
            bytes_changed: count("bytes_changed")?,
            bytes_total: count("bytes_total")?,
            bytes_added: count("bytes_added")?,
            repository_bytes: row
                .try_get::<Option<i64>, _>("repository_bytes")?
                .map(|b| b.max(0) as u64),
        },
        snapshot_id: row.try_get("snapshot_id")?,
        failure,
        message: row.try_get("message")?,
        log: row.try_get("log")?,
    })
}

fn state_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<SetState> {
    let outcome: Option<String> = row.try_get("last_outcome")?;
    let class: Option<String> = row.try_get("streak_class")?;
    Ok(SetState {
        system: row.try_get("system")?,
        backup_set: row.try_get("backup_set")?,
        first_seen: from_ms(row.try_get("first_seen")?)?,
        last_good_at: opt_ms(row.try_get("last_good_at")?)?,
        last_good_job: row.try_get("last_good_job")?,
        last_snapshot: row.try_get("last_snapshot")?,
        last_outcome: outcome
            .map(|o| parsed(&o, "outcome", Outcome::parse))
            .transpose()?,
        failure_streak: row.try_get::<i64, _>("failure_streak")?.max(0) as u32,
        streak_class: class
            .map(|c| parsed(&c, "failure class", FailureClass::parse))
            .transpose()?,
        systemic: row.try_get("systemic")?,
        config: row.try_get("config")?,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

async fn insert_job(
    conn: &mut sqlx::SqliteConnection,
    job: &NewJob,
    started_at: Option<Timestamp>,
    outcome: Outcome,
    ended_at: Option<Timestamp>,
    message: Option<&str>,
) -> Result<i64> {
    let rows = sqlx::query(
        "INSERT INTO jobs (kind, task, system, backup_set, policy, repository, trigger, attempt, \
         scheduled_at, started_at, ended_at, outcome, message) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(job.kind.as_str())
    .bind(&job.task)
    .bind(&job.system)
    .bind(&job.backup_set)
    .bind(&job.policy)
    .bind(&job.repository)
    .bind(job.trigger.as_str())
    .bind(i64::from(job.attempt))
    .bind(ms(job.scheduled_at))
    .bind(started_at.map(ms))
    .bind(ended_at.map(ms))
    .bind(outcome.as_str())
    .bind(message)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::AlreadyRunning {
                task: job.task.clone(),
            }
        } else {
            e.into()
        }
    })?;
    returned_id(&rows)
}

/// The id an `INSERT … RETURNING id` gave. Such statements are stepped to
/// their end (`fetch_all`, never `fetch_one`): outside a transaction the
/// commit happens when the statement finishes, and a commit that fails
/// (a full disk) must be an error, not the id of a row that is not there.
fn returned_id(rows: &[sqlx::sqlite::SqliteRow]) -> Result<i64> {
    let row = rows
        .first()
        .ok_or_else(|| StoreError::Corrupt("an insert returned no id".into()))?;
    Ok(row.try_get(0)?)
}

async fn load_job(conn: &mut sqlx::SqliteConnection, id: i64) -> Result<Option<Job>> {
    let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(job_from_row).transpose()
}

async fn upsert_state(conn: &mut sqlx::SqliteConnection, state: &SetState) -> Result<()> {
    sqlx::query(
        "INSERT INTO set_states (system, backup_set, first_seen, last_good_at, last_good_job, \
         last_snapshot, last_outcome, failure_streak, streak_class, systemic, config) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (system, backup_set) DO UPDATE SET first_seen = excluded.first_seen, \
         last_good_at = excluded.last_good_at, last_good_job = excluded.last_good_job, \
         last_snapshot = excluded.last_snapshot, last_outcome = excluded.last_outcome, \
         failure_streak = excluded.failure_streak, streak_class = excluded.streak_class, \
         systemic = excluded.systemic, config = excluded.config",
    )
    .bind(&state.system)
    .bind(&state.backup_set)
    .bind(ms(state.first_seen))
    .bind(state.last_good_at.map(ms))
    .bind(state.last_good_job)
    .bind(&state.last_snapshot)
    .bind(state.last_outcome.map(Outcome::as_str))
    .bind(i64::from(state.failure_streak))
    .bind(state.streak_class.map(FailureClass::as_str))
    .bind(state.systemic)
    .bind(&state.config)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn start_job(&self, job: &NewJob, started_at: Timestamp) -> Result<Job> {
        let mut conn = self.pool.acquire().await?;
        let id = insert_job(
            &mut conn,
            job,
            Some(started_at),
            Outcome::Running,
            None,
            None,
        )
        .await?;
        load_job(&mut conn, id)
            .await?
            .ok_or(StoreError::NoSuchJob(id))
    }

    async fn record_skipped(&self, job: &NewJob, at: Timestamp, message: &str) -> Result<Job> {
        let mut conn = self.pool.acquire().await?;
        let id = insert_job(
            &mut conn,
            job,
            None,
            Outcome::Skipped,
            Some(at),
            Some(message),
        )
        .await?;
        load_job(&mut conn, id)
            .await?
            .ok_or(StoreError::NoSuchJob(id))
    }

    async fn finish_job(&self, id: i64, end: &JobEnd, state: Option<&SetState>) -> Result<Job> {
        let mut tx = self.pool.begin().await?;
        let s = &end.stats;
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let done = sqlx::query(
            "UPDATE jobs SET ended_at = ?, outcome = ?, files_new = ?, files_changed = ?, \
             files_unmodified = ?, bytes_changed = ?, bytes_total = ?, bytes_added = ?, \
             snapshot_id = ?, failure_class = ?, failure_detail = ?, failure_layer = ?, \
             message = ?, log = ?, repository_bytes = ? WHERE id = ? AND outcome = 'running'",
        )
        .bind(end.ended_at.map(ms))
        .bind(end.outcome.unwrap_or(Outcome::Failed).as_str())
        .bind(as_i64(s.files_new))
        .bind(as_i64(s.files_changed))
        .bind(as_i64(s.files_unmodified))
        .bind(as_i64(s.bytes_changed))
        .bind(as_i64(s.bytes_total))
        .bind(as_i64(s.bytes_added))
        .bind(&end.snapshot_id)
        .bind(end.failure.as_ref().map(|f| f.class.as_str()))
        .bind(end.failure.as_ref().map(|f| f.detail.as_str()))
        .bind(end.failure.as_ref().map(|f| f.layer.as_str()))
        .bind(&end.message)
        .bind(&end.log)
        .bind(s.repository_bytes.map(as_i64))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoSuchJob(id));
        }
        if let Some(state) = state {
            upsert_state(&mut tx, state).await?;
        }
        let job = load_job(&mut tx, id)
            .await?
            .ok_or(StoreError::NoSuchJob(id))?;
        tx.commit().await?;
        Ok(job)
    }

    async fn interrupt_running(&self, now: Timestamp, message: &str) -> Result<Vec<Job>> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(&format!(
            "UPDATE jobs SET outcome = 'interrupted', ended_at = ?, message = ? \
             WHERE outcome = 'running' RETURNING {JOB_COLUMNS}"
        ))
        .bind(ms(now))
        .bind(message)
        .fetch_all(&mut *tx)
        .await?;
        let jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
        // The set's last outcome says what happened last.
        for job in &jobs {
            if let (Some(system), Some(set)) = (&job.planned.system, &job.planned.backup_set) {
                sqlx::query(
                    "UPDATE set_states SET last_outcome = 'interrupted' \
                     WHERE system = ? AND backup_set = ?",
                )
                .bind(system)
                .bind(set)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(jobs)
    }

    async fn job(&self, id: i64) -> Result<Option<Job>> {
        let mut conn = self.pool.acquire().await?;
        load_job(&mut conn, id).await
    }

    async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        let mut query: QueryBuilder<'_, Sqlite> =
            QueryBuilder::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1"));
        if let Some(system) = &filter.system {
            query.push(" AND system = ").push_bind(system);
        }
        if let Some(kind) = filter.kind {
            query.push(" AND kind = ").push_bind(kind.as_str());
        }
        if !filter.outcomes.is_empty() {
            query.push(" AND outcome IN (");
            let mut list = query.separated(", ");
            for outcome in &filter.outcomes {
                list.push_bind(outcome.as_str());
            }
            query.push(")");
        }
        if let Some(since) = filter.since {
            query.push(" AND scheduled_at >= ").push_bind(ms(since));
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(filter.limit));
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn set_states(&self) -> Result<Vec<SetState>> {
        let rows = sqlx::query("SELECT * FROM set_states ORDER BY system, backup_set")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(state_from_row).collect()
    }

    async fn put_set_state(&self, state: &SetState) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        upsert_state(&mut conn, state).await
    }

    async fn schedule_marks(&self) -> Result<Vec<(String, Timestamp)>> {
        let rows = sqlx::query("SELECT task, slot FROM schedule_marks")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("task")?, from_ms(row.try_get("slot")?)?)))
            .collect()
    }

    async fn set_schedule_mark(&self, task: &str, slot: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO schedule_marks (task, slot) VALUES (?, ?) \
             ON CONFLICT (task) DO UPDATE SET slot = excluded.slot",
        )
        .bind(task)
        .bind(ms(slot))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn import_jobs(&self, jobs: &[Job]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // SQLite allows 32766 bound values per statement.
        for chunk in jobs.chunks(1000) {
            let mut query: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
                "INSERT INTO jobs (kind, task, system, backup_set, policy, repository, trigger, \
                 attempt, scheduled_at, started_at, ended_at, outcome, files_new, files_changed, \
                 files_unmodified, bytes_changed, bytes_total, bytes_added, snapshot_id, \
                 failure_class, failure_detail, failure_layer, message, log, repository_bytes) ",
            );
            query.push_values(chunk, |mut b, job| {
                let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                b.push_bind(job.planned.kind.as_str())
                    .push_bind(&job.planned.task)
                    .push_bind(&job.planned.system)
                    .push_bind(&job.planned.backup_set)
                    .push_bind(&job.planned.policy)
                    .push_bind(&job.planned.repository)
                    .push_bind(job.planned.trigger.as_str())
                    .push_bind(i64::from(job.planned.attempt))
                    .push_bind(ms(job.planned.scheduled_at))
                    .push_bind(job.started_at.map(ms))
                    .push_bind(job.ended_at.map(ms))
                    .push_bind(job.outcome.as_str())
                    .push_bind(as_i64(job.stats.files_new))
                    .push_bind(as_i64(job.stats.files_changed))
                    .push_bind(as_i64(job.stats.files_unmodified))
                    .push_bind(as_i64(job.stats.bytes_changed))
                    .push_bind(as_i64(job.stats.bytes_total))
                    .push_bind(as_i64(job.stats.bytes_added))
                    .push_bind(&job.snapshot_id)
                    .push_bind(job.failure.as_ref().map(|f| f.class.as_str()))
                    .push_bind(job.failure.as_ref().map(|f| f.detail.clone()))
                    .push_bind(job.failure.as_ref().map(|f| f.layer.as_str()))
                    .push_bind(&job.message)
                    .push_bind(&job.log)
                    .push_bind(job.stats.repository_bytes.map(as_i64));
            });
            query.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn latest_jobs(&self, kind: JobKind, outcomes: &[Outcome]) -> Result<Vec<Job>> {
        self.latest_jobs_impl(kind, outcomes).await
    }

    async fn capacity_samples(
        &self,
        repository: &str,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, u64)>> {
        self.capacity_samples_impl(repository, since).await
    }

    async fn insert_alert(&self, alert: &Alert) -> Result<Alert> {
        self.insert_alert_impl(alert).await
    }

    async fn update_alert(&self, alert: &Alert) -> Result<()> {
        self.update_alert_impl(alert).await
    }

    async fn alert(&self, id: i64) -> Result<Option<Alert>> {
        self.load_alert(id).await
    }

    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>> {
        self.alerts_impl(filter).await
    }

    async fn record_delivery(&self, delivery: &Delivery) -> Result<Delivery> {
        self.record_delivery_impl(delivery).await
    }

    async fn deliveries(&self, alert_id: Option<i64>) -> Result<Vec<Delivery>> {
        self.deliveries_impl(alert_id).await
    }

    async fn queue_notification(
        &self,
        pending: &PendingNotification,
    ) -> Result<PendingNotification> {
        let id = sqlx::query(
            "INSERT INTO outbox (alert_id, step, channels, channel, attempt, not_before, queued_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(pending.alert_id)
        .bind(pending.step.map(|s| s as i64))
        .bind(json_text(&pending.channels)?)
        .bind(pending.channel as i64)
        .bind(i64::from(pending.attempt))
        .bind(ms(pending.not_before))
        .bind(ms(pending.queued_at))
        .fetch_all(&self.pool)
        .await?;
        let id = returned_id(&id)?;
        Ok(PendingNotification {
            id,
            ..pending.clone()
        })
    }

    async fn update_notification(&self, pending: &PendingNotification) -> Result<()> {
        sqlx::query("UPDATE outbox SET channel = ?, attempt = ?, not_before = ? WHERE id = ?")
            .bind(pending.channel as i64)
            .bind(i64::from(pending.attempt))
            .bind(ms(pending.not_before))
            .bind(pending.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn finish_notification(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM outbox WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn queued_notifications(&self) -> Result<Vec<PendingNotification>> {
        let rows = sqlx::query("SELECT * FROM outbox ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingNotification {
                    id: row.try_get("id")?,
                    alert_id: row.try_get("alert_id")?,
                    step: row
                        .try_get::<Option<i64>, _>("step")?
                        .map(|s| s.max(0) as usize),
                    channels: from_json(row.try_get("channels")?, "outbox.channels")?,
                    channel: row.try_get::<i64, _>("channel")?.max(0) as usize,
                    attempt: row
                        .try_get::<i64, _>("attempt")?
                        .clamp(1, i64::from(u32::MAX)) as u32,
                    not_before: from_ms(row.try_get("not_before")?)?,
                    queued_at: from_ms(row.try_get("queued_at")?)?,
                })
            })
            .collect()
    }

    async fn add_maintenance(&self, window: &Recorded) -> Result<Recorded> {
        self.add_maintenance_impl(window).await
    }

    async fn end_maintenance(&self, id: i64, end: Timestamp) -> Result<()> {
        self.end_maintenance_impl(id, end).await
    }

    async fn maintenance(&self, since: Timestamp) -> Result<Vec<Recorded>> {
        self.maintenance_impl(since).await
    }

    async fn record_drill(&self, drill: &Drill) -> Result<Drill> {
        let rows = sqlx::query(
            "INSERT INTO drills (system, started_at, verdict, record) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(&drill.system)
        .bind(ms(drill.started_at))
        .bind(drill.verdict.as_str())
        .bind(json_text(drill)?)
        .fetch_all(&self.pool)
        .await?;
        let id = returned_id(&rows)?;
        Ok(Drill {
            id,
            ..drill.clone()
        })
    }

    async fn drills(&self, system: Option<&str>, limit: u32) -> Result<Vec<Drill>> {
        let rows = sqlx::query(
            "SELECT id, record FROM drills WHERE (?1 IS NULL OR system = ?1) \
             ORDER BY started_at DESC, id DESC LIMIT ?2",
        )
        .bind(system)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let mut drill: Drill = from_json(&row.try_get::<String, _>("record")?, "drill")?;
                drill.id = row.try_get("id")?;
                Ok(drill)
            })
            .collect()
    }

    async fn record_service_drill(&self, drill: &ServiceDrill) -> Result<ServiceDrill> {
        let rows = sqlx::query(
            "INSERT INTO service_drills (service, started_at, verdict, record) \
             VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(&drill.service)
        .bind(ms(drill.started_at))
        .bind(drill.verdict.as_str())
        .bind(json_text(drill)?)
        .fetch_all(&self.pool)
        .await?;
        let id = returned_id(&rows)?;
        Ok(ServiceDrill {
            id,
            ..drill.clone()
        })
    }

    async fn service_drills(&self, service: Option<&str>, limit: u32) -> Result<Vec<ServiceDrill>> {
        let rows = sqlx::query(
            "SELECT id, record FROM service_drills WHERE (?1 IS NULL OR service = ?1) \
             ORDER BY started_at DESC, id DESC LIMIT ?2",
        )
        .bind(service)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let record = row.try_get::<String, _>("record")?;
                let mut drill: ServiceDrill = from_json(&record, "service drill")?;
                drill.id = row.try_get("id")?;
                Ok(drill)
            })
            .collect()
    }

    async fn create_recovery(
        &self,
        run: &RecoveryRun,
        steps: &[StepRecord],
    ) -> Result<RecoveryRun> {
        self.create_recovery_impl(run, steps).await
    }

    async fn update_recovery(&self, run: &RecoveryRun) -> Result<()> {
        self.update_recovery_impl(run).await
    }

    async fn put_recovery_step(&self, run: i64, step: &StepRecord) -> Result<()> {
        self.put_recovery_step_impl(run, step).await
    }

    async fn recovery(&self, id: i64) -> Result<Option<(RecoveryRun, Vec<StepRecord>)>> {
        self.recovery_impl(id).await
    }

    async fn recovery_step(&self, run: i64, number: u32) -> Result<Option<StepRecord>> {
        self.recovery_step_impl(run, number).await
    }

    async fn recoveries(&self, limit: u32) -> Result<Vec<RecoveryRun>> {
        self.recoveries_impl(limit).await
    }

    async fn append_audit(&self, entry: &Entry) -> Result<()> {
        self.append_audit_impl(entry).await
    }

    async fn audit_entries(&self, from: u64, limit: u64) -> Result<Vec<(u64, Entry, Hash)>> {
        self.audit_entries_impl(from, limit).await
    }

    async fn add_audit_checkpoint(&self, size: u64, note: &str) -> Result<()> {
        self.add_audit_checkpoint_impl(size, note).await
    }

    async fn audit_checkpoints(&self) -> Result<Vec<(u64, String)>> {
        self.audit_checkpoints_impl().await
    }

    async fn newest_audit_checkpoint(&self) -> Result<Option<(u64, String)>> {
        self.newest_audit_checkpoint_impl().await
    }

    async fn job_counts(&self) -> Result<Vec<JobCount>> {
        let rows = sqlx::query(
            "SELECT system, kind, outcome, COUNT(*) AS n FROM jobs \
             GROUP BY system, kind, outcome ORDER BY system, kind, outcome",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JobCount {
                    system: r.try_get("system")?,
                    kind: r.try_get("kind")?,
                    outcome: r.try_get("outcome")?,
                    count: u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn put_user(&self, user: &User) -> Result<()> {
        self.put_user_impl(user).await
    }

    async fn users(&self) -> Result<Vec<User>> {
        self.users_impl().await
    }

    async fn put_token(&self, token: &Token) -> Result<()> {
        self.put_token_impl(token).await
    }

    async fn tokens(&self) -> Result<Vec<Token>> {
        self.tokens_impl().await
    }

    async fn token_by_secret(&self, secret_hash: &str) -> Result<Option<Token>> {
        self.token_by_secret_impl(secret_hash).await
    }

    async fn put_session(&self, session: &Session) -> Result<()> {
        self.put_session_impl(session).await
    }

    async fn session_by_secret(&self, secret_hash: &str) -> Result<Option<Session>> {
        self.session_by_secret_impl(secret_hash).await
    }

    async fn delete_session(&self, id: &str) -> Result<()> {
        self.delete_session_impl(id).await
    }

    async fn add_login_failure(&self, at: Timestamp, account: &str, origin: &str) -> Result<()> {
        self.add_login_failure_impl(at, account, origin).await
    }

    async fn login_failures_since(&self, since: Timestamp) -> Result<u64> {
        self.login_failures_since_impl(since).await
    }

    async fn add_approval(&self, request: &ApprovalRequest) -> Result<ApprovalRequest> {
        self.add_approval_impl(request).await
    }

    async fn update_approval(&self, request: &ApprovalRequest, was: RequestState) -> Result<bool> {
        self.update_approval_impl(request, was).await
    }

    async fn approvals(&self, limit: u32) -> Result<Vec<ApprovalRequest>> {
        self.approvals_impl(limit).await
    }

    async fn approval(&self, id: i64) -> Result<Option<ApprovalRequest>> {
        self.approval_impl(id).await
    }
}

const ALERT_COLUMNS: &str = "id, key, rule, severity, service, tier, system, backup_set, \
    repository, summary, facts, state, condition_since, first_seen, last_seen, occurrences, \
    evidence, suppressed_by, notified_at, escalation, acknowledged_at, acknowledged_by, \
    resolved_at, resolved_by, resolution, acknowledged_declared, resolved_declared";

/// A second active alert of a key is refused by the unique index.
fn alert_error(e: sqlx::Error, alert: &Alert) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::AlertExists(alert.key.clone())
    } else {
        e.into()
    }
}

fn json_text<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// The `record` column of an optional row, read as a `what`.
fn record_of<T: serde::de::DeserializeOwned>(
    row: Option<sqlx::sqlite::SqliteRow>,
    what: &str,
) -> Result<Option<T>> {
    row.map(|row| from_json(&row.try_get::<String, _>("record")?, what))
        .transpose()
}

fn alert_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Alert> {
    let escalation: Option<String> = row.try_get("escalation")?;
    Ok(Alert {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
        rule: parsed(&row.try_get::<String, _>("rule")?, "rule", Rule::parse)?,
        severity: parsed(
            &row.try_get::<String, _>("severity")?,
            "severity",
            Severity::parse,
        )?,
        subject: Subject {
            service: row.try_get("service")?,
            tier: row
                .try_get::<Option<i64>, _>("tier")?
                .map(|t| t.clamp(0, 255) as u8),
            system: row.try_get("system")?,
            backup_set: row.try_get("backup_set")?,
            repository: row.try_get("repository")?,
        },
        summary: row.try_get("summary")?,
        facts: from_json(&row.try_get::<String, _>("facts")?, "alert facts")?,
        state: parsed(
            &row.try_get::<String, _>("state")?,
            "alert state",
            AlertState::parse,
        )?,
        condition_since: from_ms(row.try_get("condition_since")?)?,
        first_seen: from_ms(row.try_get("first_seen")?)?,
        last_seen: from_ms(row.try_get("last_seen")?)?,
        occurrences: row
            .try_get::<i64, _>("occurrences")?
            .clamp(0, i64::from(u32::MAX)) as u32,
        evidence: row.try_get("evidence")?,
        suppressed_by: row.try_get("suppressed_by")?,
        notified_at: opt_ms(row.try_get("notified_at")?)?,
        escalation: escalation
            .map(|e| from_json(&e, "alert escalation"))
            .transpose()?,
        acknowledged_at: opt_ms(row.try_get("acknowledged_at")?)?,
        acknowledged_by: row.try_get("acknowledged_by")?,
        resolved_at: opt_ms(row.try_get("resolved_at")?)?,
        resolved_by: row.try_get("resolved_by")?,
        resolution: row.try_get("resolution")?,
        acknowledged_declared: row.try_get("acknowledged_declared")?,
        resolved_declared: row.try_get("resolved_declared")?,
    })
}

fn delivery_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Delivery> {
    Ok(Delivery {
        id: row.try_get("id")?,
        alert_id: row.try_get("alert_id")?,
        channel: row.try_get("channel")?,
        channel_type: row.try_get("channel_type")?,
        step: row
            .try_get::<Option<i64>, _>("step")?
            .map(|s| s.max(0) as usize),
        attempt: row
            .try_get::<i64, _>("attempt")?
            .clamp(0, i64::from(u32::MAX)) as u32,
        at: from_ms(row.try_get("at")?)?,
        ok: row.try_get("ok")?,
        error: row.try_get("error")?,
    })
}

fn recorded_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Recorded> {
    Ok(Recorded {
        id: row.try_get("id")?,
        window: row.try_get("window")?,
        scope: Scope {
            services: from_json(
                &row.try_get::<String, _>("services")?,
                "maintenance services",
            )?,
            systems: from_json(&row.try_get::<String, _>("systems")?, "maintenance systems")?,
            repositories: from_json(
                &row.try_get::<String, _>("repositories")?,
                "maintenance repositories",
            )?,
        },
        start: from_ms(row.try_get("starts_at")?)?,
        end: from_ms(row.try_get("ends_at")?)?,
        reason: row.try_get("reason")?,
        created_by: row.try_get("created_by")?,
        declared_by: row.try_get("declared_by")?,
        created_at: from_ms(row.try_get("created_at")?)?,
    })
}

/// Bind every column of an alert but the id, in `ALERT_COLUMNS` order.
fn bind_alert<'q>(
    query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    alert: &'q Alert,
    facts: String,
    escalation: Option<String>,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    query
        .bind(&alert.key)
        .bind(alert.rule.id())
        .bind(alert.severity.as_str())
        .bind(&alert.subject.service)
        .bind(alert.subject.tier.map(i64::from))
        .bind(&alert.subject.system)
        .bind(&alert.subject.backup_set)
        .bind(&alert.subject.repository)
        .bind(&alert.summary)
        .bind(facts)
        .bind(alert.state.as_str())
        .bind(ms(alert.condition_since))
        .bind(ms(alert.first_seen))
        .bind(ms(alert.last_seen))
        .bind(i64::from(alert.occurrences))
        .bind(&alert.evidence)
        .bind(&alert.suppressed_by)
        .bind(alert.notified_at.map(ms))
        .bind(escalation)
        .bind(alert.acknowledged_at.map(ms))
        .bind(&alert.acknowledged_by)
        .bind(alert.resolved_at.map(ms))
        .bind(&alert.resolved_by)
        .bind(&alert.resolution)
        .bind(&alert.acknowledged_declared)
        .bind(&alert.resolved_declared)
}

impl SqliteStore {
    async fn load_alert(&self, id: i64) -> Result<Option<Alert>> {
        let row = sqlx::query(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(alert_from_row).transpose()
    }

    pub(crate) async fn latest_jobs_impl(
        &self,
        kind: JobKind,
        outcomes: &[Outcome],
    ) -> Result<Vec<Job>> {
        let mut query: QueryBuilder<'_, Sqlite> = QueryBuilder::new(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE id IN (SELECT MAX(id) FROM jobs WHERE kind = "
        ));
        query.push_bind(kind.as_str());
        if !outcomes.is_empty() {
            query.push(" AND outcome IN (");
            let mut list = query.separated(", ");
            for outcome in outcomes {
                list.push_bind(outcome.as_str());
            }
            query.push(")");
        }
        query.push(" GROUP BY task) ORDER BY task");
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(job_from_row).collect()
    }

    pub(crate) async fn capacity_samples_impl(
        &self,
        repository: &str,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, u64)>> {
        let rows = sqlx::query(
            "SELECT ended_at, repository_bytes FROM jobs WHERE repository = ? \
             AND repository_bytes IS NOT NULL AND ended_at >= ? ORDER BY ended_at",
        )
        .bind(repository)
        .bind(ms(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    from_ms(row.try_get("ended_at")?)?,
                    row.try_get::<i64, _>("repository_bytes")?.max(0) as u64,
                ))
            })
            .collect()
    }

    pub(crate) async fn insert_alert_impl(&self, alert: &Alert) -> Result<Alert> {
        let facts = json_text(&alert.facts)?;
        let escalation = alert.escalation.as_ref().map(json_text).transpose()?;
        let columns = ALERT_COLUMNS.trim_start_matches("id, ");
        let placeholders = vec!["?"; columns.split(", ").count()].join(", ");
        let sql = format!("INSERT INTO alerts ({columns}) VALUES ({placeholders}) RETURNING id");
        let query = sqlx::query(&sql);
        let rows = bind_alert(query, alert, facts, escalation)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| alert_error(e, alert))?;
        let id = returned_id(&rows)?;
        self.load_alert(id)
            .await?
            .ok_or(StoreError::NoSuchAlert(id))
    }

    pub(crate) async fn update_alert_impl(&self, alert: &Alert) -> Result<()> {
        let facts = json_text(&alert.facts)?;
        let escalation = alert.escalation.as_ref().map(json_text).transpose()?;
        let assignments = ALERT_COLUMNS
            .trim_start_matches("id, ")
            .split(", ")
            .map(|c| format!("{} = ?", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("UPDATE alerts SET {assignments} WHERE id = ?");
        let query = sqlx::query(&sql);
        let done = bind_alert(query, alert, facts, escalation)
            .bind(alert.id)
            .execute(&self.pool)
            .await
            .map_err(|e| alert_error(e, alert))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoSuchAlert(alert.id));
        }
        Ok(())
    }

    pub(crate) async fn alerts_impl(&self, filter: &AlertFilter) -> Result<Vec<Alert>> {
        let mut query: QueryBuilder<'_, Sqlite> =
            QueryBuilder::new(format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE 1 = 1"));
        if filter.active {
            query.push(" AND state != 'resolved'");
        }
        if let Some(service) = &filter.service {
            query.push(" AND service = ").push_bind(service);
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(filter.limit));
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(alert_from_row).collect()
    }

    pub(crate) async fn record_delivery_impl(&self, d: &Delivery) -> Result<Delivery> {
        let id = sqlx::query(
            "INSERT INTO deliveries (alert_id, channel, channel_type, step, attempt, at, ok, error) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(d.alert_id)
        .bind(&d.channel)
        .bind(&d.channel_type)
        .bind(d.step.map(|s| s as i64))
        .bind(i64::from(d.attempt))
        .bind(ms(d.at))
        .bind(d.ok)
        .bind(&d.error)
        .fetch_all(&self.pool)
        .await?;
        let id = returned_id(&id)?;
        Ok(Delivery { id, ..d.clone() })
    }

    pub(crate) async fn deliveries_impl(&self, alert_id: Option<i64>) -> Result<Vec<Delivery>> {
        let rows = sqlx::query("SELECT * FROM deliveries WHERE alert_id IS ? ORDER BY id")
            .bind(alert_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    pub(crate) async fn add_maintenance_impl(&self, w: &Recorded) -> Result<Recorded> {
        let id = sqlx::query(
            "INSERT INTO maintenance (window, services, systems, repositories, starts_at, ends_at, \
             reason, created_by, created_at, declared_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             RETURNING id",
        )
        .bind(&w.window)
        .bind(json_text(&w.scope.services)?)
        .bind(json_text(&w.scope.systems)?)
        .bind(json_text(&w.scope.repositories)?)
        .bind(ms(w.start))
        .bind(ms(w.end))
        .bind(&w.reason)
        .bind(&w.created_by)
        .bind(ms(w.created_at))
        .bind(&w.declared_by)
        .fetch_all(&self.pool)
        .await?;
        let id = returned_id(&id)?;
        Ok(Recorded { id, ..w.clone() })
    }

    pub(crate) async fn end_maintenance_impl(&self, id: i64, end: Timestamp) -> Result<()> {
        sqlx::query("UPDATE maintenance SET ends_at = MIN(ends_at, ?) WHERE id = ?")
            .bind(ms(end))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn maintenance_impl(&self, since: Timestamp) -> Result<Vec<Recorded>> {
        let rows =
            sqlx::query("SELECT * FROM maintenance WHERE ends_at > ? ORDER BY starts_at, id")
                .bind(ms(since))
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(recorded_from_row).collect()
    }
}
