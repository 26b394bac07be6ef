//! Haven's HTTP API and its client. Only this crate knows HTTP.
//!
//! The API serves a running server's [`Handle`] on loopback by default.
//! Every route but `/healthz` needs `Authorization: Bearer TOKEN`, the
//! token in the data dir's `api-token` file, checked before anything of
//! the request is read. Every error is one JSON shape with a stable code
//! ([`error`]). Routes, documents and codes are listed in
//! `docs/server.md`.

pub mod client;
pub mod error;
mod extract;
mod serve;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use haven_model::actor::Actor;
use haven_model::jobs::Outcome;
use haven_ops::server::{Handle, NewWindow};
use haven_ops::watch::WatchError;
use haven_ops::watch::windows::WindowError;
use haven_store::{AlertFilter, JobFilter};
use serde::{Deserialize, Serialize};

use error::error;
pub use error::{ApiError, ErrorCode};
use extract::{ApiJson, ApiPath, ApiQuery, OptionalJson};
pub use serve::{IDLE_TIMEOUT, serve};

/// The largest request body the API reads.
pub const BODY_LIMIT: usize = 1 << 20;

#[derive(Clone)]
struct AppState {
    handle: Handle,
}

fn authorized(token: &str, headers: &HeaderMap) -> bool {
    let Some(given) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), token.as_bytes()).is_ok()
}

/// The token is checked before the route's extractors run: a request
/// without it is refused before its path, query or body is looked at.
async fn require_token(State(token): State<String>, request: Request, next: Next) -> Response {
    if !authorized(&token, request.headers()) {
        return error(
            ErrorCode::Unauthorized,
            "missing or wrong token: send `Authorization: Bearer` with the token in the data dir's api-token file",
        );
    }
    next.run(request).await
}

async fn no_route(request: Request) -> Response {
    error(
        ErrorCode::NoRoute,
        format!("no route {} (see docs/server.md)", request.uri().path()),
    )
}

