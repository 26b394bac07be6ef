//! Four eyes through the instance interface, on a real data dir with a
//! clock moved by hand: a gated change waits as a request; its requester
//! cannot approve it; a rejection needs a reason; a request expires; an
//! approved one runs as its requester asked; an admin's break-glass runs
//! at once, raises a critical alert until reviewed; every step is in the
//! audit log with who, in what role, from where.

use std::sync::Arc;

use haven_model::access::{Owner, Role};
use haven_model::approval::RequestState;
use haven_model::errors::ErrorCode;
use haven_ops::api::{
    AuditQuery, Audited, Caller, Instance, NewToken, NewUser, RequestDecision, RequestsQuery,
    TokenRevocation, Verdict,
};
use haven_ops::clock::{Clock, ManualClock};
use haven_ops::datadir::DataDir;
use jiff::SignedDuration;

use crate::sim::settings;

const CATALOG: &str = r#"
[[team]]
id = "finance"

[[service]]
id = "payments"
tier = 1
owner = "finance"
rpo = "1d"
rto = "4h"
mtd = "1d"
"#;

/// A data dir with four eyes on, as its owner and as three users.
struct Estate {
    owner: Audited,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

impl Estate {
    async fn new() -> Estate {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(dir.path().join("catalog")).expect("mkdir");
        std::fs::write(dir.path().join("catalog/catalog.toml"), CATALOG).expect("catalog");
        let settings = settings(
            dir.path(),
            "[access]\nfour_eyes = true\nrequest_expiry = \"1h\"\n",
        );
        let clock = ManualClock::new("2026-03-01T09:00:00Z".parse().expect("time"));
        let owner = DataDir::open(settings)
            .await
            .expect("data dir")
            .audited()
            .await
            .expect("audited")
            .with_clock(Arc::new(clock.clone()));
        Estate {
            owner,
            clock,
            _dir: dir,
        }
    }

