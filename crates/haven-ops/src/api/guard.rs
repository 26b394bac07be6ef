//! The checks every change passes through the instance interface, the
//! same from the CLI and the API: may the caller do it (its roles, a
//! service owner's scope), and does it need a second person (four
//! eyes)? An approved request runs here, as its requester asked.

use haven_model::access::{Permission, allowed};
use haven_model::approval::ApprovalRequest;
use haven_model::errors::ErrorCode;
use haven_model::recovery::{Selection, UnitKind, plan_run};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;
use crate::access::{Gated, On, RequestDecision, Verdict, recovery_gate, requests};

impl Audited {
    /// Refuse (and record the refusal of) a change the caller may not
    /// make.
    pub(super) async fn permit(
        &self,
        permission: Permission,
        on: On,
        action: &str,
        target: &str,
    ) -> Result<(), InstanceError> {
        let caller = &self.caller;
        let catalog = match caller.needs_catalog(permission, &on) {
            true => Some(self.catalog()?),
            false => None,
        };
        let verdict = caller.may(permission, &on, catalog.as_deref());
        let Err(why) = verdict else {
            return Ok(());
        };
        self.record_as(
            &caller.actor,
            action,
            target.to_string(),
            &(),
            "refused",
            None,
        )
        .await;
        Err(InstanceError::new(ErrorCode::Forbidden, why)
            .hint("`haven user list` shows each user's roles and teams (docs/access.md)"))
    }

    /// The services a recovery of `selection` brings back.
    pub(super) fn recovery_services(
        &self,
        selection: &Selection,
    ) -> Result<Vec<String>, InstanceError> {
        let catalog = self.catalog()?;
        let plan = plan_run(&catalog, selection)
            .map_err(|e| InstanceError::new(ErrorCode::NoSuchPlan, e.to_string()))?;
        Ok(plan
            .units
            .iter()
            .filter(|u| u.kind == UnitKind::Service)
            .map(|u| u.id.clone())
            .collect())
    }

    /// The services a recorded run brings back (a run that cannot be
    /// read: none, and the change fails, recorded).
    pub(super) async fn run_services(&self, run: i64) -> Result<On, InstanceError> {
        let Ok(view) = self.inner.recovery(run).await else {
            return Ok(On::Services(Vec::new()));
        };
        Ok(On::Services(
            view.run
                .plan
                .units
                .iter()
                .filter(|u| u.kind == UnitKind::Service)
                .map(|u| u.id.clone())
                .collect(),
        ))
    }

    /// Run `change` now, or keep it as a request when four eyes are on
    /// and `because` says it needs them (an admin's break-glass runs it
    /// at once, kept for review).
    pub(super) async fn four_eyes<T, F>(
        &self,
        gated: Option<Gated>,
        change: F,
    ) -> Result<T, InstanceError>
    where
        T: Serialize,
        F: std::future::Future<Output = Result<T, InstanceError>>,
    {
        let Some(gated) = gated.filter(|_| self.access.four_eyes) else {
            return change.await;
        };
        let now = self.clock.now();
        let store = self.store.as_ref();
        let caller = &self.caller;
        if let Some(reason) = caller.break_glass.as_deref() {
            if !allowed(&caller.roles, Permission::Admin) || reason.trim().is_empty() {
                return Err(InstanceError::new(
                    ErrorCode::Forbidden,
                    "break-glass is an admin's, with a reason (--break-glass REASON)",
                ));
            }
            let kept = requests::break_glass(store, now, caller, gated).await?;
            let target = format!("request:{}", kept.id);
            self.record_as(&caller.actor, "break-glass", target, &kept, "success", None)
                .await;
            let result = change.await;
            requests::finish(store, kept, outcome_text(&result)).await?;
            return result;
        }
        let asked = requests::ask(store, now, self.access.request_expiry, caller, gated).await?;
        let target = format!("request:{}", asked.id);
        self.record_as(
            &caller.actor,
            "request.ask",
            target,
            &asked,
            "success",
            None,
        )
        .await;
        Err(pending(&asked))
    }

    /// Decide a request; an approved one runs now, as its requester
    /// asked, and the request keeps how it went.
    pub(super) async fn decide(
        &self,
        decision: &RequestDecision,
    ) -> Result<ApprovalRequest, InstanceError> {
        let action = format!("request.{}", verdict_name(decision.verdict));
        let target = format!("request:{}", decision.id);
        self.permit(Permission::Approve, On::Instance, &action, &target)
            .await?;
        let now = self.clock.now();
        let result = requests::decide(self.store.as_ref(), now, &self.caller, decision)
            .await
            .map_err(InstanceError::from);
        let decided = self
            .noted(&self.caller.actor, &action, target, decision, result)
            .await?;
        if decision.verdict != Verdict::Approve {
            return Ok(decided);
        }
        let outcome = self.run_approved(&decided).await;
        Ok(requests::finish(self.store.as_ref(), decided, outcome).await?)
    }

