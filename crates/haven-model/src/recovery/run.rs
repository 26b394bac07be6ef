//! A recovery run as recorded: who started it and why, what it restores
//! from (the snapshots and the data each loses), where to, the pre-flight
//! findings, and every step's state. The executor in haven-ops writes
//! these records as it goes, so a run killed midway can resume from them
//! and an auditor can read, afterwards, exactly what happened when.
//!
//! The decisions on a run (a person confirming a checkpoint, retrying or
//! skipping a failed step) and what a run measured (each service back
//! after how long, against its RTO and MTD) are decided here, without
//! I/O.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{RunPlan, Selection, UnitKind};
use crate::catalog::Catalog;

/// Where restored data goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "dir")]
pub enum RestoreTarget {
    /// Every file back at its own path; a dump into its set's
    /// `recover_command`.
    Original,
    /// Under this directory, at the files' full paths (`DIR/var/lib/…`);
    /// dumps as files `DIR/<system>-<set>.dump`.
    Alternate(String),
}

impl RestoreTarget {
    /// `original` or `alternate:DIR`, as written on the command line.
    pub fn parse(text: &str) -> Result<RestoreTarget, String> {
        match text.split_once(':') {
            None if text == "original" => Ok(RestoreTarget::Original),
            Some(("alternate", dir)) if dir.starts_with('/') => {
                Ok(RestoreTarget::Alternate(dir.to_string()))
            }
            Some(("alternate", dir)) => Err(format!(
                "the alternate target {dir:?} is not an absolute path: write alternate:/srv/recovered"
            )),
            _ => Err(format!(
                "unknown target {text:?}: write `original` or `alternate:/absolute/dir`"
            )),
        }
    }
}

impl std::fmt::Display for RestoreTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestoreTarget::Original => f.write_str("original"),
            RestoreTarget::Alternate(dir) => write!(f, "alternate:{dir}"),
        }
    }
}

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Pre-flight found problems and nobody forced it: nothing was touched.
    Refused,
    /// Steps are running (or waiting at a checkpoint).
    Running,
    /// A critical step failed: no new unit starts until it is retried or
    /// skipped.
    Halted,
    /// Every step ended (done, skipped, or a failed non-critical one).
    Completed,
    /// Its process ended midway (killed, the host lost): `--resume` it.
    Interrupted,
    /// Interrupted, then closed for good by a person (with a reason).
    Abandoned,
}

impl RunState {
    /// A state no executor moves on from (an interrupted run may resume).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunState::Refused | RunState::Completed | RunState::Abandoned
        )
    }

    /// Its name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Refused => "refused",
            RunState::Running => "running",
            RunState::Halted => "halted",
            RunState::Completed => "completed",
            RunState::Interrupted => "interrupted",
            RunState::Abandoned => "abandoned",
        }
    }
}

/// One pre-flight finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Finding {
    /// A problem that stops the run (unless forced); else a warning.
    pub blocking: bool,
    /// What was checked (`repository`, `snapshot`, `space`, `command`,
    /// `concurrent-run`, `data-loss`).
    pub check: String,
    /// What it found, in words.
    pub detail: String,
}

/// The snapshot a set is restored from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SnapshotUsed {
    /// The system.
    pub system: String,
    /// Its set.
    pub set: String,
    /// The snapshot's id (hex).
    pub snapshot: String,
    /// When it was taken.
    pub time: Timestamp,
    /// Its size as recorded (bytes of files).
    pub bytes: u64,
    /// What is lost: the run's start less the snapshot's time.
    pub data_lost: SignedDuration,
}

/// A recovery run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecoveryRun {
    /// Its number.
    pub id: i64,
    /// What was asked.
    pub selection: Selection,
    /// The planned units and steps.
    pub plan: RunPlan,
    /// Who started it (`local:ana`, `api-token`).
    pub by: String,
    /// Why.
    pub reason: Option<String>,
    /// Recover to the newest snapshots before this time.
    pub at: Option<Timestamp>,
    /// Where data goes.
    pub target: RestoreTarget,
    /// What pre-flight found.
    pub preflight: Vec<Finding>,
    /// Why blocking findings were overridden (`--force`).
    pub forced: Option<String>,
    /// The snapshots used.
    pub snapshots: Vec<SnapshotUsed>,
    /// Where it stands.
    pub state: RunState,
    /// When it started (the measured RTOs count from here).
    pub started_at: Timestamp,
    /// When its last step ended.
    pub ended_at: Option<Timestamp>,
    /// The process running it (absent when refused).
    pub executor: Option<ExecutorId>,
    /// The executor's last sign of life (a stale one on a run that is not
    /// final means its process is gone).
    pub heartbeat: Timestamp,
    /// How often it was resumed.
    pub resumed: u32,
    /// Who closed it for good, when and why (an abandoned run).
    #[serde(default)]
    pub abandoned: Option<Decided>,
}

