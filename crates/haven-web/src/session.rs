//! Console sessions over HTTP: `POST /auth/login` (a password, and a
//! TOTP code for those enrolled) sets the session cookie — `HttpOnly`
//! (no script reads it), `SameSite=Strict` (no other site's page sends
//! it), `Secure` when the client came over HTTPS, `Path=/`, ending with
//! the session; `POST /auth/logout` ends it; `GET /auth/session` says who
//! it is. The API accepts the cookie where it accepts a token, and a
//! change made with it must carry the session's CSRF token in
//! `X-CSRF-Token` (a page of another site cannot know it).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use haven_model::access::csrf_token;
use haven_model::errors::ErrorCode;
use haven_ops::api::{Audited, Caller, Instance, LoginRequest};
use serde::Serialize;

use crate::access::Origin;
use crate::error::error;
use crate::extract::{ApiJson, ApiQuery};

/// The session cookie's name.
pub const COOKIE: &str = "haven_session";

/// The header a change in a session carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session secret in a request's cookies.
pub(crate) fn session_secret(headers: &HeaderMap) -> Option<String> {
    cookie(headers, COOKIE)
}

/// The cookie `name` of a request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(given, _)| *given == name)
        .map(|(_, value)| value.to_string())
}

/// Does a change made with session `secret` carry its CSRF token?
pub(crate) fn csrf_ok(headers: &HeaderMap, secret: &str) -> bool {
    headers
        .get(CSRF_HEADER)
        .is_some_and(|given| csrf_matches(secret, &String::from_utf8_lossy(given.as_bytes())))
}

/// Is `given` the CSRF token of session `secret` (compared in constant
/// time)?
pub(crate) fn csrf_matches(secret: &str, given: &str) -> bool {
    let expected = csrf_token(secret);
    aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), expected.as_bytes()).is_ok()
}

/// The answer to a change made with a session cookie but without its
/// CSRF token.
pub(crate) fn csrf_refused() -> Response {
    error(
        ErrorCode::CsrfRejected,
        "a change made with a console session must carry the session's token in X-CSRF-Token (from the login's answer, or GET /auth/session)",
    )
}

/// What a login answers (the secret is in the cookie only).
#[derive(Serialize)]
struct LoggedIn {
    user: haven_model::access::User,
    session: haven_model::access::Session,
    csrf_token: String,
}

/// The instance the auth routes act on.
#[derive(Clone)]
pub(crate) struct Auth {
    pub(crate) instance: Audited,
}

/// `POST /auth/login`.
pub(crate) async fn login(
    State(auth): State<Auth>,
    headers: HeaderMap,
    Origin(origin): Origin,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Response {
    let instance = auth.instance.acting(Caller::owner("login", origin));
    let granted = match instance.login(&request).await {
        Ok(granted) => granted,
        Err(e) => {
            let mut response = crate::error::document(&e.document());
            if e.code == ErrorCode::LoginLocked {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            }
            return response;
        }
    };
    let cookie = session_cookie(&granted, &headers);
    let body = LoggedIn {
        user: granted.user,
        session: granted.session,
        csrf_token: granted.csrf_token,
    };
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The cookie that carries a new session.
pub(crate) fn session_cookie(granted: &haven_ops::api::Granted, headers: &HeaderMap) -> String {
    let max_age = granted
        .session
        .expires_at
        .duration_since(granted.session.created_at)
        .as_secs();
    let secure = if https(headers) { "; Secure" } else { "" };
    format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}",
        granted.secret
    )
}

/// The cookie a browser keeps while at the identity provider: `Lax`, as
/// the provider sends it back with a top-level GET from its own site.
const PENDING_COOKIE: &str = "haven_oidc";

/// `GET /auth/oidc/login`: to the identity provider (303), with the
/// sealed state, nonce and PKCE verifier in a cookie.
pub(crate) async fn oidc_login(State(auth): State<Auth>, headers: HeaderMap) -> Response {
    let start = match auth.instance.oidc_begin().await {
        Ok(start) => start,
        Err(e) => return crate::error::document(&e.document()),
    };
    let secure = if https(&headers) { "; Secure" } else { "" };
    let cookie = format!(
        "{PENDING_COOKIE}={}; HttpOnly; SameSite=Lax; Path=/auth/oidc; Max-Age=600{secure}",
        start.pending
    );
    let mut response = StatusCode::SEE_OTHER.into_response();
    for (name, value) in [(header::LOCATION, start.url), (header::SET_COOKIE, cookie)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// What the identity provider sends the browser back with.
#[derive(serde::Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/oidc/callback`: the provider's answer; a session and back
/// to the console (303 to `/`).
pub(crate) async fn oidc_callback(
    State(auth): State<Auth>,
    headers: HeaderMap,
    Origin(origin): Origin,
    ApiQuery(query): ApiQuery<CallbackQuery>,
) -> Response {
    let pending = cookie(&headers, PENDING_COOKIE);
    let (Some(code), Some(state), Some(pending)) = (query.code, query.state, pending) else {
        let why = query
            .error_description
            .or(query.error)
            .unwrap_or_else(|| "no code, state or sign-on cookie".into());
        return error(
            ErrorCode::LoginFailed,
            format!("single sign-on: the provider did not sign you on: {why}"),
        );
    };
    let callback = haven_ops::api::OidcCallback {
        code,
        state,
        pending,
    };
    let instance = auth.instance.acting(Caller::owner("login", origin));
    let granted = match instance.oidc_finish(&callback).await {
        Ok(granted) => granted,
        Err(e) => return crate::error::document(&e.document()),
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    let cleared = format!("{PENDING_COOKIE}=; HttpOnly; SameSite=Lax; Path=/auth/oidc; Max-Age=0");
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/"));
    for value in [session_cookie(&granted, &headers), cleared] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `POST /auth/logout` (with the session's CSRF token).
pub(crate) async fn logout(State(auth): State<Auth>, headers: HeaderMap) -> Response {
    let Some(secret) = session_secret(&headers) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    if !csrf_ok(&headers, &secret) {
        return csrf_refused();
    }
    if let Err(e) = auth.instance.logout(&secret).await {
        return crate::error::document(&e.document());
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("haven_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}

/// `GET /auth/session`: who the cookie's session is, and its CSRF token.
pub(crate) async fn whoami(State(auth): State<Auth>, headers: HeaderMap) -> Response {
    let identity = match session_secret(&headers) {
        Some(secret) => auth
            .instance
            .session(&secret)
            .await
            .ok()
            .flatten()
            .map(|identity| (identity, csrf_token(&secret))),
        None => None,
    };
    match identity {
        Some((identity, csrf)) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"identity": identity, "csrf_token": csrf})),
        )
            .into_response(),
        None => error(ErrorCode::Unauthorized, "no live console session: log in"),
    }
}

/// Did the client come over HTTPS (to Haven's own TLS, or through a
/// TLS-terminating proxy that says so)?
fn https(headers: &HeaderMap) -> bool {
    headers.contains_key(TLS_MARK)
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// Set on requests that came over Haven's own TLS (never by a client:
/// an incoming one is removed first).
pub(crate) const TLS_MARK: &str = "x-haven-over-tls";
