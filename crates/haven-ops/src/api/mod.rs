//! The instance interface: every capability an instance offers, the same
//! whether it is a server in this process ([`crate::server::Handle`]), a
//! data dir without a server ([`crate::datadir::DataDir`]) or a server
//! reached through its HTTP API (`haven_web::client::Remote`). The CLI's
//! commands and the API's routes call it and nothing else; adding a
//! capability is one method here, its implementations, one route and one
//! command (ARCHITECTURE.md, "Adding a capability").

mod audited;
mod error;
mod guard;
mod types;

use async_trait::async_trait;
use haven_model::alerts::Alert;
use haven_model::drills::{Drill, ServiceDrill};
use haven_model::errors::ErrorCode;
use haven_model::jobs::Job;
use haven_model::maintenance::Recorded;
use haven_model::recovery::run::{RecoveryRun, RunView};

pub use crate::access::{
    Caller, CreatedToken, Granted, Identity, LoginRequest, NewToken, NewUser, OidcCallback,
    OidcStart, RequestDecision, RequestsQuery, TokenRevocation, TotpEnrolment, UserChange, Verdict,
};
pub use crate::audit::AuditReport;
pub use audited::Audited;
pub use error::{InstanceError, engine_code};
use haven_model::access::{Token, User};
use haven_model::approval::ApprovalRequest;
pub use types::*;

use crate::delivery::notify::Report;
pub use crate::drills::{DrillOutcome, DrillRequest, ServiceDrillOutcome, ServiceDrillRequest};
pub use crate::holds::{HoldRequest, HoldView, HoldsQuery};
pub use crate::preflight::PreflightReport;
pub use crate::recovery::{
    AbandonRequest, ForecastRequest, RecoverRequest, ResumeRequest, StepDecision,
};
use crate::status::StatusReport;

/// What every instance answers.
#[async_trait]
pub trait Instance: Send + Sync {
    /// Where it is, for messages: `server at 127.0.0.1:8080`, `data dir
    /// /srv/haven`.
    fn describe(&self) -> String;

    /// Its own health (a data dir without a server is always `ok`).
    async fn health(&self) -> Result<HealthReport, InstanceError>;

    /// RPO compliance and next runs.
    async fn status(&self) -> Result<StatusReport, InstanceError>;

    /// A service beyond its compliance: the dependency graph below it
    /// and the catalog's findings about it.
    async fn service(&self, id: &str) -> Result<crate::status::ServiceDetail, InstanceError>;

    /// The catalog's findings (`haven catalog check` of the catalog the
    /// instance runs), errors first.
    async fn findings(&self) -> Result<Vec<crate::status::FindingView>, InstanceError>;

    /// The business impact analysis of the catalog the instance runs.
    async fn bia(
        &self,
        query: &BiaQuery,
    ) -> Result<Vec<haven_model::catalog::bia::BiaRow>, InstanceError>;

    /// The recovery order of these services (all when none) and what
    /// they need: waves, critical path.
    async fn recovery_order(
        &self,
        query: &OrderQuery,
    ) -> Result<haven_model::catalog::plan::RecoveryOrder, InstanceError>;

    /// The dependency graph of the catalog the instance runs.
    async fn graph(&self) -> Result<crate::status::CatalogGraph, InstanceError>;

    /// What `/metrics` shows: jobs, compliance, readiness, alerts,
    /// drills, recoveries, repository usage.
    async fn metrics(&self) -> Result<crate::metrics::MetricsSnapshot, InstanceError>;

    /// Jobs, newest first.
    async fn jobs(&self, query: &JobsQuery) -> Result<Vec<Job>, InstanceError>;

    /// One job.
    async fn job(&self, id: i64) -> Result<Job, InstanceError>;

    /// Back a system up now.
    async fn run(&self, request: &RunRequest) -> Result<RunOutcome, InstanceError>;

    /// Alerts, newest first.
    async fn alerts(&self, query: &AlertsQuery) -> Result<Vec<Alert>, InstanceError>;

    /// One alert with its deliveries.
    async fn alert(&self, id: i64) -> Result<AlertDetail, InstanceError>;

