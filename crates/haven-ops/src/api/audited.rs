//! An instance whose every change goes through the audit log: reads are
//! passed through; each change is passed through, then recorded (who,
//! what, to what, the request's digest, the outcome) by the one audit
//! function, [`crate::audit::note`]. A data dir is wrapped by the
//! command line, a server's handle by the server, so one wrapper records
//! what the CLI and the API change.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use haven_model::access::{Token, User};
use haven_model::alerts::Alert;
use haven_model::audit::Entry;
use haven_model::drills::{Drill, ServiceDrill};
use haven_model::jobs::Job;
use haven_model::maintenance::Recorded;
use haven_model::recovery::run::{RecoveryRun, RunView};
use serde::Serialize;

use super::*;
use crate::audit::{AuditLog, AuditReport, note};
use haven_model::errors::ErrorCode;

/// An instance and its audit log (or why it has none: then reads work
/// and changes are refused, never made unrecorded).
pub struct Audited {
    inner: Box<dyn Instance>,
    log: Result<Arc<AuditLog>, String>,
    export_file: Option<PathBuf>,
    catalog_dir: PathBuf,
}

impl Audited {
    /// `inner`, its changes recorded in `log`; `export_file` holds copies
    /// of the checkpoints outside the database.
    pub fn new(
        inner: Box<dyn Instance>,
        log: Result<Arc<AuditLog>, String>,
        export_file: Option<PathBuf>,
        catalog_dir: PathBuf,
    ) -> Self {
        Audited {
            inner,
            log,
            export_file,
            catalog_dir,
        }
    }

    fn catalog(&self) -> Result<Arc<haven_model::catalog::Catalog>, InstanceError> {
        Ok(crate::instance::catalog::load_catalog(
            &self.catalog_dir,
            jiff::Timestamp::now(),
        )?)
    }

    /// The log, or why a change cannot be made without it.
    fn log(&self) -> Result<&Arc<AuditLog>, InstanceError> {
        self.log.as_ref().map_err(|why| {
            InstanceError::new(
                ErrorCode::AuditUnavailable,
                format!("changes are refused while the audit log cannot record them: {why}"),
            )
        })
    }

    async fn noted<T>(
        &self,
        by: &str,
        action: &str,
        target: String,
        request: &impl Serialize,
        result: Result<T, InstanceError>,
    ) -> Result<T, InstanceError> {
        if let Ok(log) = &self.log {
            note(log, by, action, target, request, &result).await;
        }
        result
    }
}

#[async_trait]
impl Instance for Audited {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn health(&self) -> Result<HealthReport, InstanceError> {
        self.inner.health().await
    }

    async fn status(&self) -> Result<StatusReport, InstanceError> {
        self.inner.status().await
    }

    async fn jobs(&self, query: &JobsQuery) -> Result<Vec<Job>, InstanceError> {
        self.inner.jobs(query).await
    }

    async fn job(&self, id: i64) -> Result<Job, InstanceError> {
        self.inner.job(id).await
    }

    async fn run(&self, request: &RunRequest) -> Result<RunOutcome, InstanceError> {
        self.log()?;
        let result = self.inner.run(request).await;
        let target = format!("system:{}", request.system);
        self.noted(&request.by.to_string(), "job.run", target, request, result)
            .await
    }

    async fn alerts(&self, query: &AlertsQuery) -> Result<Vec<Alert>, InstanceError> {
        self.inner.alerts(query).await
    }

    async fn alert(&self, id: i64) -> Result<AlertDetail, InstanceError> {
        self.inner.alert(id).await
    }

    async fn acknowledge(&self, action: &AlertAction) -> Result<Alert, InstanceError> {
        self.log()?;
        let result = self.inner.acknowledge(action).await;
        let target = format!("alert:{}", action.id);
        self.noted(
            &action.by.to_string(),
            "alert.acknowledge",
            target,
            action,
            result,
        )
        .await
    }

    async fn resolve(&self, action: &AlertAction) -> Result<Alert, InstanceError> {
        self.log()?;
        let result = self.inner.resolve(action).await;
        let target = format!("alert:{}", action.id);
        self.noted(
            &action.by.to_string(),
            "alert.resolve",
            target,
            action,
            result,
        )
        .await
    }

    async fn windows(&self) -> Result<Vec<WindowView>, InstanceError> {
        self.inner.windows().await
    }

    async fn add_window(&self, request: &AddWindow) -> Result<Recorded, InstanceError> {
        self.log()?;
        let result = self.inner.add_window(request).await;
        let target = match &result {
            Ok(window) => format!("maintenance:{}", window.id),
            Err(_) => "maintenance".into(),
        };
        self.noted(
            &request.by.to_string(),
            "maintenance.add",
            target,
            request,
            result,
        )
        .await
    }

    async fn end_window(&self, request: &EndWindow) -> Result<Recorded, InstanceError> {
        self.log()?;
        let result = self.inner.end_window(request).await;
        let target = format!("maintenance:{}", request.id);
        self.noted(
            &request.by.to_string(),
            "maintenance.end",
            target,
            request,
            result,
        )
        .await
    }

    async fn notify_test(&self, channel: &str) -> Result<Report, InstanceError> {
        self.inner.notify_test(channel).await
    }

    async fn preflight(&self) -> Result<PreflightReport, InstanceError> {
        self.inner.preflight().await
    }

    async fn drill(&self, request: &DrillRequest) -> Result<DrillOutcome, InstanceError> {
        self.log()?;
        let result = self.inner.drill(request).await;
        let target = format!("system:{}", request.system);
        self.noted(&request.by, "drill.run", target, request, result)
            .await
    }

