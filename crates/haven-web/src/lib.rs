//! Haven's HTTP API and its client. Only this crate knows HTTP.
//!
//! The API serves a running server's [`Handle`] on loopback by default.
//! Every route but `/healthz` needs `Authorization: Bearer TOKEN`, the
//! token in the data dir's `api-token` file. Routes and documents are
//! listed in `docs/server.md`.

pub mod client;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use haven_model::jobs::Outcome;
use haven_ops::server::{Handle, NewWindow};
use haven_ops::watch::WatchError;
use haven_ops::watch::windows::WindowError;
use haven_store::{AlertFilter, JobFilter};
use serde::{Deserialize, Serialize};

/// An API error body.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong.
    pub error: String,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(ApiError {
            error: message.into(),
        }),
    )
        .into_response()
}

#[derive(Clone)]
struct AppState {
    handle: Handle,
    token: String,
}

fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(given) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), state.token.as_bytes())
        .is_ok()
}

macro_rules! require_token {
    ($state:expr, $headers:expr) => {
        if !authorized(&$state, &$headers) {
            return error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong token: send `Authorization: Bearer` with the token in the data dir's api-token file",
            );
        }
    };
}

/// The API router for a running server.
pub fn router(handle: Handle, token: String) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/status", get(status))
        .route("/api/v1/jobs", get(jobs))
        .route("/api/v1/jobs/{id}", get(job))
        .route("/api/v1/systems/{system}/run", post(run))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/{id}", get(alert))
        .route("/api/v1/alerts/{id}/ack", post(acknowledge))
        .route("/api/v1/alerts/{id}/resolve", post(resolve))
        .route("/api/v1/maintenance", get(windows).post(add_window))
        .route("/api/v1/maintenance/{id}/end", post(end_window))
        .route("/api/v1/channels/{id}/test", post(notify_test))
        .with_state(AppState { handle, token })
}

/// The header naming who acts (`haven alert ack` sends the local user).
/// Until accounts exist, the token authenticates and this only records.
pub const USER_HEADER: &str = "x-haven-user";

fn user(headers: &HeaderMap) -> String {
    headers
        .get(USER_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .map_or_else(|| "api".to_string(), |v| v.trim().to_string())
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
        WatchError::NoSuchAlert(_) => error(StatusCode::NOT_FOUND, e.to_string()),
        WatchError::AlreadyResolved(_) => error(StatusCode::CONFLICT, e.to_string()),
        WatchError::Store(_) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn window_error(e: WindowError) -> Response {
    match e {
        WindowError::Invalid(_) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        WindowError::Store(_) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn alerts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AlertsQuery>,
) -> Response {
    require_token!(state, headers);
    match state.handle.alerts(&query.filter()).await {
        Ok(list) => axum::Json(list).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn alert(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    require_token!(state, headers);
    match state.handle.alert(id).await {
        Ok(Some(detail)) => axum::Json(detail).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no alert {id}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn acknowledge(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    require_token!(state, headers);
    match state.handle.acknowledge(id, &user(&headers)).await {
        Some(Ok(alert)) => axum::Json(alert).into_response(),
        Some(Err(e)) => watch_error(e),
        None => error(StatusCode::SERVICE_UNAVAILABLE, STOPPING),
    }
}

async fn resolve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Option<axum::Json<ResolveBody>>,
) -> Response {
    require_token!(state, headers);
    let reason = body
        .and_then(|b| b.0.reason)
        .unwrap_or_else(|| "resolved by hand".into());
    match state.handle.resolve(id, &user(&headers), &reason).await {
        Some(Ok(alert)) => axum::Json(alert).into_response(),
        Some(Err(e)) => watch_error(e),
        None => error(StatusCode::SERVICE_UNAVAILABLE, STOPPING),
    }
}

async fn windows(State(state): State<AppState>, headers: HeaderMap) -> Response {
    require_token!(state, headers);
    match state.handle.windows().await {
        Ok(list) => axum::Json(list).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn add_window(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Json(mut window): axum::Json<NewWindow>,
) -> Response {
    require_token!(state, headers);
    window.by = user(&headers);
    match state.handle.add_window(window).await {
        Some(Ok(recorded)) => (StatusCode::CREATED, axum::Json(recorded)).into_response(),
        Some(Err(e)) => window_error(e),
        None => error(StatusCode::SERVICE_UNAVAILABLE, STOPPING),
    }
}

async fn end_window(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    require_token!(state, headers);
    match state.handle.end_window(&id, &user(&headers)).await {
        Some(Ok(recorded)) => axum::Json(recorded).into_response(),
        Some(Err(e)) => window_error(e),
        None => error(StatusCode::SERVICE_UNAVAILABLE, STOPPING),
    }
}

async fn notify_test(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    require_token!(state, headers);
    match state.handle.notify_test(&id).await {
        Some(report) => axum::Json(report).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no channel {id:?} in the catalog"),
        ),
    }
}

async fn status(State(state): State<AppState>, headers: HeaderMap) -> Response {
    require_token!(state, headers);
    match state.handle.status().await {
        Ok(report) => axum::Json(report).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
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

async fn jobs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<JobsQuery>,
) -> Response {
    require_token!(state, headers);
    match state.handle.jobs(&query.filter()).await {
        Ok(jobs) => axum::Json(jobs).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn job(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    require_token!(state, headers);
    match state.handle.job(id).await {
        Ok(Some(job)) => axum::Json(job).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no job {id}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn run(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(system): Path<String>,
) -> Response {
    require_token!(state, headers);
    match state.handle.run_now(&system, &user(&headers)).await {
        Some(result) => (StatusCode::ACCEPTED, axum::Json(result)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!(
                "system {system:?} has no backups in the catalog (no policy or no backup sets)"
            ),
        ),
    }
}

/// Serve the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    handle: Handle,
    token: String,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(handle, token))
        .with_graceful_shutdown(shutdown)
        .await
}