    /// Add `name` with `roles`; the caller its token proves, and the
    /// token's id.
    async fn user(&self, name: &str, roles: &[Role]) -> (Audited, String) {
        let user = NewUser {
            name: name.into(),
            roles: roles.to_vec(),
            teams: vec!["finance".into()],
            password: "correct horse battery staple".into(),
            by: "test".into(),
        };
        self.owner.user_add(&user).await.expect("user");
        let token = NewToken {
            name: "cli".into(),
            owner: Owner::User(name.into()),
            roles: roles.to_vec(),
            lifetime: SignedDuration::from_hours(24),
            by: "test".into(),
        };
        let created = self.owner.token_create(&token).await.expect("token");
        let identity = self
            .owner
            .authenticate(&created.secret)
            .await
            .expect("authenticate")
            .expect("a live token");
        let caller = Caller::identified(&identity, "api 127.0.0.1:40000");
        (self.owner.acting(caller), created.token.id)
    }
}

fn decision(id: i64, verdict: Verdict, note: Option<&str>) -> RequestDecision {
    RequestDecision {
        id,
        verdict,
        note: note.map(str::to_string),
    }
}

fn revoke(id: &str) -> TokenRevocation {
    TokenRevocation {
        id: id.into(),
        by: "ignored: the caller acts".into(),
    }
}

/// The request number an `approval-required` error names.
fn request_number(error: &haven_ops::api::InstanceError) -> i64 {
    assert_eq!(error.code, ErrorCode::ApprovalRequired, "{error}");
    let after = error
        .message
        .split("kept as request ")
        .nth(1)
        .expect("a number");
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number")
}

#[tokio::test]
async fn a_gated_change_waits_for_another_approver_and_expires() {
    let estate = Estate::new().await;
    let (ana, ana_token) = estate.user("ana", &[Role::Admin, Role::Approver]).await;
    let (bo, _) = estate.user("bo", &[Role::Approver]).await;
    let (_, victim) = estate.user("cy", &[Role::Operator]).await;

    // Ana's revocation of another user's token waits as a request.
    let asked = ana.token_revoke(&revoke(&victim)).await.expect_err("gated");
    let first = request_number(&asked);
    let pending = ana.request(first).await.expect("request");
    assert_eq!(pending.state, RequestState::Pending);
    assert_eq!(pending.requester.as_deref(), Some("ana"));
    assert!(
        pending.because.contains("revoking a token"),
        "{}",
        pending.because
    );
    let live = |tokens: Vec<haven_model::access::Token>| {
        tokens
            .into_iter()
            .find(|t| t.id == victim)
            .is_some_and(|t| t.revoked_at.is_none())
    };
    assert!(
        live(estate.owner.tokens().await.expect("tokens")),
        "nothing revoked yet"
    );

    // Not by herself; a rejection says why.
    let own = ana
        .decide_request(&decision(first, Verdict::Approve, None))
        .await
        .expect_err("her own");
    assert_eq!(own.code, ErrorCode::RequestConflict, "{own}");
    assert!(own.message.contains("different user"), "{own}");
    let bare = bo
        .decide_request(&decision(first, Verdict::Reject, None))
        .await
        .expect_err("no reason");
    assert!(bare.message.contains("needs a reason"), "{bare}");
    let rejected = bo
        .decide_request(&decision(first, Verdict::Reject, Some("ticket missing")))
        .await
        .expect("reject");
    assert_eq!(rejected.state, RequestState::Rejected);
    assert_eq!(
        rejected.decision.and_then(|d| d.note).as_deref(),
        Some("ticket missing")
    );

    // Asked again, left for longer than the expiry: too late to approve.
    let second = request_number(&ana.token_revoke(&revoke(&victim)).await.expect_err("gated"));
    estate.clock.advance(SignedDuration::from_mins(61));
    let late = bo
        .decide_request(&decision(second, Verdict::Approve, None))
        .await
        .expect_err("expired");
    assert_eq!(late.code, ErrorCode::RequestConflict);
    assert!(late.message.contains("expired"), "{late}");
    let expired = ana
        .requests(&RequestsQuery {
            state: Some(RequestState::Expired),
        })
        .await
        .expect("list");
    assert_eq!(
        expired.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![second]
    );

    // Asked a third time and approved in time: it runs, as Ana asked.
    let third = request_number(&ana.token_revoke(&revoke(&victim)).await.expect_err("gated"));
    let approved = bo
        .decide_request(&decision(
            third,
            Verdict::Approve,
            Some("checked the ticket"),
        ))
        .await
        .expect("approve");
    assert_eq!(approved.state, RequestState::Approved);
    assert_eq!(
        approved.outcome.as_deref(),
        Some(format!("token:{victim}").as_str())
    );
    assert!(
        !live(estate.owner.tokens().await.expect("tokens")),
        "revoked"
    );
    let again = bo
        .decide_request(&decision(third, Verdict::Approve, None))
        .await
        .expect_err("decided");
    assert_eq!(again.code, ErrorCode::RequestConflict);

    // Revoking one's own token needs nobody.
    ana.token_revoke(&revoke(&ana_token))
        .await
        .expect("own token");

    // The log holds who asked, who decided, and the change as Ana's, run
    // on Bo's approval, with roles and origins.
    let entries = estate
        .owner
        .audit_entries(&AuditQuery::default())
        .await
        .expect("entries");
    let revoked = entries
        .iter()
        .find(|e| {
            e.action == "token.revoke" && e.outcome == "success" && e.actor.starts_with("user:ana")
        })
        .expect("the revocation, as Ana's");
    assert_eq!(
        revoked.role.as_deref(),
        Some("admin,approver"),
        "in her roles"
    );
    assert!(
        revoked
            .origin
            .starts_with(&format!("request {third} approved by user:bo")),
        "{revoked:?}"
    );
    let approval = entries
        .iter()
        .find(|e| e.action == "request.approve" && e.outcome == "success")
        .expect("the approval");
    assert!(approval.actor.starts_with("user:bo"), "{approval:?}");
    assert_eq!(approval.role.as_deref(), Some("approver"));
    assert_eq!(approval.origin, "api 127.0.0.1:40000");
    assert!(entries.iter().any(|e| e.action == "request.approve"
        && e.outcome == "failed"
        && e.actor.starts_with("user:ana")));
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.action == "token.revoke" && e.outcome == "pending-approval")
            .count(),
        3
    );
}

