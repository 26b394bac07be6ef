//! A running server as an [`Instance`]: reads go to the store, changes to
//! the loop as [`Command`]s (one owner of the core).

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use haven_model::alerts::{Alert, Notification};
use haven_model::catalog::Catalog;
use haven_model::errors::ErrorCode;
use haven_model::jobs::Job;
use haven_model::maintenance::Recorded;
use haven_store::Store;
use tokio::sync::{mpsc, oneshot};

use super::health::SharedHealth;
use crate::api::{
    AddWindow, AlertAction, AlertDetail, AlertsQuery, EndWindow, HealthReport, Instance,
    InstanceError, JobsQuery, RunOutcome, RunRequest, WindowView,
};
use crate::clock::Clock;
use crate::delivery::export::Exporter;
use crate::delivery::notify::{Notifier, Report, Templates};
use crate::instance::settings::Settings;
use crate::status::{self, StatusReport};
use crate::watch::windows;
use haven_model::tasks::Plan;

/// Where the loop answers a command.
pub(super) type Reply<T> = oneshot::Sender<Result<T, InstanceError>>;

/// A change the loop makes (it owns the core).
pub(super) enum Command {
    Run(RunRequest, Reply<RunOutcome>),
    Acknowledge(AlertAction, Reply<Alert>),
    Resolve(AlertAction, Reply<Alert>),
    AddWindow(Box<AddWindow>, Reply<Recorded>),
    EndWindow(EndWindow, Reply<Recorded>),
    /// A drill ran and was recorded: its alert opens or resolves.
    DrillRecorded(Box<haven_model::drills::Drill>, Reply<()>),
}

/// What the API's reads need of the loop's state.
pub(super) struct View {
    pub(super) catalog: Arc<Catalog>,
    pub(super) plan: Plan,
}

pub(super) fn notifier_for(
    store: &Arc<dyn Store>,
    clock: &Arc<dyn Clock>,
    catalog: &Catalog,
    templates: &Templates,
    exporter: &Arc<Exporter>,
    audit: Option<&Arc<crate::audit::AuditLog>>,
) -> Arc<Notifier> {
    let notifier = Notifier::new(
        Arc::clone(store),
        Arc::clone(clock),
        catalog.channels.clone(),
        templates.clone(),
        Arc::clone(exporter),
    );
    let Some(log) = audit.cloned() else {
        return Arc::new(notifier);
    };
    // Every notification sent (or not) is in the audit log, as Haven's.
    Arc::new(notifier.with_hook(Arc::new(move |delivery| {
        let log = Arc::clone(&log);
        Box::pin(async move {
            let target = match delivery.alert_id {
                Some(alert) => format!("alert:{alert} channel:{}", delivery.channel),
                None => format!("channel:{}", delivery.channel),
            };
            let outcome = if delivery.ok { "delivered" } else { "failed" };
            crate::audit::automation(Some(&log), "notification.send", target, "watch", outcome)
                .await;
        })
    })))
}

/// A running server, as the API (in this process) reaches it.
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
    pub(super) audit: Arc<crate::audit::AuditLog>,
}

impl Handle {
    /// This server as the API serves it: every change recorded in the
    /// audit log.
    pub fn audited(self) -> crate::api::Audited {
        let log = Arc::clone(&self.audit);
        let (settings, store) = (self.settings.clone(), Arc::clone(&self.store));
        crate::api::Audited::new(Arc::new(self), Ok(log), &settings, store)
    }

    fn catalog(&self) -> Arc<Catalog> {
        let view = self.view.read().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&view.catalog)
    }

    /// Hand a change to the loop and wait for its answer.
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, InstanceError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| InstanceError::stopping())?;
        rx.await.map_err(|_| InstanceError::stopping())?
    }
}

#[async_trait]
impl Instance for Handle {
    fn describe(&self) -> String {
        format!("the server of {}", self.settings.data_dir.display())
    }

    async fn health(&self) -> Result<HealthReport, InstanceError> {
        Ok(self
            .health
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone())
    }

    async fn status(&self) -> Result<StatusReport, InstanceError> {
        let states = self.store.set_states().await?;
        let drills = self.store.drills(None, u32::MAX).await?;
        let sizes = crate::status::system_sizes(self.store.as_ref()).await?;
        let view = self.view.read().unwrap_or_else(|e| e.into_inner());
        Ok(status::report(
            &view.catalog,
            &view.plan,
            &states,
            &self.settings,
            self.clock.now(),
            "server",
        )
        .with_readiness(&view.catalog, &drills, &sizes))
    }

    async fn jobs(&self, query: &JobsQuery) -> Result<Vec<Job>, InstanceError> {
        Ok(self.store.jobs(&query.filter()).await?)
    }

    async fn job(&self, id: i64) -> Result<Job, InstanceError> {
        job(self.store.as_ref(), id).await
    }

    async fn run(&self, request: &RunRequest) -> Result<RunOutcome, InstanceError> {
        self.ask(|tx| Command::Run(request.clone(), tx)).await
    }