    /// Acknowledge an alert (its escalation stops).
    async fn acknowledge(&self, action: &AlertAction) -> Result<Alert, InstanceError>;

    /// Resolve an alert.
    async fn resolve(&self, action: &AlertAction) -> Result<Alert, InstanceError>;

    /// Maintenance windows, active first.
    async fn windows(&self) -> Result<Vec<WindowView>, InstanceError>;

    /// Add a maintenance window.
    async fn add_window(&self, request: &AddWindow) -> Result<Recorded, InstanceError>;

    /// End a maintenance window now.
    async fn end_window(&self, request: &EndWindow) -> Result<Recorded, InstanceError>;

    /// Send a test message through a channel.
    async fn notify_test(&self, channel: &str) -> Result<Report, InstanceError>;

    /// Pre-flight checks: repositories, secrets, commands, space, clock,
    /// as the instance (with its environment) sees them.
    async fn preflight(&self) -> Result<PreflightReport, InstanceError>;

    /// Drill a system: restore into a sandbox, run its checks, measure;
    /// the drill is recorded as evidence.
    async fn drill(&self, request: &DrillRequest) -> Result<DrillOutcome, InstanceError>;

    /// Recorded drills, newest first.
    async fn drills(&self, query: &DrillsQuery) -> Result<Vec<Drill>, InstanceError>;

    /// Drill a service: its backed-up systems in recovery order, a
    /// wave's systems side by side, timed as a whole; every drill
    /// recorded.
    async fn drill_service(
        &self,
        request: &ServiceDrillRequest,
    ) -> Result<ServiceDrillOutcome, InstanceError>;

    /// Recorded service drills, newest first.
    async fn service_drills(
        &self,
        query: &ServiceDrillsQuery,
    ) -> Result<Vec<ServiceDrill>, InstanceError>;

    /// A recovery's dry-run: the waves and steps it would run and what it
    /// would take, against the services' RTO and MTD.
    async fn recovery_forecast(
        &self,
        request: &ForecastRequest,
    ) -> Result<haven_model::recovery::Forecast, InstanceError>;

    /// Start a recovery: pre-flight, then (unless refused) the run in the
    /// background. Answers at once with the recorded run.
    async fn recover(&self, request: &RecoverRequest) -> Result<RunView, InstanceError>;

    /// Continue a run whose executor is gone (`--resume`).
    async fn resume_recovery(&self, request: &ResumeRequest) -> Result<RunView, InstanceError>;

    /// A run as it stands, with its steps and measured RTOs.
    async fn recovery(&self, id: i64) -> Result<RunView, InstanceError>;

    /// The runs, newest first.
    async fn recoveries(&self) -> Result<Vec<RecoveryRun>, InstanceError>;

    /// A person's decision on a step: confirm a checkpoint, retry or skip.
    async fn decide_step(&self, decision: &StepDecision) -> Result<RunView, InstanceError>;

    /// Close an interrupted run for good.
    async fn abandon_recovery(&self, request: &AbandonRequest) -> Result<RunView, InstanceError>;

    /// The audit log checked against its signed checkpoints (in the
    /// database and outside it). Instances are wrapped in [`Audited`],
    /// which answers this; an unwrapped one does not keep the log.
    async fn audit_verify(
        &self,
        _request: &AuditVerifyRequest,
    ) -> Result<AuditReport, InstanceError> {
        Err(InstanceError::new(
            ErrorCode::AuditUnavailable,
            "this instance keeps no audit log here",
        ))
    }

    /// Add a local user.
    async fn user_add(&self, _request: &NewUser) -> Result<User, InstanceError> {
        Err(no_requests())
    }

    /// Every user.
    async fn users(&self) -> Result<Vec<User>, InstanceError> {
        Err(no_requests())
    }

    /// Reset a user's password, or disable it.
    async fn user_change(&self, _change: &UserChange) -> Result<User, InstanceError> {
        Err(no_requests())
    }

    /// Make an API token (its secret is in the answer only).
    async fn token_create(&self, _request: &NewToken) -> Result<CreatedToken, InstanceError> {
        Err(no_requests())
    }

