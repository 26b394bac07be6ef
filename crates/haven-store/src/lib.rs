//! Haven's persistence: job evidence, per-backup-set state and the
//! scheduler's marks, behind the [`Store`] interface.
//!
//! [`SqliteStore`] is the embedded implementation (one file in the data
//! dir, WAL, versioned migrations). Every implementation must pass the
//! conformance suite in `tests/conformance/`, which is written against
//! the trait alone, so a PostgreSQL store can follow under the same
//! tests. Only this crate knows SQL.

use async_trait::async_trait;
use haven_model::access::{Session, Token, User};
use haven_model::alerts::{Alert, Delivery, PendingNotification};
use haven_model::approval::{ApprovalRequest, RequestState};
use haven_model::audit::{Entry, Hash};
use haven_model::drills::{Drill, ServiceDrill};
use haven_model::jobs::{Failure, Job, JobKind, JobStats, NewJob, Outcome, SetState};
use haven_model::maintenance::Recorded;
use haven_model::recovery::run::{RecoveryRun, StepRecord};
use jiff::Timestamp;

mod sqlite;

pub use sqlite::SqliteStore;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A job of this task is already running.
    #[error("a job of {task} is already running")]
    AlreadyRunning {
        /// The task.
        task: String,
    },
    /// No job has this id.
    #[error("no job {0}")]
    NoSuchJob(i64),
    /// No alert has this id.
    #[error("no alert {0}")]
    NoSuchAlert(i64),
    /// An active alert already stands for this condition.
    #[error("an active alert already stands for {0}")]
    AlertExists(String),
    /// The audit log has an entry with this number already (another
    /// process appended first).
    #[error("audit entry {0} exists already")]
    AuditTaken(u64),
    /// The database URL is not one this build supports.
    /// (Only the scheme is kept: a URL may carry a password.)
    #[error(
        "unsupported database URL scheme {0:?}: use sqlite://PATH (PostgreSQL is not supported yet)"
    )]
    UnsupportedUrl(String),
    /// A stored value could not be read back (a newer Haven wrote it,
    /// or the database was edited by hand).
    #[error("the database holds a value this Haven cannot read: {0}")]
    Corrupt(String),
    /// Migrating the schema failed.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The database file could not be created or made private.
    #[error("cannot create the database file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A store result.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How many jobs of a system, kind and outcome were recorded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobCount {
    /// The system (none: a repository's job, a prune or a check).
    pub system: Option<String>,
    /// The kind (`backup`, `prune`, …).
    pub kind: String,
    /// The outcome (`success`, `failed`, `running`, …).
    pub outcome: String,
    /// How many.
    pub count: u64,
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct JobEnd {
    /// When.
    pub ended_at: Option<Timestamp>,
    /// The outcome (not `Running`).
    pub outcome: Option<Outcome>,
    /// What it achieved.
    pub stats: JobStats,
    /// The snapshot it saved.
    pub snapshot_id: Option<String>,
    /// Why it failed.
    pub failure: Option<Failure>,
    /// A one-line summary.
    pub message: Option<String>,
    /// The log excerpt (already bounded).
    pub log: String,
    /// The drill a drill job ran, to record beside the job.
    pub drill: Option<Box<haven_model::drills::Drill>>,
}

/// Which jobs to list.
#[derive(Clone, Debug, PartialEq)]
pub struct JobFilter {
    /// Only this system's.
    pub system: Option<String>,
    /// Only this kind.
    pub kind: Option<JobKind>,
    /// Only these outcomes (empty: all).
    pub outcomes: Vec<Outcome>,
    /// Only jobs due at or after this time.
    pub since: Option<Timestamp>,
    /// At most this many, newest first.
    pub limit: u32,
}

impl Default for JobFilter {
    fn default() -> Self {
        JobFilter {
            system: None,
            kind: None,
            outcomes: Vec::new(),
            since: None,
            limit: 100,
        }
    }
}

/// Which alerts to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertFilter {
    /// Only open and acknowledged ones.
    pub active: bool,
    /// Only this service's.
    pub service: Option<String>,
    /// At most this many, newest first.
    pub limit: u32,
}

impl Default for AlertFilter {
    fn default() -> Self {
        AlertFilter {
            active: false,
            service: None,
            limit: 100,
        }
    }
}