    async fn alerts(&self, query: &AlertsQuery) -> Result<Vec<Alert>, InstanceError> {
        Ok(self.store.alerts(&query.filter()).await?)
    }

    async fn alert(&self, id: i64) -> Result<AlertDetail, InstanceError> {
        alert_detail(self.store.as_ref(), id).await
    }

    async fn acknowledge(&self, action: &AlertAction) -> Result<Alert, InstanceError> {
        self.ask(|tx| Command::Acknowledge(action.clone(), tx))
            .await
    }

    async fn resolve(&self, action: &AlertAction) -> Result<Alert, InstanceError> {
        self.ask(|tx| Command::Resolve(action.clone(), tx)).await
    }

    async fn windows(&self) -> Result<Vec<WindowView>, InstanceError> {
        let now = self.clock.now();
        let recorded = self.store.maintenance(now).await?;
        Ok(windows::list(&self.catalog(), &recorded, now))
    }

    async fn add_window(&self, request: &AddWindow) -> Result<Recorded, InstanceError> {
        self.ask(|tx| Command::AddWindow(Box::new(request.clone()), tx))
            .await
    }

    async fn end_window(&self, request: &EndWindow) -> Result<Recorded, InstanceError> {
        self.ask(|tx| Command::EndWindow(request.clone(), tx)).await
    }

    async fn notify_test(&self, channel: &str) -> Result<Report, InstanceError> {
        notify_test(
            &self.store,
            &self.clock,
            &self.catalog(),
            &self.templates,
            &self.exporter,
            channel,
        )
        .await
    }

    async fn drill(
        &self,
        request: &crate::api::DrillRequest,
    ) -> Result<crate::api::DrillOutcome, InstanceError> {
        let outcome = crate::drills::run_and_record(
            self.catalog(),
            self.settings.data_dir.clone(),
            request.clone(),
            self.clock.now(),
            self.store.as_ref(),
        )
        .await?;
        let drill = Box::new(outcome.drill.clone());
        self.ask(|tx| Command::DrillRecorded(drill, tx)).await?;
        Ok(outcome)
    }

    async fn drills(
        &self,
        query: &crate::api::DrillsQuery,
    ) -> Result<Vec<haven_model::drills::Drill>, InstanceError> {
        drills(self.store.as_ref(), query).await
    }

    async fn drill_service(
        &self,
        request: &crate::api::ServiceDrillRequest,
    ) -> Result<crate::api::ServiceDrillOutcome, InstanceError> {
        let outcome = crate::drills::run_service_and_record(
            self.catalog(),
            self.settings.data_dir.clone(),
            request.clone(),
            self.clock.now(),
            self.store.as_ref(),
        )
        .await?;
        for system in &outcome.systems {
            let drill = Box::new(system.drill.clone());
            self.ask(|tx| Command::DrillRecorded(drill, tx)).await?;
        }
        Ok(outcome)
    }

    async fn service_drills(
        &self,
        query: &crate::api::ServiceDrillsQuery,
    ) -> Result<Vec<haven_model::drills::ServiceDrill>, InstanceError> {
        service_drills(self.store.as_ref(), query).await
    }

    async fn recovery_forecast(
        &self,
        request: &crate::api::ForecastRequest,
    ) -> Result<haven_model::recovery::Forecast, InstanceError> {
        let catalog = self.catalog();
        Ok(crate::recovery::dry_run(&catalog, self.store.as_ref(), request).await?)
    }

    async fn recover(
        &self,
        request: &crate::api::RecoverRequest,
    ) -> Result<haven_model::recovery::run::RunView, InstanceError> {
        Ok(crate::recovery::start(
            self.catalog(),
            Arc::clone(&self.store),
            self.settings.data_dir.clone(),
            request,
        )
        .await?)
    }

    async fn resume_recovery(
        &self,
        request: &crate::api::ResumeRequest,
    ) -> Result<haven_model::recovery::run::RunView, InstanceError> {
        Ok(crate::recovery::resume(
            self.catalog(),
            Arc::clone(&self.store),
            self.settings.data_dir.clone(),
            request,
        )
        .await?)
    }

    async fn recovery(
        &self,
        id: i64,
    ) -> Result<haven_model::recovery::run::RunView, InstanceError> {
        let catalog = self.catalog();
        Ok(crate::recovery::view(&catalog, self.store.as_ref(), id).await?)
    }

    async fn service(&self, id: &str) -> Result<crate::status::ServiceDetail, InstanceError> {
        crate::status::service_detail(&self.catalog(), id, self.clock.now())
            .ok_or_else(|| InstanceError::no_such_service(id))
    }

    async fn findings(&self) -> Result<Vec<crate::status::FindingView>, InstanceError> {
        Ok(crate::status::findings(&self.catalog(), self.clock.now()))
    }

    async fn bia(
        &self,
        query: &crate::api::BiaQuery,
    ) -> Result<Vec<haven_model::catalog::bia::BiaRow>, InstanceError> {
        crate::api::views::bia(&self.catalog(), query, self.clock.now())
    }

