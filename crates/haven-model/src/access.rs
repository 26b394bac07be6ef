//! Who may act: local users and API tokens, their roles, and the rules
//! that need no I/O (the password policy, token formats). Secrets never
//! live here in clear: a user holds an argon2id hash of its password, a
//! token record the SHA-256 of its secret.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// What a role may do (checked by the access-control layer).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything, users and tokens included.
    Admin,
    /// Runs the estate: jobs, alerts, maintenance, drills.
    Operator,
    /// Restores and recovers.
    RestoreOperator,
    /// Approves others' four-eyes requests.
    Approver,
    /// Reads everything, the audit log included; changes nothing.
    Auditor,
    /// Acts on the services its teams own.
    ServiceOwner,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Operator,
        Role::RestoreOperator,
        Role::Approver,
        Role::Auditor,
        Role::ServiceOwner,
    ];

    /// Its name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::RestoreOperator => "restore-operator",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
            Role::ServiceOwner => "service-owner",
        }
    }

    /// Parse a role's name.
    pub fn parse(text: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown role {text:?}: one of {}",
                    Role::ALL.map(Role::as_str).join(", ")
                )
            })
    }
}

/// What a request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Read the state: status, jobs, alerts, drills, recoveries.
    Read,
    /// Run the estate: jobs, alerts, maintenance, drills, notifications.
    Operate,
    /// Restore and recover, and decide on a recovery's steps.
    Restore,
    /// Approve others' requests.
    Approve,
    /// Read and check the audit log.
    Audit,
    /// Users and tokens.
    Admin,
}

impl Role {
    /// Does this role grant `permission` on the whole instance? (A
    /// service owner's is [`owner_may`], on what its teams own.)
    pub fn allows(self, permission: Permission) -> bool {
        use Permission as P;
        match self {
            Role::Admin => true,
            Role::Operator => matches!(permission, P::Read | P::Operate),
            Role::RestoreOperator => matches!(permission, P::Read | P::Restore),
            Role::Approver => matches!(permission, P::Read | P::Approve),
            Role::Auditor => matches!(permission, P::Read | P::Audit),
            Role::ServiceOwner => permission == P::Read,
        }
    }
}

/// Do any of `roles` grant `permission`?
pub fn allowed(roles: &[Role], permission: Permission) -> bool {
    roles.iter().any(|r| r.allows(permission))
}

/// What a service owner may do on the services (and their systems) its
/// teams own: run backups and drills, handle their alerts, recover them.
pub fn owner_may(permission: Permission) -> bool {
    matches!(permission, Permission::Operate | Permission::Restore)
}

/// Does one of `teams` own service `id` (the catalog's `owner`)?
pub fn owns_service(catalog: &crate::catalog::Catalog, teams: &[String], id: &str) -> bool {
    catalog
        .service(id)
        .and_then(|s| s.owner.as_ref())
        .is_some_and(|owner| teams.iter().any(|t| t == owner.value.as_str()))
}

/// Does one of `teams` own system `id`: its own `owner`, or a service
/// they own that depends on it directly?
pub fn owns_system(catalog: &crate::catalog::Catalog, teams: &[String], id: &str) -> bool {
    let Some(system) = catalog.system(id) else {
        return false;
    };
    if system
        .owner
        .as_ref()
        .is_some_and(|owner| teams.iter().any(|t| t == owner.value.as_str()))
    {
        return true;
    }
    catalog.services.iter().any(|service| {
        owns_service(catalog, teams, &service.id.value)
            && service.depends_on.iter().any(|d| d.value == id)
    })
}

