//! Drills: restore a system's newest (or chosen) snapshots into a private
//! sandbox under the data dir, run the system's checks against it, time
//! every step, and judge the result against the objectives of the
//! services that need the system (`haven_model::drills`).
//!
//! The sandbox is `<data dir>/sandboxes/<system>-<time>` (0700): restored
//! paths are remapped into it, nothing production is touched. It is
//! removed when the drill ends, whatever the outcome, unless kept for
//! forensics. Blocking: async callers use `spawn_blocking`.

mod checks;
mod custom;
mod job;
mod postgres;

pub use postgres::find_bin as postgres_bin;
pub mod report;
mod sandbox;
mod service;

use std::path::{Path, PathBuf};
use std::time::Instant;

use haven_engine::{Id, NoProgress, Repository, RestoreOptions, Snapshot};
use haven_model::catalog::{BackupSet, Catalog, System};
use haven_model::drills::{Drill, Objectives, Step, StepKind, judge, objectives_of};
use haven_model::tasks::RepoTarget;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::jobs::command::{for_job, kill_commands_of};
use crate::jobs::runner::{open_repository, set_tags};
pub use job::DrillingRunner;
pub use sandbox::Sandbox;
pub use service::{
    ServiceDrillOutcome, ServiceDrillRequest, run_service, run_service_and_record, waves,
};

/// Commands drills start run as this pseudo job, so an interrupted drill
/// can kill them ([`abort`]).
const DRILL_COMMANDS: i64 = -1;

/// Tear down every drill running in this process now (SIGINT, SIGTERM):
/// kill the checks' commands, stop the throwaway clusters, remove the
/// sandboxes. The drills' threads then fail where they stand; nothing of
/// them is left behind.
pub fn abort() {
    kill_commands_of(&[DRILL_COMMANDS]);
    postgres::abort_all();
    sandbox::abort_all();
}

/// What to drill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DrillRequest {
    /// The system.
    pub system: String,
    /// A snapshot id prefix (of a set of the system) instead of the newest.
    #[serde(default)]
    pub snapshot: Option<String>,
    /// The newest snapshots taken at or before this time.
    #[serde(default)]
    pub at: Option<Timestamp>,
    /// Keep the sandbox afterwards (forensics).
    #[serde(default)]
    pub keep: bool,
    /// Who asks (`local:ana`, `api-token`, `schedule`).
    pub by: String,
}

/// A drill and, when kept, where its sandbox is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DrillOutcome {
    /// The drill.
    #[serde(flatten)]
    pub drill: Drill,
    /// The kept sandbox (with `keep`).
    pub kept_sandbox: Option<PathBuf>,
}

/// Why a drill could not even start.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// No such system, or nothing of it to drill.
    #[error("{0}")]
    Unknown(String),
    /// No such service.
    #[error("{0}")]
    NoService(String),
    /// No snapshot matches.
    #[error("{0}")]
    NoSnapshot(String),
    /// The sandbox cannot be made (space, permissions).
    #[error("{0}")]
    Sandbox(String),
    /// The repository cannot be opened.
    #[error("{0:#}")]
    Repository(anyhow::Error),
    /// The drill ran but could not be recorded.
    #[error("the drill ran but could not be recorded: {0}")]
    Unrecorded(String),
    /// The drill's thread stopped (a panic).
    #[error("the drill stopped: {0}")]
    Stopped(String),
}

/// [`run`] off the async threads, then recorded in `store` as evidence.
pub async fn run_and_record(
    catalog: std::sync::Arc<Catalog>,
    data_dir: PathBuf,
    request: DrillRequest,
    now: Timestamp,
    store: &dyn haven_store::Store,
) -> Result<DrillOutcome, DrillError> {
    let mut outcome = tokio::task::spawn_blocking(move || run(&catalog, &data_dir, &request, now))
        .await
        .map_err(|e| DrillError::Stopped(e.to_string()))??;
    outcome.drill = store
        .record_drill(&outcome.drill)
        .await
        .map_err(|e| DrillError::Unrecorded(e.to_string()))?;
    Ok(outcome)
}