    async fn drills(&self, query: &DrillsQuery) -> Result<Vec<Drill>, InstanceError> {
        self.inner.drills(query).await
    }

    async fn drill_service(
        &self,
        request: &ServiceDrillRequest,
    ) -> Result<ServiceDrillOutcome, InstanceError> {
        self.log()?;
        let result = self.inner.drill_service(request).await;
        let target = format!("service:{}", request.service);
        self.noted(&request.by, "drill.run", target, request, result)
            .await
    }

    async fn service_drills(
        &self,
        query: &ServiceDrillsQuery,
    ) -> Result<Vec<ServiceDrill>, InstanceError> {
        self.inner.service_drills(query).await
    }

    async fn recovery_forecast(
        &self,
        request: &ForecastRequest,
    ) -> Result<haven_model::recovery::Forecast, InstanceError> {
        self.inner.recovery_forecast(request).await
    }

    async fn recover(&self, request: &RecoverRequest) -> Result<RunView, InstanceError> {
        self.log()?;
        let result = self.inner.recover(request).await;
        let target = match &result {
            Ok(view) => format!("recovery:{}", view.run.id),
            Err(_) => "recovery".into(),
        };
        self.noted(&request.by, "recovery.start", target, request, result)
            .await
    }

    async fn resume_recovery(&self, request: &ResumeRequest) -> Result<RunView, InstanceError> {
        self.log()?;
        let result = self.inner.resume_recovery(request).await;
        let target = format!("recovery:{}", request.run);
        self.noted(&request.by, "recovery.resume", target, request, result)
            .await
    }

    async fn recovery(&self, id: i64) -> Result<RunView, InstanceError> {
        self.inner.recovery(id).await
    }

    async fn recoveries(&self) -> Result<Vec<RecoveryRun>, InstanceError> {
        self.inner.recoveries().await
    }

    async fn decide_step(&self, decision: &StepDecision) -> Result<RunView, InstanceError> {
        self.log()?;
        let result = self.inner.decide_step(decision).await;
        let action = format!("recovery.{}", decision.decision.as_str());
        let target = format!("recovery:{}:step:{}", decision.run, decision.step);
        self.noted(&decision.by, &action, target, decision, result)
            .await
    }

    async fn abandon_recovery(&self, request: &AbandonRequest) -> Result<RunView, InstanceError> {
        self.log()?;
        let result = self.inner.abandon_recovery(request).await;
        let target = format!("recovery:{}", request.run);
        self.noted(&request.by, "recovery.abandon", target, request, result)
            .await
    }

    async fn user_add(&self, request: &NewUser) -> Result<User, InstanceError> {
        self.log()?;
        let result = self.inner.user_add(request).await;
        let target = format!("user:{}", request.name);
        self.noted(&request.by, "user.add", target, &request.redacted(), result)
            .await
    }

    async fn users(&self) -> Result<Vec<User>, InstanceError> {
        self.inner.users().await
    }

    async fn user_change(&self, change: &UserChange) -> Result<User, InstanceError> {
        self.log()?;
        let result = self.inner.user_change(change).await;
        let action = if change.password.is_some() {
            "user.reset-password"
        } else {
            "user.disable"
        };
        let target = format!("user:{}", change.name);
        self.noted(&change.by, action, target, &change.redacted(), result)
            .await
    }

    async fn token_create(&self, request: &NewToken) -> Result<CreatedToken, InstanceError> {
        self.log()?;
        let result = self.inner.token_create(request).await;
        let target = match &result {
            Ok(created) => format!("token:{}", created.token.id),
            Err(_) => "token".into(),
        };
        self.noted(&request.by, "token.create", target, request, result)
            .await
    }

    async fn tokens(&self) -> Result<Vec<Token>, InstanceError> {
        self.inner.tokens().await
    }

    async fn token_revoke(&self, request: &TokenRevocation) -> Result<Token, InstanceError> {
        self.log()?;
        let result = self.inner.token_revoke(request).await;
        let target = format!("token:{}", request.id);
        self.noted(&request.by, "token.revoke", target, request, result)
            .await
    }

    async fn authenticate(&self, secret: &str) -> Result<Option<Identity>, InstanceError> {
        self.inner.authenticate(secret).await
    }

    async fn audit_verify(
        &self,
        request: &AuditVerifyRequest,
    ) -> Result<AuditReport, InstanceError> {
        let log = self.log()?;
        let export = self.export_file.as_deref();
        if request.against.is_empty() {
            return Ok(crate::audit::report(log, export, None).await?);
        }
        let catalog = self.catalog()?;
        let all = request.against.iter().any(|a| a == "all");
        let ids: &[String] = if all { &[] } else { &request.against };
        Ok(crate::audit::report(log, export, Some((&catalog, ids))).await?)
    }

    async fn audit_anchor(&self) -> Result<Vec<crate::audit::Anchoring>, InstanceError> {
        let catalog = self.catalog()?;
        Ok(self.log()?.anchor(&catalog).await?)
    }

    async fn audit_export(
        &self,
        query: &AuditExportQuery,
    ) -> Result<haven_model::audit::Export, InstanceError> {
        self.log()?
            .export(query.from.unwrap_or(0), query.to)
            .await
            .map_err(InstanceError::from)
    }

    async fn audit_entries(&self, query: &AuditQuery) -> Result<Vec<Entry>, InstanceError> {
        self.log()?
            .entries(query.from.unwrap_or(0), query.limit.unwrap_or(1000))
            .await
            .map_err(InstanceError::from)
    }
}
