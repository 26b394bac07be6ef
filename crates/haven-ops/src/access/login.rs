//! Logins for the console: a user's password (and TOTP code, for those
//! enrolled, and required of admins and restore operators when `[access]
//! totp = "required"`) opens a session; its secret is the browser's
//! cookie, Haven keeps its SHA-256. Failed logins delay the next try
//! (1 s, 2 s, 4 s, …) and lock the account after `lockout_after` of them,
//! each lockout twice the last; every failure is counted for the
//! `security` alert. Sessions end when idle or at their end, used or not.

use haven_model::access::{SESSION_PREFIX, Session, User, csrf_token, secret_hash};
use haven_store::Store;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use totp_rs::{Builder, Secret};

use super::seal::Sealer;
use super::{AccessError, Identity, random_hex, verify_password};
use crate::instance::AccessSettings;

/// What a person gives to log in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// The user name.
    pub name: String,
    /// The password.
    pub password: String,
    /// The code of the authenticator app (enrolled users).
    #[serde(default)]
    pub totp: Option<String>,
}

impl LoginRequest {
    /// The request as recorded (no password, no code).
    pub fn redacted(&self) -> LoginRequest {
        LoginRequest {
            name: self.name.clone(),
            password: String::new(),
            totp: None,
        }
    }
}

/// An open session, and its secret (the cookie's value, given this once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Granted {
    /// The user (no hashes).
    pub user: User,
    /// The session (no hash).
    pub session: Session,
    /// The session's secret.
    pub secret: String,
    /// The token every change in this session sends back
    /// (`X-CSRF-Token`).
    pub csrf_token: String,
}

/// A TOTP seed to put into an authenticator app (shown once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TotpEnrolment {
    /// The user.
    pub user: String,
    /// The seed, base32.
    pub secret: String,
    /// The same as an `otpauth://` URI (a QR code of it, for phones).
    pub uri: String,
}

/// How often a live session's use is written down.
const TOUCH_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_mins(1);

/// The words every failed login gets, whatever failed (no hint of which).
const FAILED: &str = "wrong user name, password or code";

/// Log `request` in at `now` from `origin`.
pub async fn login(
    store: &dyn Store,
    sealer: &Sealer,
    settings: &AccessSettings,
    now: Timestamp,
    request: &LoginRequest,
    origin: &str,
) -> Result<Granted, AccessError> {
    let failed = |why: &str| AccessError::LoginFailed(why.to_string());
    let found = store
        .users()
        .await?
        .into_iter()
        .find(|u| u.name == request.name && !u.disabled);
    let Some(mut user) = found else {
        store.add_login_failure(now, &request.name, origin).await?;
        return Err(failed(FAILED));
    };
    if let Some(until) = user.locked_until.filter(|until| now < *until) {
        store.add_login_failure(now, &user.name, origin).await?;
        return Err(AccessError::LoginLocked(format!(
            "too many failed logins for {}: try again after {until}",
            user.name
        )));
    }
    let proved = verify_password(&user.password_hash, &request.password).await
        && second_factor(sealer, &mut user, request.totp.as_deref(), now)?;
    if !proved {
        let locked = user.failed_login(now, settings.lockout_after, settings.lockout_for);
        store.put_user(&user).await?;
        store.add_login_failure(now, &user.name, origin).await?;
        if locked {
            tracing::warn!(user = user.name, "an account is locked after failed logins");
        }
        return Err(failed(FAILED));
    }
    if settings.totp_required && user.needs_second_factor() && !user.totp {
        return Err(AccessError::Invalid(format!(
            "{} acts as an admin or restore operator and must log in with a TOTP code: an admin enrols it first (`haven user totp {}`)",
            user.name, user.name
        )));
    }
    user.logged_in();
    store.put_user(&user).await?;
    open_session(
        store,
        settings,
        now,
        &user,
        if user.totp {
            "password+totp"
        } else {
            "password"
        },
    )
    .await
}

