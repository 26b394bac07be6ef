//! Four eyes: which changes need a second person, and their requests'
//! lives in the store — asked, approved or rejected by a *different*
//! user, expired, or (break-glass) run at once and reviewed afterwards.
//! Running an approved change is the instance interface's
//! ([`crate::api::Audited`]): it runs it as the requester asked.

use haven_model::approval::{ApprovalRequest, BREAK_GLASS_REVIEW, Decision, RequestState};
use haven_model::catalog::Catalog;
use haven_store::Store;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{AccessError, Caller};

/// The highest tier whose recovery needs a second person.
pub const GATED_TIERS: u8 = 2;

/// A change that needs a second person, before it is asked.
#[derive(Clone, Debug, PartialEq)]
pub struct Gated {
    /// The change (`recovery.start`).
    pub action: String,
    /// What it changes.
    pub target: String,
    /// Why it needs a second person.
    pub because: String,
    /// The request to run once approved (no secrets).
    pub payload: serde_json::Value,
    /// Why the requester asks.
    pub reason: Option<String>,
}

/// Why recovering `services` needs a second person: the tier 1–2
/// services among them (none: it does not).
pub fn recovery_gate(catalog: &Catalog, services: &[String]) -> Option<String> {
    let critical: Vec<String> = services
        .iter()
        .filter_map(|id| catalog.service(id))
        .filter(|s| s.tier.value <= GATED_TIERS)
        .map(|s| format!("{} (tier {})", s.id.value, s.tier.value))
        .collect();
    (!critical.is_empty()).then(|| {
        format!(
            "it recovers tier 1–{GATED_TIERS} services: {}",
            critical.join(", ")
        )
    })
}

/// A person's verdict on a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Run it.
    Approve,
    /// Refuse it (a reason is required).
    Reject,
    /// Close a break-glass change's review.
    Review,
}

/// A verdict on request `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestDecision {
    /// The request.
    pub id: i64,
    /// What is decided.
    pub verdict: Verdict,
    /// Why (required to reject).
    #[serde(default)]
    pub note: Option<String>,
}

/// Which requests to list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestsQuery {
    /// Only those in this state (`pending`, `break-glass`, …).
    #[serde(default)]
    pub state: Option<RequestState>,
}

/// Keep `gated` as a pending request of `caller`'s.
pub async fn ask(
    store: &dyn Store,
    now: Timestamp,
    expiry: SignedDuration,
    caller: &Caller,
    gated: Gated,
) -> Result<ApprovalRequest, AccessError> {
    let request = request_of(now, caller, gated, RequestState::Pending, now + expiry);
    Ok(store.add_approval(&request).await?)
}

/// Keep `gated`, run by an admin without approval, for its review.
pub async fn break_glass(
    store: &dyn Store,
    now: Timestamp,
    caller: &Caller,
    gated: Gated,
) -> Result<ApprovalRequest, AccessError> {
    let mut request = request_of(now, caller, gated, RequestState::BreakGlass, now);
    request.reason = caller.break_glass.clone();
    request.review_due = Some(now + BREAK_GLASS_REVIEW);
    Ok(store.add_approval(&request).await?)
}

fn request_of(
    now: Timestamp,
    caller: &Caller,
    gated: Gated,
    state: RequestState,
    expires_at: Timestamp,
) -> ApprovalRequest {
    ApprovalRequest {
        id: 0,
        action: gated.action,
        target: gated.target,
        because: gated.because,
        payload: gated.payload,
        requested_by: caller.actor.clone(),
        requester: caller.user.clone(),
        requester_roles: caller.roles.clone(),
        reason: gated.reason,
        requested_at: now,
        expires_at,
        state,
        decision: None,
        outcome: None,
        review_due: None,
        review: None,
    }
}

