//! Running one job: a backup set, retention, a copy, a prune or a check,
//! with the engine. Blocking; the server calls it off its async threads.
//!
//! A [`JobSpec`] carries everything resolved from the catalog when the
//! job was planned, so a catalog reload while it runs changes nothing
//! about it. The [`Runner`] trait lets scheduler tests replace the engine
//! with scripted outcomes.

use std::fmt::Write as _;

use haven_engine::{
    BackupOptions, Id, Location, NoProgress, ParentChoice, PruneOptions, ReadData, Repository,
};
use haven_model::jobs::{JobStats, Outcome, log_excerpt};
use haven_model::retention::{self, GroupBy, KeepPolicy, SnapshotRef};
use haven_model::tasks::{JobSpec, RepoTarget, Work};
use haven_store::JobEnd;
use jiff::{SignedDuration, Timestamp};

use super::classify::classify;
use super::command::CommandStream;
use super::hooks::Hooks;
use crate::instance::secrets::{repository_password, resolve_env};

/// Runs jobs (blocking).
pub trait Runner: Send + Sync + 'static {
    /// Run a job to its end; `ended_at` is left for the caller to set.
    fn run(&self, spec: &JobSpec) -> JobEnd;
}

/// The tags a server backup carries, so retention and copies find a
/// set's snapshots.
pub fn set_tags(system: &str, set: &str) -> Vec<String> {
    vec![format!("system:{system}"), format!("set:{set}")]
}

/// Open a repository from its catalog entry.
pub fn open_repository(repo: &RepoTarget) -> anyhow::Result<Repository> {
    let location = Location::parse(&repo.url)?;
    let password = repository_password(&repo.id, repo.password.as_ref())?;
    Ok(Repository::open(&location, &password)?)
}

/// The real runner: the engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineRunner;

/// What a job body reports besides its log.
struct Done {
    outcome: Outcome,
    stats: JobStats,
    snapshot_id: Option<String>,
    message: String,
}

impl Runner for EngineRunner {
    fn run(&self, spec: &JobSpec) -> JobEnd {
        let mut log = String::new();
        let result = match &spec.work {
            Work::Backup { .. } => backup(spec, &mut log),
            Work::Forget { keep, repository } => forget(spec, keep, repository, &mut log),
            Work::Copy { from, to } => copy(spec, from, to, &mut log),
            Work::Prune { repository, grace } => prune(repository, *grace, &mut log),
            Work::Check {
                repository,
                read_data_percent,
            } => check(repository, *read_data_percent, &mut log),
            // The server runs drills through `drills::DrillingRunner`.
            Work::Drill { .. } => Err(anyhow::anyhow!(
                "a drill job reached the engine runner: drills run through haven_ops::drills::DrillingRunner"
            )),
        };
        match result {
            Ok(done) => {
                let _ = writeln!(log, "{}", done.message);
                JobEnd {
                    ended_at: None,
                    outcome: Some(done.outcome),
                    stats: done.stats,
                    snapshot_id: done.snapshot_id,
                    failure: None,
                    message: Some(done.message),
                    log: log_excerpt(&log),
                    drill: None,
                }
            }
            Err(error) => {
                let message = haven_model::errors::chain_text(error.as_ref());
                let _ = writeln!(log, "error: {message}");
                JobEnd {
                    ended_at: None,
                    outcome: Some(Outcome::Failed),
                    stats: JobStats::default(),
                    snapshot_id: None,
                    failure: Some(classify(&error)),
                    message: Some(message),
                    log: log_excerpt(&log),
                    drill: None,
                }
            }
        }
    }
}

