//! A data dir without a running server, as an [`Instance`]: reads go to
//! its database and catalog; `run` runs the backups in the foreground
//! (holding the data dir's lock meanwhile); changes are recorded and
//! exported as a server would.

use std::sync::Arc;

use async_trait::async_trait;
use haven_model::alerts::Alert;
use haven_model::catalog::Catalog;
use haven_model::errors::ErrorCode;
use haven_model::jobs::Job;
use haven_model::maintenance::Recorded;
use haven_store::Store;

use crate::api::{
    AddWindow, AlertAction, AlertDetail, AlertsQuery, EndWindow, HealthReport, Instance,
    InstanceError, JobsQuery, RESOLVED_BY_HAND, RunOutcome, RunRequest, WindowView,
};
use crate::clock::{Clock, SystemClock};
use crate::delivery::export::Exporter;
use crate::delivery::notify::{Report, Templates};
use crate::instance::catalog::load_catalog;
use crate::instance::lock::lock_data_dir;
use crate::instance::settings::Settings;
use crate::jobs::runner::EngineRunner;
use crate::server::{alert_detail, drills, job, notify_test, run_foreground, service_drills};
use crate::status::{self, StatusReport};
use crate::watch::{self, windows};
use haven_model::tasks::plan;

/// A data dir no server holds.
pub struct DataDir {
    settings: Settings,
    store: Arc<dyn Store>,
}

impl DataDir {
    /// Open a data dir's database.
    pub async fn open(settings: Settings) -> Result<DataDir, InstanceError> {
        if !settings.data_dir.is_dir() {
            return Err(InstanceError::new(
                ErrorCode::NoDataDir,
                format!("no Haven data dir at {}", settings.data_dir.display()),
            )
            .hint("pass --data-dir (or HAVEN_DATA_DIR), or create one with `haven server` or `haven demo`"));
        }
        let store = haven_store::open(&settings.database).await.map_err(|e| {
            InstanceError::new(
                ErrorCode::StoreUnavailable,
                format!(
                    "cannot open the database of {}: {e}",
                    settings.data_dir.display()
                ),
            )
        })?;
        Ok(DataDir {
            settings: settings.with_server_catalog(),
            store: Arc::from(store),
        })
    }

    /// This data dir with every change recorded in its audit log (a log
    /// that cannot be opened, a data dir another user owns: reads work,
    /// changes are refused).
    pub async fn audited(self) -> Result<crate::api::Audited, InstanceError> {
        let exporter = Arc::new(Exporter::start(&self.settings.export));
        let log = crate::audit::AuditLog::open(
            &self.settings.data_dir,
            Arc::clone(&self.store),
            Some(exporter),
        )
        .await
        .map(Arc::new)
        .map_err(|e| e.to_string());
        let (settings, store) = (self.settings.clone(), Arc::clone(&self.store));
        Ok(crate::api::Audited::new(
            Arc::new(self),
            log,
            &settings,
            store,
        ))
    }

    fn catalog(&self) -> Result<Arc<Catalog>, InstanceError> {
        Ok(load_catalog(&self.settings.catalog, SystemClock.now())?)
    }

    /// Run `change` with an exporter of the instance's events; the
    /// exporter writes what was queued when the change drops it.
    async fn exporting<T, F>(&self, change: impl FnOnce(Arc<Exporter>) -> F) -> T
    where
        F: std::future::Future<Output = T>,
    {
        change(Arc::new(Exporter::start(&self.settings.export))).await
    }
}

#[async_trait]
impl Instance for DataDir {
    fn describe(&self) -> String {
        format!("the data dir {}", self.settings.data_dir.display())
    }

    async fn health(&self) -> Result<HealthReport, InstanceError> {
        Ok(HealthReport {
            status: "ok".into(),
            ..HealthReport::default()
        })
    }

