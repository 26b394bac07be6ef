//! `haven server`: the core in real time. One loop owns the core; jobs
//! run on blocking threads and report back through a channel; the API
//! talks to the loop through a [`Handle`].
//!
//! The data dir's `server.lock` (an advisory lock held for the server's
//! life) keeps a second server, or a foreground `haven run`, from
//! working on the same data dir at the same time.

use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use haven_model::actor::Actor;
use haven_model::alerts::{Alert, Delivery};
use haven_model::catalog::Catalog;
use haven_model::catalog::watch::Scope;
use haven_model::jobs::Job;
use haven_model::maintenance::Recorded;
use haven_store::{AlertFilter, JobEnd, JobFilter, Store, StoreError};
use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::core::{Core, RunNow};
use crate::export::Exporter;
use crate::heartbeat::Heartbeat;
use crate::notify::{Notification, Notifier, Report, Templates};
use crate::plan::Plan;
use crate::runner::Runner;
use crate::settings::Settings;
use crate::status::{self, StatusReport};
use crate::watch::WatchError;
use crate::watch::windows::{self, WindowError, WindowView};

/// Why the server (or a foreground run) cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The catalog has errors.
    #[error("the catalog in {dir} has errors:\n{rendered}")]
    Catalog {
        /// Its directory.
        dir: PathBuf,
        /// The diagnostics, rendered.
        rendered: String,
    },
    /// Another server holds the data dir.
    #[error(
        "another Haven server is using the data dir {0} (its server.lock is held); stop it first, or use a different --data-dir"
    )]
    Locked(PathBuf),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Files, signals, sockets.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let context = context.into();
    move |source| ServerError::Io { context, source }
}

/// Load and check a catalog directory; errors refuse it.
pub fn load_catalog(dir: &Path, now: jiff::Timestamp) -> Result<Arc<Catalog>, ServerError> {
    let loaded = haven_catalog::load_dir(dir).map_err(|e| ServerError::Catalog {
        dir: dir.to_path_buf(),
        rendered: e.to_string(),
    })?;
    let diagnostics = haven_catalog::check(&loaded, now);
    let errors: Vec<_> = diagnostics
        .into_iter()
        .filter(|d| d.severity == haven_model::catalog::Severity::Error)
        .collect();
    if !errors.is_empty() {
        return Err(ServerError::Catalog {
            dir: dir.to_path_buf(),
            rendered: haven_catalog::render(&errors),
        });
    }
    Ok(Arc::new(loaded.catalog))
}

/// What identifies a catalog directory's content cheaply: every `.toml`
/// file's path, size and modification time.
pub fn catalog_fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                out.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    out.sort();
    out
}

/// The data dir's server lock, held while the value lives.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Take the data dir's lock, or say who has it.
pub fn lock_data_dir(data_dir: &Path) -> Result<DataDirLock, ServerError> {
    crate::private::private_dir(data_dir).map_err(io(format!(
        "cannot create the data dir {} (private)",
        data_dir.display()
    )))?;
    let path = data_dir.join("server.lock");
    let file = crate::private::append_private(&path)
        .map_err(io(format!("cannot open {}", path.display())))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(DataDirLock { _file: file }),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(ServerError::Locked(data_dir.to_path_buf())),
        Err(e) => Err(ServerError::Io {
            context: format!("cannot lock {}", path.display()),
            source: e.into(),
        }),
    }
}

/// Is a server (or a foreground run) holding the data dir now?
pub fn data_dir_in_use(data_dir: &Path) -> bool {
    let Ok(file) = File::open(data_dir.join("server.lock")) else {
        return false;
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
        Ok(()) => false,
        Err(e) => e == rustix::io::Errno::WOULDBLOCK,
    }
}

enum Command {
    RunNow(String, Actor, oneshot::Sender<Option<RunNow>>),
    Acknowledge(i64, Actor, oneshot::Sender<Result<Alert, WatchError>>),
    Resolve(
        i64,
        Actor,
        String,
        oneshot::Sender<Result<Alert, WatchError>>,
    ),
    AddWindow(
        Box<NewWindow>,
        Actor,
        oneshot::Sender<Result<Recorded, WindowError>>,
    ),
    EndWindow(
        String,
        Actor,
        oneshot::Sender<Result<Recorded, WindowError>>,
    ),
}

