//! What the API (and the CLI through it) may ask of a running server:
//! reads go to the store, changes to the loop as [`Command`]s.

use std::sync::{Arc, RwLock};

use haven_model::actor::Actor;
use haven_model::alerts::{Alert, Delivery, Notification};
use haven_model::catalog::Catalog;
use haven_model::catalog::watch::Scope;
use haven_model::jobs::Job;
use haven_model::maintenance::Recorded;
use haven_store::{AlertFilter, JobFilter, Store, StoreError};
use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use super::core::RunNow;
use super::health::{HealthReport, SharedHealth};
use crate::clock::Clock;
use crate::delivery::export::Exporter;
use crate::delivery::notify::{Notifier, Report, Templates};
use crate::instance::settings::Settings;
use crate::jobs::plan::Plan;
use crate::status::{self, StatusReport};
use crate::watch::WatchError;
use crate::watch::windows::{self, WindowError, WindowView};

pub(super) enum Command {
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

pub(super) struct View {
    pub(super) catalog: Arc<Catalog>,
    pub(super) plan: Plan,
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

pub(super) fn notifier_for(
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
    pub(super) store: Arc<dyn Store>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) settings: Settings,
    pub(super) view: Arc<RwLock<View>>,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) templates: Templates,
    pub(super) exporter: Arc<Exporter>,
    pub(super) health: SharedHealth,
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
