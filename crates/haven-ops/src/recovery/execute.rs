//! Running a recorded run: units start in plan order (wave by wave) as
//! soon as what they need is back, at most `concurrency` side by side
//! (vendors take no slot); each unit runs its steps in order, recording
//! every state change before and after the work, so a killed run resumes
//! without redoing what finished. People decide through the store (a
//! decision is written on the step and acted on here), so a confirmation
//! from another process or the API reaches a run wherever it executes.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use haven_engine::Repository;
use haven_model::catalog::Catalog;
use haven_model::catalog::recovery::StepAction;
use haven_model::recovery::run::{
    Decision, RecoveryRun, RunState, StepRecord, StepState, unit_settled,
};
use haven_model::recovery::{PlannedStep, StepKind, Unit, UnitKind};
use haven_store::{Store, StoreError};
use jiff::Timestamp;
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinSet;

use super::steps::{self, Place};

/// How often the executor says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// How often a step waiting for a person looks for a decision.
const POLL: Duration = Duration::from_millis(250);

/// Run `run` in the background of the current runtime.
pub(super) fn spawn(
    catalog: Arc<Catalog>,
    store: Arc<dyn Store>,
    data_dir: PathBuf,
    run: RecoveryRun,
) {
    let place = Place {
        target: run.target.clone(),
        run_dir: data_dir.join("recoveries").join(run.id.to_string()),
    };
    let shared = Arc::new(Shared {
        catalog,
        store,
        place,
        id: run.id,
        run: Mutex::new(run),
        halted: AtomicUsize::new(0),
        wake: Notify::new(),
        repos: Mutex::new(HashMap::new()),
    });
    tokio::spawn(async move {
        let id = shared.id;
        let ended = drive(Arc::clone(&shared)).await;
        let state = match &ended {
            Ok(()) => RunState::Completed,
            Err(e) => {
                tracing::error!(
                    run = id,
                    "the recovery stopped: {e}; resume it with `haven recover --resume {id}`"
                );
                RunState::Interrupted
            }
        };
        let finished = shared
            .save_run(|r| {
                r.state = state;
                if state == RunState::Completed {
                    r.ended_at = Some(Timestamp::now());
                }
            })
            .await;
        if let Err(e) = finished {
            tracing::error!(run = id, "cannot record the recovery's end: {e}");
        }
        tracing::info!(run = id, state = state.as_str(), "recovery ended");
    });
}

/// What the scheduler and the units share.
struct Shared {
    catalog: Arc<Catalog>,
    store: Arc<dyn Store>,
    place: Place,
    id: i64,
    run: Mutex<RecoveryRun>,
    /// Units waiting on a failed critical step.
    halted: AtomicUsize,
    /// A halt was lifted: the scheduler looks again.
    wake: Notify,
    /// The repositories opened so far (one key derivation each, not one
    /// per restore).
    repos: Mutex<HashMap<String, Arc<Repository>>>,
}

impl Shared {
    async fn save_run(&self, change: impl FnOnce(&mut RecoveryRun)) -> Result<(), StoreError> {
        let mut run = self.run.lock().await;
        change(&mut run);
        self.store.update_recovery(&run).await
    }