/// The process that runs a recovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExecutorId {
    /// Its host.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
}

/// Where a step stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    /// Not started.
    Pending,
    /// Running now.
    Running,
    /// A checkpoint waiting for a person.
    Waiting,
    /// Ended well (or confirmed).
    Done,
    /// Ended badly; a critical one halts the run until retried or skipped.
    Failed,
    /// Skipped by a person, with a reason.
    Skipped,
}

impl StepState {
    /// Nothing more happens to it (a failed non-critical step counts as
    /// ended).
    pub fn is_settled(self, critical: bool) -> bool {
        match self {
            StepState::Done | StepState::Skipped => true,
            StepState::Failed => !critical,
            _ => false,
        }
    }
}

/// What a person decided about a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// A checkpoint's confirmation.
    Confirm,
    /// Run a failed step again.
    Retry,
    /// Go on without it.
    Skip,
}

impl Decision {
    /// Its name as written (`haven recover confirm|retry|skip`).
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Confirm => "confirm",
            Decision::Retry => "retry",
            Decision::Skip => "skip",
        }
    }
}

/// A person's decision, as recorded on the step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Decided {
    /// What.
    pub decision: Decision,
    /// Who.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// Why, or what they saw.
    pub note: Option<String>,
}

/// A step of a run, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepRecord {
    /// Its number in the run.
    pub number: u32,
    /// Its unit.
    pub unit: String,
    /// How it is shown.
    pub name: String,
    /// A failed critical step halts the run.
    pub critical: bool,
    /// Where it stands.
    pub state: StepState,
    /// How often it started.
    pub attempts: u32,
    /// When its last attempt started.
    pub started_at: Option<Timestamp>,
    /// When it ended (or was confirmed, or skipped).
    pub ended_at: Option<Timestamp>,
    /// What it did or found, in words.
    pub detail: String,
    /// A decision waiting for the executor to act on it.
    pub pending: Option<Decided>,
    /// Every decision taken on it, oldest first.
    pub decisions: Vec<Decided>,
}

impl StepRecord {
    /// Every step of `plan`, pending.
    pub fn all_pending(plan: &RunPlan) -> Vec<StepRecord> {
        plan.units
            .iter()
            .flat_map(|u| &u.steps)
            .map(|s| StepRecord {
                number: s.number,
                unit: s.unit.clone(),
                name: s.name.clone(),
                critical: s.critical,
                state: StepState::Pending,
                attempts: 0,
                started_at: None,
                ended_at: None,
                detail: String::new(),
                pending: None,
                decisions: Vec::new(),
            })
            .collect()
    }
}

/// Why a decision cannot be taken on a step.
pub fn refuse_decision(step: &StepRecord, decision: Decision) -> Option<String> {
    let state = step.state;
    let fits = match decision {
        Decision::Confirm => state == StepState::Waiting,
        Decision::Retry => state == StepState::Failed,
        Decision::Skip => matches!(state, StepState::Failed | StepState::Waiting),
    };
    if step.pending.is_some() {
        return Some(format!(
            "step {} has a decision waiting to be acted on already",
            step.number
        ));
    }
    (!fits).then(|| {
        let why = match decision {
            Decision::Confirm => "only a checkpoint waiting for a person can be confirmed",
            Decision::Retry => "only a failed step can be retried",
            Decision::Skip => "only a failed step or a waiting checkpoint can be skipped",
        };
        format!(
            "step {} ({}) is {}: {why}",
            step.number,
            step.name,
            serde_json::to_value(state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        )
    })
}

/// A unit's steps all settled.
pub fn unit_settled(unit: &str, steps: &[StepRecord]) -> bool {
    steps
        .iter()
        .filter(|s| s.unit == unit)
        .all(|s| s.state.is_settled(s.critical))
}

/// When each unit was back: its last step's end, and never before what
/// it needs (a unit without steps is back when they are). Units not back
/// yet are absent.
pub fn units_back(run: &RecoveryRun, steps: &[StepRecord]) -> HashMap<String, Timestamp> {
    let mut back: HashMap<String, Timestamp> = HashMap::new();
    for unit in &run.plan.units {
        if !unit_settled(&unit.id, steps) {
            continue;
        }
        let own = steps
            .iter()
            .filter(|s| s.unit == unit.id)
            .filter_map(|s| s.ended_at)
            .max();
        // A need not back (a working alternative stood in) holds nothing up.
        let needs = unit.needs.iter().filter_map(|n| back.get(n).copied());
        let at = needs.fold(own.unwrap_or(run.started_at), Timestamp::max);
        back.insert(unit.id.clone(), at);
    }
    back
}

/// A service's measured recovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServiceRecovery {
    /// The service.
    pub service: String,
    /// From the run's start until it was back (absent: not back yet).
    pub measured_rto: Option<SignedDuration>,
    /// Its RTO.
    pub rto: Option<SignedDuration>,
    /// Its MTD.
    pub mtd: Option<SignedDuration>,
    /// `met`, `rto-missed`, `mtd-missed` or `not-back`.
    pub verdict: String,
}

