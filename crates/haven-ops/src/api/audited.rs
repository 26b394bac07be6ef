//! An instance whose every change goes through the audit log: reads are
//! passed through; each change is passed through, then recorded (who,
//! what, to what, the request's digest, the outcome) by the one audit
//! function, [`crate::audit::note`]. A data dir is wrapped by the
//! command line, a server's handle by the server, so one wrapper records
//! what the CLI and the API change.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use haven_model::access::Permission;
use haven_model::access::{Token, User};
use haven_model::alerts::Alert;
use haven_model::approval::ApprovalRequest;
use haven_model::audit::Entry;
use haven_model::drills::{Drill, ServiceDrill};
use haven_model::jobs::Job;
use haven_model::maintenance::Recorded;
use haven_model::recovery::run::{RecoveryRun, RunView};
use haven_store::Store;
use serde::Serialize;

use super::*;
use crate::access::{
    Caller, Gated, On, RequestDecision, RequestsQuery, Sealer, enrol_totp, login, logout, requests,
    resume, sso,
};
use crate::audit::{Action, AuditLog, AuditReport, note};
use crate::clock::{Clock, SystemClock};
use crate::instance::{AccessSettings, Settings};
use haven_model::errors::ErrorCode;

/// An instance, the caller acting on it, and its audit log (or why it
/// has none: then reads work and changes are refused, never made
/// unrecorded).
#[derive(Clone)]
pub struct Audited {
    pub(super) inner: Arc<dyn Instance>,
    log: Result<Arc<AuditLog>, String>,
    export_file: Option<PathBuf>,
    catalog_dir: PathBuf,
    data_dir: PathBuf,
    pub(super) store: Arc<dyn Store>,
    pub(super) access: AccessSettings,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) caller: Caller,
}

impl Audited {
    /// `inner` (whose database is `store`), its changes recorded in
    /// `log`, acting as the instance's owner from the command line until
    /// told otherwise ([`Audited::acting`]).
    pub fn new(
        inner: Arc<dyn Instance>,
        log: Result<Arc<AuditLog>, String>,
        settings: &Settings,
        store: Arc<dyn Store>,
    ) -> Self {
        let owner = format!("local:{}", haven_engine::host::username());
        Audited {
            inner,
            log,
            export_file: settings.export.file.clone(),
            catalog_dir: settings.catalog.clone(),
            data_dir: settings.data_dir.clone(),
            store,
            access: settings.access.clone(),
            clock: Arc::new(SystemClock),
            caller: Caller::owner(owner, "cli"),
        }
    }

    /// Change a user in the store (the change itself: checks and
    /// recording are the caller's).
    pub(super) async fn change_user(&self, change: &UserChange) -> Result<User, InstanceError> {
        Ok(crate::access::change_user(self.store.as_ref(), change).await?)
    }

    /// Revoke a token in the store (the change itself).
    pub(super) async fn revoke_token(
        &self,
        request: &TokenRevocation,
    ) -> Result<Token, InstanceError> {
        Ok(crate::access::revoke_token(self.store.as_ref(), request).await?)
    }

    /// Is single sign-on set up (`[access.oidc]`)?
    pub fn sso_enabled(&self) -> bool {
        self.access.oidc.is_some()
    }

    /// Who acts.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The same, reading time from `clock` (tests move it by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same instance, `caller` acting (the API: whoever the request's
    /// token or session proved).
    pub fn acting(&self, caller: Caller) -> Audited {
        Audited {
            caller,
            ..self.clone()
        }
    }