/// A maintenance window to add.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct NewWindow {
    /// What it covers.
    pub scope: Scope,
    /// Start.
    pub start: Timestamp,
    /// End.
    pub end: Timestamp,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

struct View {
    catalog: Arc<Catalog>,
    plan: Plan,
}

/// An alert with its delivery attempts.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AlertDetail {
    /// The alert.
    #[serde(flatten)]
    pub alert: Alert,
    /// Every delivery attempt, oldest first.
    pub deliveries: Vec<Delivery>,
}

/// Send notifications on tasks of their own (retries wait in real time).
fn dispatch(notifier: &Arc<Notifier>, notifications: Vec<Notification>) {
    for n in notifications {
        let notifier = Arc::clone(notifier);
        tokio::spawn(async move {
            notifier.send_queued(&n).await;
        });
    }
}

fn notifier_for(
    store: &Arc<dyn Store>,
    clock: &Arc<dyn Clock>,
    catalog: &Catalog,
    templates: &Templates,
    exporter: &Arc<Exporter>,
) -> Arc<Notifier> {
    Arc::new(Notifier::new(
        Arc::clone(store),
        Arc::clone(clock),
        catalog.channels.clone(),
        templates.clone(),
        Arc::clone(exporter),
    ))
}

/// What the API may ask of a running server.
#[derive(Clone)]
pub struct Handle {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    view: Arc<RwLock<View>>,
    commands: mpsc::Sender<Command>,
    templates: Templates,
    exporter: Arc<Exporter>,
}

impl Handle {
    /// The status report, from the evidence as of now.
    pub async fn status(&self) -> Result<StatusReport, StoreError> {
        let states = self.store.set_states().await?;
        let view = self.view.read().unwrap_or_else(|e| e.into_inner());
        Ok(status::report(
            &view.catalog,
            &view.plan,
            &states,
            &self.settings,
            self.clock.now(),
            "server",
        ))
    }

    /// Jobs.
    pub async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        self.store.jobs(filter).await
    }

    /// One job.
    pub async fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        self.store.job(id).await
    }

    /// Queue a system's backups now; `None` when it has none.
    pub async fn run_now(&self, system: &str, by: &Actor) -> Option<RunNow> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::RunNow(system.to_string(), by.clone(), tx))
            .await
            .ok()?;
        rx.await.ok().flatten()
    }

    /// Alerts.
    pub async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, StoreError> {
        self.store.alerts(filter).await
    }

    /// One alert with its deliveries.
    pub async fn alert(&self, id: i64) -> Result<Option<AlertDetail>, StoreError> {
        alert_detail(self.store.as_ref(), id).await
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Acknowledge an alert; `None` when the server is stopping.
    pub async fn acknowledge(&self, id: i64, by: &Actor) -> Option<Result<Alert, WatchError>> {
        self.ask(|tx| Command::Acknowledge(id, by.clone(), tx))
            .await
    }

    /// Resolve an alert.
    pub async fn resolve(
        &self,
        id: i64,
        by: &Actor,
        reason: &str,
    ) -> Option<Result<Alert, WatchError>> {
        self.ask(|tx| Command::Resolve(id, by.clone(), reason.into(), tx))
            .await
    }

    /// Maintenance windows.
    pub async fn windows(&self) -> Result<Vec<WindowView>, StoreError> {
        let now = self.clock.now();
        let recorded = self.store.maintenance(now).await?;
        let view = self.view.read().unwrap_or_else(|e| e.into_inner());
        Ok(windows::list(&view.catalog, &recorded, now))
    }

    /// Add a maintenance window.
    pub async fn add_window(
        &self,
        window: NewWindow,
        by: &Actor,
    ) -> Option<Result<Recorded, WindowError>> {
        self.ask(|tx| Command::AddWindow(Box::new(window), by.clone(), tx))
            .await
    }

    /// End a maintenance window now.
    pub async fn end_window(&self, id: &str, by: &Actor) -> Option<Result<Recorded, WindowError>> {
        self.ask(|tx| Command::EndWindow(id.into(), by.clone(), tx))
            .await
    }

    /// Send a test message through one channel and report the delivery.
    pub async fn notify_test(&self, channel: &str) -> Option<Report> {
        let catalog = {
            let view = self.view.read().unwrap_or_else(|e| e.into_inner());
            Arc::clone(&view.catalog)
        };
        notify_test(
            &self.store,
            &self.clock,
            &catalog,
            &self.templates,
            &self.exporter,
            channel,
        )
        .await
    }
}

