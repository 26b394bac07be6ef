//! The server's core: the scheduler, the store and the clock together.
//! Everything that decides and records happens here, one step at a time
//! (`tick`, `finish`), so tests drive it with a manual clock and a
//! scripted runner through weeks in milliseconds. `server.rs` adds real
//! time, threads and signals around it.

use std::collections::HashMap;
use std::sync::Arc;

use haven_model::alerts::{AlertState, Notification};
use haven_model::catalog::Catalog;
use haven_model::compliance::{self, Compliance, RpoState};
use haven_model::jobs::{Job, JobKind, Outcome, SetState};
use haven_store::{JobEnd, Store, StoreError};
use jiff::Timestamp;

use crate::api::RunNow;
use crate::clock::Clock;
use crate::delivery::export::{self, Event, Exporter};
use crate::delivery::heartbeat::Pulse;
use crate::instance::redact::redact_in_place;
use crate::instance::settings::Settings;
use crate::server::health::HealthReport;
use crate::watch::{Watch, WatchError};
use haven_model::alert_rules::SetupProblem;
use haven_model::tasks::JobSpec;
use haven_model::tasks::{Limits, Scheduler};
use haven_model::tasks::{Plan, PlanProblem, plan};

/// The message interrupted jobs are recorded with.
pub const INTERRUPTED: &str =
    "the server stopped while this job ran (killed, crashed or shut down); it runs again";

/// A change of a system's RPO state, for the log (and, later, alerts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The system.
    pub system: String,
    /// Before.
    pub from: RpoState,
    /// After.
    pub to: RpoState,
}

/// What a tick started, and the store failure that stopped it early
/// (nothing is lost: see [`Core::tick`]).
#[derive(Debug, Default)]
pub struct Ticked {
    /// Jobs recorded as started: run them.
    pub started: Vec<(Job, JobSpec)>,
    /// The store failed.
    pub failure: Option<StoreError>,
}

/// The core.
pub struct Core {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    catalog: Arc<Catalog>,
    scheduler: Scheduler,
    states: HashMap<(String, String), SetState>,
    compliance: Compliance,
    /// Jobs started and not yet finished, as recorded at their start.
    running: HashMap<i64, Job>,
    watch: Watch,
    exporter: Arc<Exporter>,
    /// Notifications decided and not yet handed to the notifier.
    outbox: Vec<Notification>,
    /// Jobs recorded whose evidence the watch has not seen yet (the
    /// store failed in between): [`Core::settle`] catches up.
    unwatched: Vec<(Job, Option<SetState>)>,
    /// Scheduled times dispatched and not yet saved.
    unsaved_marks: HashMap<String, Timestamp>,
    /// Skipped jobs decided and not yet recorded.
    unsaved_skips: Vec<(haven_model::jobs::NewJob, String, Timestamp)>,
    /// Where the automation's changes are recorded (set by the server).
    audit: Option<Arc<crate::audit::AuditLog>>,
}

/// The export event of a job.
pub fn job_event(action: &str, job: &Job, at: Timestamp) -> Event {
    let (outcome, level) = match job.outcome {
        Outcome::Success => (export::Outcome::Success, "info"),
        Outcome::Partial => (export::Outcome::Failure, "warning"),
        Outcome::Failed => (export::Outcome::Failure, "error"),
        Outcome::Interrupted | Outcome::Skipped => (export::Outcome::Failure, "warning"),
        Outcome::Running => (export::Outcome::Unknown, "info"),
    };
    Event::new(action, "event", "process", at)
        .outcome(outcome)
        .level(level)
        .message(format!(
            "job {} {} {}: {}",
            job.id,
            job.planned.task,
            job.outcome.as_str(),
            job.message.as_deref().unwrap_or("")
        ))
        .haven(
            "job",
            serde_json::json!({
                "id": job.id,
                "kind": job.planned.kind.as_str(),
                "task": job.planned.task,
                "trigger": job.planned.trigger.as_str(),
                "attempt": job.planned.attempt,
                "outcome": job.outcome.as_str(),
                "scheduled_at": job.planned.scheduled_at.to_string(),
                "started_at": job.started_at.map(|t| t.to_string()),
                "ended_at": job.ended_at.map(|t| t.to_string()),
                "duration_ms": job.duration().map(|d| d.as_millis()),
                "snapshot_id": job.snapshot_id,
                "bytes_changed": job.stats.bytes_changed,
                "bytes_added": job.stats.bytes_added,
                "failure": job.failure,
            }),
        )
        .haven("system", serde_json::json!(job.planned.system))
        .haven("backup_set", serde_json::json!(job.planned.backup_set))
        .haven("repository", serde_json::json!(job.planned.repository))
}