fn backup(spec: &JobSpec, log: &mut String) -> anyhow::Result<Done> {
    let Work::Backup {
        set,
        repository,
        pre_hook,
        post_hook,
        hook_env,
        hook_timeout,
        immutability_days,
    } = &spec.work
    else {
        unreachable!("backup() is only called for backups")
    };
    let system = spec.record.system.as_deref().unwrap_or_default();
    let _ = writeln!(log, "opening repository {}", repository.id);
    // Open first: a wrong password must not quiesce a database for nothing.
    let repo = open_repository(repository)?;
    let lock_until = immutability_days
        .map(|days| Timestamp::now() + SignedDuration::from_hours(24 * i64::from(days)));
    let options = BackupOptions {
        tags: set_tags(system, &set.name),
        hostname: Some(system.to_string()),
        excludes: set.excludes.clone(),
        lock_until,
        parent: ParentChoice::Auto,
        ..BackupOptions::default()
    };
    let hooks = Hooks {
        pre: pre_hook.clone(),
        post: post_hook.clone(),
        timeout: Some(*hook_timeout),
        env: resolve_env(hook_env).map_err(|e| anyhow::anyhow!("hooks: {e}"))?,
    };
    let dump_env = resolve_env(&set.env).map_err(|e| anyhow::anyhow!("the dump command: {e}"))?;
    if let Some(hook) = pre_hook {
        let _ = writeln!(log, "pre-hook: {hook}");
    }
    match &set.command {
        Some(command) => {
            let _ = writeln!(log, "backing up the output of `{command}`");
        }
        None => {
            let _ = writeln!(log, "backing up {}", set.paths.join(" "));
        }
    }
    let around = hooks.around(
        || match &set.command {
            Some(command) => {
                let mut stream = CommandStream::spawn(command, &dump_env)?;
                let name = format!("{}.dump", set.name);
                Ok(repo.backup_stream(&mut stream, &name, &options, &NoProgress)?)
            }
            None => {
                let paths: Vec<std::path::PathBuf> = set.paths.iter().map(Into::into).collect();
                Ok(repo.backup(&paths, &options, &NoProgress)?)
            }
        },
        |o| o.snapshot_id.to_hex(),
    )?;
    let (outcome, post_error) = (around.value, around.post_error);
    let s = outcome.summary();
    let mut problems = Vec::new();
    for entry in &outcome.skipped {
        let _ = writeln!(log, "skipped {}: {}", entry.path.display(), entry.error);
    }
    if !outcome.skipped.is_empty() {
        problems.push(format!(
            "{} entries could not be read",
            outcome.skipped.len()
        ));
    }
    if let Some(e) = post_error {
        let _ = writeln!(log, "post-hook failed: {e}");
        problems.push(format!("the post-hook failed: {e}"));
    }
    if let Some(error) = outcome.object_lock.as_ref().and_then(|l| l.error.as_ref()) {
        problems.push(format!("Object Lock was not applied everywhere: {error}"));
    }
    let short = outcome.snapshot_id.short();
    Ok(Done {
        outcome: if problems.is_empty() {
            Outcome::Success
        } else {
            Outcome::Partial
        },
        stats: JobStats {
            files_new: s.files_new,
            files_changed: s.files_changed,
            files_unmodified: s.files_unmodified,
            bytes_changed: s.bytes_read,
            bytes_total: s.bytes_total,
            bytes_added: s.bytes_added,
            repository_bytes: Some(outcome.repository_bytes),
        },
        snapshot_id: Some(outcome.snapshot_id.to_hex()),
        message: if problems.is_empty() {
            format!("snapshot {short} saved")
        } else {
            format!("snapshot {short} saved, but {}", problems.join("; "))
        },
    })
}

/// How many bytes a copy's target holds now (capacity evidence); a
/// failure to measure is logged, never a reason to fail the job.
fn measure(repo: &Repository, log: &mut String) -> Option<u64> {
    match repo.pack_bytes() {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            let _ = writeln!(log, "could not measure the repository's size: {e}");
            None
        }
    }
}

/// The snapshots of the job's set, by tag.
fn set_snapshots(
    repo: &Repository,
    spec: &JobSpec,
) -> anyhow::Result<Vec<(Id, haven_engine::Snapshot)>> {
    let tags = set_tags(
        spec.record.system.as_deref().unwrap_or_default(),
        spec.record.backup_set.as_deref().unwrap_or_default(),
    );
    Ok(repo
        .snapshots()?
        .into_iter()
        .filter(|(_, s)| tags.iter().all(|t| s.tags.contains(t)))
        .collect())
}

/// What retention needs to know of snapshots, protection included.
pub fn snapshot_refs(
    repo: &Repository,
    snapshots: &[(Id, haven_engine::Snapshot)],
    now: Timestamp,
) -> anyhow::Result<Vec<SnapshotRef>> {
    let holds = repo.holds()?;
    Ok(snapshots
        .iter()
        .map(|(id, s)| SnapshotRef {
            id: id.to_hex(),
            time: s.time,
            host: s.hostname.clone(),
            paths: s.paths.clone(),
            tags: s.tags.clone(),
            protected_by: repo.protection(id, s, &holds, now),
        })
        .collect())
}