    async fn recovery_order(
        &self,
        query: &crate::api::OrderQuery,
    ) -> Result<haven_model::catalog::plan::RecoveryOrder, InstanceError> {
        crate::api::views::order(&self.catalog(), query)
    }

    async fn graph(&self) -> Result<crate::status::CatalogGraph, InstanceError> {
        Ok(crate::status::catalog_graph(&self.catalog()))
    }

    async fn metrics(&self) -> Result<crate::metrics::MetricsSnapshot, InstanceError> {
        let status = self.status().await?;
        Ok(crate::metrics::snapshot(self.store.as_ref(), &self.catalog(), status).await?)
    }

    async fn holds(
        &self,
        query: &crate::api::HoldsQuery,
    ) -> Result<Vec<crate::api::HoldView>, InstanceError> {
        Ok(crate::holds::list(&self.catalog(), query).await?)
    }

    async fn hold_add(
        &self,
        request: &crate::api::HoldRequest,
    ) -> Result<crate::api::HoldView, InstanceError> {
        Ok(crate::holds::add(&self.catalog(), request).await?)
    }

    async fn hold_lift(
        &self,
        request: &crate::api::HoldRequest,
    ) -> Result<crate::api::HoldView, InstanceError> {
        Ok(crate::holds::lift(&self.catalog(), request).await?)
    }

    async fn recoveries(
        &self,
    ) -> Result<Vec<haven_model::recovery::run::RecoveryRun>, InstanceError> {
        Ok(crate::recovery::list(self.store.as_ref(), 100).await?)
    }

    async fn decide_step(
        &self,
        decision: &crate::api::StepDecision,
    ) -> Result<haven_model::recovery::run::RunView, InstanceError> {
        let catalog = self.catalog();
        Ok(crate::recovery::decide(&catalog, self.store.as_ref(), decision).await?)
    }

    async fn abandon_recovery(
        &self,
        request: &crate::api::AbandonRequest,
    ) -> Result<haven_model::recovery::run::RunView, InstanceError> {
        let catalog = self.catalog();
        Ok(crate::recovery::abandon(&catalog, self.store.as_ref(), request).await?)
    }

    async fn preflight(&self) -> Result<crate::api::PreflightReport, InstanceError> {
        Ok(crate::preflight::check(
            self.catalog(),
            self.settings.data_dir.clone(),
            self.store.as_ref(),
            self.clock.now(),
        )
        .await)
    }
}

/// Recorded drills, from the store: one by number, or a system's, newest
/// first.
pub(crate) async fn drills(
    store: &dyn Store,
    query: &crate::api::DrillsQuery,
) -> Result<Vec<haven_model::drills::Drill>, InstanceError> {
    let limit = if query.id.is_some() {
        u32::MAX
    } else {
        query.limit.unwrap_or(100)
    };
    let mut found = store.drills(query.system.as_deref(), limit).await?;
    if let Some(id) = query.id {
        found.retain(|d| d.id == id);
    }
    Ok(found)
}

/// Recorded service drills, from the store, newest first.
pub(crate) async fn service_drills(
    store: &dyn Store,
    query: &crate::api::ServiceDrillsQuery,
) -> Result<Vec<haven_model::drills::ServiceDrill>, InstanceError> {
    let limit = query.limit.unwrap_or(100);
    Ok(store
        .service_drills(query.service.as_deref(), limit)
        .await?)
}

/// One job, from the store.
pub(crate) async fn job(store: &dyn Store, id: i64) -> Result<Job, InstanceError> {
    store
        .job(id)
        .await?
        .ok_or_else(|| InstanceError::new(ErrorCode::NoSuchJob, format!("no job {id}")))
}

/// An alert with its deliveries, from the store.
pub(crate) async fn alert_detail(store: &dyn Store, id: i64) -> Result<AlertDetail, InstanceError> {
    let Some(alert) = store.alert(id).await? else {
        return Err(
            InstanceError::new(ErrorCode::NoSuchAlert, format!("no alert {id}"))
                .hint("`haven alerts` lists them"),
        );
    };
    let deliveries = store.deliveries(Some(id)).await?;
    Ok(AlertDetail { alert, deliveries })
}

/// Send a test message through a channel (`haven notify test`).
pub(crate) async fn notify_test(
    store: &Arc<dyn Store>,
    clock: &Arc<dyn Clock>,
    catalog: &Catalog,
    templates: &Templates,
    exporter: &Arc<Exporter>,
    channel: &str,
) -> Result<Report, InstanceError> {
    if !catalog.channels.iter().any(|c| c.id.value == channel) {
        return Err(InstanceError::new(
            ErrorCode::NoSuchChannel,
            format!("no channel {channel:?} in the catalog"),
        ));
    }
    let notifier = notifier_for(store, clock, catalog, templates, exporter, None);
    Ok(notifier
        .send(&Notification {
            alert: None,
            step: None,
            channels: vec![channel.to_string()],
        })
        .await)
}