/// Run a drill of `request.system` (blocking).
pub fn run(
    catalog: &Catalog,
    data_dir: &Path,
    request: &DrillRequest,
    now: Timestamp,
) -> Result<DrillOutcome, DrillError> {
    let system = catalog.system(&request.system).ok_or_else(|| {
        DrillError::Unknown(format!("no system {:?} in the catalog", request.system))
    })?;
    let repo = repository_of(catalog, system)?;
    let objectives = objectives_of(catalog, &system.id.value);
    run_resolved(system, &repo, objectives, data_dir, request, now)
}

/// Run a drill of `system`, resolved from the catalog already (a
/// scheduled drill carries it in its job).
pub fn run_resolved(
    system: &System,
    repo: &Repository,
    objectives: Objectives,
    data_dir: &Path,
    request: &DrillRequest,
    now: Timestamp,
) -> Result<DrillOutcome, DrillError> {
    let chosen = choose_snapshots(repo, system, request)?;
    let restore_bytes: u64 = chosen.iter().map(|(_, _, s)| s.summary.bytes_total).sum();
    let mut sandbox = Sandbox::create(data_dir, &system.id.value, now, restore_bytes)
        .map_err(DrillError::Sandbox)?;
    let started = Instant::now();
    let mut steps = Vec::new();
    let bytes = restore_all(repo, &chosen, sandbox.path(), &mut steps);
    let env = custom::SandboxEnv::new(sandbox.path()).map_err(DrillError::Sandbox)?;
    let dump = postgres_dump(system, &chosen);
    let (cluster, services) = prepare(system, dump, &chosen, sandbox.path(), &env, &mut steps);
    if steps.iter().all(|s| s.ok) {
        for (n, check) in system.checks.iter().enumerate() {
            let step = for_job(DRILL_COMMANDS, || {
                checks::run(n + 1, check, sandbox.path(), cluster.as_ref(), &env)
            });
            steps.push(step);
        }
    }
    let measured_rto = SignedDuration::try_from(started.elapsed()).unwrap_or(SignedDuration::MAX);
    let oldest = chosen.iter().map(|(_, _, s)| s.time).min().unwrap_or(now);
    // From the data itself where the system says how; else the snapshot.
    let recovery_point = recovery_point(system, cluster.as_ref(), &mut steps).unwrap_or(oldest);
    let achieved_rpo = now.duration_since(recovery_point).max(SignedDuration::ZERO);
    drop(services);
    drop(cluster);
    let (verdict, reasons) = judge(&steps, measured_rto, achieved_rpo, objectives);
    let kept_sandbox = if request.keep {
        Some(sandbox.keep())
    } else {
        None
    };
    Ok(DrillOutcome {
        drill: Drill {
            id: 0,
            system: system.id.value.to_string(),
            by: request.by.clone(),
            snapshot_id: chosen
                .iter()
                .map(|(_, id, _)| id.to_hex())
                .collect::<Vec<_>>()
                .join(","),
            snapshot_time: oldest,
            sandbox: sandbox_kind(dump.is_some(), &chosen).into(),
            started_at: now,
            ended_at: now + measured_rto,
            steps,
            measured_rto,
            achieved_rpo,
            bytes,
            objectives,
            verdict,
            reasons,
            config: haven_model::drills::system_config(system),
        },
        kept_sandbox,
    })
}

/// Restore every chosen set into the sandbox, stopping at the first that
/// fails; the bytes restored.
fn restore_all(
    repo: &Repository,
    chosen: &[(&BackupSet, Id, Snapshot)],
    sandbox: &Path,
    steps: &mut Vec<Step>,
) -> u64 {
    let mut bytes = 0;
    for (set, id, snapshot) in chosen {
        let (step, restored) = restore_step(repo, set, id, snapshot, sandbox);
        bytes += restored;
        let failed = !step.ok;
        steps.push(step);
        if failed {
            break;
        }
    }
    bytes
}