impl Core {
    /// Start: record jobs a dead server left running as interrupted and
    /// queue them again, plan the catalog, register its backup sets.
    pub async fn start(
        settings: Settings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        catalog: Arc<Catalog>,
    ) -> Result<(Core, Vec<Job>, Vec<PlanProblem>), StoreError> {
        let now = clock.now();
        let interrupted = store.interrupt_running(now, INTERRUPTED).await?;
        let marks: HashMap<String, Timestamp> = store.schedule_marks().await?.into_iter().collect();
        let (plan, problems) = plan(&catalog, &settings.prune);
        let limits = Limits {
            global: settings.max_jobs,
            per_repository: settings.max_jobs_per_repository,
        };
        let (scheduler, new_marks) = Scheduler::new(plan, limits, settings.retry, &marks, now);
        for (task, slot) in new_marks {
            store.set_schedule_mark(&task, slot).await?;
        }
        let exporter = Arc::new(Exporter::start(&settings.export));
        for job in &interrupted {
            exporter.emit(job_event("job-interrupted", job, now));
        }
        let watch = Watch::start(
            Arc::clone(&store),
            Arc::clone(&catalog),
            settings.alerts.clone(),
            settings.thresholds,
            Arc::clone(&exporter),
            now,
        )
        .await?;
        let mut core = Core {
            watch,
            exporter,
            outbox: Vec::new(),
            unwatched: Vec::new(),
            unsaved_marks: HashMap::new(),
            unsaved_skips: Vec::new(),
            audit: None,
            store,
            clock,
            settings,
            catalog,
            scheduler,
            states: HashMap::new(),
            compliance: Compliance::default(),
            running: HashMap::new(),
        };
        core.register_sets().await?;
        for job in &interrupted {
            core.scheduler.recover(job, now);
        }
        core.evaluate();
        core.watch_level().await?;
        let capacity = core.watch.evaluate_capacity(now).await?;
        core.outbox.extend(capacity);
        core.setup("plan", &problems).await?;
        Ok((core, interrupted, problems))
    }

