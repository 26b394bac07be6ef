//! Jobs as evidence: what ran, when, and how it ended; failure classes;
//! the per-backup-set state that compliance and retries are computed from.
//!
//! These are the records the store keeps and the server, the API and the
//! CLI show. Field and variant names are part of the JSON interface
//! (`docs/json.md`).

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// Back up one backup set of a system.
    Backup,
    /// Apply a policy's retention to one system's snapshots.
    Forget,
    /// Reclaim space in one repository.
    Prune,
    /// Copy a system's snapshots to a secondary repository.
    Copy,
    /// Check a repository's integrity, reading a share of its data.
    Check,
    /// Drill a system: restore it into a sandbox and verify it.
    Drill,
}

/// How a job ended (or that it is still running).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Started and not yet ended.
    Running,
    /// Everything was done.
    Success,
    /// The result is usable but incomplete (unreadable files, a failed
    /// post-hook, Object Lock not applied everywhere).
    Partial,
    /// Nothing usable came of it.
    Failed,
    /// The server stopped while it ran (crash, kill, shutdown timeout).
    Interrupted,
    /// It did not run (e.g. could not start inside its window).
    Skipped,
}

impl Outcome {
    /// Did the job leave a restore point (a backup's snapshot)?
    pub fn is_good(self) -> bool {
        matches!(self, Outcome::Success | Outcome::Partial)
    }

    /// The outcome as stored and shown (`success`, `failed`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Success => "success",
            Outcome::Partial => "partial",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::Skipped => "skipped",
        }
    }

    /// Parse a stored outcome.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "running" => Outcome::Running,
            "success" => Outcome::Success,
            "partial" => Outcome::Partial,
            "failed" => Outcome::Failed,
            "interrupted" => Outcome::Interrupted,
            "skipped" => Outcome::Skipped,
            _ => return None,
        })
    }
}

impl JobKind {
    /// The kind as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Backup => "backup",
            JobKind::Forget => "forget",
            JobKind::Prune => "prune",
            JobKind::Copy => "copy",
            JobKind::Check => "check",
            JobKind::Drill => "drill",
        }
    }

    /// Parse a stored kind.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "backup" => JobKind::Backup,
            "forget" => JobKind::Forget,
            "prune" => JobKind::Prune,
            "copy" => JobKind::Copy,
            "check" => JobKind::Check,
            "drill" => JobKind::Drill,
            _ => return None,
        })
    }
}

/// Why a job started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// Its schedule came due.
    Schedule,
    /// The server was down at one or more scheduled times; one run
    /// catches up on all of them.
    CatchUp,
    /// An automatic retry after a transient failure.
    Retry,
    /// Someone asked for it (`haven run`).
    Manual,
    /// Follows another job (forget and copies after a backup).
    FollowUp,
    /// Re-run of a job the server was interrupted in.
    Recovery,
}

impl Trigger {
    /// The trigger as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::CatchUp => "catch-up",
            Trigger::Retry => "retry",
            Trigger::Manual => "manual",
            Trigger::FollowUp => "follow-up",
            Trigger::Recovery => "recovery",
        }
    }

    /// Parse a stored trigger.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "schedule" => Trigger::Schedule,
            "catch-up" => Trigger::CatchUp,
            "retry" => Trigger::Retry,
            "manual" => Trigger::Manual,
            "follow-up" => Trigger::FollowUp,
            "recovery" => Trigger::Recovery,
            _ => return None,
        })
    }
}

/// The class of a failure: what went wrong, in terms an operator acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    /// The storage or a host could not be reached.
    Connectivity,
    /// The storage is full, over quota, or failing.
    Storage,
    /// Wrong password, expired or refused credentials.
    Authentication,
    /// A lock held by someone else, or a timeout.
    Contention,
    /// The configuration no longer matches reality: a path or hook that
    /// does not exist, a command not found.
    ConfigurationDrift,
    /// Data read back does not match what was written.
    DataIntegrity,
    /// Haven itself failed inside the job (a bug: a panic); the job is
    /// tried again.
    Internal,
    /// Anything else.
    Unknown,
}