fn forget(
    spec: &JobSpec,
    keep: &KeepPolicy,
    repository: &RepoTarget,
    log: &mut String,
) -> anyhow::Result<Done> {
    let repo = open_repository(repository)?;
    let snapshots = set_snapshots(&repo, spec)?;
    let now = Timestamp::now();
    let refs = snapshot_refs(&repo, &snapshots, now)?;
    let one_group = GroupBy {
        host: false,
        paths: false,
        tags: false,
    };
    let groups = retention::apply(keep, &refs, one_group, now, &jiff::tz::TimeZone::UTC);
    let mut remove = Vec::new();
    for decision in groups.iter().flat_map(|g| &g.decisions) {
        let verdict = if decision.keep { "keep  " } else { "remove" };
        let _ = writeln!(
            log,
            "{verdict} {} {} {}",
            &decision.id[..8.min(decision.id.len())],
            decision.time,
            decision.reasons.join("; ")
        );
        if !decision.keep {
            remove.push(decision.id.parse::<Id>()?);
        }
    }
    repo.remove_snapshots(&remove)?;
    Ok(Done {
        outcome: Outcome::Success,
        stats: JobStats::default(),
        snapshot_id: None,
        message: format!(
            "kept {}, removed {} snapshots",
            refs.len() - remove.len(),
            remove.len()
        ),
    })
}

fn copy(
    spec: &JobSpec,
    from: &RepoTarget,
    to: &RepoTarget,
    log: &mut String,
) -> anyhow::Result<Done> {
    let source = open_repository(from)?;
    let target = open_repository(to)?;
    let ids: Vec<Id> = set_snapshots(&source, spec)?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let copied = source.copy_to(&target, &ids, false, &NoProgress)?;
    let mut added = 0;
    let mut new = 0;
    let mut latest = None;
    for c in &copied {
        added += c.bytes_added;
        if c.status == haven_engine::CopyStatus::Copied {
            new += 1;
        }
        let _ = writeln!(
            log,
            "{:?} {} → {}",
            c.status,
            c.source.short(),
            c.target.short()
        );
        latest = Some(c.target.to_hex());
    }
    Ok(Done {
        outcome: Outcome::Success,
        stats: JobStats {
            bytes_added: added,
            repository_bytes: measure(&target, log),
            ..JobStats::default()
        },
        snapshot_id: latest,
        message: format!(
            "copied {new} snapshots to {} ({} already there)",
            to.id,
            copied.len() - new
        ),
    })
}

fn prune(repository: &RepoTarget, grace: SignedDuration, log: &mut String) -> anyhow::Result<Done> {
    let repo = open_repository(repository)?;
    let report = repo.prune(
        &PruneOptions {
            now: Timestamp::now(),
            grace,
            ..PruneOptions::default()
        },
        &NoProgress,
    )?;
    let text = serde_json::to_string(&report).unwrap_or_default();
    let _ = writeln!(log, "{text}");
    Ok(Done {
        outcome: Outcome::Success,
        stats: JobStats {
            repository_bytes: Some(report.after.bytes),
            ..JobStats::default()
        },
        snapshot_id: None,
        message: format!(
            "space before {} bytes, after {} bytes; {} packs marked, {} marks swept, {} pending",
            report.before.bytes,
            report.after.bytes,
            report.mark.unused.packs + report.mark.repacked.packs,
            report.swept.len(),
            report.pending.len()
        ),
    })
}

fn check(repository: &RepoTarget, percent: f64, log: &mut String) -> anyhow::Result<Done> {
    let repo = open_repository(repository)?;
    let report = repo.check(ReadData::Subset(percent), &NoProgress)?;
    for problem in &report.problems {
        let _ = writeln!(log, "problem: {problem:?}");
    }
    if report.is_ok() {
        Ok(Done {
            outcome: Outcome::Success,
            stats: JobStats::default(),
            snapshot_id: None,
            message: format!("no problems found (read {percent}% of the data)"),
        })
    } else if report.only_exposed() {
        // Sound data, but key files other users can read: a configuration
        // problem, not damage.
        let fixes = report
            .problems
            .iter()
            .filter_map(|p| p.detail.split('`').nth(1).map(str::to_string))
            .collect();
        Err(haven_engine::Error::ExposedFiles { fixes }.into())
    } else {
        Err(haven_engine::Error::Corrupt {
            what: format!("repository {}", repository.id),
            detail: format!("the check found {} problems", report.problems.len()),
        }
        .into())
    }
}