/// Bring the restored data up in the sandbox, while every step so far
/// went well: the throwaway cluster for a pg_dump set, then each set's
/// declared load and start. The cluster and the started services run
/// until they are dropped (after the checks).
fn prepare(
    system: &System,
    dump: Option<&BackupSet>,
    chosen: &[(&BackupSet, Id, Snapshot)],
    sandbox: &Path,
    env: &custom::SandboxEnv,
    steps: &mut Vec<Step>,
) -> (Option<postgres::Cluster>, Vec<crate::jobs::Background>) {
    let ok = |steps: &[Step]| steps.iter().all(|s| s.ok);
    let mut cluster = None;
    if let Some(set) = dump
        && ok(steps)
    {
        let (started, mut loaded) = database(sandbox, system, set);
        steps.append(&mut loaded);
        cluster = started;
    }
    let mut services = Vec::new();
    for (set, _, _) in chosen {
        if let Some(run) = &set.restore_command
            && ok(steps)
        {
            steps.push(custom::load(set, run, sandbox, env));
        }
        if let Some(run) = &set.start
            && ok(steps)
        {
            let (service, step) = custom::start(set, run, sandbox, env);
            services.extend(service);
            steps.push(step);
        }
    }
    (cluster, services)
}

fn repository_of(catalog: &Catalog, system: &System) -> Result<Repository, DrillError> {
    let policy = catalog.policy_of(system).ok_or_else(|| {
        DrillError::Unknown(format!(
            "system {} has no policy: nothing of it is backed up to drill",
            system.id.value
        ))
    })?;
    let repository = catalog
        .repository(&policy.repository.value)
        .ok_or_else(|| {
            DrillError::Unknown(format!(
                "repository {} does not exist",
                policy.repository.value
            ))
        })?;
    open_repository(&RepoTarget::of(repository)).map_err(DrillError::Repository)
}

/// Each set's snapshot: the one asked for, else the newest (at or before
/// `at`).
fn choose_snapshots<'a>(
    repo: &Repository,
    system: &'a System,
    request: &DrillRequest,
) -> Result<Vec<(&'a BackupSet, Id, Snapshot)>, DrillError> {
    let all = repo
        .snapshots()
        .map_err(|e| DrillError::Repository(e.into()))?;
    let mut chosen = Vec::new();
    for set in &system.backup_sets {
        let tags = set_tags(&system.id.value, set.name.as_str());
        let mut mine: Vec<&(Id, Snapshot)> = all
            .iter()
            .filter(|(_, s)| tags.iter().all(|t| s.tags.contains(t)))
            .collect();
        mine.sort_by_key(|(_, s)| s.time);
        let pick = match (&request.snapshot, request.at) {
            (Some(prefix), _) => mine
                .iter()
                .find(|(id, _)| id.to_hex().starts_with(&prefix.to_ascii_lowercase())),
            (None, Some(at)) => mine.iter().rev().find(|(_, s)| s.time <= at),
            (None, None) => mine.last(),
        };
        match pick {
            Some((id, snapshot)) => chosen.push((set, *id, snapshot.clone())),
            // --snapshot names one set's snapshot: the other sets are not
            // part of this drill.
            None if request.snapshot.is_some() => {}
            None => {
                return Err(DrillError::NoSnapshot(format!(
                    "system {} set {} has no snapshot to drill{}",
                    system.id.value,
                    set.name,
                    request
                        .at
                        .map(|t| format!(" at or before {t}"))
                        .unwrap_or_default()
                )));
            }
        }
    }
    if chosen.is_empty() {
        return Err(DrillError::NoSnapshot(format!(
            "no snapshot of system {} matches",
            system.id.value
        )));
    }
    Ok(chosen)
}

/// Restore one set into the sandbox (every blob is verified as it is
/// read); a damaged file fails the step, naming it.
fn restore_step(
    repo: &Repository,
    set: &BackupSet,
    id: &Id,
    snapshot: &Snapshot,
    sandbox: &Path,
) -> (Step, u64) {
    let started_at = Timestamp::now();
    let clock = Instant::now();
    let result = repo.restore(id, sandbox, &RestoreOptions::default(), &NoProgress);
    let duration = SignedDuration::try_from(clock.elapsed()).unwrap_or(SignedDuration::MAX);
    let name = format!("restore set {} (snapshot {})", set.name, id.short());
    let (ok, detail, bytes) = match result {
        Ok(outcome) if outcome.failed.is_empty() => (
            true,
            format!(
                "{} files, {} of {} bytes verified",
                outcome.files, outcome.bytes, snapshot.summary.bytes_total
            ),
            outcome.bytes,
        ),
        Ok(outcome) => (false, failed_files(&outcome), outcome.bytes),
        Err(e) => (false, haven_model::errors::chain_text(&e), 0),
    };
    (
        Step {
            kind: StepKind::Restore,
            name,
            started_at,
            duration,
            ok,
            detail,
        },
        bytes,
    )
}