impl FailureClass {
    /// Is a retry in a few minutes likely to succeed?
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            FailureClass::Connectivity
                | FailureClass::Contention
                | FailureClass::Storage
                | FailureClass::Internal
                | FailureClass::Unknown
        )
    }

    /// The class as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Connectivity => "connectivity",
            FailureClass::Storage => "storage",
            FailureClass::Authentication => "authentication",
            FailureClass::Contention => "contention",
            FailureClass::ConfigurationDrift => "configuration-drift",
            FailureClass::DataIntegrity => "data-integrity",
            FailureClass::Internal => "internal",
            FailureClass::Unknown => "unknown",
        }
    }

    /// Parse a stored class.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "connectivity" => FailureClass::Connectivity,
            "storage" => FailureClass::Storage,
            "authentication" => FailureClass::Authentication,
            "contention" => FailureClass::Contention,
            "configuration-drift" => FailureClass::ConfigurationDrift,
            "data-integrity" => FailureClass::DataIntegrity,
            "internal" => FailureClass::Internal,
            "unknown" => FailureClass::Unknown,
            _ => return None,
        })
    }
}

/// The infrastructure layer a failure points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    /// Links, DNS, endpoints.
    Network,
    /// Disks, file systems, object stores.
    Storage,
    /// Hosts, processes, commands.
    Compute,
    /// Passwords, keys, credentials.
    Identity,
}

impl Layer {
    /// The layer as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Network => "network",
            Layer::Storage => "storage",
            Layer::Compute => "compute",
            Layer::Identity => "identity",
        }
    }

    /// Parse a stored layer.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "network" => Layer::Network,
            "storage" => Layer::Storage,
            "compute" => Layer::Compute,
            "identity" => Layer::Identity,
            _ => return None,
        })
    }
}

/// A classified failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Failure {
    /// The class.
    pub class: FailureClass,
    /// The specific cause within the class (`full`, `quota`, `io`,
    /// `wrong-password`, `expired-credentials`, `lock`, `timeout`,
    /// `path-missing`, `hook-missing`, `command-missing`, …).
    pub detail: String,
    /// The layer it points at.
    pub layer: Layer,
}

/// What a job achieved, for backups.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobStats {
    /// Files seen for the first time.
    pub files_new: u64,
    /// Files changed since the parent snapshot.
    pub files_changed: u64,
    /// Files unchanged.
    pub files_unmodified: u64,
    /// Bytes read from new and changed files.
    pub bytes_changed: u64,
    /// Bytes of all files in the snapshot.
    pub bytes_total: u64,
    /// Bytes added to the repository (after dedup and compression).
    pub bytes_added: u64,
    /// How many bytes the repository held after the job (backups,
    /// copies and prunes measure it): the capacity evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_bytes: Option<u64>,
}

/// A job about to start (or being recorded as skipped): what is known of
/// it before it runs. A recorded [`Job`] holds one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NewJob {
    /// What it does.
    pub kind: JobKind,
    /// The task it belongs to (`backup:erp-db/db`, `prune:ber-local`):
    /// at most one job per task runs at a time.
    pub task: String,
    /// The system, for system jobs.
    pub system: Option<String>,
    /// The backup set, for backups.
    pub backup_set: Option<String>,
    /// The policy it runs under.
    pub policy: Option<String>,
    /// The repository it writes to or reads.
    pub repository: Option<String>,
    /// Why it starts.
    pub trigger: Trigger,
    /// 1 for the first try, 2 for the first retry, …
    pub attempt: u32,
    /// When it was due.
    pub scheduled_at: Timestamp,
}

/// Everything recorded about one job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Job {
    /// The job's number.
    pub id: i64,
    /// What the job is: everything known before it started.
    #[serde(flatten)]
    pub planned: NewJob,
    /// When it actually started (`None` for skipped jobs).
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub ended_at: Option<Timestamp>,
    /// How it ended.
    pub outcome: Outcome,
    /// What it achieved.
    pub stats: JobStats,
    /// The snapshot it saved (backups) or produced (copies).
    pub snapshot_id: Option<String>,
    /// Why it failed, classified.
    pub failure: Option<Failure>,
    /// A one-line summary (the error for failures).
    pub message: Option<String>,
    /// The end of its log (bounded).
    pub log: String,
}

impl Job {
    /// Time from due to start.
    pub fn start_delay(&self) -> Option<SignedDuration> {
        self.started_at.map(|s| {
            s.duration_since(self.planned.scheduled_at)
                .max(SignedDuration::ZERO)
        })
    }