    /// Keep a state row for every backup set of the plan; a changed
    /// configuration lifts a systemic verdict.
    async fn register_sets(&mut self) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.states = self
            .store
            .set_states()
            .await?
            .into_iter()
            .map(|s| ((s.system.clone(), s.backup_set.clone()), s))
            .collect();
        let backups: Vec<(String, String, String)> = self
            .scheduler
            .plan()
            .tasks
            .values()
            .filter(|t| t.spec.record.kind == JobKind::Backup)
            .filter_map(|t| {
                Some((
                    t.spec.record.system.clone()?,
                    t.spec.record.backup_set.clone()?,
                    t.config.clone(),
                ))
            })
            .collect();
        for (system, set, config) in backups {
            let key = (system.clone(), set.clone());
            let next = match self.states.get(&key) {
                None => SetState::new(&system, &set, now, &config),
                Some(state) if state.config != config => state.reconfigured(&config),
                Some(_) => continue,
            };
            self.store.put_set_state(&next).await?;
            self.states.insert(key, next);
        }
        Ok(())
    }

    /// Use a new catalog (reload). Running jobs finish as planned.
    pub async fn reload(&mut self, catalog: Arc<Catalog>) -> Result<Vec<PlanProblem>, StoreError> {
        let now = self.clock.now();
        let marks: HashMap<String, Timestamp> =
            self.store.schedule_marks().await?.into_iter().collect();
        let (plan, problems) = plan(&catalog, &self.settings.prune);
        let new_marks = self.scheduler.replace_plan(plan, &marks, now);
        self.unsaved_marks.extend(new_marks);
        self.save_decisions().await?;
        self.watch.reload(Arc::clone(&catalog));
        self.catalog = catalog;
        self.register_sets().await?;
        self.evaluate();
        self.watch_level().await?;
        self.setup("plan", &problems).await?;
        Ok(problems)
    }

    /// A scheduled drill ended with its job: stored as evidence (naming
    /// the job), then judged by the alert rules.
    async fn record_scheduled_drill(
        &mut self,
        job: &Job,
        mut drill: haven_model::drills::Drill,
    ) -> Result<(), StoreError> {
        drill.by = format!("schedule (job {})", job.id);
        let drill = self.store.record_drill(&drill).await?;
        tracing::info!(
            drill = drill.id,
            system = %drill.system,
            verdict = drill.verdict.as_str(),
            "drill recorded"
        );
        self.drill_recorded(&drill).await
    }

    /// A drill was recorded (it may open or resolve `drill-failed`).
    pub async fn drill_recorded(
        &mut self,
        drill: &haven_model::drills::Drill,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let notices = self.watch.drill_recorded(drill, now).await?;
        self.outbox.extend(notices);
        Ok(())
    }

    /// What a source (`plan`, `catalog`) reports wrong in the setup now:
    /// a `setup` alert each; those it no longer reports resolve.
    pub async fn setup(
        &mut self,
        source: &str,
        problems: &[SetupProblem],
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let notices = self.watch.setup(source, problems, now).await?;
        self.outbox.extend(notices);
        Ok(())
    }

    /// Keep only one system's tasks (a foreground `haven run`).
    pub async fn restrict_to_system(&mut self, system: &str) -> Result<(), StoreError> {
        let mut plan = self.scheduler.plan().clone();
        plan.tasks
            .retain(|_, t| t.spec.record.system.as_deref() == Some(system));
        let marks: HashMap<String, Timestamp> =
            self.store.schedule_marks().await?.into_iter().collect();
        for (task, slot) in self.scheduler.replace_plan(plan, &marks, self.clock.now()) {
            self.store.set_schedule_mark(&task, slot).await?;
        }
        Ok(())
    }

    /// Decide what happens now: record skipped jobs and schedule marks,
    /// start what may start (recorded as running) and return it.
    ///
    /// A store failure loses nothing: marks and skips wait in memory for
    /// the next tick, and jobs that could not be recorded as started go
    /// back to the queue (a job never runs unrecorded).
    pub async fn tick(&mut self) -> Ticked {
        let now = self.clock.now();
        let decisions = self.scheduler.tick(now);
        self.unsaved_marks.extend(decisions.marks);
        self.unsaved_skips.extend(
            decisions
                .skip
                .into_iter()
                .map(|(record, message)| (record, message, now)),
        );
        let mut ticked = Ticked::default();
        let mut specs = decisions.start.into_iter();
        if let Err(e) = self.save_decisions().await {
            specs.for_each(|spec| self.scheduler.requeue(spec, now));
            ticked.failure = Some(e);
            return ticked;
        }
        while let Some(spec) = specs.next() {
            match self.store.start_job(&spec.record, now).await {
                Ok(job) => {
                    tracing::info!(job = job.id, task = %job.planned.task, trigger = job.planned.trigger.as_str(), "job started");
                    self.exporter.emit(job_event("job-started", &job, now));
                    crate::audit::automation(
                        self.audit.as_deref(),
                        &format!("{}.start", job.planned.kind.as_str()),
                        format!("job:{} {}", job.id, job.planned.task),
                        "scheduler",
                        "success",
                    )
                    .await;
                    self.running.insert(job.id, job.clone());
                    ticked.started.push((job, spec));
                }
                Err(StoreError::AlreadyRunning { task }) => {
                    // Another process holds the task: never run it twice.
                    tracing::warn!(%task, "not started: a job of this task is already running");
                    self.scheduler.release(&task);
                }
                Err(e) => {
                    self.scheduler.requeue(spec, now);
                    for rest in specs.by_ref() {
                        self.scheduler.requeue(rest, now);
                    }
                    ticked.failure = Some(e);
                    return ticked;
                }
            }
        }
        match self.watch.tick(now).await {
            Ok(due) => self.outbox.extend(due),
            Err(e) => ticked.failure = Some(e),
        }
        ticked
    }

    /// Write the schedule marks and skipped jobs decided so far, oldest
    /// first; what cannot be written stays for the next try.
    async fn save_decisions(&mut self) -> Result<(), StoreError> {
        let marks: Vec<(String, Timestamp)> = self
            .unsaved_marks
            .iter()
            .map(|(task, slot)| (task.clone(), *slot))
            .collect();
        for (task, slot) in marks {
            self.store.set_schedule_mark(&task, slot).await?;
            self.unsaved_marks.remove(&task);
        }
        while let Some((record, message, at)) = self.unsaved_skips.first().cloned() {
            let job = self.store.record_skipped(&record, at, &message).await?;
            self.unsaved_skips.remove(0);
            tracing::warn!(task = %record.task, "skipped: {message}");
            self.exporter.emit(job_event("job-skipped", &job, at));
        }
        Ok(())
    }

    /// Record how a job ended (at `end.ended_at`, or now), update its
    /// set's state in the same transaction, queue follow-ups or a retry,
    /// and re-evaluate compliance. The watch sees the job at the next
    /// [`Core::settle`].
    ///
    /// When the store fails nothing changes: the job is still running as
    /// far as the core knows, and the same call can be made again.
    pub async fn finish(
        &mut self,
        id: i64,
        mut end: JobEnd,
    ) -> Result<(Job, Vec<Transition>), StoreError> {
        let now = self.clock.now();
        let ended_at = *end.ended_at.get_or_insert(now);
        // Nothing of a secret a command printed or an error carried is
        // stored, alerted, exported or logged.
        if let Some(message) = &mut end.message {
            redact_in_place(message);
        }
        redact_in_place(&mut end.log);
        // Known from its start: no need to read it back.
        let started = self.running.get(&id).ok_or(StoreError::NoSuchJob(id))?;
        let mut done = started.clone();
        done.ended_at = end.ended_at;
        done.outcome = end.outcome.unwrap_or(Outcome::Failed);
        done.snapshot_id.clone_from(&end.snapshot_id);
        done.failure.clone_from(&end.failure);
        let key = match (
            &done.planned.kind,
            &done.planned.system,
            &done.planned.backup_set,
        ) {
            (JobKind::Backup, Some(system), Some(set)) => Some((system.clone(), set.clone())),
            _ => None,
        };
        let state = key
            .as_ref()
            .and_then(|k| self.states.get(k))
            .map(|s| s.after(&done, self.settings.systemic_after));
        let job = self.record_end(id, &end, state.as_ref()).await?;
        self.running.remove(&id);
        crate::audit::automation(
            self.audit.as_deref(),
            &format!("{}.end", job.planned.kind.as_str()),
            format!("job:{} {}", job.id, job.planned.task),
            "scheduler",
            job.outcome.as_str(),
        )
        .await;
        if let Some(drill) = end.drill.take() {
            self.record_scheduled_drill(&job, *drill).await?;
        }
        let systemic = state.as_ref().is_some_and(|s| s.systemic);
        if let (Some(key), Some(state)) = (key, state.clone()) {
            self.states.insert(key, state);
        }
        tracing::info!(
            job = job.id,
            task = %job.planned.task,
            outcome = job.outcome.as_str(),
            class = job.failure.as_ref().map(|f| f.class.as_str()).unwrap_or("-"),
            systemic,
            "job ended: {}",
            job.message.as_deref().unwrap_or("")
        );
        self.scheduler
            .finished(&job, systemic, ended_at, rand::random::<f64>());
        self.exporter
            .emit(job_event("job-finished", &job, ended_at));
        self.unwatched.push((job.clone(), state));
        let transitions = self.evaluate();
        Ok((job, transitions))
    }

    /// Write a job's end. A retry after a failure that was in fact
    /// committed (the error came after the commit) finds the job ended
    /// already: that is the record, not an error.
    async fn record_end(
        &self,
        id: i64,
        end: &JobEnd,
        state: Option<&SetState>,
    ) -> Result<Job, StoreError> {
        match self.store.finish_job(id, end, state).await {
            Err(StoreError::NoSuchJob(_)) => match self.store.job(id).await? {
                Some(job) if job.outcome != Outcome::Running => Ok(job),
                _ => Err(StoreError::NoSuchJob(id)),
            },
            other => other,
        }
    }

    /// Let the watch see what was recorded (alerts after jobs), then
    /// apply the level rules. What fails stays for the next call.
    pub async fn settle(&mut self) -> Result<(), StoreError> {
        while let Some((job, state)) = self.unwatched.first().cloned() {
            let notices = self
                .watch
                .job_finished(&job, state.as_ref(), self.clock.now())
                .await?;
            self.unwatched.remove(0);
            self.outbox.extend(notices);
        }
        self.watch_level().await
    }

    /// Apply the level alert rules (RPO states, copy lag) to the last
    /// evaluation.
    pub async fn watch_level(&mut self) -> Result<(), StoreError> {
        let states: Vec<SetState> = self.states.values().cloned().collect();
        let now = self.clock.now();
        let notices = self.watch.evaluate(&self.compliance, &states, now).await?;
        self.outbox.extend(notices);
        Ok(())
    }

    /// Record the automation's changes (jobs started and ended, alerts
    /// opened and resolved) in `log`.
    pub fn set_audit(&mut self, log: Arc<crate::audit::AuditLog>) {
        self.watch.set_audit(Arc::clone(&log));
        self.audit = Some(log);
    }

    /// The live recoveries: their alerts (halted runs, checkpoints
    /// waiting too long), and what they hold back from the schedule.
    pub async fn watch_recoveries(&mut self) -> Result<(), StoreError> {
        let now = self.clock.now();
        let live = crate::recovery::live(&self.catalog, self.store.as_ref())
            .await
            .map_err(|e| match e {
                crate::recovery::RecoveryError::Store(e) => e,
                other => StoreError::Corrupt(other.to_string()),
            })?;
        self.scheduler
            .hold(haven_model::recovery::run::holds(&self.catalog, &live));
        let notices = self.watch.evaluate_recoveries(&live, now).await?;
        self.outbox.extend(notices);
        Ok(())
    }

    /// Break-glass changes awaiting review (each a critical alert until
    /// reviewed), and bursts of failed logins (a `security` alert).
    pub async fn watch_requests(&mut self) -> Result<(), StoreError> {
        let now = self.clock.now();
        let requests = self.store.approvals(500).await?;
        let notices = self.watch.evaluate_break_glass(&requests, now).await?;
        self.outbox.extend(notices);
        let access = &self.settings.access;
        let notices = self
            .watch
            .evaluate_logins(access.failure_burst, access.failure_window, now)
            .await?;
        self.outbox.extend(notices);
        Ok(())
    }

    /// Notifications decided since the last call.
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        std::mem::take(&mut self.outbox)
    }

    /// Acknowledge an alert (escalation stops).
    pub async fn acknowledge(
        &mut self,
        id: i64,
        by: &haven_model::actor::Actor,
    ) -> Result<haven_model::alerts::Alert, WatchError> {
        let now = self.clock.now();
        self.watch.acknowledge(id, by, now).await
    }

    /// Resolve an alert.
    pub async fn resolve(
        &mut self,
        id: i64,
        by: &haven_model::actor::Actor,
        reason: &str,
    ) -> Result<haven_model::alerts::Alert, WatchError> {
        let now = self.clock.now();
        self.watch.resolve(id, by, reason, now).await
    }

    /// The watch (alerts, maintenance).
    pub fn watch(&mut self) -> &mut Watch {
        &mut self.watch
    }

    /// The event exporter.
    pub fn exporter(&self) -> &Arc<Exporter> {
        &self.exporter
    }

    /// Queue every backup of a system now.
    pub fn run_now(&mut self, system: &str) -> Option<RunNow> {
        let now = self.clock.now();
        let tasks: Vec<String> = self
            .scheduler
            .plan()
            .backups_of(system)
            .iter()
            .map(|t| t.key.clone())
            .collect();
        if tasks.is_empty() {
            return None;
        }
        let mut result = RunNow::default();
        for task in tasks {
            if self.scheduler.run_now(&task, now) {
                result.queued.push(task);
            } else {
                result.busy.push(task);
            }
        }
        Some(result)
    }

    /// Recompute compliance from the evidence; returns what changed.
    pub fn evaluate(&mut self) -> Vec<Transition> {
        let states: Vec<SetState> = self.states.values().cloned().collect();
        let next = compliance::evaluate(
            &self.catalog,
            &states,
            self.clock.now(),
            self.settings.thresholds,
        );
        let before: HashMap<&str, RpoState> = self
            .compliance
            .systems
            .iter()
            .map(|s| (s.system.as_str(), s.state))
            .collect();
        let transitions: Vec<Transition> = next
            .systems
            .iter()
            .filter_map(|s| {
                let from = *before.get(s.system.as_str())?;
                (from != s.state).then(|| Transition {
                    system: s.system.clone(),
                    from,
                    to: s.state,
                })
            })
            .collect();
        for t in &transitions {
            tracing::warn!(system = %t.system, "RPO state {} → {}", t.from.as_str(), t.to.as_str());
        }
        self.compliance = next;
        transitions
    }

    /// The last evaluation.
    pub fn compliance(&self) -> &Compliance {
        &self.compliance
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        self.scheduler.plan()
    }

    /// The catalog in use.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Jobs started and not finished.
    pub fn running_jobs(&self) -> Vec<i64> {
        self.running.keys().copied().collect()
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What the heartbeat reports: the server's health, alerts,
    /// compliance and jobs now.
    pub fn pulse(&self, now: Timestamp, health: &HealthReport) -> Pulse {
        let active: Vec<_> = self.watch.active_alerts().collect();
        let open = active.iter().any(|a| a.state == AlertState::Open);
        Pulse {
            version: 1,
            sent_at: now.to_string(),
            host: export::hostname(),
            haven_version: env!("CARGO_PKG_VERSION"),
            status: if !health.is_ok() {
                "degraded"
            } else if open {
                "alerting"
            } else {
                "ok"
            },
            degraded: health.store.as_ref().map(|t| {
                format!(
                    "the database cannot be written since {}: {}",
                    t.since, t.error
                )
            }),
            pending_records: health.store.as_ref().map_or(0, |t| t.pending_records),
            events_dropped: health.events_dropped,
            active_alerts: active.len(),
            highest_severity: active
                .iter()
                .map(|a| a.severity)
                .max()
                .map(|s| s.as_str().to_string()),
            worst_compliance: self
                .compliance
                .services
                .iter()
                .map(|s| s.state)
                .min()
                .unwrap_or(RpoState::Ok)
                .as_str()
                .to_string(),
            running_jobs: self.running.len(),
        }
    }
}