    async fn status(&self) -> Result<StatusReport, InstanceError> {
        let catalog = self.catalog()?;
        let (plan, _) = plan(&catalog, &self.settings.prune);
        let states = self.store.set_states().await?;
        let drills = self.store.drills(None, u32::MAX).await?;
        let sizes = crate::status::system_sizes(self.store.as_ref()).await?;
        Ok(status::report(
            &catalog,
            &plan,
            &states,
            &self.settings,
            SystemClock.now(),
            "data-dir",
        )
        .with_readiness(&catalog, &drills, &sizes))
    }

    async fn jobs(&self, query: &JobsQuery) -> Result<Vec<Job>, InstanceError> {
        Ok(self.store.jobs(&query.filter()).await?)
    }

    async fn job(&self, id: i64) -> Result<Job, InstanceError> {
        job(self.store.as_ref(), id).await
    }

    /// No server: the system's backups (and their copies and retention)
    /// run here, now, holding the data dir so no server starts meanwhile.
    async fn run(&self, request: &RunRequest) -> Result<RunOutcome, InstanceError> {
        let _lock = lock_data_dir(&self.settings.data_dir)?;
        let ran = run_foreground(
            self.settings.clone(),
            Arc::clone(&self.store),
            Arc::new(SystemClock),
            Arc::new(EngineRunner),
            self.catalog()?,
            &request.system,
        )
        .await?;
        ran.map(RunOutcome::Ran)
            .ok_or_else(|| InstanceError::no_such_system(&request.system))
    }

    async fn alerts(&self, query: &AlertsQuery) -> Result<Vec<Alert>, InstanceError> {
        Ok(self.store.alerts(&query.filter()).await?)
    }

    async fn alert(&self, id: i64) -> Result<AlertDetail, InstanceError> {
        alert_detail(self.store.as_ref(), id).await
    }

    async fn acknowledge(&self, action: &AlertAction) -> Result<Alert, InstanceError> {
        let now = SystemClock.now();
        self.exporting(|exporter| async move {
            watch::acknowledge(self.store.as_ref(), &exporter, action.id, &action.by, now).await
        })
        .await
        .map_err(InstanceError::from)
    }

    async fn resolve(&self, action: &AlertAction) -> Result<Alert, InstanceError> {
        let now = SystemClock.now();
        let reason = action.reason.as_deref().unwrap_or(RESOLVED_BY_HAND);
        self.exporting(|exporter| async move {
            watch::resolve(
                self.store.as_ref(),
                &exporter,
                action.id,
                &action.by,
                reason,
                now,
            )
            .await
        })
        .await
        .map_err(InstanceError::from)
    }

    async fn windows(&self) -> Result<Vec<WindowView>, InstanceError> {
        let now = SystemClock.now();
        let catalog = self.catalog()?;
        Ok(windows::list(
            &catalog,
            &self.store.maintenance(now).await?,
            now,
        ))
    }

    async fn add_window(&self, request: &AddWindow) -> Result<Recorded, InstanceError> {
        let now = SystemClock.now();
        let catalog = self.catalog()?;
        self.exporting(|exporter| async move {
            windows::add(
                self.store.as_ref(),
                &exporter,
                &catalog,
                &request.window,
                &request.by,
                now,
            )
            .await
        })
        .await
        .map_err(InstanceError::from)
    }

    async fn end_window(&self, request: &EndWindow) -> Result<Recorded, InstanceError> {
        let now = SystemClock.now();
        let catalog = self.catalog()?;
        self.exporting(|exporter| async move {
            windows::end(
                self.store.as_ref(),
                &exporter,
                &catalog,
                &request.id,
                &request.by,
                now,
            )
            .await
        })
        .await
        .map_err(InstanceError::from)
    }

    async fn notify_test(&self, channel: &str) -> Result<Report, InstanceError> {
        let catalog = self.catalog()?;
        let templates = Templates::load(&self.settings.data_dir)
            .map_err(|e| InstanceError::new(ErrorCode::SettingsInvalid, e))?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        self.exporting(|exporter| async move {
            notify_test(
                &self.store,
                &clock,
                &catalog,
                &templates,
                &exporter,
                channel,
            )
            .await
        })
        .await
    }