#[tokio::test]
async fn break_glass_runs_at_once_and_stands_as_a_critical_alert_until_reviewed() {
    let estate = Estate::new().await;
    let (operator, _) = estate.user("ana", &[Role::Operator]).await;
    let (admin, _) = estate.user("root-admin", &[Role::Admin]).await;
    let (bo, _) = estate.user("bo", &[Role::Approver]).await;
    let (_, victim) = estate.user("cy", &[Role::Operator]).await;
    let glass = |who: &Audited, reason: &str| {
        let mut caller = who.caller().clone();
        caller.break_glass = Some(reason.into());
        who.acting(caller)
    };

    // Only an admin, and only with a reason.
    let refused = glass(&operator, "the IdP is down")
        .token_revoke(&revoke(&victim))
        .await
        .expect_err("not an admin");
    assert_eq!(refused.code, ErrorCode::Forbidden);
    let blank = glass(&admin, "  ")
        .token_revoke(&revoke(&victim))
        .await
        .expect_err("no reason");
    assert_eq!(blank.code, ErrorCode::Forbidden);

    let now = estate.clock.now();
    glass(&admin, "the IdP is down, token leaked")
        .token_revoke(&revoke(&victim))
        .await
        .expect("break-glass");
    let kept = admin
        .requests(&RequestsQuery {
            state: Some(RequestState::BreakGlass),
        })
        .await
        .expect("list");
    assert_eq!(kept.len(), 1);
    let kept = &kept[0];
    assert_eq!(kept.review_due, Some(now + SignedDuration::from_hours(72)));
    assert_eq!(
        kept.reason.as_deref(),
        Some("the IdP is down, token leaked")
    );
    assert_eq!(kept.outcome.as_deref(), Some("success"));

    // A critical alert while unreviewed, overdue after 72 hours.
    estate.clock.advance(SignedDuration::from_hours(73));
    let all = admin
        .requests(&RequestsQuery::default())
        .await
        .expect("list");
    let alert = haven_model::alert_rules::break_glass(&all, estate.clock.now());
    assert_eq!(alert.holding.len(), 1);
    assert_eq!(
        alert.holding[0].severity,
        haven_model::alerts::Severity::Critical
    );
    assert!(
        alert.holding[0].summary.contains("overdue by 1h"),
        "{}",
        alert.holding[0].summary
    );

    let reviewed = bo
        .decide_request(&decision(
            kept.id,
            Verdict::Review,
            Some("leak confirmed, rotated"),
        ))
        .await
        .expect("review");
    assert!(!reviewed.awaits_review());
    let all = admin
        .requests(&RequestsQuery::default())
        .await
        .expect("list");
    assert!(
        haven_model::alert_rules::break_glass(&all, estate.clock.now())
            .holding
            .is_empty()
    );

    let entries = estate
        .owner
        .audit_entries(&AuditQuery::default())
        .await
        .expect("entries");
    let marked = entries
        .iter()
        .find(|e| e.action == "break-glass")
        .expect("marked in the log");
    assert!(marked.actor.starts_with("user:root-admin"), "{marked:?}");
    assert_eq!(marked.target, format!("request:{}", kept.id));
}

#[tokio::test]
async fn requests_cannot_be_decided_without_approval_rights() {
    let estate = Estate::new().await;
    let (ana, _) = estate.user("ana", &[Role::Admin]).await;
    let (dee, _) = estate.user("dee", &[Role::Operator]).await;
    let (_, victim) = estate.user("cy", &[Role::Operator]).await;
    let asked = request_number(&ana.token_revoke(&revoke(&victim)).await.expect_err("gated"));
    let refused = dee
        .decide_request(&decision(asked, Verdict::Approve, None))
        .await
        .expect_err("an operator");
    assert_eq!(refused.code, ErrorCode::Forbidden);
    assert_eq!(
        ana.request(asked).await.expect("request").state,
        RequestState::Pending
    );
    let missing = ana.request(4242).await.expect_err("none");
    assert_eq!(missing.code, ErrorCode::NoSuchRequest);
}

mod logins {
    use super::*;
    use haven_ops::api::LoginRequest;

    /// An estate whose admins must give a TOTP code, with a user `ana`
    /// (an operator) and `root-admin`.
    async fn estate() -> Estate {
        let estate = Estate::new().await;
        for (name, role) in [("ana", Role::Operator), ("root-admin", Role::Admin)] {
            let user = NewUser {
                name: name.into(),
                roles: vec![role],
                teams: Vec::new(),
                password: "correct horse battery staple".into(),
                by: "test".into(),
            };
            estate.owner.user_add(&user).await.expect("user");
        }
        estate
    }

    fn with(name: &str, password: &str, totp: Option<String>) -> LoginRequest {
        LoginRequest {
            name: name.into(),
            password: password.into(),
            totp,
        }
    }

    const GOOD: &str = "correct horse battery staple";