/// A local user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Teams (a service owner acts on the services these teams own).
    pub teams: Vec<String>,
    /// The argon2id hash of the password (PHC string); never shown.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub password_hash: String,
    /// A disabled user cannot log in or use its tokens.
    pub disabled: bool,
    /// When it was added.
    pub created_at: Timestamp,
    /// When its password was last set.
    pub password_set_at: Timestamp,
    /// Its TOTP seed, sealed with the data dir's key (never shown; empty:
    /// not enrolled).
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub totp_sealed: String,
    /// Whether it gives a TOTP code to log in.
    #[serde(default)]
    pub totp: bool,
    /// The time step of the last code it gave (a code is good once).
    #[serde(default)]
    pub totp_step: u64,
    /// Signs on through the OpenID Connect provider (no password here;
    /// roles and teams from the provider's groups at each login).
    #[serde(default)]
    pub sso: bool,
    /// Failed logins since the last good one (or the last lockout).
    #[serde(default)]
    pub failed_logins: u32,
    /// Lockouts in a row (each lasts twice the one before).
    #[serde(default)]
    pub lockouts: u32,
    /// No login is tried before this (a delay after a failure, or a
    /// lockout).
    #[serde(default)]
    pub locked_until: Option<Timestamp>,
}

impl User {
    /// The user as shown (no password hash, no TOTP seed).
    pub fn public(&self) -> User {
        User {
            password_hash: String::new(),
            totp_sealed: String::new(),
            ..self.clone()
        }
    }

    /// Count a failed login at `now`: a delay that doubles with each
    /// failure (1 s, 2 s, 4 s, …), and after `lockout_after` of them a
    /// lockout of `lockout_for`, doubled for each lockout in a row (at
    /// most a day). Answers whether this failure locked the account.
    pub fn failed_login(
        &mut self,
        now: Timestamp,
        lockout_after: u32,
        lockout_for: jiff::SignedDuration,
    ) -> bool {
        self.failed_logins += 1;
        if self.failed_logins >= lockout_after {
            let factor = 1i32 << self.lockouts.min(10);
            let lock = (lockout_for * factor).min(jiff::SignedDuration::from_hours(24));
            self.locked_until = Some(now + lock);
            self.lockouts += 1;
            self.failed_logins = 0;
            return true;
        }
        let delay = jiff::SignedDuration::from_secs(1i64 << (self.failed_logins - 1).min(5));
        self.locked_until = Some(now + delay);
        false
    }

    /// A good login: the counts start again.
    pub fn logged_in(&mut self) {
        self.failed_logins = 0;
        self.lockouts = 0;
        self.locked_until = None;
    }

    /// Must it give a TOTP code when TOTP is required (admins and
    /// restore operators)?
    pub fn needs_second_factor(&self) -> bool {
        self.roles
            .iter()
            .any(|r| matches!(r, Role::Admin | Role::RestoreOperator))
    }
}

/// A console session, as stored (its secret lives in the browser's
/// cookie; Haven keeps its SHA-256).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Its id (`ses_` and 8 hex digits), public.
    pub id: String,
    /// The user.
    pub user: String,
    /// SHA-256 of the secret, hex; never shown.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub secret_hash: String,
    /// How the user proved who they are (`password`, `password+totp`,
    /// `oidc`).
    pub method: String,
    /// When it began.
    pub created_at: Timestamp,
    /// When it was last used.
    pub last_seen: Timestamp,
    /// It ends then, used or not.
    pub expires_at: Timestamp,
}

impl Session {
    /// Is it alive at `now`, given the idle timeout?
    pub fn is_live(&self, now: Timestamp, idle: jiff::SignedDuration) -> bool {
        now < self.expires_at && now.duration_since(self.last_seen) < idle
    }
}

/// The prefix of every session secret.
pub const SESSION_PREFIX: &str = "hvs_";

/// The CSRF token of a session: derived from its secret, so a page of
/// the session can send it back and a page of another site cannot know
/// it (nothing more is stored).
pub fn csrf_token(session_secret: &str) -> String {
    crate::audit::digest_of(&format!("haven-csrf:{session_secret}"))
}

/// What a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum Owner {
    /// A user (acts with at most the user's roles).
    User(String),
    /// An automation (a CI job, a monitoring probe).
    Automation(String),
}

/// An API token, as stored (its secret is shown once, then only its
/// hash is kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Token {
    /// Its id (`tok_` and 8 hex digits), public.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// Whose it is.
    pub owner: Owner,
    /// The roles it acts with.
    pub roles: Vec<Role>,
    /// SHA-256 of the secret, hex; never shown.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub secret_hash: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

impl Token {
    /// The token as shown (no hash).
    pub fn public(&self) -> Token {
        Token {
            secret_hash: String::new(),
            ..self.clone()
        }
    }