    async fn step(&self, number: u32) -> Result<StepRecord, String> {
        self.store
            .recovery_step(self.id, number)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("step {number} of run {} is gone from the database", self.id))
    }

    /// A repository of the catalog, opened once for the run.
    async fn repository(&self, id: &str) -> Result<Arc<Repository>, String> {
        let mut repos = self.repos.lock().await;
        if let Some(repo) = repos.get(id) {
            return Ok(Arc::clone(repo));
        }
        let (catalog, wanted) = (Arc::clone(&self.catalog), id.to_string());
        let repo = tokio::task::spawn_blocking(move || super::preflight::open(&catalog, &wanted))
            .await
            .map_err(|e| format!("opening the repository stopped: {e}"))??;
        let repo = Arc::new(repo);
        repos.insert(id.to_string(), Arc::clone(&repo));
        Ok(repo)
    }

    async fn put(&self, step: &StepRecord) -> Result<(), String> {
        self.store
            .put_recovery_step(self.id, step)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Start units as they become ready; end when every unit has settled.
async fn drive(shared: Arc<Shared>) -> Result<(), String> {
    let run = shared.run.lock().await.clone();
    let (_, steps) = shared
        .store
        .recovery(run.id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("run {} is gone from the database", run.id))?;
    let plan = run.plan;
    let mut settled: HashSet<String> = plan
        .units
        .iter()
        .filter(|u| unit_settled(&u.id, &steps))
        .map(|u| u.id.clone())
        .collect();
    let mut running: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut beat = tokio::time::interval(HEARTBEAT);
    let mut failure = None;
    let slots = plan.concurrency.max(1) as usize;
    loop {
        if failure.is_none() && shared.halted.load(Ordering::SeqCst) == 0 {
            for unit in ready(&shared.catalog, &plan.units, &settled, &running, slots) {
                let handle = tasks.spawn(run_unit(Arc::clone(&shared), unit.clone()));
                running.insert(handle.id(), unit.id.clone());
            }
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            Some(joined) = tasks.join_next_with_id() => {
                let (task, outcome) = match joined {
                    Ok((task, outcome)) => (task, outcome),
                    Err(e) => (e.id(), Err(format!("a unit stopped: {e}"))),
                };
                let unit = running.remove(&task).unwrap_or_default();
                match outcome {
                    Ok(()) => {
                        settled.insert(unit);
                    }
                    Err(e) => failure = Some(format!("{unit}: {e}")),
                }
            }
            _ = shared.wake.notified() => {}
            _ = beat.tick() => {
                if let Err(e) = shared.save_run(|r| r.heartbeat = Timestamp::now()).await {
                    tracing::warn!(run = shared.id, "cannot record the heartbeat: {e}");
                }
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The units to start now, in plan order: not started, what they need
/// back (or a working alternative), a slot free (vendors take none).
fn ready<'a>(
    catalog: &Catalog,
    units: &'a [Unit],
    settled: &HashSet<String>,
    running: &HashMap<tokio::task::Id, String>,
    slots: usize,
) -> Vec<&'a Unit> {
    let busy = |id: &String| {
        units
            .iter()
            .any(|u| u.id == *id && u.kind != UnitKind::Vendor)
    };
    let mut free = slots.saturating_sub(running.values().filter(|id| busy(id)).count());
    let back = |need: &String| {
        settled.contains(need)
            || catalog
                .working_alternatives(need)
                .iter()
                .any(|a| settled.contains(*a))
    };
    let mut out = Vec::new();
    for unit in units {
        let started = settled.contains(&unit.id) || running.values().any(|r| *r == unit.id);
        if started || !unit.needs.iter().all(back) {
            continue;
        }
        if unit.kind != UnitKind::Vendor {
            if free == 0 {
                continue;
            }
            free -= 1;
        }
        out.push(unit);
    }
    out
}

/// A unit's steps in order, each until it settles.
async fn run_unit(shared: Arc<Shared>, unit: Unit) -> Result<(), String> {
    for planned in &unit.steps {
        loop {
            let record = shared.step(planned.number).await?;
            if record.state.is_settled(record.critical) {
                break;
            }
            match record.state {
                StepState::Waiting | StepState::Failed => await_decision(&shared, record).await?,
                _ => attempt(&shared, &unit, planned, record).await?,
            }
        }
    }
    Ok(())
}

/// Run a step once, recorded before and after.
async fn attempt(
    shared: &Shared,
    unit: &Unit,
    planned: &PlannedStep,
    mut record: StepRecord,
) -> Result<(), String> {
    record.state = StepState::Running;
    record.attempts += 1;
    record.started_at = Some(Timestamp::now());
    record.ended_at = None;
    shared.put(&record).await?;
    tracing::info!(
        run = shared.id,
        step = record.number,
        "step started: {}",
        record.name
    );
    if let Some(prompt) = checkpoint(&shared.catalog, unit, planned) {
        record.state = StepState::Waiting;
        record.detail = prompt;
        tracing::warn!(
            run = shared.id,
            step = record.number,
            "checkpoint waiting: {} (confirm with `haven recover confirm {} {}`)",
            record.detail,
            shared.id,
            record.number
        );
        return shared.put(&record).await;
    }
    let result = work(shared, unit, planned).await;
    record.ended_at = Some(Timestamp::now());
    (record.state, record.detail) = match result {
        Ok(detail) if detail.starts_with(steps::NOT_APPLICABLE) => (StepState::Skipped, detail),
        Ok(detail) => (StepState::Done, detail),
        Err(detail) => (StepState::Failed, detail),
    };
    if record.state == StepState::Failed {
        tracing::warn!(
            run = shared.id,
            step = record.number,
            "step failed: {}",
            record.detail
        );
    }
    shared.put(&record).await
}

/// A checkpoint's prompt.
fn checkpoint(catalog: &Catalog, unit: &Unit, planned: &PlannedStep) -> Option<String> {
    let StepKind::Recovery { index, .. } = planned.kind else {
        return None;
    };
    match &catalog.service(&unit.id)?.recovery.get(index)?.action {
        StepAction::Checkpoint { prompt } => Some(prompt.clone()),
        _ => None,
    }
}

/// The step's work.
async fn work(shared: &Shared, unit: &Unit, planned: &PlannedStep) -> Result<String, String> {
    let catalog = &shared.catalog;
    match &planned.kind {
        StepKind::Restore { set } => {
            let system = catalog
                .system(&unit.id)
                .cloned()
                .ok_or_else(|| format!("no system {} in the catalog", unit.id))?;
            let backup_set = system
                .backup_sets
                .iter()
                .find(|s| s.name.as_str() == set)
                .cloned()
                .ok_or_else(|| format!("system {} has no set {set}", unit.id))?;
            let used = shared
                .run
                .lock()
                .await
                .snapshots
                .iter()
                .find(|s| s.system == unit.id && s.set == *set)
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "no snapshot of {}/{set} was found at pre-flight: nothing to restore",
                        unit.id
                    )
                })?;
            let repo_id = catalog
                .policy_of(&system)
                .map(|p| p.repository.value.to_string())
                .ok_or_else(|| format!("system {} has no policy", unit.id))?;
            let repo = shared.repository(&repo_id).await?;
            let place = shared.place.clone();
            steps::blocking(move || steps::restore(&repo, &system, &backup_set, &used, &place))
                .await
        }
        StepKind::Recovery { index, .. } => {
            let step = catalog
                .service(&unit.id)
                .and_then(|s| s.recovery.get(*index))
                .ok_or_else(|| format!("service {} has no recovery step {}", unit.id, index + 1))?;
            steps::recovery_step(step, &shared.place).await
        }
        StepKind::Check { index } => {
            let system = catalog
                .system(&unit.id)
                .ok_or_else(|| format!("no system {} in the catalog", unit.id))?;
            steps::check(system, *index, &shared.place).await
        }
    }
}