    pub(super) fn catalog(&self) -> Result<Arc<haven_model::catalog::Catalog>, InstanceError> {
        Ok(crate::instance::catalog::load_catalog(
            &self.catalog_dir,
            self.clock.now(),
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

    /// Record a change as `by`'s (with the caller's roles, from the
    /// caller's origin unless `origin` says otherwise).
    pub(super) async fn record_as(
        &self,
        by: &str,
        action: &str,
        target: String,
        request: &impl Serialize,
        outcome: &str,
        origin: Option<&str>,
    ) {
        let Ok(log) = &self.log else {
            return;
        };
        let role = (!self.caller.roles.is_empty()).then(|| self.caller.role_text());
        let action = Action {
            actor: by.to_string(),
            role,
            action: action.to_string(),
            target,
            origin: origin.unwrap_or(&self.caller.origin).to_string(),
            outcome: outcome.to_string(),
            digest: Some(haven_model::audit::digest_of(request)),
        };
        note(log, action).await;
    }

    pub(super) async fn noted<T>(
        &self,
        by: &str,
        action: &str,
        target: String,
        request: &impl Serialize,
        result: Result<T, InstanceError>,
    ) -> Result<T, InstanceError> {
        let outcome = match &result {
            Ok(_) => "success",
            Err(e) if e.code == ErrorCode::ApprovalRequired => "pending-approval",
            Err(_) => "failed",
        };
        let by = self.who(by);
        self.record_as(&by, action, target, request, outcome, None)
            .await;
        result
    }

    /// Who acts: the identity a token proved, else (the instance's owner)
    /// who the request says, with the name declared beside it.
    pub(super) fn who(&self, by: &str) -> String {
        let proved = ["user:", "automation:"]
            .iter()
            .any(|p| self.caller.actor.starts_with(p));
        if proved {
            self.caller.actor.clone()
        } else {
            by.to_string()
        }
    }

    /// The same caller in other roles (a login is recorded in the roles
    /// of the account, not of the login form).
    fn as_roles(&self, roles: Vec<haven_model::access::Role>) -> Audited {
        self.acting(Caller {
            roles,
            ..self.caller.clone()
        })
    }

    /// The single sign-on settings, or why there are none.
    fn oidc(&self) -> Result<&crate::instance::OidcSettings, InstanceError> {
        self.access.oidc.as_ref().ok_or_else(|| {
            InstanceError::new(
                ErrorCode::LoginFailed,
                "single sign-on is not set up: add [access.oidc] to haven.toml (docs/access.md)",
            )
        })
    }

    /// The scope of an alert: its service, else its system (an alert
    /// that cannot be read: nothing, and the change fails, recorded).
    async fn alert_scope(&self, id: i64) -> Result<On, InstanceError> {
        let Ok(detail) = self.inner.alert(id).await else {
            return Ok(On::Services(Vec::new()));
        };
        let subject = detail.alert.subject;
        Ok(match (subject.service, subject.system) {
            (Some(service), _) => On::Services(vec![service]),
            (None, Some(system)) => On::System(system),
            (None, None) => On::Instance,
        })
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

    async fn service(&self, id: &str) -> Result<crate::status::ServiceDetail, InstanceError> {
        self.inner.service(id).await
    }

    async fn findings(&self) -> Result<Vec<crate::status::FindingView>, InstanceError> {
        self.inner.findings().await
    }

    async fn bia(
        &self,
        query: &crate::api::BiaQuery,
    ) -> Result<Vec<haven_model::catalog::bia::BiaRow>, InstanceError> {
        self.inner.bia(query).await
    }

    async fn recovery_order(
        &self,
        query: &crate::api::OrderQuery,
    ) -> Result<haven_model::catalog::plan::RecoveryOrder, InstanceError> {
        self.inner.recovery_order(query).await
    }

    async fn graph(&self) -> Result<crate::status::CatalogGraph, InstanceError> {
        self.inner.graph().await
    }

    async fn metrics(&self) -> Result<crate::metrics::MetricsSnapshot, InstanceError> {
        self.inner.metrics().await
    }

    async fn jobs(&self, query: &JobsQuery) -> Result<Vec<Job>, InstanceError> {
        self.inner.jobs(query).await
    }

    async fn job(&self, id: i64) -> Result<Job, InstanceError> {
        self.inner.job(id).await
    }

    async fn run(&self, request: &RunRequest) -> Result<RunOutcome, InstanceError> {
        self.log()?;
        let target = format!("system:{}", request.system);
        let on = On::System(request.system.clone());
        self.permit(Permission::Operate, on, "job.run", &target)
            .await?;
        let result = self.inner.run(request).await;
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
        let target = format!("alert:{}", action.id);
        let on = self.alert_scope(action.id).await?;
        self.permit(Permission::Operate, on, "alert.acknowledge", &target)
            .await?;
        let result = self.inner.acknowledge(action).await;
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
        let target = format!("alert:{}", action.id);
        let on = self.alert_scope(action.id).await?;
        self.permit(Permission::Operate, on, "alert.resolve", &target)
            .await?;
        let result = self.inner.resolve(action).await;
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
        self.permit(
            Permission::Operate,
            On::Instance,
            "maintenance.add",
            "maintenance",
        )
        .await?;
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
        let target = format!("maintenance:{}", request.id);
        self.permit(
            Permission::Operate,
            On::Instance,
            "maintenance.end",
            &target,
        )
        .await?;
        let result = self.inner.end_window(request).await;
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
        self.log()?;
        let target = format!("channel:{channel}");
        self.permit(Permission::Operate, On::Instance, "channel.test", &target)
            .await?;
        let result = self.inner.notify_test(channel).await;
        let by = self.caller.actor.clone();
        self.noted(&by, "channel.test", target, &channel, result)
            .await
    }

    async fn preflight(&self) -> Result<PreflightReport, InstanceError> {
        self.inner.preflight().await
    }

    async fn drill(&self, request: &DrillRequest) -> Result<DrillOutcome, InstanceError> {
        self.log()?;
        let target = format!("system:{}", request.system);
        let on = On::System(request.system.clone());
        self.permit(Permission::Operate, on, "drill.run", &target)
            .await?;
        let result = self.inner.drill(request).await;
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
        let target = format!("service:{}", request.service);
        let on = On::Services(vec![request.service.clone()]);
        self.permit(Permission::Operate, on, "drill.run", &target)
            .await?;
        let result = self.inner.drill_service(request).await;
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
        let services = self.recovery_services(&request.selection)?;
        let on = On::Services(services.clone());
        self.permit(Permission::Restore, on, "recovery.start", "recovery")
            .await?;
        let request = &RecoverRequest {
            by: self.who(&request.by),
            ..request.clone()
        };
        let gated = self.recovery_gated(request, &services)?;
        let result = self.four_eyes(gated, self.inner.recover(request)).await;
        let target = match &result {
            Ok(view) => format!("recovery:{}", view.run.id),
            Err(_) => "recovery".into(),
        };
        self.noted(&request.by, "recovery.start", target, request, result)
            .await
    }

    async fn resume_recovery(&self, request: &ResumeRequest) -> Result<RunView, InstanceError> {
        self.log()?;
        let target = format!("recovery:{}", request.run);
        let on = self.run_services(request.run).await?;
        self.permit(Permission::Restore, on, "recovery.resume", &target)
            .await?;
        let result = self.inner.resume_recovery(request).await;
        self.noted(&request.by, "recovery.resume", target, request, result)
            .await
    }

    async fn recovery(&self, id: i64) -> Result<RunView, InstanceError> {
        self.inner.recovery(id).await
    }

    async fn recoveries(&self) -> Result<Vec<RecoveryRun>, InstanceError> {
        self.inner.recoveries().await
    }

    async fn holds(&self, query: &HoldsQuery) -> Result<Vec<HoldView>, InstanceError> {
        self.inner.holds(query).await
    }

    async fn hold_add(&self, request: &HoldRequest) -> Result<HoldView, InstanceError> {
        self.log()?;
        let target = format!(
            "repository:{} snapshot:{}",
            request.repository, request.snapshot
        );
        self.permit(Permission::Operate, On::Instance, "hold.add", &target)
            .await?;
        let result = self.inner.hold_add(request).await;
        self.noted(&request.by, "hold.add", target, request, result)
            .await
    }

    async fn hold_lift(&self, request: &HoldRequest) -> Result<HoldView, InstanceError> {
        self.log()?;
        let target = format!(
            "repository:{} snapshot:{}",
            request.repository, request.snapshot
        );
        self.permit(Permission::Operate, On::Instance, "hold.lift", &target)
            .await?;
        let request = &HoldRequest {
            by: self.who(&request.by),
            ..request.clone()
        };
        let gated = Some(Gated {
            action: "hold.lift".into(),
            target: target.clone(),
            because: "lifting a legal hold lets the snapshot be removed".into(),
            payload: serde_json::to_value(request).unwrap_or_default(),
            reason: Some(request.reason.clone()),
        });
        let result = self.four_eyes(gated, self.inner.hold_lift(request)).await;
        self.noted(&request.by, "hold.lift", target, request, result)
            .await
    }

    async fn decide_step(&self, decision: &StepDecision) -> Result<RunView, InstanceError> {
        self.log()?;
        let action = format!("recovery.{}", decision.decision.as_str());
        let target = format!("recovery:{}:step:{}", decision.run, decision.step);
        let on = self.run_services(decision.run).await?;
        self.permit(Permission::Restore, on, &action, &target)
            .await?;
        let result = self.inner.decide_step(decision).await;
        self.noted(&decision.by, &action, target, decision, result)
            .await
    }

    async fn abandon_recovery(&self, request: &AbandonRequest) -> Result<RunView, InstanceError> {
        self.log()?;
        let target = format!("recovery:{}", request.run);
        let on = self.run_services(request.run).await?;
        self.permit(Permission::Restore, on, "recovery.abandon", &target)
            .await?;
        let result = self.inner.abandon_recovery(request).await;
        self.noted(&request.by, "recovery.abandon", target, request, result)
            .await
    }

    async fn user_add(&self, request: &NewUser) -> Result<User, InstanceError> {
        self.log()?;
        let target = format!("user:{}", request.name);
        self.permit(Permission::Admin, On::Instance, "user.add", &target)
            .await?;
        let result = crate::access::add_user(self.store.as_ref(), request)
            .await
            .map_err(InstanceError::from);
        self.noted(&request.by, "user.add", target, &request.redacted(), result)
            .await
    }

    async fn users(&self) -> Result<Vec<User>, InstanceError> {
        self.permit(Permission::Admin, On::Instance, "user.list", "users")
            .await?;
        Ok(crate::access::users(self.store.as_ref()).await?)
    }

    async fn user_change(&self, change: &UserChange) -> Result<User, InstanceError> {
        self.log()?;
        let action = match change {
            UserChange {
                password: Some(_), ..
            } => "user.reset-password",
            UserChange {
                roles: None,
                teams: None,
                ..
            } => "user.disable",
            _ => "user.roles",
        };
        let target = format!("user:{}", change.name);
        self.permit(Permission::Admin, On::Instance, action, &target)
            .await?;
        let gated = (action == "user.disable").then(|| Gated {
            action: action.into(),
            target: target.clone(),
            because: "disabling a user takes away who may act and approve".into(),
            payload: serde_json::to_value(change.redacted()).unwrap_or_default(),
            reason: None,
        });
        let result = self.four_eyes(gated, self.change_user(change)).await;
        self.noted(&change.by, action, target, &change.redacted(), result)
            .await
    }

    async fn token_create(&self, request: &NewToken) -> Result<CreatedToken, InstanceError> {
        self.log()?;
        self.permit(Permission::Admin, On::Instance, "token.create", "token")
            .await?;
        let result = crate::access::create_token(self.store.as_ref(), request)
            .await
            .map_err(InstanceError::from);
        let target = match &result {
            Ok(created) => format!("token:{}", created.token.id),
            Err(_) => "token".into(),
        };
        self.noted(&request.by, "token.create", target, request, result)
            .await
    }

    async fn tokens(&self) -> Result<Vec<Token>, InstanceError> {
        self.permit(Permission::Admin, On::Instance, "token.list", "tokens")
            .await?;
        Ok(crate::access::tokens(self.store.as_ref()).await?)
    }

    async fn token_revoke(&self, request: &TokenRevocation) -> Result<Token, InstanceError> {
        self.log()?;
        let target = format!("token:{}", request.id);
        self.permit(Permission::Admin, On::Instance, "token.revoke", &target)
            .await?;
        // Revoking one's own token needs nobody else.
        let own = self.caller.user.is_some()
            && crate::access::tokens(self.store.as_ref())
                .await?
                .iter()
                .any(|t| {
                    t.id == request.id
                        && t.owner
                            == haven_model::access::Owner::User(
                                self.caller.user.clone().unwrap_or_default(),
                            )
                });
        let gated = (!own).then(|| Gated {
            action: "token.revoke".into(),
            target: target.clone(),
            because: "revoking a token takes away who may act".into(),
            payload: serde_json::to_value(request).unwrap_or_default(),
            reason: None,
        });
        let result = self.four_eyes(gated, self.revoke_token(request)).await;
        self.noted(&request.by, "token.revoke", target, request, result)
            .await
    }

    async fn authenticate(&self, secret: &str) -> Result<Option<Identity>, InstanceError> {
        Ok(crate::access::authenticate(&self.store, secret).await?)
    }

    async fn audit_verify(
        &self,
        request: &AuditVerifyRequest,
    ) -> Result<AuditReport, InstanceError> {
        let log = self.log()?;
        self.permit(Permission::Audit, On::Instance, "audit.verify", "audit")
            .await?;
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
        self.permit(Permission::Audit, On::Instance, "audit.anchor", "audit")
            .await?;
        let catalog = self.catalog()?;
        Ok(self.log()?.anchor(&catalog).await?)
    }

    async fn audit_export(
        &self,
        query: &AuditExportQuery,
    ) -> Result<haven_model::audit::Export, InstanceError> {
        self.permit(Permission::Audit, On::Instance, "audit.export", "audit")
            .await?;
        self.log()?
            .export(query.from.unwrap_or(0), query.to)
            .await
            .map_err(InstanceError::from)
    }

    async fn audit_entries(&self, query: &AuditQuery) -> Result<Vec<Entry>, InstanceError> {
        self.permit(Permission::Audit, On::Instance, "audit.read", "audit")
            .await?;
        let log = self.log()?;
        let filter = query.filter();
        let limit = query.limit.unwrap_or(1000);
        let found = if query.newest {
            log.search(&filter, limit).await
        } else if filter.is_empty() {
            log.entries(query.from.unwrap_or(0), limit).await
        } else {
            log.search_from(&filter, query.from.unwrap_or(0), limit)
                .await
        };
        found.map_err(InstanceError::from)
    }

    async fn login(&self, request: &LoginRequest) -> Result<Granted, InstanceError> {
        self.log()?;
        let sealer = Sealer::open(&self.data_dir)?;
        let now = self.clock.now();
        let origin = self.caller.origin.clone();
        let result = login(
            self.store.as_ref(),
            &sealer,
            &self.access,
            now,
            request,
            &origin,
        )
        .await
        .map_err(InstanceError::from);
        let (by, roles) = match &result {
            Ok(granted) => (
                format!("user:{} ({})", granted.user.name, granted.session.id),
                granted.user.roles.clone(),
            ),
            Err(_) => (format!("login:{}", printable(&request.name)), Vec::new()),
        };
        let outcome = if result.is_ok() { "success" } else { "refused" };
        let target = format!("user:{}", printable(&request.name));
        self.as_roles(roles)
            .record_as(
                &by,
                "session.login",
                target,
                &request.redacted(),
                outcome,
                None,
            )
            .await;
        result
    }

    async fn oidc_begin(&self) -> Result<OidcStart, InstanceError> {
        let oidc = self.oidc()?;
        let sealer = Sealer::open(&self.data_dir)?;
        Ok(sso::begin(oidc, &sealer, self.clock.now()).await?)
    }

    async fn oidc_finish(&self, callback: &OidcCallback) -> Result<Granted, InstanceError> {
        self.log()?;
        let oidc = self.oidc()?;
        let sealer = Sealer::open(&self.data_dir)?;
        let now = self.clock.now();
        let result = sso::finish(
            self.store.as_ref(),
            &sealer,
            &self.access,
            oidc,
            now,
            callback,
        )
        .await
        .map_err(InstanceError::from);
        let (by, target, roles) = match &result {
            Ok(granted) => (
                format!("user:{} ({})", granted.user.name, granted.session.id),
                format!("user:{}", granted.user.name),
                granted.user.roles.clone(),
            ),
            Err(_) => ("login:sso".to_string(), "sso".to_string(), Vec::new()),
        };
        let outcome = if result.is_ok() { "success" } else { "refused" };
        self.as_roles(roles)
            .record_as(&by, "session.login", target, &"oidc", outcome, None)
            .await;
        result
    }

    async fn session(&self, secret: &str) -> Result<Option<Identity>, InstanceError> {
        Ok(resume(self.store.as_ref(), &self.access, self.clock.now(), secret).await?)
    }

    async fn logout(&self, secret: &str) -> Result<(), InstanceError> {
        self.log()?;
        if let Some(session) = logout(self.store.as_ref(), secret).await? {
            let by = format!("user:{} ({})", session.user, session.id);
            let target = format!("session:{}", session.id);
            self.record_as(&by, "session.logout", target, &session.id, "success", None)
                .await;
        }
        Ok(())
    }

    async fn user_totp(&self, name: &str) -> Result<TotpEnrolment, InstanceError> {
        self.log()?;
        let target = format!("user:{name}");
        self.permit(Permission::Admin, On::Instance, "user.totp", &target)
            .await?;
        let sealer = Sealer::open(&self.data_dir)?;
        let result = enrol_totp(self.store.as_ref(), &sealer, name)
            .await
            .map_err(InstanceError::from);
        let by = self.caller.actor.clone();
        // The digest is of the user's name, never of the seed.
        let recorded = result.as_ref().map(|_| ()).map_err(Clone::clone);
        self.noted(&by, "user.totp", target, &name, recorded)
            .await?;
        result
    }

    async fn requests(&self, query: &RequestsQuery) -> Result<Vec<ApprovalRequest>, InstanceError> {
        Ok(requests::list(self.store.as_ref(), self.clock.now(), query).await?)
    }

    async fn request(&self, id: i64) -> Result<ApprovalRequest, InstanceError> {
        Ok(requests::get(self.store.as_ref(), self.clock.now(), id).await?)
    }

    async fn decide_request(
        &self,
        decision: &RequestDecision,
    ) -> Result<ApprovalRequest, InstanceError> {
        self.log()?;
        self.decide(decision).await
    }
}

/// A name as recorded when it proved nothing (a failed login's): at most
/// 64 printable characters.
fn printable(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(64)
        .collect()
}