/// Does the code prove the second factor (true when none is enrolled)?
/// A code is good once: its time step is kept.
fn second_factor(
    sealer: &Sealer,
    user: &mut User,
    code: Option<&str>,
    now: Timestamp,
) -> Result<bool, AccessError> {
    if !user.totp {
        return Ok(true);
    }
    let Some(code) = code else {
        return Ok(false);
    };
    let seed = sealer.open_sealed(&user.totp_sealed)?;
    let totp = Builder::new()
        .with_secret(Secret::from(seed))
        .with_skew(1)
        .build()
        .map_err(|e| AccessError::Invalid(format!("the TOTP seed of {}: {e}", user.name)))?;
    let at = u64::try_from(now.as_second()).unwrap_or(0);
    match totp.check(code.trim(), at) {
        Some(step) if step > user.totp_step => {
            user.totp_step = step;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Open a session for `user`, proved by `method`.
pub async fn open_session(
    store: &dyn Store,
    settings: &AccessSettings,
    now: Timestamp,
    user: &User,
    method: &str,
) -> Result<Granted, AccessError> {
    let secret = format!("{SESSION_PREFIX}{}", random_hex(32));
    let session = Session {
        id: format!("ses_{}", random_hex(4)),
        user: user.name.clone(),
        secret_hash: secret_hash(&secret),
        method: method.into(),
        created_at: now,
        last_seen: now,
        expires_at: now + settings.session_max,
    };
    store.put_session(&session).await?;
    Ok(Granted {
        user: user.public(),
        session: Session {
            secret_hash: String::new(),
            ..session
        },
        csrf_token: csrf_token(&secret),
        secret,
    })
}

/// Who a session's secret says someone is (none: no live session, or its
/// user disabled); a live one is marked used now.
pub async fn resume(
    store: &dyn Store,
    settings: &AccessSettings,
    now: Timestamp,
    secret: &str,
) -> Result<Option<Identity>, AccessError> {
    if !secret.starts_with(SESSION_PREFIX) {
        return Ok(None);
    }
    let Some(mut session) = store.session_by_secret(&secret_hash(secret)).await? else {
        return Ok(None);
    };
    if !session.is_live(now, settings.session_idle) {
        store.delete_session(&session.id).await?;
        return Ok(None);
    }
    let Some(user) = store
        .users()
        .await?
        .into_iter()
        .find(|u| u.name == session.user && !u.disabled)
    else {
        store.delete_session(&session.id).await?;
        return Ok(None);
    };
    // Marked used at most once a minute: every request of a page would
    // otherwise write (the idle timeout is counted in tens of minutes).
    if now.duration_since(session.last_seen) >= TOUCH_EVERY {
        session.last_seen = now;
        store.put_session(&session).await?;
    }
    Ok(Some(Identity {
        actor: format!("user:{} ({})", user.name, session.id),
        roles: user.roles,
        user: Some(user.name),
        teams: user.teams,
    }))
}

/// End the session of `secret` (none: nothing to end).
pub async fn logout(store: &dyn Store, secret: &str) -> Result<Option<Session>, AccessError> {
    let found = store.session_by_secret(&secret_hash(secret)).await?;
    if let Some(session) = &found {
        store.delete_session(&session.id).await?;
    }
    Ok(found)
}

/// Give `name` a new TOTP seed (sealed in the database; shown once).
pub async fn enrol_totp(
    store: &dyn Store,
    sealer: &Sealer,
    name: &str,
) -> Result<TotpEnrolment, AccessError> {
    let mut user = store
        .users()
        .await?
        .into_iter()
        .find(|u| u.name == name)
        .ok_or_else(|| AccessError::Invalid(format!("there is no user {name}")))?;
    let seed: [u8; 20] = rand::random();
    user.totp_sealed = sealer.seal(&seed)?;
    user.totp = true;
    user.totp_step = 0;
    store.put_user(&user).await?;
    let secret = Secret::from(seed.to_vec()).to_base32();
    let label = name.replace('@', "%40");
    Ok(TotpEnrolment {
        user: name.into(),
        uri: format!(
            "otpauth://totp/Haven:{label}?secret={secret}&issuer=Haven&algorithm=SHA1&digits=6&period=30"
        ),
        secret,
    })
}