/// Haven's persistence interface.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Record a job as running from `started_at`; fails with
    /// [`StoreError::AlreadyRunning`] when a job of its task runs.
    async fn start_job(&self, job: &NewJob, started_at: Timestamp) -> Result<Job>;

    /// Record a job that did not run.
    async fn record_skipped(&self, job: &NewJob, at: Timestamp, message: &str) -> Result<Job>;

    /// Record how a running job ended and, in the same transaction, the
    /// new state of its backup set.
    async fn finish_job(&self, id: i64, end: &JobEnd, state: Option<&SetState>) -> Result<Job>;

    /// Mark every running job interrupted (at server start: they were
    /// running when the last server died) and return them.
    async fn interrupt_running(&self, now: Timestamp, message: &str) -> Result<Vec<Job>>;

    /// One job.
    async fn job(&self, id: i64) -> Result<Option<Job>>;

    /// Jobs matching a filter, newest first.
    async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>>;

    /// The state of every backup set known to the store.
    async fn set_states(&self) -> Result<Vec<SetState>>;

    /// Insert or replace a set's state.
    async fn put_set_state(&self, state: &SetState) -> Result<()>;

    /// The last slot each task was dispatched for.
    async fn schedule_marks(&self) -> Result<Vec<(String, Timestamp)>>;

    /// Remember that a task was dispatched for `slot`.
    async fn set_schedule_mark(&self, task: &str, slot: Timestamp) -> Result<()>;

    /// Insert many finished jobs at once (imports, benchmarks).
    async fn import_jobs(&self, jobs: &[Job]) -> Result<()>;

    /// For each task of `kind`, its newest job with one of `outcomes`.
    async fn latest_jobs(&self, kind: JobKind, outcomes: &[Outcome]) -> Result<Vec<Job>>;

    /// Every job ever recorded, counted by system (none: a repository's
    /// job), kind and outcome.
    async fn job_counts(&self) -> Result<Vec<JobCount>>;

    /// How full a repository was, measured at the end of its jobs since
    /// `since`, oldest first.
    async fn capacity_samples(
        &self,
        repository: &str,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, u64)>>;

    /// Record a new alert (its id is assigned); fails with
    /// [`StoreError::AlertExists`] when an active alert has its key.
    async fn insert_alert(&self, alert: &Alert) -> Result<Alert>;

    /// Save an alert's new state.
    async fn update_alert(&self, alert: &Alert) -> Result<()>;

    /// One alert.
    async fn alert(&self, id: i64) -> Result<Option<Alert>>;

    /// Alerts matching a filter, newest first.
    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>>;

    /// Record a delivery attempt (its id is assigned).
    async fn record_delivery(&self, delivery: &Delivery) -> Result<Delivery>;

    /// The delivery attempts of an alert (or of tests, for `None`),
    /// oldest first.
    async fn deliveries(&self, alert_id: Option<i64>) -> Result<Vec<Delivery>>;

    /// Queue a notification (its id is assigned).
    async fn queue_notification(
        &self,
        pending: &PendingNotification,
    ) -> Result<PendingNotification>;

    /// Save where a queued notification stands.
    async fn update_notification(&self, pending: &PendingNotification) -> Result<()>;

    /// A queued notification is done (delivered, or every channel failed).
    async fn finish_notification(&self, id: i64) -> Result<()>;

    /// Queued notifications not yet done, oldest first.
    async fn queued_notifications(&self) -> Result<Vec<PendingNotification>>;

    /// Record a maintenance window (its id is assigned).
    async fn add_maintenance(&self, window: &Recorded) -> Result<Recorded>;

    /// Move a recorded window's end (ending it early).
    async fn end_maintenance(&self, id: i64, end: Timestamp) -> Result<()>;

    /// Every recorded window that ends after `since`.
    async fn maintenance(&self, since: Timestamp) -> Result<Vec<Recorded>>;

    /// Record a drill; it comes back with its number.
    async fn record_drill(&self, drill: &Drill) -> Result<Drill>;

    /// Drills, newest first: of one system if given, at most `limit`.
    async fn drills(&self, system: Option<&str>, limit: u32) -> Result<Vec<Drill>>;

    /// Record a service drill (its system drills are recorded first); it
    /// comes back with its number.
    async fn record_service_drill(&self, drill: &ServiceDrill) -> Result<ServiceDrill>;

    /// Service drills, newest first: of one service if given, at most
    /// `limit`.
    async fn service_drills(&self, service: Option<&str>, limit: u32) -> Result<Vec<ServiceDrill>>;

    /// Record a new recovery run with its steps (one transaction); it
    /// comes back with its number.
    async fn create_recovery(&self, run: &RecoveryRun, steps: &[StepRecord])
    -> Result<RecoveryRun>;

    /// Replace a recovery run's record (its state, heartbeat, end).
    async fn update_recovery(&self, run: &RecoveryRun) -> Result<()>;

    /// Replace (or add) one step's record of run `run`.
    async fn put_recovery_step(&self, run: i64, step: &StepRecord) -> Result<()>;

    /// A recovery run and its steps, by number.
    async fn recovery(&self, id: i64) -> Result<Option<(RecoveryRun, Vec<StepRecord>)>>;

    /// One step of a recovery run (read as the run waits on it).
    async fn recovery_step(&self, run: i64, number: u32) -> Result<Option<StepRecord>>;

    /// Recovery runs, newest first, at most `limit`.
    async fn recoveries(&self, limit: u32) -> Result<Vec<RecoveryRun>>;

    /// Append an audit entry (its `seq` is the next number: a taken one
    /// is refused).
    async fn append_audit(&self, entry: &Entry) -> Result<()>;

    /// Audit rows from number `from`, in order, at most `limit`: `(row
    /// number, entry, stored leaf hash)`.
    async fn audit_entries(&self, from: u64, limit: u64) -> Result<Vec<(u64, Entry, Hash)>>;

    /// Keep a signed checkpoint of the audit log (one per size).
    async fn add_audit_checkpoint(&self, size: u64, note: &str) -> Result<()>;

    /// The audit log's signed checkpoints, by size.
    async fn audit_checkpoints(&self) -> Result<Vec<(u64, String)>>;

    /// The audit log's newest (largest) signed checkpoint.
    async fn newest_audit_checkpoint(&self) -> Result<Option<(u64, String)>>;

    /// Add or replace a user.
    async fn put_user(&self, user: &User) -> Result<()>;

    /// Every user, by name.
    async fn users(&self) -> Result<Vec<User>>;

    /// Add or replace a token (its secret hash never changes).
    async fn put_token(&self, token: &Token) -> Result<()>;

    /// Every token, by id.
    async fn tokens(&self) -> Result<Vec<Token>>;

    /// The token whose secret hashes to `secret_hash`.
    async fn token_by_secret(&self, secret_hash: &str) -> Result<Option<Token>>;

    /// Add or replace a console session (its secret hash never changes).
    async fn put_session(&self, session: &Session) -> Result<()>;

    /// The session whose secret hashes to `secret_hash`.
    async fn session_by_secret(&self, secret_hash: &str) -> Result<Option<Session>>;

    /// End a session.
    async fn delete_session(&self, id: &str) -> Result<()>;

    /// Count a failed login (for the `security` alert on bursts).
    async fn add_login_failure(&self, at: Timestamp, account: &str, origin: &str) -> Result<()>;

    /// Failed logins at or after `since`.
    async fn login_failures_since(&self, since: Timestamp) -> Result<u64>;

    /// Keep a new four-eyes request (its id is given here).
    async fn add_approval(&self, request: &ApprovalRequest) -> Result<ApprovalRequest>;

    /// Write a request's new state, only if it still stands at `was`
    /// (false: someone else decided first).
    async fn update_approval(&self, request: &ApprovalRequest, was: RequestState) -> Result<bool>;

    /// Requests, newest first, at most `limit`.
    async fn approvals(&self, limit: u32) -> Result<Vec<ApprovalRequest>>;

    /// One request.
    async fn approval(&self, id: i64) -> Result<Option<ApprovalRequest>>;
}

/// Open the store a database URL names (`sqlite://PATH`).
pub async fn open(url: &str) -> Result<Box<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Box::new(SqliteStore::open(url).await?))
    } else {
        let scheme = url.split(':').next().unwrap_or_default();
        Err(StoreError::UnsupportedUrl(scheme.into()))
    }
}