    /// Every token.
    async fn tokens(&self) -> Result<Vec<Token>, InstanceError> {
        Err(no_requests())
    }

    /// Revoke a token.
    async fn token_revoke(&self, _request: &TokenRevocation) -> Result<Token, InstanceError> {
        Err(no_requests())
    }

    /// Who a token secret says someone is (none: not a live token).
    async fn authenticate(&self, _secret: &str) -> Result<Option<Identity>, InstanceError> {
        Ok(None)
    }

    /// Write the audit log's newest checkpoint into every repository.
    async fn audit_anchor(&self) -> Result<Vec<crate::audit::Anchoring>, InstanceError> {
        Err(InstanceError::new(
            ErrorCode::AuditUnavailable,
            "this instance keeps no audit log here",
        ))
    }

    /// Audit entries with inclusion proofs against a signed checkpoint
    /// (verifiable offline).
    async fn audit_export(
        &self,
        _query: &AuditExportQuery,
    ) -> Result<haven_model::audit::Export, InstanceError> {
        Err(InstanceError::new(
            ErrorCode::AuditUnavailable,
            "this instance keeps no audit log here",
        ))
    }

    /// Log in with a password (and a TOTP code): a console session.
    async fn login(&self, _request: &LoginRequest) -> Result<Granted, InstanceError> {
        Err(no_requests())
    }

    /// Who a console session's secret says someone is (none: no live
    /// session); a live one is marked used.
    async fn session(&self, _secret: &str) -> Result<Option<Identity>, InstanceError> {
        Ok(None)
    }

    /// End a console session.
    async fn logout(&self, _secret: &str) -> Result<(), InstanceError> {
        Err(no_requests())
    }

    /// Start a single sign-on: where to send the browser.
    async fn oidc_begin(&self) -> Result<OidcStart, InstanceError> {
        Err(no_requests())
    }

    /// Finish a single sign-on: a console session.
    async fn oidc_finish(&self, _callback: &OidcCallback) -> Result<Granted, InstanceError> {
        Err(no_requests())
    }

    /// Give a user a new TOTP seed (shown once).
    async fn user_totp(&self, _name: &str) -> Result<TotpEnrolment, InstanceError> {
        Err(no_requests())
    }

    /// The legal holds of a catalog repository.
    async fn holds(&self, query: &HoldsQuery) -> Result<Vec<HoldView>, InstanceError>;

    /// Place a legal hold on a snapshot of a catalog repository.
    async fn hold_add(&self, request: &HoldRequest) -> Result<HoldView, InstanceError>;

    /// Lift a legal hold (four eyes, when on).
    async fn hold_lift(&self, request: &HoldRequest) -> Result<HoldView, InstanceError>;

    /// Four-eyes requests (and break-glass changes), newest first.
    async fn requests(
        &self,
        _query: &RequestsQuery,
    ) -> Result<Vec<ApprovalRequest>, InstanceError> {
        Err(no_requests())
    }

    /// One request.
    async fn request(&self, _id: i64) -> Result<ApprovalRequest, InstanceError> {
        Err(no_requests())
    }

    /// Approve (it runs now, as its requester asked), reject (with a
    /// reason) or review (a break-glass change) a request, as another
    /// user than its requester.
    async fn decide_request(
        &self,
        _decision: &RequestDecision,
    ) -> Result<ApprovalRequest, InstanceError> {
        Err(no_requests())
    }

    /// Audit entries, oldest first.
    async fn audit_entries(
        &self,
        _query: &AuditQuery,
    ) -> Result<Vec<haven_model::audit::Entry>, InstanceError> {
        Err(InstanceError::new(
            ErrorCode::AuditUnavailable,
            "this instance keeps no audit log here",
        ))
    }
}

/// An instance not wrapped in [`Audited`] (which holds the store and the
/// audit log) keeps no users, tokens, sessions or four-eyes requests.
fn no_requests() -> InstanceError {
    InstanceError::new(
        ErrorCode::AuditUnavailable,
        "this instance keeps no users, tokens, sessions or requests here",
    )
}
