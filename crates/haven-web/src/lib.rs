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
use haven_ops::server::Handle;
use haven_store::JobFilter;
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
        .with_state(AppState { handle, token })
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
    match state.handle.run_now(&system).await {
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
