//! The server loop: one task owns the core; jobs run on blocking threads
//! and report back through a channel; the API talks to it through
//! commands.
//!
//! The loop never stops for a store failure. Each round writes what is
//! waiting (job ends, skipped jobs, schedule marks, the watch's view of
//! them), starts what is due and evaluates; a round that fails keeps all
//! of it in memory and the next round is tried after a doubling backoff
//! ([`StoreHealth`]). Meanwhile the server is `degraded` (`/healthz`, the
//! heartbeat) and a `store-unavailable` alert is raised ([`outage`]).

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use haven_model::catalog::Catalog;
use haven_model::jobs::{Failure, FailureClass, Job, JobStats, Layer, Outcome, log_excerpt};
use haven_store::{JobEnd, Store, StoreError};
use jiff::Timestamp;
use tokio::sync::mpsc;

use super::error::{ServerError, io};
use super::handle::{Command, Handle, View, notifier_for};
use super::outage::Outage;
use crate::api::{InstanceError, RESOLVED_BY_HAND, RunNow, RunOutcome};
use crate::clock::Clock;
use crate::delivery::export::Exporter;
use crate::delivery::heartbeat::Heartbeat;
use crate::delivery::notify::dispatch;
use crate::delivery::notify::{Notifier, Templates};
use crate::drills::DrillingRunner;
use crate::instance::catalog::{catalog_fingerprint, load_catalog};
use crate::instance::settings::Settings;
use crate::jobs::runner::Runner;
use crate::server::core::Core;
use crate::server::health::{self, SharedHealth, StoreHealth};
use crate::watch::windows;
use haven_model::alert_rules::SetupProblem;
use haven_model::tasks::JobSpec;

/// Where jobs report their end: `(job id, how it ended)`.
type Done = mpsc::UnboundedSender<(i64, JobEnd)>;

/// A catalog directory's fingerprint (see [`catalog_fingerprint`]).
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// Run file-system work off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Run a job to its end, whatever happens inside: a panic (a bug in
/// Haven) becomes a failed job of class `internal`, so the job is
/// recorded, its slot is freed and it is tried again.
pub fn run_job(runner: &dyn Runner, job: i64, spec: &JobSpec) -> JobEnd {
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
        crate::jobs::command::for_job(job, || runner.run(spec))
    }));
    ran.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        tracing::error!(job, task = %spec.record.task, "the job failed inside Haven: {what}");
        let message = format!(
            "Haven failed inside this job ({what}); this is a bug, please report it. The job runs again"
        );
        JobEnd {
            ended_at: None,
            outcome: Some(Outcome::Failed),
            stats: JobStats::default(),
            snapshot_id: None,
            failure: Some(Failure {
                class: FailureClass::Internal,
                detail: "panic".into(),
                layer: Layer::Compute,
            }),
            log: log_excerpt(&format!("error: {message}\n")),
            drill: None,
            message: Some(message),
        }
    })
}

/// Start jobs on blocking threads; each reports its end on `done`.
fn spawn_jobs(started: Vec<(Job, JobSpec)>, runner: &Arc<dyn Runner>, done: &Done) {
    for (job, spec) in started {
        let runner = Arc::clone(runner);
        let done = done.clone();
        tokio::task::spawn_blocking(move || {
            let end = run_job(runner.as_ref(), job.id, &spec);
            // The loop may be gone (shutdown timeout): then the job is
            // recorded as interrupted, which is what it was.
            let _ = done.send((job.id, end));
        });
    }
}

/// The loop's state.
struct Loop {
    core: Core,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    runner: Arc<dyn Runner>,
    exporter: Arc<Exporter>,
    templates: Templates,
    notifier: Arc<Notifier>,
    view: Arc<RwLock<View>>,
    fingerprint: Fingerprint,
    /// Job ends received and not yet recorded, oldest first.
    ends: VecDeque<(i64, JobEnd)>,
    /// The catalog changed: reload at the next round.
    reload: bool,
    /// The level rules are due at the next round.
    evaluate: bool,
    last_evaluation: Timestamp,
    store_health: StoreHealth,
    health: SharedHealth,
    outage: Option<Outage>,
    heartbeat: Option<Heartbeat>,
    done: Done,
    audit: Arc<crate::audit::AuditLog>,
    /// When the audit log was last anchored in the repositories, and at
    /// what size.
    anchored: Option<(Timestamp, u64)>,
}