    /// Time from start to end.
    pub fn duration(&self) -> Option<SignedDuration> {
        Some(self.ended_at?.duration_since(self.started_at?))
    }
}

/// The longest log excerpt a job keeps, in bytes: the end of the log,
/// where the error usually is.
pub const LOG_EXCERPT_BYTES: usize = 16 * 1024;

/// Keep the last [`LOG_EXCERPT_BYTES`] of a log, cut at a line start.
pub fn log_excerpt(log: &str) -> String {
    if log.len() <= LOG_EXCERPT_BYTES {
        return log.to_string();
    }
    let mut cut = log.len() - LOG_EXCERPT_BYTES;
    while !log.is_char_boundary(cut) {
        cut += 1;
    }
    let tail = &log[cut..];
    let tail = tail.find('\n').map_or(tail, |nl| &tail[nl + 1..]);
    format!("[… {} bytes cut …]\n{tail}", log.len() - tail.len())
}

/// The state of one backup set, kept up to date as its jobs end: the
/// evidence compliance and retries are computed from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetState {
    /// The system.
    pub system: String,
    /// The backup set.
    pub backup_set: String,
    /// When Haven first had this set to protect: the RPO clock of a set
    /// that was never backed up runs from here.
    pub first_seen: Timestamp,
    /// The end of the last job that left a restore point.
    pub last_good_at: Option<Timestamp>,
    /// That job.
    pub last_good_job: Option<i64>,
    /// Its snapshot.
    pub last_snapshot: Option<String>,
    /// How the last job ended.
    pub last_outcome: Option<Outcome>,
    /// Failed runs in a row with the same class.
    pub failure_streak: u32,
    /// That class.
    pub streak_class: Option<FailureClass>,
    /// The same class failed too often: automatic retries stop until the
    /// configuration or the class changes.
    pub systemic: bool,
    /// A fingerprint of the configuration the streak happened under.
    pub config: String,
}

impl SetState {
    /// A set Haven starts protecting now.
    pub fn new(system: &str, backup_set: &str, now: Timestamp, config: &str) -> Self {
        SetState {
            system: system.into(),
            backup_set: backup_set.into(),
            first_seen: now,
            last_good_at: None,
            last_good_job: None,
            last_snapshot: None,
            last_outcome: None,
            failure_streak: 0,
            streak_class: None,
            systemic: false,
            config: config.into(),
        }
    }

    /// The state after a backup job of this set ended. `systemic_after`
    /// failures in a row of one class make the failure systemic.
    pub fn after(&self, job: &Job, systemic_after: u32) -> SetState {
        let mut next = self.clone();
        next.last_outcome = Some(job.outcome);
        if job.outcome.is_good() {
            next.last_good_at = job.ended_at;
            next.last_good_job = Some(job.id);
            next.last_snapshot.clone_from(&job.snapshot_id);
            next.failure_streak = 0;
            next.streak_class = None;
            next.systemic = false;
            return next;
        }
        if job.outcome != Outcome::Failed {
            return next; // interrupted or skipped say nothing about the cause
        }
        let class = job
            .failure
            .as_ref()
            .map_or(FailureClass::Unknown, |f| f.class);
        if next.streak_class == Some(class) {
            next.failure_streak += 1;
        } else {
            next.streak_class = Some(class);
            next.failure_streak = 1;
            next.systemic = false;
        }
        if next.failure_streak >= systemic_after.max(1) {
            next.systemic = true;
        }
        next
    }

    /// The configuration changed: a systemic failure gets another chance.
    pub fn reconfigured(&self, config: &str) -> SetState {
        let mut next = self.clone();
        if next.config != config {
            next.config = config.into();
            next.systemic = false;
            next.failure_streak = 0;
            next.streak_class = None;
        }
        next
    }
}

