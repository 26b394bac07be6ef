//! The server's work, decided without I/O: what the catalog asks for
//! (the plan: one task per backup set, retention, copy, check and prune)
//! and when each task runs (the scheduler). The runner (haven-ops) does
//! the work; the core persists what the scheduler decides.

pub mod plan;
pub mod scheduler;

use std::time::Duration;

use jiff::SignedDuration;

use crate::catalog::{BackupSet, EnvVar, SecretRef, System};
use crate::drills::Objectives;
use crate::jobs::NewJob;
use crate::retention::KeepPolicy;

pub use plan::{Plan, PlanProblem, PruneSettings, Schedule, Task, plan};
pub use scheduler::{Decisions, Limits, Queued, Scheduler};

/// A repository as a job needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoTarget {
    /// Catalog id.
    pub id: String,
    /// Location (`/path` or `s3:…`).
    pub url: String,
    /// Where its password is.
    pub password: Option<SecretRef>,
}

impl RepoTarget {
    /// The target of a catalog repository.
    pub fn of(repository: &crate::catalog::Repository) -> RepoTarget {
        RepoTarget {
            id: repository.id.value.to_string(),
            url: repository.url.value.clone(),
            password: repository.password.as_ref().map(|p| p.value.clone()),
        }
    }
}

/// What a job does, with everything it needs.
#[derive(Clone, Debug)]
pub enum Work {
    /// Back up one set.
    Backup {
        /// The set.
        set: Box<BackupSet>,
        /// Into this repository.
        repository: RepoTarget,
        /// Pre- and post-hook of the policy.
        pre_hook: Option<String>,
        /// Post-hook.
        post_hook: Option<String>,
        /// Environment of both hooks.
        hook_env: Vec<EnvVar>,
        /// Hook time limit (the policy's maximum duration).
        hook_timeout: Duration,
        /// Retention lock for the new snapshot, in days.
        immutability_days: Option<u32>,
    },
    /// Apply retention to one set's snapshots.
    Forget {
        /// Rules.
        keep: KeepPolicy,
        /// In this repository.
        repository: RepoTarget,
    },
    /// Copy one set's snapshots.
    Copy {
        /// From.
        from: RepoTarget,
        /// To.
        to: RepoTarget,
    },
    /// Prune a repository.
    Prune {
        /// The repository.
        repository: RepoTarget,
        /// Between marking and deleting.
        grace: SignedDuration,
    },
    /// Check a repository, reading a share of its data.
    Check {
        /// The repository.
        repository: RepoTarget,
        /// Percent of packs to read.
        read_data_percent: f64,
    },
    /// Drill a system (haven-ops' drills run it).
    Drill {
        /// The system as declared when the drill was planned.
        system: Box<System>,
        /// Its primary repository.
        repository: RepoTarget,
        /// What it is judged against.
        objectives: Objectives,
    },
}

impl Work {
    /// The repository the job uses (for per-repository limits).
    pub fn repository(&self) -> &RepoTarget {
        match self {
            Work::Backup { repository, .. }
            | Work::Forget { repository, .. }
            | Work::Prune { repository, .. }
            | Work::Check { repository, .. }
            | Work::Drill { repository, .. } => repository,
            Work::Copy { from, .. } => from,
        }
    }
}

/// A planned job.
#[derive(Clone, Debug)]
pub struct JobSpec {
    /// What the store records.
    pub record: NewJob,
    /// What it does.
    pub work: Work,
}
