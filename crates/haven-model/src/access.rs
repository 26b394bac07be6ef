//! Who may act: local users and API tokens, their roles, and the rules
//! that need no I/O (the password policy, token formats). Secrets never
//! live here in clear: a user holds an argon2id hash of its password, a
//! token record the SHA-256 of its secret.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// What a role may do (checked by the access-control layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl User {
    /// The user as shown (no password hash).
    pub fn public(&self) -> User {
        User {
            password_hash: String::new(),
            ..self.clone()
        }
    }
}

/// What a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum Owner {
    /// A user (acts with at most the user's roles).
    User(String),
    /// An automation (a CI job, a monitoring probe).
    Automation(String),
}

/// An API token, as stored (its secret is shown once, then only its
/// hash is kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
