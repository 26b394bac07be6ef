//! `haven server`: the core in real time. One loop owns the core; jobs
//! run on blocking threads and report back through a channel; the API
//! talks to the loop through a [`Handle`].
//!
//! The data dir's `server.lock` (an advisory lock held for the server's
//! life) keeps a second server, or a foreground `haven run`, from
//! working on the same data dir at the same time.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use haven_model::actor::Actor;
use haven_model::alerts::{Alert, Delivery};
use haven_model::catalog::Catalog;
use haven_model::catalog::watch::Scope;
use haven_model::jobs::Job;
use haven_model::maintenance::Recorded;
use haven_store::{AlertFilter, JobFilter, Store, StoreError};
use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::core::RunNow;
use crate::export::Exporter;
use crate::health::{HealthReport, SharedHealth};
use crate::notify::{Notification, Notifier, Report, Templates};
use crate::plan::Plan;
use crate::settings::Settings;
use crate::status::{self, StatusReport};
use crate::watch::WatchError;
use crate::watch::windows::{self, WindowError, WindowView};

mod event_loop;
mod outage;

pub use event_loop::{run, run_foreground, run_job};

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
    health: SharedHealth,
}

impl Handle {
    /// The server's own health (`/healthz`): `ok`, or `degraded` while
    /// its database cannot be written.
    pub fn health(&self) -> HealthReport {
        self.health
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

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