    /// Run an approved request's change, recorded as its requester's.
    async fn run_approved(&self, request: &ApprovalRequest) -> String {
        let origin = format!(
            "request {} approved by {}",
            request.id,
            request.decision.as_ref().map_or("?", |d| d.by.as_str())
        );
        match request.action.as_str() {
            "recovery.start" => match payload::<RecoverRequest>(request) {
                Ok(recover) => {
                    let result = self.inner.recover(&recover).await;
                    let target = match &result {
                        Ok(view) => format!("recovery:{}", view.run.id),
                        Err(_) => "recovery".into(),
                    };
                    self.approved(
                        request,
                        &origin,
                        "recovery.start",
                        target,
                        &recover,
                        &result,
                    )
                    .await;
                    outcome_of(result.map(|v| format!("recovery:{}", v.run.id)))
                }
                Err(e) => e,
            },
            "user.disable" => match payload::<UserChange>(request) {
                Ok(change) => {
                    let result = self.change_user(&change).await;
                    let target = format!("user:{}", change.name);
                    self.approved(
                        request,
                        &origin,
                        "user.disable",
                        target.clone(),
                        &change,
                        &result,
                    )
                    .await;
                    outcome_of(result.map(|_| target))
                }
                Err(e) => e,
            },
            "hold.lift" => match payload::<HoldRequest>(request) {
                Ok(lift) => {
                    let result = self.inner.hold_lift(&lift).await;
                    let target =
                        format!("repository:{} snapshot:{}", lift.repository, lift.snapshot);
                    self.approved(request, &origin, "hold.lift", target, &lift, &result)
                        .await;
                    outcome_of(result.map(|h| format!("hold:{} lifted", h.id)))
                }
                Err(e) => e,
            },
            "token.revoke" => match payload::<TokenRevocation>(request) {
                Ok(revocation) => {
                    let result = self.revoke_token(&revocation).await;
                    let target = format!("token:{}", revocation.id);
                    self.approved(
                        request,
                        &origin,
                        "token.revoke",
                        target.clone(),
                        &revocation,
                        &result,
                    )
                    .await;
                    outcome_of(result.map(|_| target))
                }
                Err(e) => e,
            },
            other => format!("failed: Haven cannot run a {other:?} request"),
        }
    }

    /// Record an approved change as its requester's, in the roles they
    /// asked with.
    async fn approved<T>(
        &self,
        request: &ApprovalRequest,
        origin: &str,
        action: &str,
        target: String,
        asked: &impl Serialize,
        result: &Result<T, InstanceError>,
    ) {
        let outcome = if result.is_ok() { "success" } else { "failed" };
        let requester = self.acting(crate::access::Caller {
            roles: request.requester_roles.clone(),
            ..self.caller.clone()
        });
        requester
            .record_as(
                &request.requested_by,
                action,
                target,
                asked,
                outcome,
                Some(origin),
            )
            .await;
    }

    /// What gates a recovery of `services`.
    pub(super) fn recovery_gated(
        &self,
        request: &RecoverRequest,
        services: &[String],
    ) -> Result<Option<Gated>, InstanceError> {
        let catalog = self.catalog()?;
        Ok(recovery_gate(&catalog, services).map(|because| Gated {
            action: "recovery.start".into(),
            target: format!("services {}", services.join(", ")),
            because,
            payload: serde_json::to_value(request).unwrap_or_default(),
            reason: request.reason.clone(),
        }))
    }
}

/// The error that says a change waits as request `asked`.
fn pending(asked: &ApprovalRequest) -> InstanceError {
    InstanceError::new(
        ErrorCode::ApprovalRequired,
        format!(
            "{} needs a second person ({}): kept as request {}, which runs once another user with the approver role approves it (before {:.0})",
            asked.action,
            asked.because,
            asked.id,
            asked.expires_at
        ),
    )
    .hint(format!(
        "an approver runs `haven request approve {}`; `haven request show {}` shows where it stands",
        asked.id, asked.id
    ))
}

fn payload<T: DeserializeOwned>(request: &ApprovalRequest) -> Result<T, String> {
    serde_json::from_value(request.payload.clone())
        .map_err(|e| format!("failed: the request's payload does not read: {e}"))
}

fn outcome_of(result: Result<String, InstanceError>) -> String {
    match result {
        Ok(done) => done,
        Err(e) => format!("failed: {e}"),
    }
}

fn outcome_text<T>(result: &Result<T, InstanceError>) -> String {
    match result {
        Ok(_) => "success".into(),
        Err(e) => format!("failed: {e}"),
    }
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Approve => "approve",
        Verdict::Reject => "reject",
        Verdict::Review => "review",
    }
}