/// Each service's measured RTO against its objectives.
pub fn service_recoveries(
    catalog: &Catalog,
    run: &RecoveryRun,
    steps: &[StepRecord],
) -> Vec<ServiceRecovery> {
    let back = units_back(run, steps);
    run.plan
        .units
        .iter()
        .filter(|u| u.kind == UnitKind::Service)
        .map(|u| {
            let measured = back.get(&u.id).map(|t| t.duration_since(run.started_at));
            let service = catalog.service(&u.id);
            let rto = service.and_then(|s| s.rto.as_ref().map(|r| r.value));
            let mtd = service.and_then(|s| s.mtd.as_ref().map(|m| m.value));
            let verdict = match measured {
                None => "not-back",
                Some(m) if mtd.is_some_and(|x| m > x) => "mtd-missed",
                Some(m) if rto.is_some_and(|x| m > x) => "rto-missed",
                Some(_) => "met",
            };
            ServiceRecovery {
                service: u.id.clone(),
                measured_rto: measured,
                rto,
                mtd,
                verdict: verdict.into(),
            }
        })
        .collect()
}

/// A run with its steps and what it measured so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunView {
    /// The run.
    #[serde(flatten)]
    pub run: RecoveryRun,
    /// Its steps, by number.
    pub steps: Vec<StepRecord>,
    /// Each service's measured RTO.
    pub services: Vec<ServiceRecovery>,
}

impl RunView {
    /// The run, its steps and the measured RTOs.
    pub fn new(catalog: &Catalog, run: RecoveryRun, mut steps: Vec<StepRecord>) -> RunView {
        steps.sort_by_key(|s| s.number);
        let services = service_recoveries(catalog, &run, &steps);
        RunView {
            run,
            steps,
            services,
        }
    }

    /// The steps waiting for a person: checkpoints to confirm, failed
    /// critical steps to retry or skip.
    pub fn waiting_for_people(&self) -> Vec<&StepRecord> {
        self.steps
            .iter()
            .filter(|s| s.pending.is_none())
            .filter(|s| {
                s.state == StepState::Waiting || (s.state == StepState::Failed && s.critical)
            })
            .collect()
    }
}

/// What live recovery runs hold back from the schedule, and why: the
/// systems whose restores have not settled (a scheduled backup would save
/// half-restored data, retention could forget the snapshot being
/// restored) and their repositories (a prune could remove what a restore
/// still reads).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holds {
    /// System → why.
    pub systems: std::collections::BTreeMap<String, String>,
    /// Repository → why.
    pub repositories: std::collections::BTreeMap<String, String>,
}

/// The holds of `live` runs (running or halted).
pub fn holds(catalog: &Catalog, live: &[RunView]) -> Holds {
    let mut out = Holds::default();
    for view in live {
        for unit in view
            .run
            .plan
            .units
            .iter()
            .filter(|u| u.kind == UnitKind::System)
        {
            let restoring = view.steps.iter().any(|s| {
                s.unit == unit.id
                    && s.name.starts_with("restore ")
                    && !s.state.is_settled(s.critical)
            });
            if !restoring {
                continue;
            }
            let why = format!("recovery run {} restores {}", view.run.id, unit.id);
            if let Some(repo) = catalog
                .system(&unit.id)
                .and_then(|s| catalog.policy_of(s))
                .map(|p| p.repository.value.to_string())
            {
                out.repositories.entry(repo).or_insert_with(|| why.clone());
            }
            out.systems.insert(unit.id.clone(), why);
        }
    }
    out
}
