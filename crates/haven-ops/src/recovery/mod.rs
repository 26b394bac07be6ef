//! Recovery: bring services back from their backups in dependency order
//! (`haven recover`). The run is planned without I/O in
//! `haven_model::recovery`; this module feeds it the evidence (drill
//! history, current sizes) for the dry-run's forecast, checks before
//! anything is touched ([`preflight`]), records the run and runs it
//! ([`execute`]): waves in parallel up to the plan's concurrency, each
//! step recorded as it goes, people deciding at checkpoints and failed
//! steps, a killed run resumed from its records.

mod execute;
mod preflight;
pub mod report;
mod steps;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use haven_model::catalog::Catalog;
use haven_model::drills::predicted_rto;
use haven_model::recovery::run::{
    Decided, Decision, ExecutorId, RecoveryRun, RestoreTarget, RunState, RunView, StepRecord,
    refuse_decision,
};
use haven_model::recovery::{Estimate, Forecast, RunPlan, Selection, UnitKind, forecast, plan_run};
use haven_store::Store;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Commands recovery steps start run as this pseudo job, so a recovery
/// interrupted in this process can kill them ([`abort`]).
const RECOVERY_COMMANDS: i64 = -2;

/// Kill the commands the recoveries running in this process started
/// (SIGINT, SIGTERM): the run shows interrupted and `--resume` runs
/// those steps again; nothing keeps writing behind it.
pub fn abort() {
    crate::jobs::command::kill_commands_of(&[RECOVERY_COMMANDS]);
}

/// An executor silent for longer than this (on another host) is gone.
const SILENCE: SignedDuration = SignedDuration::from_secs(60);

/// What a dry-run asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ForecastRequest {
    /// What to recover.
    pub selection: Selection,
}

/// What a recovery asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecoverRequest {
    /// What to recover.
    pub selection: Selection,
    /// The newest snapshots taken at or before this time (before the
    /// infection), else the newest.
    #[serde(default)]
    pub at: Option<Timestamp>,
    /// Where restored data goes.
    pub target: RestoreTarget,
    /// Why (recorded).
    #[serde(default)]
    pub reason: Option<String>,
    /// Go on despite blocking pre-flight findings (needs `reason`).
    #[serde(default)]
    pub force: bool,
    /// Who asks.
    pub by: String,
}

/// Continue a run that stopped midway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResumeRequest {
    /// The run.
    pub run: i64,
    /// Who asks.
    pub by: String,
}

/// Close an interrupted run for good (it will not be resumed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AbandonRequest {
    /// The run.
    pub run: i64,
    /// Who.
    pub by: String,
    /// Why (required).
    pub reason: String,
}

/// A person's decision on a step: confirm a checkpoint, retry or skip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepDecision {
    /// The run.
    pub run: i64,
    /// The step's number.
    pub step: u32,
    /// What.
    pub decision: Decision,
    /// Who.
    pub by: String,
    /// What they saw (confirm) or why (retry, skip: required).
    #[serde(default)]
    pub note: Option<String>,
}