/// The requests, newest first (pending ones past their expiry are
/// marked expired first).
pub async fn list(
    store: &dyn Store,
    now: Timestamp,
    query: &RequestsQuery,
) -> Result<Vec<ApprovalRequest>, AccessError> {
    let mut requests = store.approvals(500).await?;
    for request in requests.iter_mut().filter(|r| r.lapsed(now)) {
        expire(store, request).await?;
    }
    Ok(requests
        .into_iter()
        .filter(|r| query.state.is_none_or(|s| s == r.state))
        .collect())
}

/// One request (marked expired first when it lapsed).
pub async fn get(
    store: &dyn Store,
    now: Timestamp,
    id: i64,
) -> Result<ApprovalRequest, AccessError> {
    let mut request = store.approval(id).await?.ok_or_else(|| {
        AccessError::NoSuchRequest(format!(
            "there is no request {id} (`haven request list` shows them)"
        ))
    })?;
    if request.lapsed(now) {
        expire(store, &mut request).await?;
    }
    Ok(request)
}

async fn expire(store: &dyn Store, request: &mut ApprovalRequest) -> Result<(), AccessError> {
    let pending = request.clone();
    request.state = RequestState::Expired;
    if !store
        .update_approval(request, RequestState::Pending)
        .await?
    {
        // Decided meanwhile: show what was decided.
        *request = store.approval(pending.id).await?.unwrap_or(pending);
    }
    Ok(())
}

/// Decide request `decision.id` as `caller` (who holds approval rights:
/// checked before). An approved request comes back `Approved` with no
/// outcome yet: the caller runs it and records the outcome
/// ([`finish`]).
pub async fn decide(
    store: &dyn Store,
    now: Timestamp,
    caller: &Caller,
    decision: &RequestDecision,
) -> Result<ApprovalRequest, AccessError> {
    let request = get(store, now, decision.id).await?;
    let conflict = AccessError::RequestConflict;
    let own = match (&caller.user, &request.requester) {
        (Some(me), Some(them)) => me == them,
        _ => caller.actor == request.requested_by,
    };
    if own && decision.verdict != Verdict::Review {
        return Err(conflict(format!(
            "request {} is {}'s own: a different user with the approver role decides it",
            request.id, request.requested_by
        )));
    }
    let (was, state) = match decision.verdict {
        Verdict::Approve => (RequestState::Pending, RequestState::Approved),
        Verdict::Reject => (RequestState::Pending, RequestState::Rejected),
        Verdict::Review => (RequestState::BreakGlass, RequestState::BreakGlass),
    };
    let stands =
        request.state == was && (was != RequestState::BreakGlass || request.awaits_review());
    if !stands {
        return Err(conflict(format!(
            "request {} is {}{}: it cannot be {} now",
            request.id,
            request.state.as_str(),
            if request.review.is_some() {
                " and reviewed"
            } else {
                ""
            },
            verb(decision.verdict)
        )));
    }
    if decision.verdict == Verdict::Reject
        && decision.note.as_deref().is_none_or(|n| n.trim().is_empty())
    {
        return Err(AccessError::Invalid(
            "a rejection needs a reason (--reason): the requester sees it".into(),
        ));
    }
    let by = Decision {
        by: caller.actor.clone(),
        at: now,
        note: decision.note.clone(),
    };
    let mut decided = ApprovalRequest { state, ..request };
    match decision.verdict {
        Verdict::Review => decided.review = Some(by),
        _ => decided.decision = Some(by),
    }
    if !store.update_approval(&decided, was).await? {
        return Err(conflict(format!(
            "request {} was decided by someone else meanwhile",
            decided.id
        )));
    }
    Ok(decided)
}

/// Record how running an approved (or break-glass) request went.
pub async fn finish(
    store: &dyn Store,
    mut request: ApprovalRequest,
    outcome: String,
) -> Result<ApprovalRequest, AccessError> {
    request.outcome = Some(outcome);
    let state = request.state;
    store.update_approval(&request, state).await?;
    Ok(request)
}

fn verb(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Approve => "approved",
        Verdict::Reject => "rejected",
        Verdict::Review => "reviewed",
    }
}
