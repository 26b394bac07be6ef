//! Identities: local users (argon2id password hashes, the password
//! policy) and API tokens (a secret shown once, its SHA-256 kept;
//! scoped to roles; expiring; revocable). What each role may do is the
//! access-control layer's (still to come); this is who someone is.

mod approvals;
mod caller;
mod login;
mod oidc;
mod seal;

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use haven_model::access::{
    Owner, Role, TOKEN_PREFIX, Token, User, check_name, check_password, secret_hash,
};
use haven_store::{Store, StoreError};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

pub use approvals::{GATED_TIERS, Gated, RequestDecision, RequestsQuery, Verdict, recovery_gate};
pub use caller::{Caller, On, permission_name};
pub use login::{
    Granted, LoginRequest, TotpEnrolment, enrol_totp, login, logout, open_session, resume,
};
pub use oidc::{OidcCallback, OidcStart};
pub use seal::Sealer;

/// Single sign-on with an OpenID Connect provider.
pub mod sso {
    pub use super::oidc::{begin, finish};
}

/// Four-eyes requests in the store (asked, decided, listed).
pub mod requests {
    pub use super::approvals::{ask, break_glass, decide, finish, get, list};
}

/// The longest a token may live.
const MAX_TOKEN_LIFE: SignedDuration = SignedDuration::from_hours(366 * 24);

/// Add a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NewUser {
    /// Login name.
    pub name: String,
    /// Roles (at least one).
    pub roles: Vec<Role>,
    /// Teams.
    #[serde(default)]
    pub teams: Vec<String>,
    /// The password (checked against the policy; only its hash is kept).
    pub password: String,
    /// Who adds it.
    pub by: String,
}

impl NewUser {
    /// The request as recorded (no password).
    pub fn redacted(&self) -> NewUser {
        NewUser {
            password: String::new(),
            ..self.clone()
        }
    }
}

/// Set a user's password, or disable it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserChange {
    /// The user.
    pub name: String,
    /// The new password (reset), or none (disable, unless roles or
    /// teams are given).
    #[serde(default)]
    pub password: Option<String>,
    /// New roles.
    #[serde(default)]
    pub roles: Option<Vec<Role>>,
    /// New teams.
    #[serde(default)]
    pub teams: Option<Vec<String>>,
    /// Who.
    pub by: String,
}

impl UserChange {
    /// The request as recorded (no password).
    pub fn redacted(&self) -> UserChange {
        UserChange {
            password: self.password.as_ref().map(|_| String::new()),
            ..self.clone()
        }
    }
}

/// Make a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NewToken {
    /// What it is for.
    pub name: String,
    /// Whose it is.
    pub owner: Owner,
    /// The roles it acts with (a user's token: some of the user's).
    pub roles: Vec<Role>,
    /// How long it lives (at most a year).
    pub lifetime: SignedDuration,
    /// Who makes it.
    pub by: String,
}

/// A new token and its secret (shown this once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreatedToken {
    /// The token.
    pub token: Token,
    /// Its secret: send it as `Authorization: Bearer SECRET`.
    pub secret: String,
}

/// Revoke a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenRevocation {
    /// The token's id.
    pub id: String,
    /// Who.
    pub by: String,
}

/// Why an identity change is refused.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The request is not acceptable (a weak password, an unknown user).
    #[error("{0}")]
    Invalid(String),
    /// The user or token exists already, or does not exist.
    #[error("{0}")]
    Conflict(String),
    /// A login failed (the words never say what was wrong).
    #[error("{0}")]
    LoginFailed(String),
    /// Too many failed logins: the account waits.
    #[error("{0}")]
    LoginLocked(String),
    /// No four-eyes request with that number.
    #[error("{0}")]
    NoSuchRequest(String),
    /// The request cannot be decided so.
    #[error("{0}")]
    RequestConflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who a valid token says someone is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// `user:NAME` or `automation:NAME`, and the token (`tok_…`).
    pub actor: String,
    /// The roles it acts with.
    pub roles: Vec<Role>,
    /// The user (none: an automation).
    #[serde(default)]
    pub user: Option<String>,
    /// The user's teams.
    #[serde(default)]
    pub teams: Vec<String>,
}

/// Add a user (its password hashed with argon2id off the async threads).
pub async fn add_user(store: &dyn Store, request: &NewUser) -> Result<User, AccessError> {
    check_name("user name", &request.name).map_err(AccessError::Invalid)?;
    if request.roles.is_empty() {
        return Err(AccessError::Invalid(
            "a user needs at least one role (--role)".into(),
        ));
    }
    check_password(&request.name, &request.password).map_err(AccessError::Invalid)?;
    if store.users().await?.iter().any(|u| u.name == request.name) {
        return Err(AccessError::Conflict(format!(
            "user {} exists already",
            request.name
        )));
    }
    let now = Timestamp::now();
    let user = User {
        name: request.name.clone(),
        roles: sorted(&request.roles),
        teams: request.teams.clone(),
        password_hash: hash_password(request.password.clone()).await?,
        disabled: false,
        created_at: now,
        password_set_at: now,
        totp_sealed: String::new(),
        totp: false,
        totp_step: 0,
        sso: false,
        failed_logins: 0,
        lockouts: 0,
        locked_until: None,
    };
    store.put_user(&user).await?;
    Ok(user.public())
}

/// Every user (without password hashes).
pub async fn users(store: &dyn Store) -> Result<Vec<User>, AccessError> {
    Ok(store.users().await?.iter().map(User::public).collect())
}