/// `postgres` (a throwaway cluster), `command` (declared loads or
/// starts) or `files`.
fn sandbox_kind(postgres: bool, chosen: &[(&BackupSet, Id, Snapshot)]) -> &'static str {
    if postgres {
        "postgres"
    } else if chosen
        .iter()
        .any(|(s, _, _)| s.restore_command.is_some() || s.start.is_some())
    {
        "command"
    } else {
        "files"
    }
}

/// The set a `database-postgres` system streams `pg_dump` into, if any
/// (and that declares no `restore_command` of its own): its drill loads
/// it into a throwaway cluster.
fn postgres_dump<'a>(
    system: &System,
    chosen: &[(&'a BackupSet, Id, Snapshot)],
) -> Option<&'a BackupSet> {
    if !system.kind.value.starts_with("database-postgres") {
        return None;
    }
    chosen.iter().map(|(set, _, _)| *set).find(|set| {
        set.restore_command.is_none()
            && set
                .command
                .as_deref()
                .is_some_and(|c| c.contains("pg_dump"))
    })
}

/// Start the throwaway cluster and load the set's dump: two timed steps.
fn database(
    sandbox: &Path,
    system: &System,
    set: &BackupSet,
) -> (Option<postgres::Cluster>, Vec<Step>) {
    let mut steps = Vec::new();
    let timed = |kind: StepKind, name: String, work: &mut dyn FnMut() -> Result<String, String>| {
        let started_at = Timestamp::now();
        let clock = Instant::now();
        let result = work();
        Step {
            kind,
            name,
            started_at,
            duration: SignedDuration::try_from(clock.elapsed()).unwrap_or(SignedDuration::MAX),
            ok: result.is_ok(),
            detail: result.unwrap_or_else(|e| e),
        }
    };
    let mut cluster = None;
    steps.push(timed(
        StepKind::Start,
        "start a throwaway PostgreSQL cluster".into(),
        &mut || {
            let started = postgres::Cluster::start(&std::env::temp_dir(), &system.id.value)?;
            cluster = Some(started);
            Ok("listening on a socket in its private directory only".into())
        },
    ));
    if let Some(db) = &cluster {
        let dump = sandbox.join(format!("{}.dump", set.name));
        steps.push(timed(
            StepKind::Load,
            format!("load {}.dump", set.name),
            &mut || db.load(&dump).map(|how| format!("loaded with {how}")),
        ));
    }
    (cluster, steps)
}

/// The newest time in the restored data, by the system's
/// `recovery_point_query` (a failed query is a failed step).
fn recovery_point(
    system: &System,
    db: Option<&postgres::Cluster>,
    steps: &mut Vec<Step>,
) -> Option<Timestamp> {
    let (query, db) = (system.recovery_point_query.as_ref()?, db?);
    let started_at = Timestamp::now();
    let clock = Instant::now();
    let answer = db.psql(
        postgres::DATABASE,
        &format!("SELECT floor(extract(epoch FROM ({query})))::bigint"),
    );
    let parsed = answer.and_then(|text| {
        text.trim()
            .parse::<i64>()
            .ok()
            .and_then(|secs| Timestamp::from_second(secs).ok())
            .ok_or_else(|| format!("the recovery point query answered {text:?}, not a time"))
    });
    steps.push(Step {
        kind: StepKind::Check,
        name: format!("recovery point `{query}`"),
        started_at,
        duration: SignedDuration::try_from(clock.elapsed()).unwrap_or(SignedDuration::MAX),
        ok: parsed.is_ok(),
        detail: match &parsed {
            Ok(t) => format!("the restored data reaches {t}"),
            Err(e) => e.clone(),
        },
    });
    parsed.ok()
}

/// What a restore could not restore, in words (the first five).
pub(crate) fn failed_files(outcome: &haven_engine::RestoreOutcome) -> String {
    format!(
        "{} files damaged or missing: {}",
        outcome.failed.len(),
        outcome
            .failed
            .iter()
            .take(5)
            .map(|f| format!("{} ({})", f.path.display(), f.error))
            .collect::<Vec<_>>()
            .join("; ")
    )
}