/// An alert with its deliveries, from the store.
pub async fn alert_detail(store: &dyn Store, id: i64) -> Result<Option<AlertDetail>, StoreError> {
    let Some(alert) = store.alert(id).await? else {
        return Ok(None);
    };
    let deliveries = store.deliveries(Some(id)).await?;
    Ok(Some(AlertDetail { alert, deliveries }))
}

/// Send a test message through a channel (`haven notify test`); `None`
/// when the catalog has no such channel.
pub async fn notify_test(
    store: &Arc<dyn Store>,
    clock: &Arc<dyn Clock>,
    catalog: &Catalog,
    templates: &Templates,
    exporter: &Arc<Exporter>,
    channel: &str,
) -> Option<Report> {
    catalog.channels.iter().find(|c| c.id.value == channel)?;
    let notifier = notifier_for(store, clock, catalog, templates, exporter);
    Some(
        notifier
            .send(&Notification {
                alert: None,
                step: None,
                channels: vec![channel.to_string()],
            })
            .await,
    )
}

/// Start jobs on blocking threads; each reports its end on `done`.
fn spawn_jobs(
    started: Vec<(Job, crate::runner::JobSpec)>,
    runner: &Arc<dyn Runner>,
    done: &mpsc::UnboundedSender<(i64, JobEnd)>,
) {
    for (job, spec) in started {
        let runner = Arc::clone(runner);
        let done = done.clone();
        tokio::task::spawn_blocking(move || {
            let end = runner.run(&spec);
            // The loop may be gone (shutdown timeout): then the job is
            // recorded as interrupted, which is what it was.
            let _ = done.send((job.id, end));
        });
    }
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
    let mut fingerprint = catalog_fingerprint(&catalog_dir);
    let (mut core, interrupted, problems) = Core::start(
        settings.clone(),
        Arc::clone(&store),
        Arc::clone(&clock),
        catalog,
    )
    .await?;
    for job in &interrupted {
        tracing::warn!(job = job.id, task = %job.task, "recorded as interrupted; it runs again");
    }
    for problem in problems {
        tracing::warn!("not scheduled: {}", problem.0);
    }
    let templates = Templates::load(&settings.data_dir).map_err(|e| ServerError::Io {
        context: "notification templates".into(),
        source: std::io::Error::other(e),
    })?;
    let exporter = Arc::clone(core.exporter());
    let mut notifier = notifier_for(&store, &clock, core.catalog(), &templates, &exporter);
    // Notifications the last run left on their way (stopped during a
    // retry's backoff, or killed) go on where they stood.
    for pending in store.queued_notifications().await? {
        let notifier = Arc::clone(&notifier);
        tokio::spawn(async move {
            notifier.resume(pending).await;
        });
    }
    let (commands, mut command_rx) = mpsc::channel(64);
    let view = Arc::new(RwLock::new(View {
        catalog: Arc::clone(core.catalog()),
        plan: core.plan().clone(),
    }));
    ready(Handle {
        store: Arc::clone(&store),
        clock: Arc::clone(&clock),
        settings: settings.clone(),
        view: Arc::clone(&view),
        commands,
        templates: templates.clone(),
        exporter: Arc::clone(&exporter),
    });
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(io("cannot listen for SIGHUP"))?;
    let mut last_evaluation = clock.now();
    let mut heartbeat = settings.heartbeat.clone().map(Heartbeat::new);
    tokio::pin!(shutdown);
    loop {
        let mut reload = false;
        tokio::select! {
            _ = ticker.tick() => {
                let now_fingerprint = catalog_fingerprint(&catalog_dir);
                if now_fingerprint != fingerprint {
                    fingerprint = now_fingerprint;
                    reload = true;
                }
                if clock.now().duration_since(last_evaluation) >= settings.evaluate_every {
                    last_evaluation = clock.now();
                    core.evaluate();
                    core.watch_level().await?;
                }
                if let Some(beat) = &mut heartbeat
                    && beat.due(clock.now())
                {
                    beat.beat(core.pulse(clock.now()), &clock, &exporter);
                }
            }
            Some((id, end)) = done_rx.recv() => {
                core.finish(id, end).await?;
            }
            Some(command) = command_rx.recv() => match command {
                Command::RunNow(system, by, reply) => {
                    let result = core.run_now(&system);
                    if let Some(run) = &result {
                        exporter.emit(
                            crate::export::Event::new("run-requested", "event", "process", clock.now())
                                .actor(&by)
                                .message(format!("{by} asked to back up {system} now"))
                                .haven("system", serde_json::json!(system))
                                .haven("run", serde_json::json!(run)),
                        );
                    }
                    let _ = reply.send(result);
                }
                Command::Acknowledge(id, by, reply) => {
                    let _ = reply.send(core.acknowledge(id, &by).await);
                }
                Command::Resolve(id, by, reason, reply) => {
                    let _ = reply.send(core.resolve(id, &by, &reason).await);
                }
                Command::AddWindow(w, by, reply) => {
                    let catalog = Arc::clone(core.catalog());
                    let result = windows::add(store.as_ref(), &exporter, &catalog, w.scope, w.start, w.end, w.reason, &by, clock.now()).await;
                    core.watch().refresh_maintenance(clock.now()).await?;
                    let _ = reply.send(result);
                }
                Command::EndWindow(id, by, reply) => {
                    let catalog = Arc::clone(core.catalog());
                    let result = windows::end(store.as_ref(), &exporter, &catalog, &id, &by, clock.now()).await;
                    core.watch().refresh_maintenance(clock.now()).await?;
                    let _ = reply.send(result);
                }
            },
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the catalog");
                fingerprint = catalog_fingerprint(&catalog_dir);
                reload = true;
            }
            () = &mut shutdown => break,
        }
        if reload {
            match load_catalog(&catalog_dir, clock.now()) {
                Ok(catalog) => {
                    for problem in core.reload(catalog).await? {
                        tracing::warn!("not scheduled: {}", problem.0);
                    }
                    notifier = notifier_for(&store, &clock, core.catalog(), &templates, &exporter);
                    let mut view = view.write().unwrap_or_else(|e| e.into_inner());
                    view.catalog = Arc::clone(core.catalog());
                    view.plan = core.plan().clone();
                    tracing::info!("catalog reloaded from {}", catalog_dir.display());
                }
                Err(e) => tracing::error!("{e}\nkeeping the previous catalog"),
            }
        }
        let started = core.tick().await?;
        spawn_jobs(started, &runner, &done_tx);
        dispatch(&notifier, core.take_notifications());
    }
    let running = core.running_jobs().len();
    if running > 0 {
        tracing::info!(
            "shutting down: waiting up to {:?} for {running} running jobs",
            settings.shutdown_timeout
        );
        let deadline = tokio::time::Instant::now() + settings.shutdown_timeout;
        while !core.running_jobs().is_empty() {
            tokio::select! {
                Some((id, end)) = done_rx.recv() => { core.finish(id, end).await?; }
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let left = store
            .interrupt_running(
                clock.now(),
                "the server shut down before this job finished; it runs again",
            )
            .await?;
        for job in left {
            tracing::warn!(job = job.id, task = %job.task, "interrupted by shutdown");
        }
    }
    tracing::info!("server stopped");
    Ok(())
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
        let started = core.tick().await?;
        if started.is_empty() {
            break;
        }
        for (job, spec) in started {
            let runner = Arc::clone(&runner);
            let end = tokio::task::spawn_blocking(move || runner.run(&spec))
                .await
                .map_err(|e| ServerError::Io {
                    context: "a job thread failed".into(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            let (job, _) = core.finish(job.id, end).await?;
            ran.push(job);
        }
    }
    // Alerts the run raised are notified before the command ends (their
    // later escalation steps need the server).
    let notifications = core.take_notifications();
    if !notifications.is_empty() {
        let templates =
            Templates::load(&core.settings().data_dir).map_err(|e| ServerError::Io {
                context: "notification templates".into(),
                source: std::io::Error::other(e),
            })?;
        let notifier = notifier_for(&store, &clock, core.catalog(), &templates, core.exporter());
        for n in &notifications {
            notifier.send_queued(n).await;
        }
    }
    Ok(Some(ran))
}