    #[tokio::test]
    async fn failed_logins_delay_the_next_try_then_lock_the_account_for_a_while() {
        let estate = estate().await;
        let owner = &estate.owner;
        let code = |r: Result<_, haven_ops::api::InstanceError>| r.expect_err("refused").code;
        // A wrong password: refused, and the next try waits a second,
        // even with the right password.
        assert_eq!(
            code(owner.login(&with("ana", "wrong", None)).await),
            ErrorCode::LoginFailed
        );
        assert_eq!(
            code(owner.login(&with("ana", GOOD, None)).await),
            ErrorCode::LoginLocked
        );
        estate.clock.advance(SignedDuration::from_secs(1));
        owner
            .login(&with("ana", GOOD, None))
            .await
            .expect("after the delay");
        // Five failures in a row lock it for the lockout (15 minutes).
        for n in 0..5 {
            assert_eq!(
                code(owner.login(&with("ana", "wrong", None)).await),
                ErrorCode::LoginFailed
            );
            estate.clock.advance(SignedDuration::from_secs(1 << n));
        }
        let locked = owner
            .login(&with("ana", GOOD, None))
            .await
            .expect_err("locked");
        assert_eq!(locked.code, ErrorCode::LoginLocked);
        assert!(locked.message.contains("try again after"), "{locked}");
        estate.clock.advance(SignedDuration::from_mins(14));
        assert_eq!(
            code(owner.login(&with("ana", GOOD, None)).await),
            ErrorCode::LoginLocked
        );
        estate.clock.advance(SignedDuration::from_mins(2));
        owner
            .login(&with("ana", GOOD, None))
            .await
            .expect("the lockout is over");
        // An unknown user gets the same words as a wrong password.
        let unknown = owner
            .login(&with("nobody", GOOD, None))
            .await
            .expect_err("unknown");
        assert_eq!(unknown.code, ErrorCode::LoginFailed);
        assert_eq!(unknown.message, "wrong user name, password or code");
        // Every failure is counted for the security alert; the log holds
        // each login without its password.
        let entries = owner
            .audit_entries(&AuditQuery::default())
            .await
            .expect("entries");
        let logins: Vec<_> = entries
            .iter()
            .filter(|e| e.action == "session.login")
            .collect();
        assert!(
            logins
                .iter()
                .any(|e| e.outcome == "refused" && e.actor == "login:nobody")
        );
        let good = logins
            .iter()
            .find(|e| e.outcome == "success" && e.actor.starts_with("user:ana (ses_"))
            .expect("the good login");
        assert_eq!(
            good.role.as_deref(),
            Some("operator"),
            "in the account's roles"
        );
        let bad = logins
            .iter()
            .find(|e| e.actor == "login:nobody")
            .expect("refused");
        assert_eq!(bad.role, None);
    }

    #[tokio::test]
    async fn admins_must_give_a_totp_code_once_it_is_required_and_a_code_is_good_once() {
        let estate = estate().await;
        // TOTP required: an admin without a seed cannot log in.
        let settings_text = "[access]\nfour_eyes = true\ntotp = \"required\"\n";
        let dir = estate._dir.path();
        std::fs::write(dir.join("haven.toml"), settings_text).expect("settings");
        let settings =
            haven_ops::instance::Settings::load(dir, &Default::default()).expect("settings");
        let owner = DataDir::open(settings)
            .await
            .expect("data dir")
            .audited()
            .await
            .expect("audited")
            .with_clock(Arc::new(estate.clock.clone()));
        let refused = owner
            .login(&with("root-admin", GOOD, None))
            .await
            .expect_err("no seed");
        assert!(
            refused.message.contains("haven user totp root-admin"),
            "{refused}"
        );
        owner
            .login(&with("ana", GOOD, None))
            .await
            .expect("an operator needs none");

        let enrolled = owner.user_totp("root-admin").await.expect("enrol");
        assert!(
            enrolled
                .uri
                .starts_with("otpauth://totp/Haven:root-admin?secret=")
        );
        let seed = totp_rs::Secret::try_from_base32(&enrolled.secret).expect("base32");
        let totp = totp_rs::Builder::new()
            .with_secret(seed)
            .build()
            .expect("totp");
        let code_at = |clock: &ManualClock| {
            totp.generate(u64::try_from(clock.now().as_second()).expect("time"))
                .to_string()
        };
        // The seed is sealed in the database: its text is nowhere there.
        let db = std::fs::read(dir.join("haven.db")).expect("db");
        assert!(
            !db.windows(enrolled.secret.len())
                .any(|w| w == enrolled.secret.as_bytes())
        );

        let code = owner
            .login(&with("root-admin", GOOD, None))
            .await
            .expect_err("no code");
        assert_eq!(code.code, ErrorCode::LoginFailed);
        estate.clock.advance(SignedDuration::from_secs(2));
        let wrong = owner
            .login(&with("root-admin", GOOD, Some("000000".into())))
            .await;
        assert_eq!(wrong.expect_err("wrong code").code, ErrorCode::LoginFailed);
        estate.clock.advance(SignedDuration::from_secs(4));
        let code = code_at(&estate.clock);
        let granted = owner
            .login(&with("root-admin", GOOD, Some(code.clone())))
            .await
            .expect("password and code");
        assert_eq!(granted.session.method, "password+totp");
        let replay = owner.login(&with("root-admin", GOOD, Some(code))).await;
        assert_eq!(
            replay.expect_err("a code is good once").code,
            ErrorCode::LoginFailed
        );
    }