/// Why a recovery cannot be planned, started or decided on.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The selection names nothing recoverable (no plan, no service, a
    /// dependency cycle).
    #[error(transparent)]
    Plan(#[from] haven_model::recovery::PlanError),
    /// The evidence cannot be read or written.
    #[error(transparent)]
    Store(#[from] haven_store::StoreError),
    /// No such run, or no such step in it.
    #[error("{0}")]
    NoRun(String),
    /// The request does not fit the run's state (confirming a step that
    /// does not wait, resuming a running run, forcing without a reason).
    #[error("{0}")]
    Conflict(String),
}

/// The dry-run: the planned run and what it will take, from the drill
/// history and each system's current size where there is one.
pub async fn dry_run(
    catalog: &Catalog,
    store: &dyn Store,
    request: &ForecastRequest,
) -> Result<Forecast, RecoveryError> {
    let plan = plan_run(catalog, &request.selection)?;
    let estimates = estimates(store, &plan).await?;
    Ok(forecast(catalog, plan, &estimates))
}

/// Plan the run, check it before touching anything, record it and start
/// it in the background (on the current runtime). A run pre-flight
/// refuses is recorded as refused, with the findings, and not started.
pub async fn start(
    catalog: Arc<Catalog>,
    store: Arc<dyn Store>,
    data_dir: PathBuf,
    request: &RecoverRequest,
) -> Result<RunView, RecoveryError> {
    if request.force
        && request
            .reason
            .as_deref()
            .is_none_or(|r| r.trim().is_empty())
    {
        return Err(RecoveryError::Conflict(
            "--force overrides pre-flight problems and needs a reason (--reason TEXT), recorded with the run".into(),
        ));
    }
    let plan = plan_run(&catalog, &request.selection)?;
    let now = Timestamp::now();
    let others = store.recoveries(200).await?;
    let checked = preflight::check(&catalog, &plan, request, &data_dir, &others, now).await;
    let blocked = checked.findings.iter().any(|f| f.blocking);
    let state = if blocked && !request.force {
        RunState::Refused
    } else {
        RunState::Running
    };
    let steps = StepRecord::all_pending(&plan);
    let run = RecoveryRun {
        id: 0,
        selection: request.selection.clone(),
        plan,
        by: request.by.clone(),
        reason: request.reason.clone(),
        at: request.at,
        target: request.target.clone(),
        preflight: checked.findings,
        forced: (blocked && request.force).then(|| request.reason.clone().unwrap_or_default()),
        snapshots: checked.snapshots,
        state,
        started_at: now,
        ended_at: (state == RunState::Refused).then_some(now),
        executor: (state == RunState::Running).then(this_process),
        heartbeat: now,
        resumed: 0,
        abandoned: None,
    };
    let run = store.create_recovery(&run, &steps).await?;
    if run.state == RunState::Running {
        execute::spawn(
            Arc::clone(&catalog),
            Arc::clone(&store),
            data_dir,
            run.clone(),
        );
    }
    Ok(RunView::new(&catalog, run, steps))
}

/// Continue a run whose executor is gone: finished steps stay finished,
/// a step that was running when it stopped runs again.
pub async fn resume(
    catalog: Arc<Catalog>,
    store: Arc<dyn Store>,
    data_dir: PathBuf,
    request: &ResumeRequest,
) -> Result<RunView, RecoveryError> {
    let (run, steps) = load(store.as_ref(), request.run).await?;
    let run = seen(run, Timestamp::now());
    match run.state {
        RunState::Interrupted => {}
        RunState::Refused => {
            return Err(RecoveryError::Conflict(format!(
                "run {} was refused by pre-flight and never started: start a new one",
                run.id
            )));
        }
        RunState::Completed | RunState::Abandoned => {
            return Err(RecoveryError::Conflict(format!(
                "run {} is {}: nothing to resume",
                run.id,
                run.state.as_str()
            )));
        }
        RunState::Running | RunState::Halted => {
            return Err(RecoveryError::Conflict(format!(
                "run {} is still {} in process {} on {}: follow it with `haven recover status {}`",
                run.id,
                run.state.as_str(),
                run.executor.as_ref().map_or(0, |e| e.pid),
                run.executor.as_ref().map_or("", |e| e.host.as_str()),
                run.id
            )));
        }
    }
    let run = RecoveryRun {
        state: RunState::Running,
        executor: Some(this_process()),
        heartbeat: Timestamp::now(),
        resumed: run.resumed + 1,
        ..run
    };
    store.update_recovery(&run).await?;
    tracing::info!(run = run.id, by = %request.by, "recovery resumed");
    execute::spawn(
        Arc::clone(&catalog),
        Arc::clone(&store),
        data_dir,
        run.clone(),
    );
    Ok(RunView::new(&catalog, run, steps))
}

/// Close an interrupted run for good: it is recorded as abandoned (who,
/// when, why) and no longer holds its services for pre-flight.
pub async fn abandon(
    catalog: &Catalog,
    store: &dyn Store,
    request: &AbandonRequest,
) -> Result<RunView, RecoveryError> {
    let reason = request.reason.trim();
    if reason.is_empty() {
        return Err(RecoveryError::Conflict(
            "abandoning a run needs a reason (--reason TEXT), recorded with it".into(),
        ));
    }
    let (run, steps) = load(store, request.run).await?;
    let now = Timestamp::now();
    let run = seen(run, now);
    if run.state != RunState::Interrupted {
        return Err(RecoveryError::Conflict(format!(
            "run {} is {}: only an interrupted run can be abandoned{}",
            run.id,
            run.state.as_str(),
            if matches!(run.state, RunState::Running | RunState::Halted) {
                " (stop the process that runs it first)"
            } else {
                ""
            }
        )));
    }
    let run = RecoveryRun {
        state: RunState::Abandoned,
        ended_at: Some(now),
        abandoned: Some(Decided {
            decision: Decision::Skip,
            by: request.by.clone(),
            at: now,
            note: Some(reason.to_string()),
        }),
        ..run
    };
    store.update_recovery(&run).await?;
    tracing::warn!(run = run.id, by = %request.by, "recovery abandoned: {reason}");
    Ok(RunView::new(catalog, run, steps))
}

/// A run as it stands (an executor gone silent shows as interrupted).
pub async fn view(catalog: &Catalog, store: &dyn Store, id: i64) -> Result<RunView, RecoveryError> {
    let (run, steps) = load(store, id).await?;
    Ok(RunView::new(catalog, seen(run, Timestamp::now()), steps))
}

/// The runs, newest first.
pub async fn list(store: &dyn Store, limit: u32) -> Result<Vec<RecoveryRun>, RecoveryError> {
    let now = Timestamp::now();
    Ok(store
        .recoveries(limit)
        .await?
        .into_iter()
        .map(|r| seen(r, now))
        .collect())
}

/// The live runs (running or halted), with their steps.
pub async fn live(catalog: &Catalog, store: &dyn Store) -> Result<Vec<RunView>, RecoveryError> {
    let mut views = Vec::new();
    for run in list(store, 50).await? {
        if matches!(run.state, RunState::Running | RunState::Halted) {
            views.push(view(catalog, store, run.id).await?);
        }
    }
    Ok(views)
}

/// Record a person's decision on a step; the run's executor acts on it.
pub async fn decide(
    catalog: &Catalog,
    store: &dyn Store,
    decision: &StepDecision,
) -> Result<RunView, RecoveryError> {
    let (run, steps) = load(store, decision.run).await?;
    let mut step = steps
        .iter()
        .find(|s| s.number == decision.step)
        .cloned()
        .ok_or_else(|| {
            RecoveryError::NoRun(format!(
                "run {} has no step {} (`haven recover status {}` lists them)",
                decision.run, decision.step, decision.run
            ))
        })?;
    let note = decision
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if decision.decision != Decision::Confirm && note.is_none() {
        return Err(RecoveryError::Conflict(format!(
            "{} needs a reason (--reason TEXT), recorded with the step",
            decision.decision.as_str()
        )));
    }
    if let Some(why) = refuse_decision(&step, decision.decision) {
        return Err(RecoveryError::Conflict(why));
    }
    step.pending = Some(Decided {
        decision: decision.decision,
        by: decision.by.clone(),
        at: Timestamp::now(),
        note: note.map(str::to_string),
    });
    store.put_recovery_step(run.id, &step).await?;
    tracing::info!(
        run = run.id,
        step = step.number,
        decision = decision.decision.as_str(),
        by = %decision.by,
        "recovery step decided"
    );
    let steps = steps
        .into_iter()
        .map(|s| {
            if s.number == step.number {
                step.clone()
            } else {
                s
            }
        })
        .collect();
    Ok(RunView::new(catalog, seen(run, Timestamp::now()), steps))
}

async fn load(store: &dyn Store, id: i64) -> Result<(RecoveryRun, Vec<StepRecord>), RecoveryError> {
    store
        .recovery(id)
        .await?
        .ok_or_else(|| RecoveryError::NoRun(format!("there is no recovery run {id}")))
}

/// This process, as a run's executor.
fn this_process() -> ExecutorId {
    ExecutorId {
        host: haven_engine::host::hostname(),
        pid: std::process::id(),
    }
}

/// Is the executor of `run` gone? On this host its process is asked;
/// elsewhere a heartbeat older than [`SILENCE`] says so.
fn seen(mut run: RecoveryRun, now: Timestamp) -> RecoveryRun {
    if !matches!(run.state, RunState::Running | RunState::Halted) {
        return run;
    }
    let gone = match &run.executor {
        None => true,
        Some(e) if e.host == haven_engine::host::hostname() => {
            rustix::process::Pid::from_raw(e.pid as i32)
                .is_none_or(|pid| rustix::process::test_kill_process(pid).is_err())
        }
        Some(_) => now.duration_since(run.heartbeat) > SILENCE,
    };
    if gone {
        run.state = RunState::Interrupted;
    }
    run
}

/// Each system's restore estimate from its drills: the last passing
/// drill's throughput applied to its current size, plus that drill's
/// other steps.
async fn estimates(
    store: &dyn Store,
    plan: &RunPlan,
) -> Result<HashMap<String, Estimate>, RecoveryError> {
    let sizes = crate::status::system_sizes(store).await?;
    let mut out = HashMap::new();
    for unit in plan.units.iter().filter(|u| u.kind == UnitKind::System) {
        let drills = store.drills(Some(&unit.id), 20).await?;
        let newest_first: Vec<&haven_model::drills::Drill> = drills.iter().collect();
        let Some(size) = sizes.get(&unit.id) else {
            continue;
        };
        let Some(duration) = predicted_rto(&newest_first, *size) else {
            continue;
        };
        let basis = newest_first
            .iter()
            .find(|d| d.verdict == haven_model::drills::Verdict::Pass && d.bytes > 0)
            .map_or_else(String::new, |d| {
                format!(
                    "drill {}: its restore throughput × the current size ({})",
                    d.id,
                    haven_model::units::human_bytes(*size as f64)
                )
            });
        out.insert(unit.id.clone(), Estimate { duration, basis });
    }
    Ok(out)
}
