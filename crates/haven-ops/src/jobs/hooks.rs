//! Pre- and post-backup hooks for application-consistent backups (quiesce
//! a database before, resume it after).

use std::time::Duration;

use crate::jobs::command::{CommandError, run_with_timeout};

/// Default hook time limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Hooks around one backup.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Runs before the backup; failure aborts it.
    pub pre: Option<String>,
    /// Runs after the backup, whatever happened, with
    /// `HAVEN_BACKUP_STATUS=success|failed` (and `HAVEN_SNAPSHOT_ID`).
    pub post: Option<String>,
    /// Limit for each hook.
    pub timeout: Option<Duration>,
    /// Extra environment of both hooks (resolved credentials).
    pub env: Vec<(String, String)>,
}

/// The environment's values are credentials: only their names show.
impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("pre", &self.pre)
            .field("post", &self.post)
            .field("timeout", &self.timeout)
            .field(
                "env",
                &self.env.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Whether the backup succeeded, as told to the post-hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackupStatus {
    /// A snapshot was saved.
    Success,
    /// No snapshot was saved.
    Failed,
}

impl BackupStatus {
    fn as_str(self) -> &'static str {
        match self {
            BackupStatus::Success => "success",
            BackupStatus::Failed => "failed",
        }
    }
}

impl Hooks {
    fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    /// Run the pre-hook, if any.
    pub fn run_pre(&self) -> Result<(), CommandError> {
        match &self.pre {
            Some(cmd) => run_with_timeout("pre-hook", cmd, &self.env, self.timeout()).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Run the post-hook, if any, telling it how the backup went.
    pub fn run_post(
        &self,
        status: BackupStatus,
        snapshot_id: Option<&str>,
    ) -> Result<(), CommandError> {
        let Some(cmd) = &self.post else { return Ok(()) };
        let mut env = self.env.clone();
        env.push(("HAVEN_BACKUP_STATUS".into(), status.as_str().into()));
        if let Some(id) = snapshot_id {
            env.push(("HAVEN_SNAPSHOT_ID".into(), id.into()));
        }
        run_with_timeout("post-hook", cmd, &env, self.timeout()).map(|_| ())
    }
}

/// A backup that ran between its hooks: its result, and the post-hook's
/// failure if the backup itself succeeded (the data is safe, but what
/// the hook should have done, e.g. resume a database, needs attention).
pub struct AroundHooks<T> {
    /// The backup's result.
    pub value: T,
    /// The post-hook failed after a successful backup.
    pub post_error: Option<CommandError>,
}

impl Hooks {
    /// Run the pre-hook, then `backup` (unless the pre-hook failed), then
    /// always the post-hook with the outcome. `snapshot` names the
    /// snapshot a successful backup saved, for `HAVEN_SNAPSHOT_ID`.
    pub fn around<T>(
        &self,
        backup: impl FnOnce() -> anyhow::Result<T>,
        snapshot: impl Fn(&T) -> String,
    ) -> anyhow::Result<AroundHooks<T>> {
        let outcome = self
            .run_pre()
            .map_err(|e| anyhow::Error::new(e).context("pre-hook failed; nothing was backed up"))
            .and_then(|()| backup());
        let (status, id) = match &outcome {
            Ok(value) => (BackupStatus::Success, Some(snapshot(value))),
            Err(_) => (BackupStatus::Failed, None),
        };
        let post = self.run_post(status, id.as_deref());
        match (outcome, post) {
            (Err(e), Err(post_error)) => {
                Err(e.context(format!("and the post-hook failed too: {post_error}")))
            }
            (Err(e), Ok(())) => Err(e),
            (Ok(value), post) => Ok(AroundHooks {
                value,
                post_error: post.err(),
            }),
        }
    }
}