    #[tokio::test]
    async fn a_session_ends_when_idle_at_its_end_or_at_logout() {
        let estate = estate().await;
        let owner = &estate.owner;
        let granted = owner.login(&with("ana", GOOD, None)).await.expect("login");
        assert!(granted.secret.starts_with("hvs_"));
        let who = owner
            .session(&granted.secret)
            .await
            .expect("session")
            .expect("live");
        assert!(who.actor.starts_with("user:ana (ses_"), "{}", who.actor);
        assert_eq!(who.roles, vec![Role::Operator]);
        // Used every 29 minutes, it lives until its end (12 hours).
        for _ in 0..30 {
            estate.clock.advance(SignedDuration::from_mins(29));
            if owner
                .session(&granted.secret)
                .await
                .expect("session")
                .is_none()
            {
                break;
            }
        }
        let lived = estate
            .clock
            .now()
            .duration_since(granted.session.created_at);
        assert!(
            lived >= SignedDuration::from_hours(12),
            "ended after {lived:#}"
        );
        assert!(lived < SignedDuration::from_hours(12) + SignedDuration::from_mins(29));
        // Unused for 30 minutes, it ends.
        let idle = owner.login(&with("ana", GOOD, None)).await.expect("login");
        estate.clock.advance(SignedDuration::from_mins(30));
        assert!(
            owner
                .session(&idle.secret)
                .await
                .expect("session")
                .is_none()
        );
        // Logged out, it ends at once.
        let out = owner.login(&with("ana", GOOD, None)).await.expect("login");
        owner.logout(&out.secret).await.expect("logout");
        assert!(owner.session(&out.secret).await.expect("session").is_none());
    }
}

/// A role change takes effect at once, tokens included (a token acts
/// with at most its user's roles as they are now), and is in the log.
#[tokio::test]
async fn a_role_change_narrows_the_users_tokens_at_once() {
    let estate = Estate::new().await;
    let user = NewUser {
        name: "ana".into(),
        roles: vec![Role::Operator, Role::Auditor],
        teams: Vec::new(),
        password: "correct horse battery staple".into(),
        by: "test".into(),
    };
    estate.owner.user_add(&user).await.expect("user");
    let token = NewToken {
        name: "cli".into(),
        owner: Owner::User("ana".into()),
        roles: vec![Role::Operator, Role::Auditor],
        lifetime: SignedDuration::from_hours(24),
        by: "test".into(),
    };
    let created = estate.owner.token_create(&token).await.expect("token");
    let change = haven_ops::api::UserChange {
        name: "ana".into(),
        password: None,
        roles: Some(vec![Role::Auditor]),
        teams: Some(vec!["finance".into()]),
        by: "test".into(),
    };
    let changed = estate.owner.user_change(&change).await.expect("roles");
    assert_eq!(changed.roles, vec![Role::Auditor]);
    assert!(!changed.disabled);
    let identity = estate
        .owner
        .authenticate(&created.secret)
        .await
        .expect("authenticate")
        .expect("live");
    assert_eq!(identity.roles, vec![Role::Auditor]);
    assert_eq!(identity.teams, vec!["finance".to_string()]);
    let entries = estate
        .owner
        .audit_entries(&AuditQuery::default())
        .await
        .expect("entries");
    assert!(
        entries
            .iter()
            .any(|e| e.action == "user.roles" && e.target == "user:ana")
    );
}
