//! Four eyes: a change that must not rest on one person (a recovery of a
//! tier 1–2 service, disabling a user, revoking a token) is kept as a
//! request until a *different* user with approval rights approves it;
//! then it runs as the requester asked. Requests expire; rejections carry
//! a reason. A break-glass change ran without approval: it is kept the
//! same way, with a review due within [`BREAK_GLASS_REVIEW`].

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// How long after a break-glass change its review is due.
pub const BREAK_GLASS_REVIEW: SignedDuration = SignedDuration::from_hours(72);

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RequestState {
    /// Waiting for an approver.
    Pending,
    /// Approved and run (its `outcome` says how it went).
    Approved,
    /// Refused by an approver, with a reason.
    Rejected,
    /// Nobody decided in time.
    Expired,
    /// Ran without approval (break-glass); reviewed afterwards.
    BreakGlass,
}

impl RequestState {
    /// Its name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Rejected => "rejected",
            RequestState::Expired => "expired",
            RequestState::BreakGlass => "break-glass",
        }
    }
}

/// A person's decision on a request, or on a break-glass review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Decision {
    /// Who decided.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// Why (a rejection's reason, an approval's or review's note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A change waiting for (or past) a second person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApprovalRequest {
    /// Its number (0 until stored).
    pub id: i64,
    /// The change (`recovery.start`, `user.disable`, `token.revoke`).
    pub action: String,
    /// What it changes (`services erp, shop`, `user:ana`, `token:tok_1a2b`).
    pub target: String,
    /// Why it needs a second person (`erp is a tier 1 service`).
    pub because: String,
    /// The request to run, as asked (never a secret).
    pub payload: serde_json::Value,
    /// Who asked (the identity: `user:ana (tok_1a2b)`).
    pub requested_by: String,
    /// The user behind it (none: the instance's owner), who may not
    /// approve it.
    #[serde(default)]
    pub requester: Option<String>,
    /// The roles they asked with (the change runs with them).
    #[serde(default)]
    pub requester_roles: Vec<crate::access::Role>,
    /// Why they ask.
    #[serde(default)]
    pub reason: Option<String>,
    /// When.
    pub requested_at: Timestamp,
    /// After this it can no longer be approved.
    pub expires_at: Timestamp,
    /// Where it stands.
    pub state: RequestState,
    /// The approval or rejection.
    #[serde(default)]
    pub decision: Option<Decision>,
    /// How running it went (`recovery:7`, or the error).
    #[serde(default)]
    pub outcome: Option<String>,
    /// A break-glass change: when its review is due.
    #[serde(default)]
    pub review_due: Option<Timestamp>,
    /// A break-glass change's review.
    #[serde(default)]
    pub review: Option<Decision>,
}

impl ApprovalRequest {
    /// Is it pending but past its expiry at `now`?
    pub fn lapsed(&self, now: Timestamp) -> bool {
        self.state == RequestState::Pending && now >= self.expires_at
    }

    /// A break-glass change not reviewed yet.
    pub fn awaits_review(&self) -> bool {
        self.state == RequestState::BreakGlass && self.review.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_request_lapses_at_its_expiry_and_a_break_glass_awaits_review() {
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let mut request = ApprovalRequest {
            id: 1,
            action: "token.revoke".into(),
            target: "token:tok_1".into(),
            because: "revoking a token".into(),
            payload: serde_json::json!({"id": "tok_1"}),
            requested_by: "user:ana".into(),
            requester: Some("ana".into()),
            requester_roles: Vec::new(),
            reason: None,
            requested_at: at,
            expires_at: at + SignedDuration::from_hours(24),
            state: RequestState::Pending,
            decision: None,
            outcome: None,
            review_due: None,
            review: None,
        };
        assert!(!request.lapsed(at + SignedDuration::from_hours(23)));
        assert!(request.lapsed(at + SignedDuration::from_hours(24)));
        request.state = RequestState::BreakGlass;
        assert!(!request.lapsed(at + SignedDuration::from_hours(48)));
        assert!(request.awaits_review());
        request.review = Some(Decision {
            by: "user:bo".into(),
            at,
            note: None,
        });
        assert!(!request.awaits_review());
    }
}