async fn method_not_allowed(request: Request) -> Response {
    error(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}

/// The API router for a running server.
pub fn router(handle: Handle, token: String) -> Router {
    let health = handle.clone();
    let api = Router::new()
        .route("/status", get(status))
        .route("/jobs", get(jobs))
        .route("/jobs/{id}", get(job))
        .route("/systems/{system}/run", post(run))
        .route("/alerts", get(alerts))
        .route("/alerts/{id}", get(alert))
        .route("/alerts/{id}/ack", post(acknowledge))
        .route("/alerts/{id}/resolve", post(resolve))
        .route("/maintenance", get(windows).post(add_window))
        .route("/maintenance/{id}/end", post(end_window))
        .route("/channels/{id}/test", post(notify_test))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(AppState { handle })
        .layer(axum::middleware::from_fn_with_state(token, require_token));
    Router::new()
        .route("/healthz", get(move || healthz(health.clone())))
        .nest("/api/v1", api)
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// `GET /healthz` (no token): the server's own health, `200` when `ok`,
/// `503` while `degraded` (its database cannot be written), so a monitor
/// that only reads status codes sees it too.
async fn healthz(handle: Handle) -> Response {
    let report = handle.health();
    let status = if report.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}

/// The header a person names themselves with (`haven alert ack --by`,
/// else the local user). It is not an identity: the token authenticates
/// (recorded as [`TOKEN_IDENTITY`]) and the name is kept beside it,
/// bounded ([`haven_model::actor::DECLARED_MAX`] characters).
pub const USER_HEADER: &str = "x-haven-user";

/// Who the data dir's API token is, in records and events.
pub const TOKEN_IDENTITY: &str = "api-token";

fn actor(headers: &HeaderMap) -> Actor {
    let declared = headers
        .get(USER_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    Actor::new(TOKEN_IDENTITY, declared.as_deref())
}

const STOPPING: &str = "the server is shutting down";

/// Query of `GET /api/v1/alerts`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AlertsQuery {
    /// Only open and acknowledged alerts.
    #[serde(default)]
    pub open: bool,
    /// Only this service's.
    pub service: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<u32>,
}

impl AlertsQuery {
    /// The store filter.
    pub fn filter(&self) -> AlertFilter {
        AlertFilter {
            active: self.open,
            service: self.service.clone(),
            limit: self.limit.unwrap_or(100),
        }
    }
}

/// Body of `POST /api/v1/alerts/{id}/resolve`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ResolveBody {
    /// Why it is resolved.
    pub reason: Option<String>,
}

fn watch_error(e: WatchError) -> Response {
    match e {
        WatchError::NoSuchAlert(_) => error(ErrorCode::NoSuchAlert, e.to_string()),
        WatchError::AlreadyResolved(_) => error(ErrorCode::AlreadyResolved, e.to_string()),
        WatchError::Store(_) => error(ErrorCode::StoreUnavailable, e.to_string()),
    }
}

fn window_error(e: WindowError) -> Response {
    match e {
        WindowError::Invalid(_) => error(ErrorCode::InvalidWindow, e.to_string()),
        WindowError::Store(_) => error(ErrorCode::StoreUnavailable, e.to_string()),
    }
}

async fn alerts(State(state): State<AppState>, ApiQuery(query): ApiQuery<AlertsQuery>) -> Response {
    match state.handle.alerts(&query.filter()).await {
        Ok(list) => axum::Json(list).into_response(),
        Err(e) => error(ErrorCode::StoreUnavailable, e.to_string()),
    }
}

async fn alert(State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> Response {
    match state.handle.alert(id).await {
        Ok(Some(detail)) => axum::Json(detail).into_response(),
        Ok(None) => error(ErrorCode::NoSuchAlert, format!("no alert {id}")),
        Err(e) => error(ErrorCode::StoreUnavailable, e.to_string()),
    }
}

async fn acknowledge(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Response {
    match state.handle.acknowledge(id, &actor(&headers)).await {
        Some(Ok(alert)) => axum::Json(alert).into_response(),
        Some(Err(e)) => watch_error(e),
        None => error(ErrorCode::Stopping, STOPPING),
    }
}

async fn resolve(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
    OptionalJson(body): OptionalJson<ResolveBody>,
) -> Response {
    let reason = body.reason.unwrap_or_else(|| "resolved by hand".into());
    match state.handle.resolve(id, &actor(&headers), &reason).await {
        Some(Ok(alert)) => axum::Json(alert).into_response(),
        Some(Err(e)) => watch_error(e),
        None => error(ErrorCode::Stopping, STOPPING),
    }
}

async fn windows(State(state): State<AppState>) -> Response {
    match state.handle.windows().await {
        Ok(list) => axum::Json(list).into_response(),
        Err(e) => error(ErrorCode::StoreUnavailable, e.to_string()),
    }
}

async fn add_window(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(window): ApiJson<NewWindow>,
) -> Response {
    match state.handle.add_window(window, &actor(&headers)).await {
        Some(Ok(recorded)) => (StatusCode::CREATED, axum::Json(recorded)).into_response(),
        Some(Err(e)) => window_error(e),
        None => error(ErrorCode::Stopping, STOPPING),
    }
}

async fn end_window(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Response {
    match state.handle.end_window(&id, &actor(&headers)).await {
        Some(Ok(recorded)) => axum::Json(recorded).into_response(),
        Some(Err(e)) => window_error(e),
        None => error(ErrorCode::Stopping, STOPPING),
    }
}

async fn notify_test(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Response {
    match state.handle.notify_test(&id).await {
        Some(report) => axum::Json(report).into_response(),
        None => error(
            ErrorCode::NoSuchChannel,
            format!("no channel {id:?} in the catalog"),
        ),
    }
}

async fn status(State(state): State<AppState>) -> Response {
    match state.handle.status().await {
        Ok(report) => axum::Json(report).into_response(),
        Err(e) => error(ErrorCode::StoreUnavailable, e.to_string()),
    }
}

/// Query of `GET /api/v1/jobs`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct JobsQuery {
    /// Only this system's jobs.
    pub system: Option<String>,
    /// Only failed and interrupted jobs.
    #[serde(default)]
    pub failed: bool,
    /// Only jobs due at or after this time (RFC 3339).
    pub since: Option<jiff::Timestamp>,
    /// At most this many (default 100).
    pub limit: Option<u32>,
}

impl JobsQuery {
    /// The store filter.
    pub fn filter(&self) -> JobFilter {
        JobFilter {
            system: self.system.clone(),
            kind: None,
            outcomes: if self.failed {
                vec![Outcome::Failed, Outcome::Interrupted]
            } else {
                Vec::new()
            },
            since: self.since,
            limit: self.limit.unwrap_or(100),
        }
    }
}

async fn jobs(State(state): State<AppState>, ApiQuery(query): ApiQuery<JobsQuery>) -> Response {
    match state.handle.jobs(&query.filter()).await {
        Ok(jobs) => axum::Json(jobs).into_response(),
        Err(e) => error(ErrorCode::StoreUnavailable, e.to_string()),
    }
}

async fn job(State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> Response {
    match state.handle.job(id).await {
        Ok(Some(job)) => axum::Json(job).into_response(),
        Ok(None) => error(ErrorCode::NoSuchJob, format!("no job {id}")),
        Err(e) => error(ErrorCode::StoreUnavailable, e.to_string()),
    }
}

async fn run(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(system): ApiPath<String>,
) -> Response {
    match state.handle.run_now(&system, &actor(&headers)).await {
        Some(result) => (StatusCode::ACCEPTED, axum::Json(result)).into_response(),
        None => error(
            ErrorCode::NoSuchSystem,
            format!(
                "system {system:?} has no backups in the catalog (no policy or no backup sets)"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the `X-Haven-User` header was recorded as who acted.
    #[test]
    fn a_declared_name_is_recorded_beside_the_token_never_as_it() {
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_HEADER,
            "mallory".repeat(30).parse().expect("a header value"),
        );
        let by = actor(&headers);
        assert_eq!(by.who, TOKEN_IDENTITY);
        assert_eq!(
            by.declared.map(|d| d.chars().count()),
            Some(haven_model::actor::DECLARED_MAX)
        );
        assert_eq!(actor(&HeaderMap::new()).declared, None);
    }
}