/// The audit log's checkpoint goes into the repositories this often
/// while the log grows.
const ANCHOR_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

/// The pre-flight checks (`haven doctor`) at start and after a reload:
/// a `setup` alert per problem, resolved when a later run passes.
async fn preflight(
    core: &mut Core,
    settings: &Settings,
    store: &dyn Store,
    now: jiff::Timestamp,
) -> Result<(), StoreError> {
    let report = crate::preflight::check(
        Arc::clone(core.catalog()),
        settings.data_dir.clone(),
        store,
        now,
    )
    .await;
    for check in report.checks.iter().filter(|c| !c.ok) {
        tracing::warn!("pre-flight: {}: {}", check.subject, check.detail);
    }
    core.setup("preflight", &report.setup_problems()).await
}

/// Run the server until `shutdown` resolves. `ready` receives the
/// handle once the core has started (the CLI starts the API with it).
pub async fn run(
    settings: Settings,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    runner: Arc<dyn Runner>,
    catalog: Arc<Catalog>,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(Handle),
) -> Result<(), ServerError> {
    let catalog_dir = settings.catalog.clone();
    let fingerprint = blocking(move || catalog_fingerprint(&catalog_dir)).await;
    let (mut core, interrupted, problems) = Core::start(
        settings.clone(),
        Arc::clone(&store),
        Arc::clone(&clock),
        catalog,
    )
    .await?;
    for job in &interrupted {
        tracing::warn!(job = job.id, task = %job.planned.task, "recorded as interrupted; it runs again");
    }
    for problem in problems {
        tracing::warn!("not scheduled: {problem}");
    }
    preflight(&mut core, &settings, store.as_ref(), clock.now()).await?;
    let data_dir = settings.data_dir.clone();
    let templates = blocking(move || Templates::load(&data_dir))
        .await
        .map_err(|e| ServerError::Io {
            context: "notification templates".into(),
            source: std::io::Error::other(e),
        })?;
    let exporter = Arc::clone(core.exporter());
    let audit = open_audit(&settings, &store, &exporter).await?;
    core.set_audit(Arc::clone(&audit));
    let notifier = notifier_for(
        &store,
        &clock,
        core.catalog(),
        &templates,
        &exporter,
        Some(&audit),
    );
    // Notifications the last run left on their way (stopped during a
    // retry's backoff, or killed) go on where they stood.
    for pending in store.queued_notifications().await? {
        let notifier = Arc::clone(&notifier);
        tokio::spawn(async move {
            notifier.resume(pending).await;
        });
    }
    let (commands, command_rx) = mpsc::channel(64);
    let view = Arc::new(RwLock::new(View {
        catalog: Arc::clone(core.catalog()),
        plan: core.plan().clone(),
    }));
    let health = health::shared();
    ready(Handle {
        store: Arc::clone(&store),
        clock: Arc::clone(&clock),
        settings: settings.clone(),
        view: Arc::clone(&view),
        commands,
        templates: templates.clone(),
        exporter: Arc::clone(&exporter),
        health: Arc::clone(&health),
        audit: Arc::clone(&audit),
    });
    let (done, done_rx) = mpsc::unbounded_channel();
    // Scheduled drills run beside the jobs, with the same limits.
    let runner: Arc<dyn Runner> = Arc::new(DrillingRunner::new(
        runner,
        settings.data_dir.clone(),
        Arc::clone(&clock),
    ));
    let mut state = Loop {
        last_evaluation: clock.now(),
        heartbeat: settings.heartbeat.clone().map(Heartbeat::new),
        core,
        store,
        clock,
        settings,
        runner,
        exporter,
        templates,
        notifier,
        view,
        fingerprint,
        ends: VecDeque::new(),
        reload: false,
        evaluate: false,
        store_health: StoreHealth::default(),
        health,
        outage: None,
        done,
        audit: Arc::clone(&audit),
        anchored: None,
    };
    let done_rx = state.serve(shutdown, command_rx, done_rx).await?;
    state.shut_down(done_rx).await;
    Ok(())
}