    /// Does it work at `now`?
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// The prefix of every token secret (so a leaked one is recognisable).
pub const TOKEN_PREFIX: &str = "hvn_";

/// SHA-256 of a token secret, hex.
pub fn secret_hash(secret: &str) -> String {
    crate::audit::digest_of(&secret)
}

/// Passwords of people: long enough, not the name, not a well-known one
/// (NIST SP 800-63B: length and a blocklist, no composition rules).
pub fn check_password(name: &str, password: &str) -> Result<(), String> {
    const MIN: usize = 12;
    const MAX: usize = 256;
    const COMMON: &[&str] = &[
        "password", "123456", "qwerty", "letmein", "welcome", "admin", "iloveyou", "monkey",
        "dragon", "111111", "abc123", "haven",
    ];
    let length = password.chars().count();
    if length < MIN {
        return Err(format!(
            "the password has {length} characters: use at least {MIN} (a passphrase of a few words is easy to remember)"
        ));
    }
    if length > MAX {
        return Err(format!("the password is longer than {MAX} characters"));
    }
    let lower = password.to_lowercase();
    if !name.is_empty() && lower.contains(&name.to_lowercase()) {
        return Err("the password contains the user name".into());
    }
    if COMMON.iter().any(|c| lower.contains(c)) || password.chars().all(|c| password.starts_with(c))
    {
        return Err(
            "the password is too easy to guess (a well-known word or one repeated character)"
                .into(),
        );
    }
    Ok(())
}

/// A user or token name: letters, digits, `.`, `_`, `-`, `@`; 1–64.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?}: use 1–64 letters, digits, `.`, `_`, `-` or `@`"
        ))
    }
}

#[cfg(test)]
mod login_tests {
    use super::*;
    use jiff::SignedDuration;

    fn user() -> User {
        User {
            name: "ana".into(),
            roles: vec![Role::Operator],
            teams: Vec::new(),
            password_hash: String::new(),
            disabled: false,
            created_at: Timestamp::UNIX_EPOCH,
            password_set_at: Timestamp::UNIX_EPOCH,
            totp_sealed: String::new(),
            totp: false,
            totp_step: 0,
            sso: false,
            failed_logins: 0,
            lockouts: 0,
            locked_until: None,
        }
    }

    #[test]
    fn failures_delay_then_lock_for_longer_each_time() {
        let now = Timestamp::UNIX_EPOCH;
        let fifteen = SignedDuration::from_mins(15);
        let mut u = user();
        let delays: Vec<i64> = (0..4)
            .map(|_| {
                assert!(!u.failed_login(now, 5, fifteen));
                u.locked_until
                    .expect("delayed")
                    .duration_since(now)
                    .as_secs()
            })
            .collect();
        assert_eq!(delays, vec![1, 2, 4, 8]);
        assert!(u.failed_login(now, 5, fifteen), "the fifth locks");
        assert_eq!(u.locked_until, Some(now + fifteen));
        for _ in 0..5 {
            u.failed_login(now, 5, fifteen);
        }
        assert_eq!(
            u.locked_until,
            Some(now + fifteen * 2),
            "the second lockout doubles"
        );
        u.logged_in();
        assert_eq!((u.failed_logins, u.lockouts, u.locked_until), (0, 0, None));
    }

    #[test]
    fn a_session_ends_when_idle_or_at_its_end() {
        let start = Timestamp::UNIX_EPOCH;
        let session = Session {
            id: "ses_1".into(),
            user: "ana".into(),
            secret_hash: String::new(),
            method: "password".into(),
            created_at: start,
            last_seen: start,
            expires_at: start + SignedDuration::from_hours(12),
        };
        let idle = SignedDuration::from_mins(30);
        assert!(session.is_live(start + SignedDuration::from_mins(29), idle));
        assert!(!session.is_live(start + SignedDuration::from_mins(30), idle));
        let used = Session {
            last_seen: start + SignedDuration::from_hours(12) - SignedDuration::from_mins(1),
            ..session
        };
        assert!(!used.is_live(start + SignedDuration::from_hours(12), idle));
        assert_ne!(csrf_token("hvs_a"), csrf_token("hvs_b"));
    }
}