/// When to retry after a transient failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub attempts: u32,
    /// Wait before the first retry; each later one waits twice as long.
    pub base: SignedDuration,
    /// The longest wait.
    pub max: SignedDuration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            base: SignedDuration::from_mins(1),
            max: SignedDuration::from_hours(1),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` after attempt `attempt`
    /// failed, or `None` when no attempt is left. `jitter` in `[0, 1)`
    /// spreads retries of many systems (±25 %).
    pub fn delay(&self, attempt: u32, jitter: f64) -> Option<SignedDuration> {
        if attempt >= self.attempts {
            return None;
        }
        let exponent = attempt.saturating_sub(1).min(30);
        let nominal = self
            .base
            .checked_mul(1i32 << exponent.min(30))
            .unwrap_or(self.max)
            .min(self.max);
        let factor = 0.75 + 0.5 * jitter.clamp(0.0, 1.0);
        Some(SignedDuration::from_secs_f64(
            nominal.as_secs_f64() * factor,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(outcome: Outcome, class: Option<FailureClass>, id: i64) -> Job {
        Job {
            id,
            planned: NewJob {
                kind: JobKind::Backup,
                task: "backup:s/set".into(),
                system: Some("s".into()),
                backup_set: Some("set".into()),
                policy: None,
                repository: None,
                trigger: Trigger::Schedule,
                attempt: 1,
                scheduled_at: Timestamp::UNIX_EPOCH,
            },
            started_at: Some(Timestamp::UNIX_EPOCH),
            ended_at: Some(Timestamp::UNIX_EPOCH + SignedDuration::from_secs(id)),
            outcome,
            stats: JobStats::default(),
            snapshot_id: outcome.is_good().then(|| format!("snap{id}")),
            failure: class.map(|class| Failure {
                class,
                detail: String::new(),
                layer: Layer::Compute,
            }),
            message: None,
            log: String::new(),
        }
    }

    #[test]
    fn the_same_class_failing_n_times_in_a_row_is_systemic() {
        let mut state = SetState::new("s", "set", Timestamp::UNIX_EPOCH, "c1");
        let net = Some(FailureClass::Connectivity);
        state = state.after(&job(Outcome::Failed, net, 1), 3);
        state = state.after(&job(Outcome::Failed, net, 2), 3);
        assert!(!state.systemic);
        // An interruption says nothing about the cause: the streak holds.
        state = state.after(&job(Outcome::Interrupted, None, 3), 3);
        assert_eq!(state.failure_streak, 2);
        state = state.after(&job(Outcome::Failed, net, 4), 3);
        assert!(state.systemic);
        // Another class starts a new streak and lifts the verdict.
        let auth = Some(FailureClass::Authentication);
        let changed = state.after(&job(Outcome::Failed, auth, 5), 3);
        assert!(!changed.systemic);
        assert_eq!(changed.failure_streak, 1);
        // So does a new configuration.
        let reconfigured = state.reconfigured("c2");
        assert!(!reconfigured.systemic);
        assert_eq!(reconfigured.reconfigured("c2"), reconfigured);
        // And a success clears everything and records the restore point.
        let good = state.after(&job(Outcome::Partial, None, 6), 3);
        assert!(!good.systemic);
        assert_eq!(good.last_good_job, Some(6));
        assert_eq!(good.last_snapshot.as_deref(), Some("snap6"));
    }

    #[test]
    fn retries_back_off_exponentially_with_bounded_jitter() {
        let policy = RetryPolicy {
            attempts: 4,
            base: SignedDuration::from_mins(1),
            max: SignedDuration::from_mins(3),
        };
        assert_eq!(policy.delay(1, 0.5), Some(SignedDuration::from_mins(1)));
        assert_eq!(policy.delay(2, 0.5), Some(SignedDuration::from_mins(2)));
        // Capped at max.
        assert_eq!(policy.delay(3, 0.5), Some(SignedDuration::from_mins(3)));
        assert_eq!(policy.delay(4, 0.5), None);
        assert_eq!(policy.delay(1, 0.0), Some(SignedDuration::from_secs(45)));
        assert_eq!(policy.delay(1, 0.999_999).map(|d| d.as_secs()), Some(74));
        let never = RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        };
        assert_eq!(never.delay(1, 0.5), None);
    }

    #[test]
    fn log_excerpts_keep_the_end_at_a_line_start() {
        let log: String = (0..5000).map(|i| format!("line {i}\n")).collect();
        let excerpt = log_excerpt(&log);
        assert!(excerpt.len() <= LOG_EXCERPT_BYTES + 40);
        assert!(excerpt.ends_with("line 4999\n"));
        let second = excerpt.lines().nth(1).expect("a line");
        assert!(second.starts_with("line "), "{second}");
        assert_eq!(log_excerpt("short"), "short");
    }
}