    async fn drill(
        &self,
        request: &crate::api::DrillRequest,
    ) -> Result<crate::api::DrillOutcome, InstanceError> {
        Ok(crate::drills::run_and_record(
            self.catalog()?,
            self.settings.data_dir.clone(),
            request.clone(),
            SystemClock.now(),
            self.store.as_ref(),
        )
        .await?)
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
        Ok(crate::drills::run_service_and_record(
            self.catalog()?,
            self.settings.data_dir.clone(),
            request.clone(),
            SystemClock.now(),
            self.store.as_ref(),
        )
        .await?)
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
        let catalog = self.catalog()?;
        Ok(crate::recovery::dry_run(&catalog, self.store.as_ref(), request).await?)
    }

    async fn recover(
        &self,
        request: &crate::api::RecoverRequest,
    ) -> Result<haven_model::recovery::run::RunView, InstanceError> {
        Ok(crate::recovery::start(
            self.catalog()?,
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
            self.catalog()?,
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
        let catalog = self.catalog()?;
        Ok(crate::recovery::view(&catalog, self.store.as_ref(), id).await?)
    }

    async fn service(&self, id: &str) -> Result<crate::status::ServiceDetail, InstanceError> {
        status::service_detail(&*self.catalog()?, id, SystemClock.now())
            .ok_or_else(|| InstanceError::no_such_service(id))
    }

    async fn findings(&self) -> Result<Vec<status::FindingView>, InstanceError> {
        Ok(status::findings(&*self.catalog()?, SystemClock.now()))
    }

    async fn bia(
        &self,
        query: &crate::api::BiaQuery,
    ) -> Result<Vec<haven_model::catalog::bia::BiaRow>, InstanceError> {
        crate::api::views::bia(&*self.catalog()?, query, SystemClock.now())
    }

    async fn recovery_order(
        &self,
        query: &crate::api::OrderQuery,
    ) -> Result<haven_model::catalog::plan::RecoveryOrder, InstanceError> {
        crate::api::views::order(&*self.catalog()?, query)
    }

    async fn graph(&self) -> Result<status::CatalogGraph, InstanceError> {
        Ok(status::catalog_graph(&*self.catalog()?))
    }

    async fn metrics(&self) -> Result<crate::metrics::MetricsSnapshot, InstanceError> {
        let status = self.status().await?;
        Ok(crate::metrics::snapshot(self.store.as_ref(), &*self.catalog()?, status).await?)
    }

    async fn holds(
        &self,
        query: &crate::api::HoldsQuery,
    ) -> Result<Vec<crate::api::HoldView>, InstanceError> {
        Ok(crate::holds::list(&*self.catalog()?, query).await?)
    }

    async fn hold_add(
        &self,
        request: &crate::api::HoldRequest,
    ) -> Result<crate::api::HoldView, InstanceError> {
        Ok(crate::holds::add(&*self.catalog()?, request).await?)
    }

    async fn hold_lift(
        &self,
        request: &crate::api::HoldRequest,
    ) -> Result<crate::api::HoldView, InstanceError> {
        Ok(crate::holds::lift(&*self.catalog()?, request).await?)
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
        let catalog = self.catalog()?;
        Ok(crate::recovery::decide(&catalog, self.store.as_ref(), decision).await?)
    }

    async fn abandon_recovery(
        &self,
        request: &crate::api::AbandonRequest,
    ) -> Result<haven_model::recovery::run::RunView, InstanceError> {
        let catalog = self.catalog()?;
        Ok(crate::recovery::abandon(&catalog, self.store.as_ref(), request).await?)
    }

    async fn preflight(&self) -> Result<crate::api::PreflightReport, InstanceError> {
        let catalog = self.catalog()?;
        Ok(crate::preflight::check(
            catalog,
            self.settings.data_dir.clone(),
            self.store.as_ref(),
            SystemClock.now(),
        )
        .await)
    }
}