/// Reset a user's password (with one) or disable it (without).
pub async fn change_user(store: &dyn Store, change: &UserChange) -> Result<User, AccessError> {
    let mut user = store
        .users()
        .await?
        .into_iter()
        .find(|u| u.name == change.name)
        .ok_or_else(|| AccessError::Invalid(format!("there is no user {}", change.name)))?;
    match (&change.password, &change.roles, &change.teams) {
        (Some(password), _, _) => {
            check_password(&user.name, password).map_err(AccessError::Invalid)?;
            user.password_hash = hash_password(password.clone()).await?;
            user.password_set_at = Timestamp::now();
        }
        (None, None, None) => user.disabled = true,
        (None, roles, teams) => {
            if let Some(roles) = roles {
                if roles.is_empty() {
                    return Err(AccessError::Invalid(
                        "a user needs at least one role (--role); disable it instead".into(),
                    ));
                }
                user.roles = sorted(roles);
            }
            if let Some(teams) = teams {
                user.teams = teams.clone();
            }
        }
    }
    store.put_user(&user).await?;
    Ok(user.public())
}

/// Does `password` match the argon2id `hash` (checked off the async
/// threads)?
pub(crate) async fn verify_password(hash: &str, password: &str) -> bool {
    let (hash, password) = (hash.to_string(), password.to_string());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// Make a token; its secret is in the answer and nowhere else.
pub async fn create_token(
    store: &dyn Store,
    request: &NewToken,
) -> Result<CreatedToken, AccessError> {
    check_name("token name", &request.name).map_err(AccessError::Invalid)?;
    if request.roles.is_empty() {
        return Err(AccessError::Invalid(
            "a token needs at least one role (--role)".into(),
        ));
    }
    if request.lifetime <= SignedDuration::ZERO || request.lifetime > MAX_TOKEN_LIFE {
        return Err(AccessError::Invalid(
            "a token lives more than nothing and at most a year (--expires 90d)".into(),
        ));
    }
    if let Owner::User(name) = &request.owner {
        let user = store
            .users()
            .await?
            .into_iter()
            .find(|u| &u.name == name)
            .ok_or_else(|| AccessError::Invalid(format!("there is no user {name}")))?;
        if let Some(role) = request.roles.iter().find(|r| !user.roles.contains(r)) {
            return Err(AccessError::Invalid(format!(
                "user {name} does not hold the role {}: a token acts with some of its user's roles",
                role.as_str()
            )));
        }
    }
    let secret = format!("{TOKEN_PREFIX}{}", random_hex(32));
    let now = Timestamp::now();
    let token = Token {
        id: format!("tok_{}", random_hex(4)),
        name: request.name.clone(),
        owner: request.owner.clone(),
        roles: sorted(&request.roles),
        secret_hash: secret_hash(&secret),
        created_at: now,
        expires_at: now + request.lifetime,
        revoked_at: None,
    };
    store.put_token(&token).await?;
    Ok(CreatedToken {
        token: token.public(),
        secret,
    })
}

/// Every token (without hashes).
pub async fn tokens(store: &dyn Store) -> Result<Vec<Token>, AccessError> {
    Ok(store.tokens().await?.iter().map(Token::public).collect())
}

/// Revoke a token (it stops working at once).
pub async fn revoke_token(
    store: &dyn Store,
    request: &TokenRevocation,
) -> Result<Token, AccessError> {
    let mut token = store
        .tokens()
        .await?
        .into_iter()
        .find(|t| t.id == request.id)
        .ok_or_else(|| AccessError::Invalid(format!("there is no token {}", request.id)))?;
    if token.revoked_at.is_some() {
        return Err(AccessError::Conflict(format!(
            "token {} is revoked already",
            request.id
        )));
    }
    token.revoked_at = Some(Timestamp::now());
    store.put_token(&token).await?;
    Ok(token.public())
}

/// Who `secret` says someone is: a live token of an enabled user (or of
/// an automation).
pub async fn authenticate(
    store: &Arc<dyn Store>,
    secret: &str,
) -> Result<Option<Identity>, AccessError> {
    if !secret.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let Some(token) = store.token_by_secret(&secret_hash(secret)).await? else {
        return Ok(None);
    };
    if !token.is_live(Timestamp::now()) {
        return Ok(None);
    }
    let mut roles = token.roles.clone();
    let (actor, user, teams) = match &token.owner {
        Owner::User(name) => {
            let Some(user) = store
                .users()
                .await?
                .into_iter()
                .find(|u| &u.name == name && !u.disabled)
            else {
                return Ok(None);
            };
            let actor = format!("user:{name} ({})", token.id);
            // A token acts with at most its user's roles as they are now.
            roles.retain(|r| user.roles.contains(r));
            (actor, Some(user.name), user.teams)
        }
        Owner::Automation(name) => (
            format!("automation:{name} ({})", token.id),
            None,
            Vec::new(),
        ),
    };
    if roles.is_empty() {
        return Ok(None);
    }
    Ok(Some(Identity {
        actor,
        roles,
        user,
        teams,
    }))
}

async fn hash_password(password: String) -> Result<String, AccessError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AccessError::Invalid(format!("cannot hash the password: {e}")))
    })
    .await
    .map_err(|e| AccessError::Invalid(format!("hashing stopped: {e}")))?
}

fn sorted(roles: &[Role]) -> Vec<Role> {
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    roles
}

pub(crate) fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}