/// Wait for a person's decision on a waiting checkpoint or a failed
/// critical step (which halts the run meanwhile), and act on it.
async fn await_decision(shared: &Shared, record: StepRecord) -> Result<(), String> {
    let halting = record.state == StepState::Failed && record.critical;
    if halting && shared.halted.fetch_add(1, Ordering::SeqCst) == 0 {
        set_state(shared, RunState::Halted).await?;
        tracing::error!(
            run = shared.id,
            step = record.number,
            "recovery halted: {} failed (retry or skip it with `haven recover retry|skip {} {} --reason TEXT`)",
            record.name,
            shared.id,
            record.number
        );
    }
    let mut record = record;
    let decided = loop {
        if let Some(decided) = record.pending.take() {
            break decided;
        }
        tokio::time::sleep(POLL).await;
        record = shared.step(record.number).await?;
    };
    match decided.decision {
        Decision::Confirm => {
            record.state = StepState::Done;
            record.ended_at = Some(decided.at);
        }
        Decision::Skip => {
            record.state = StepState::Skipped;
            record.ended_at = Some(decided.at);
        }
        Decision::Retry => record.state = StepState::Pending,
    }
    tracing::info!(
        run = shared.id,
        step = record.number,
        by = %decided.by,
        "step {}",
        decided.decision.as_str()
    );
    record.decisions.push(decided);
    shared.put(&record).await?;
    if halting && shared.halted.fetch_sub(1, Ordering::SeqCst) == 1 {
        set_state(shared, RunState::Running).await?;
        shared.wake.notify_one();
    }
    Ok(())
}

async fn set_state(shared: &Shared, state: RunState) -> Result<(), String> {
    shared
        .save_run(|r| r.state = state)
        .await
        .map_err(|e| e.to_string())
}