/// The audit log, its start recorded (haven.toml is read at start: each
/// start marks the settings in force).
async fn open_audit(
    settings: &Settings,
    store: &Arc<dyn Store>,
    exporter: &Arc<Exporter>,
) -> Result<Arc<crate::audit::AuditLog>, ServerError> {
    let audit = crate::audit::AuditLog::open(
        &settings.data_dir,
        Arc::clone(store),
        Some(Arc::clone(exporter)),
    )
    .await
    .map_err(|e| ServerError::Io {
        context: "the audit log".into(),
        source: std::io::Error::other(e),
    })?;
    let audit = Arc::new(audit);
    let target = format!("data-dir:{}", settings.data_dir.display());
    crate::audit::automation(Some(&audit), "server.start", target, "server", "success").await;
    Ok(audit)
}

impl Loop {
    /// The loop itself, until `shutdown`.
    async fn serve(
        &mut self,
        shutdown: impl Future<Output = ()>,
        mut command_rx: mpsc::Receiver<Command>,
        mut done_rx: mpsc::UnboundedReceiver<(i64, JobEnd)>,
    ) -> Result<mpsc::UnboundedReceiver<(i64, JobEnd)>, ServerError> {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(io("cannot listen for SIGHUP"))?;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.on_tick().await,
                Some((id, end)) = done_rx.recv() => self.job_ended(id, end),
                Some(command) = command_rx.recv() => self.on_command(command).await,
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP: reloading the catalog");
                    // What is reloaded now is the new baseline: a later
                    // change (even back to the old files) reloads again.
                    let dir = self.settings.catalog.clone();
                    self.fingerprint = blocking(move || catalog_fingerprint(&dir)).await;
                    self.reload = true;
                }
                () = &mut shutdown => return Ok(done_rx),
            }
            self.round().await;
        }
    }

    /// A job's end arrived: it is recorded at the next round (now, or
    /// once the store takes it), with the time it really ended.
    fn job_ended(&mut self, id: i64, mut end: JobEnd) {
        end.ended_at.get_or_insert(self.clock.now());
        self.ends.push_back((id, end));
    }

    async fn on_tick(&mut self) {
        let dir = self.settings.catalog.clone();
        let now_fingerprint = blocking(move || catalog_fingerprint(&dir)).await;
        if now_fingerprint != self.fingerprint {
            self.fingerprint = now_fingerprint;
            self.reload = true;
        }
        let now = self.clock.now();
        if now.duration_since(self.last_evaluation) >= self.settings.evaluate_every {
            self.last_evaluation = now;
            self.evaluate = true;
        }
        if let Some(beat) = &mut self.heartbeat
            && beat.due(now)
        {
            let health = self
                .health
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            beat.beat(self.core.pulse(now, &health), &self.clock, &self.exporter);
        }
    }

    async fn on_command(&mut self, command: Command) {
        let now = self.clock.now();
        match command {
            Command::Run(request, reply) => {
                let result = self.core.run_now(&request.system);
                if let Some(run) = &result {
                    self.exporter
                        .emit(run_requested(&request.by, &request.system, run, now));
                }
                let _ = reply.send(
                    result
                        .map(RunOutcome::Queued)
                        .ok_or_else(|| InstanceError::no_such_system(&request.system)),
                );
            }
            Command::Acknowledge(action, reply) => {
                let result = self.core.acknowledge(action.id, &action.by).await;
                let _ = reply.send(result.map_err(InstanceError::from));
            }
            Command::Resolve(action, reply) => {
                let reason = action.reason.as_deref().unwrap_or(RESOLVED_BY_HAND);
                let result = self.core.resolve(action.id, &action.by, reason).await;
                let _ = reply.send(result.map_err(InstanceError::from));
            }
            Command::AddWindow(request, reply) => {
                let catalog = Arc::clone(self.core.catalog());
                let result = windows::add(
                    self.store.as_ref(),
                    &self.exporter,
                    &catalog,
                    &request.window,
                    &request.by,
                    now,
                )
                .await;
                self.refresh_maintenance().await;
                let _ = reply.send(result.map_err(InstanceError::from));
            }
            Command::EndWindow(request, reply) => {
                let catalog = Arc::clone(self.core.catalog());
                let result = windows::end(
                    self.store.as_ref(),
                    &self.exporter,
                    &catalog,
                    &request.id,
                    &request.by,
                    now,
                )
                .await;
                self.refresh_maintenance().await;
                let _ = reply.send(result.map_err(InstanceError::from));
            }
            Command::DrillRecorded(drill, reply) => {
                let result = self.core.drill_recorded(&drill).await;
                let _ = reply.send(result.map_err(InstanceError::from));
            }
        }
    }

    /// Re-read the maintenance windows after a change; a store that fails
    /// now leaves the previous ones in force until the next change.
    async fn refresh_maintenance(&mut self) {
        if let Err(e) = self
            .core
            .watch()
            .refresh_maintenance(self.clock.now())
            .await
        {
            tracing::error!("cannot re-read the maintenance windows: {e}");
        }
    }

    /// One round of store work (unless backing off), the outage alert,
    /// the health report and the notifications decided.
    async fn round(&mut self) {
        if self.store_health.may_try(tokio::time::Instant::now()) {
            match self.store_round().await {
                Ok(()) => {
                    if let Some(ended) = self.store_health.succeeded() {
                        self.outage_over(ended).await;
                    }
                }
                Err(e) => {
                    let now = self.clock.now();
                    if self
                        .store_health
                        .failed(&e, now, tokio::time::Instant::now())
                    {
                        self.publish();
                        self.outage_begins().await;
                    }
                }
            }
        }
        self.publish();
        dispatch(&self.notifier, self.core.take_notifications());
    }

    fn publish(&mut self) {
        self.store_health
            .publish(&self.health, self.ends.len(), self.exporter.dropped());
    }

    /// Everything that needs the store, in order; stops at the first
    /// failure, keeping the rest for the next round.
    async fn store_round(&mut self) -> Result<(), StoreError> {
        while let Some((id, end)) = self.ends.front().cloned() {
            match self.core.finish(id, end).await {
                Ok(_) => {}
                Err(StoreError::NoSuchJob(_)) => {
                    tracing::error!(
                        job = id,
                        "the end of a job the store does not know was dropped"
                    );
                }
                Err(e) => return Err(e),
            }
            self.ends.pop_front();
        }
        self.core.settle().await?;
        if self.reload {
            self.reload_catalog().await?;
        }
        if self.evaluate {
            self.core.evaluate();
            self.core.watch_level().await?;
            self.core.watch_recoveries().await?;
            self.core.watch_requests().await?;
            self.anchor_audit().await;
            self.evaluate = false;
        }
        let ticked = self.core.tick().await;
        spawn_jobs(ticked.started, &self.runner, &self.done);
        ticked.failure.map_or(Ok(()), Err)
    }

    /// Record a catalog reload (the catalog's digest, so an auditor can
    /// tell which catalog was in force).
    async fn audit_reload(&self, outcome: &str) {
        let target = format!("catalog:{}", self.settings.catalog.display());
        crate::audit::automation(
            Some(&self.audit),
            "catalog.reload",
            target,
            "server",
            outcome,
        )
        .await;
    }

    /// Write the audit log's newest checkpoint into every repository
    /// when the log grew and the last time is [`ANCHOR_EVERY`] ago.
    async fn anchor_audit(&mut self) {
        let now = self.clock.now();
        if self
            .anchored
            .is_some_and(|(at, _)| now.duration_since(at) < ANCHOR_EVERY)
        {
            return;
        }
        let size = self.audit.size().await;
        if size == 0 || self.anchored.is_some_and(|(_, done)| done >= size) {
            return;
        }
        match self.audit.anchor(self.core.catalog()).await {
            Ok(done) => {
                for failed in done.iter().filter(|a| a.error.is_some()) {
                    tracing::warn!(
                        repository = %failed.repository,
                        "cannot anchor the audit log there: {}",
                        failed.error.clone().unwrap_or_default()
                    );
                }
                self.anchored = Some((now, size));
            }
            Err(e) => tracing::warn!("cannot anchor the audit log: {e}"),
        }
    }

    async fn reload_catalog(&mut self) -> Result<(), StoreError> {
        let dir = self.settings.catalog.clone();
        let now = self.clock.now();
        let loaded = blocking(move || load_catalog(&dir, now)).await;
        match loaded {
            Ok(catalog) => {
                for problem in self.core.reload(catalog).await? {
                    tracing::warn!("not scheduled: {problem}");
                }
                self.core.setup("catalog", &[]).await?;
                let now = self.clock.now();
                preflight(&mut self.core, &self.settings, self.store.as_ref(), now).await?;
                self.notifier = notifier_for(
                    &self.store,
                    &self.clock,
                    self.core.catalog(),
                    &self.templates,
                    &self.exporter,
                    Some(&self.audit),
                );
                {
                    let mut view = self.view.write().unwrap_or_else(|e| e.into_inner());
                    view.catalog = Arc::clone(self.core.catalog());
                    view.plan = self.core.plan().clone();
                }
                tracing::info!("catalog reloaded from {}", self.settings.catalog.display());
                self.audit_reload("success").await;
            }
            Err(e) => {
                tracing::error!("{e}\nkeeping the previous catalog");
                self.audit_reload("refused").await;
                let problem = SetupProblem {
                    key: "load".into(),
                    system: None,
                    message: format!(
                        "the catalog in {} does not load, so the previous one stays in use: {}",
                        self.settings.catalog.display(),
                        e.to_string().lines().next().unwrap_or("")
                    ),
                };
                self.core.setup("catalog", &[problem]).await?;
            }
        }
        self.reload = false;
        Ok(())
    }

    async fn outage_begins(&mut self) {
        let Some(trouble) = self.store_health.trouble().cloned() else {
            return;
        };
        let now = self.clock.now();
        let outage = Outage::raise(
            &mut self.core,
            &self.notifier,
            &self.exporter,
            &trouble,
            now,
        )
        .await;
        self.outage = Some(outage);
    }

    async fn outage_over(&mut self, ended: health::StoreTrouble) {
        let Some(outage) = self.outage.take() else {
            return;
        };
        let now = self.clock.now();
        if let Err((outage, e)) = outage
            .resolve(&mut self.core, &self.store, &self.exporter, &ended, now)
            .await
        {
            // The store failed again at once: still the same outage.
            self.store_health
                .failed(&e, now, tokio::time::Instant::now());
            self.outage = Some(outage);
        }
    }

    /// Stop: let running jobs finish within the shutdown timeout, then
    /// kill what the others started and record them interrupted. Job
    /// ends the store would not take by then are logged whole (the last
    /// place they can go).
    async fn shut_down(&mut self, mut done_rx: mpsc::UnboundedReceiver<(i64, JobEnd)>) {
        let deadline = tokio::time::Instant::now() + self.settings.shutdown_timeout;
        let running = self.core.running_jobs().len();
        if running > 0 {
            tracing::info!(
                "shutting down: waiting up to {:?} for {running} running jobs",
                self.settings.shutdown_timeout
            );
        }
        while !(self.core.running_jobs().is_empty() && self.ends.is_empty()) {
            if !self.ends.is_empty() && self.store_health.may_try(tokio::time::Instant::now()) {
                self.record_ends().await;
                continue;
            }
            let wake = self
                .store_health
                .next_try()
                .unwrap_or(deadline)
                .min(deadline);
            tokio::select! {
                Some((id, end)) = done_rx.recv() => self.job_ended(id, end),
                () = tokio::time::sleep_until(wake) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        self.give_up_running().await;
        for (id, end) in self.ends.drain(..) {
            tracing::error!(
                job = id,
                "the database did not take this job's end before the shutdown: {}",
                serde_json::to_string(&end).unwrap_or_default()
            );
        }
        tracing::info!("server stopped");
    }

    /// Record the job ends waiting (at shutdown: no new work).
    async fn record_ends(&mut self) {
        while let Some((id, end)) = self.ends.front().cloned() {
            match self.core.finish(id, end).await {
                Ok(_) | Err(StoreError::NoSuchJob(_)) => {}
                Err(e) => {
                    let now = self.clock.now();
                    self.store_health
                        .failed(&e, now, tokio::time::Instant::now());
                    return;
                }
            }
            self.ends.pop_front();
        }
        if let Some(ended) = self.store_health.succeeded() {
            self.outage_over(ended).await;
        }
    }

    /// Jobs still running at the end of the shutdown timeout: their
    /// commands are killed and they are recorded interrupted.
    async fn give_up_running(&mut self) {
        let running = self.core.running_jobs();
        if running.is_empty() {
            return;
        }
        let killed = crate::jobs::command::kill_commands_of(&running);
        if killed > 0 {
            tracing::warn!("killed {killed} dump or hook commands of interrupted jobs");
        }
        let left = self
            .store
            .interrupt_running(
                self.clock.now(),
                "the server shut down before this job finished; it runs again",
            )
            .await;
        match left {
            Ok(left) => {
                for job in left {
                    tracing::warn!(job = job.id, task = %job.planned.task, "interrupted by shutdown");
                }
            }
            Err(e) => tracing::error!(
                "cannot record the running jobs as interrupted ({e}); the next start does"
            ),
        }
    }
}

fn run_requested(
    by: &haven_model::actor::Actor,
    system: &str,
    run: &RunNow,
    now: Timestamp,
) -> crate::delivery::export::Event {
    crate::delivery::export::Event::new("run-requested", "event", "process", now)
        .actor(by)
        .message(format!("{by} asked to back up {system} now"))
        .haven("system", serde_json::json!(system))
        .haven("run", serde_json::json!(run))
}

/// `haven run SYSTEM` without a server: run the system's backups and
/// their follow-ups in the foreground, recorded like the server's jobs.
/// Returns the jobs that ran, or `None` when the system has no backups.
pub async fn run_foreground(
    settings: Settings,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    runner: Arc<dyn Runner>,
    catalog: Arc<Catalog>,
    system: &str,
) -> Result<Option<Vec<Job>>, ServerError> {
    let (mut core, _, _) =
        Core::start(settings, Arc::clone(&store), Arc::clone(&clock), catalog).await?;
    // Only this system's work: the scheduled jobs of others wait for the
    // server.
    core.restrict_to_system(system).await?;
    if core.run_now(system).is_none() {
        return Ok(None);
    }
    let mut ran = Vec::new();
    loop {
        let ticked = core.tick().await;
        if let Some(e) = ticked.failure {
            return Err(e.into());
        }
        if ticked.started.is_empty() {
            break;
        }
        for (job, spec) in ticked.started {
            let runner = Arc::clone(&runner);
            let id = job.id;
            let end = blocking(move || run_job(runner.as_ref(), id, &spec)).await;
            let (job, _) = core.finish(job.id, end).await?;
            core.settle().await?;
            ran.push(job);
        }
    }
    // Alerts the run raised are notified before the command ends (their
    // later escalation steps need the server).
    let notifications = core.take_notifications();
    if !notifications.is_empty() {
        let data_dir = core.settings().data_dir.clone();
        let templates = blocking(move || Templates::load(&data_dir))
            .await
            .map_err(|e| ServerError::Io {
                context: "notification templates".into(),
                source: std::io::Error::other(e),
            })?;
        let notifier = notifier_for(
            &store,
            &clock,
            core.catalog(),
            &templates,
            core.exporter(),
            None,
        );
        for n in &notifications {
            notifier.send_queued(n).await;
        }
    }
    Ok(Some(ran))
}
