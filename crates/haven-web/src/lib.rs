//! Haven's HTTP API and its client. Only this crate knows HTTP.
//!
//! The API serves a running server's [`Handle`] on loopback by default.
//! Every route but `/healthz` needs `Authorization: Bearer TOKEN`, the
//! token in the data dir's `api-token` file, checked before anything of
//! the request is read. Every error is one JSON shape with a stable code
//! ([`error`]). Routes, documents and codes are listed in
//! `docs/server.md`.

pub mod access;
pub mod client;
pub mod console;
pub mod error;
mod extract;
pub mod metrics;
pub mod openapi;
mod openapi_bodies;
mod serve;
pub mod session;
pub mod tls;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

use haven_model::actor::Actor;
use haven_ops::api::{
    AddWindow, AlertAction, AlertsQuery, Audited, EndWindow, Instance, InstanceError, JobsQuery,
    NewWindow, RunRequest,
};
use serde::{Deserialize, Serialize};

use access::Acting;
pub use error::{ErrorCode, ErrorDocument};
use error::{document, error};
use extract::{ApiJson, ApiPath, ApiQuery, OptionalJson};
pub use serve::{IDLE_TIMEOUT, serve};

/// The largest request body the API reads.
pub const BODY_LIMIT: usize = 1 << 20;

/// What every route is served from: the audited instance, which each
/// request acts on as its caller ([`access::Acting`]).
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) instance: Audited,
}

/// What the API accepts: the instance's own token (the data dir's
/// api-token file), or a live token of a user or an automation.
#[derive(Clone)]
struct Auth {
    token: String,
    instance: Arc<dyn Instance>,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// The token is checked before the route's extractors run: a request
/// without it is refused before its path, query or body is looked at.
/// A user's or automation's token, or a console session's cookie (with
/// its CSRF token on a change), puts its identity on the request.
async fn require_token(State(auth): State<Auth>, mut request: Request, next: Next) -> Response {
    request.headers_mut().remove(IDENTITY_HEADER);
    let given = bearer(request.headers()).map(str::to_string);
    if given.is_none()
        && let Some(secret) = session::session_secret(request.headers())
        && let Ok(Some(identity)) = auth.instance.session(&secret).await
    {
        let safe = matches!(
            *request.method(),
            axum::http::Method::GET | axum::http::Method::HEAD
        );
        if !safe && !session::csrf_ok(request.headers(), &secret) {
            return session::csrf_refused();
        }
        return with_identity(request, identity, next).await;
    }
    let instance_token = given.as_deref().is_some_and(|g| {
        aws_lc_rs::constant_time::verify_slices_are_equal(g.as_bytes(), auth.token.as_bytes())
            .is_ok()
    });
    if instance_token {
        return next.run(request).await;
    }
    if let Some(secret) = given
        && let Ok(Some(identity)) = auth.instance.authenticate(&secret).await
    {
        return with_identity(request, identity, next).await;
    }
    error(
        ErrorCode::Unauthorized,
        "missing or wrong token: send `Authorization: Bearer` with the token in the data dir's api-token file, or a live token of yours (`haven token create`), or log in (`POST /auth/login`)",
    )
}

/// Go on with `identity` acting.
async fn with_identity(
    mut request: Request,
    identity: haven_ops::api::Identity,
    next: Next,
) -> Response {
    if let Ok(value) = axum::http::HeaderValue::from_str(&identity.actor) {
        request.headers_mut().insert(IDENTITY_HEADER, value);
    }
    request.extensions_mut().insert(identity);
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

/// The API router for an instance (a running server in this process).
pub fn router(instance: Audited, token: String) -> Router {
    let health: Arc<dyn Instance> = Arc::new(instance.clone());
    let scrape_token = token.clone();
    let api = Router::new()
        .route("/status", get(status))
        .route("/services/{id}", get(service))
        .route("/catalog/findings", get(findings))
        .route("/catalog/graph", get(graph))
        .route("/bia", get(bia))
        .route("/plan/order", get(recovery_order))
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
        .route("/preflight", get(preflight))
        .route("/drills", post(drill).get(drills))
        .route("/service-drills", post(drill_service).get(service_drills))
        .route("/recovery/forecast", post(recovery_forecast))
        .route("/recoveries", post(recover).get(recoveries))
        .route("/recoveries/{id}", get(recovery))
        .route("/recoveries/{id}/resume", post(resume_recovery))
        .route("/recoveries/{id}/abandon", post(abandon_recovery))
        .route("/audit/verify", post(audit_verify))
        .route("/audit/anchor", post(audit_anchor))
        .route("/audit/entries", get(audit_entries))
        .route("/audit/export", get(audit_export))
        .route("/users", post(user_add).get(users))
        .route("/users/{name}/change", post(user_change))
        .route("/users/{name}/totp", post(user_totp))
        .route("/tokens", post(token_create).get(tokens))
        .route("/tokens/{id}/revoke", post(token_revoke))
        .route("/recoveries/{id}/steps/{step}/decide", post(decide_step))
        .route("/holds", get(holds).post(hold_add))
        .route("/holds/lift", post(hold_lift))
        .route("/requests", get(requests))
        .route("/requests/{id}", get(request))
        .route("/requests/{id}/decide", post(decide_request))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn(access::authorize))
        .with_state(AppState {
            instance: instance.clone(),
        })
        .layer(axum::middleware::from_fn_with_state(
            Auth {
                token,
                instance: Arc::new(instance.clone()),
            },
            require_token,
        ));
    let api_metrics = metrics::ApiMetrics::default();
    let scrape = Router::new()
        .route("/metrics", get(metrics::metrics))
        .with_state((Arc::clone(&health), api_metrics.clone()))
        .layer(axum::middleware::from_fn_with_state(
            Auth {
                token: scrape_token.clone(),
                instance: Arc::clone(&health),
            },
            require_token,
        ));
    let console = console::router(AppState {
        instance: instance.clone(),
    });
    let auth = Router::new()
        .route("/auth/login", post(session::login))
        .route("/auth/logout", post(session::logout))
        .route("/auth/session", get(session::whoami))
        .route("/auth/oidc/login", get(session::oidc_login))
        .route("/auth/oidc/callback", get(session::oidc_callback))
        .with_state(session::Auth { instance });
    Router::new()
        .route("/healthz", get(move || healthz(health.clone())))
        .route("/api/openapi.json", get(openapi_document))
        .merge(auth)
        .merge(scrape)
        .merge(console)
        .nest("/api/v1", api)
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            api_metrics,
            metrics::observe,
        ))
        .layer(axum::middleware::from_fn(tls::secure_headers))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// `GET /api/openapi.json` (no token): the API described in OpenAPI 3.1.
async fn openapi_document() -> Response {
    // The same every time: made once.
    static DOCUMENT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| openapi::document_json().to_string());
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}

/// `GET /healthz` (no token): the server's own health, `200` when `ok`,
/// `503` while `degraded` (its database cannot be written), so a monitor
/// that only reads status codes sees it too.
async fn healthz(instance: Arc<dyn Instance>) -> Response {
    match instance.health().await {
        Ok(report) => {
            let status = if report.is_ok() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, axum::Json(report)).into_response()
        }
        Err(e) => document(&e.document()),
    }
}

/// The header a person names themselves with (`haven alert ack --by`,
/// else the local user). It is not an identity: the token authenticates
/// (recorded as [`TOKEN_IDENTITY`]) and the name is kept beside it,
/// bounded ([`haven_model::actor::DECLARED_MAX`] characters).
pub const USER_HEADER: &str = "x-haven-user";

/// Who the data dir's API token is, in records and events.
pub const TOKEN_IDENTITY: &str = "api-token";

/// Set by the authentication (never by a client: an incoming one is
/// removed first): who a user's or automation's token says acts.
const IDENTITY_HEADER: &str = "x-haven-authenticated";

/// Who acts: the identity the token proved (a user's or automation's
/// token), else the instance token's `api-token`; with the name a
/// person declared beside it.
fn actor(headers: &HeaderMap) -> Actor {
    let declared = headers
        .get(USER_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let proved = headers
        .get(IDENTITY_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    Actor::new(
        proved.as_deref().unwrap_or(TOKEN_IDENTITY),
        declared.as_deref(),
    )
}

/// The answer to a request: `status` with the JSON document, or the
/// error's.
fn answer<T: Serialize>(status: StatusCode, result: Result<T, InstanceError>) -> Response {
    match result {
        Ok(value) => (status, axum::Json(value)).into_response(),
        Err(e) => document(&e.document()),
    }
}

/// Body of `POST /api/v1/alerts/{id}/resolve`.
#[derive(Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResolveBody {
    /// Why it is resolved.
    pub reason: Option<String>,
}

async fn status(Acting(instance): Acting) -> Response {
    answer(StatusCode::OK, instance.status().await)
}

async fn service(Acting(instance): Acting, ApiPath(id): ApiPath<String>) -> Response {
    answer(StatusCode::OK, instance.service(&id).await)
}

async fn findings(Acting(instance): Acting) -> Response {
    answer(StatusCode::OK, instance.findings().await)
}

async fn graph(Acting(instance): Acting) -> Response {
    answer(StatusCode::OK, instance.graph().await)
}

async fn bia(
    Acting(instance): Acting,
    ApiQuery(query): ApiQuery<haven_ops::api::BiaQuery>,
) -> Response {
    answer(StatusCode::OK, instance.bia(&query).await)
}

async fn recovery_order(
    Acting(instance): Acting,
    ApiQuery(query): ApiQuery<haven_ops::api::OrderQuery>,
) -> Response {
    answer(StatusCode::OK, instance.recovery_order(&query).await)
}

async fn jobs(Acting(instance): Acting, ApiQuery(query): ApiQuery<JobsQuery>) -> Response {
    answer(StatusCode::OK, instance.jobs(&query).await)
}

async fn job(Acting(instance): Acting, ApiPath(id): ApiPath<i64>) -> Response {
    answer(StatusCode::OK, instance.job(id).await)
}

async fn run(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiPath(system): ApiPath<String>,
) -> Response {
    let request = RunRequest {
        system,
        by: actor(&headers),
    };
    answer(StatusCode::ACCEPTED, instance.run(&request).await)
}

async fn alerts(Acting(instance): Acting, ApiQuery(query): ApiQuery<AlertsQuery>) -> Response {
    answer(StatusCode::OK, instance.alerts(&query).await)
}

async fn alert(Acting(instance): Acting, ApiPath(id): ApiPath<i64>) -> Response {
    answer(StatusCode::OK, instance.alert(id).await)
}

async fn acknowledge(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Response {
    let action = AlertAction {
        id,
        by: actor(&headers),
        reason: None,
    };
    answer(StatusCode::OK, instance.acknowledge(&action).await)
}

async fn resolve(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
    OptionalJson(body): OptionalJson<ResolveBody>,
) -> Response {
    let action = AlertAction {
        id,
        by: actor(&headers),
        reason: body.reason,
    };
    answer(StatusCode::OK, instance.resolve(&action).await)
}

async fn windows(Acting(instance): Acting) -> Response {
    answer(StatusCode::OK, instance.windows().await)
}

async fn add_window(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiJson(window): ApiJson<NewWindow>,
) -> Response {
    let request = AddWindow {
        window,
        by: actor(&headers),
    };
    answer(StatusCode::CREATED, instance.add_window(&request).await)
}

async fn end_window(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Response {
    let request = EndWindow {
        id,
        by: actor(&headers),
    };
    answer(StatusCode::OK, instance.end_window(&request).await)
}

async fn drill(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiJson(mut request): ApiJson<haven_ops::api::DrillRequest>,
) -> Response {
    // Who asks is who authenticated, whatever the body says.
    request.by = actor(&headers).to_string();
    answer(StatusCode::OK, instance.drill(&request).await)
}

async fn drills(
    Acting(instance): Acting,
    ApiQuery(query): ApiQuery<haven_ops::api::DrillsQuery>,
) -> Response {
    answer(StatusCode::OK, instance.drills(&query).await)
}

async fn drill_service(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiJson(mut request): ApiJson<haven_ops::api::ServiceDrillRequest>,
) -> Response {
    // Who asks is who authenticated, whatever the body says.
    request.by = actor(&headers).to_string();
    answer(StatusCode::OK, instance.drill_service(&request).await)
}

async fn service_drills(
    Acting(instance): Acting,
    ApiQuery(query): ApiQuery<haven_ops::api::ServiceDrillsQuery>,
) -> Response {
    answer(StatusCode::OK, instance.service_drills(&query).await)
}

async fn recovery_forecast(
    Acting(instance): Acting,
    ApiJson(request): ApiJson<haven_ops::api::ForecastRequest>,
) -> Response {
    answer(StatusCode::OK, instance.recovery_forecast(&request).await)
}

async fn recover(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiJson(request): ApiJson<haven_ops::api::RecoverRequest>,
) -> Response {
    // Who asks is who authenticated, whatever the body says.
    let mut request = request;
    request.by = actor(&headers).to_string();
    answer(StatusCode::CREATED, instance.recover(&request).await)
}

async fn recoveries(Acting(instance): Acting) -> Response {
    answer(StatusCode::OK, instance.recoveries().await)
}

async fn recovery(Acting(instance): Acting, ApiPath(id): ApiPath<i64>) -> Response {
    answer(StatusCode::OK, instance.recovery(id).await)
}

async fn resume_recovery(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<haven_ops::api::ResumeRequest>,
) -> Response {
    let request = haven_ops::api::ResumeRequest { run: id, ..request };
    // Who asks is who authenticated, whatever the body says.
    let mut request = request;
    request.by = actor(&headers).to_string();
    answer(StatusCode::OK, instance.resume_recovery(&request).await)
}

async fn audit_verify(
    Acting(instance): Acting,
    OptionalJson(request): OptionalJson<haven_ops::api::AuditVerifyRequest>,
) -> Response {
    answer(StatusCode::OK, instance.audit_verify(&request).await)
}

async fn audit_anchor(Acting(instance): Acting) -> Response {
    answer(StatusCode::OK, instance.audit_anchor().await)
}

async fn user_add(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiJson(request): ApiJson<haven_ops::api::NewUser>,
) -> Response {
    // Who asks is who authenticated, whatever the body says.
    let mut request = request;
    request.by = actor(&headers).to_string();
    answer(StatusCode::CREATED, instance.user_add(&request).await)
}

async fn users(Acting(instance): Acting) -> Response {
    answer(StatusCode::OK, instance.users().await)
}

async fn user_change(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    ApiJson(change): ApiJson<haven_ops::api::UserChange>,
) -> Response {
    let change = haven_ops::api::UserChange { name, ..change };
    // Who asks is who authenticated, whatever the body says.
    let mut change = change;
    change.by = actor(&headers).to_string();
    answer(StatusCode::OK, instance.user_change(&change).await)
}

async fn token_create(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiJson(request): ApiJson<haven_ops::api::NewToken>,
) -> Response {
    // Who asks is who authenticated, whatever the body says.
    let mut request = request;
    request.by = actor(&headers).to_string();
    answer(StatusCode::CREATED, instance.token_create(&request).await)
}

async fn user_totp(Acting(instance): Acting, ApiPath(name): ApiPath<String>) -> Response {
    answer(StatusCode::OK, instance.user_totp(&name).await)
}

async fn tokens(Acting(instance): Acting) -> Response {
    answer(StatusCode::OK, instance.tokens().await)
}

async fn token_revoke(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<haven_ops::api::TokenRevocation>,
) -> Response {
    let request = haven_ops::api::TokenRevocation { id, ..request };
    // Who asks is who authenticated, whatever the body says.
    let mut request = request;
    request.by = actor(&headers).to_string();
    answer(StatusCode::OK, instance.token_revoke(&request).await)
}

async fn audit_export(
    Acting(instance): Acting,
    ApiQuery(query): ApiQuery<haven_ops::api::AuditExportQuery>,
) -> Response {
    answer(StatusCode::OK, instance.audit_export(&query).await)
}

async fn audit_entries(
    Acting(instance): Acting,
    ApiQuery(query): ApiQuery<haven_ops::api::AuditQuery>,
) -> Response {
    answer(StatusCode::OK, instance.audit_entries(&query).await)
}

async fn abandon_recovery(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<haven_ops::api::AbandonRequest>,
) -> Response {
    let request = haven_ops::api::AbandonRequest { run: id, ..request };
    // Who asks is who authenticated, whatever the body says.
    let mut request = request;
    request.by = actor(&headers).to_string();
    answer(StatusCode::OK, instance.abandon_recovery(&request).await)
}

async fn decide_step(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiPath((id, step)): ApiPath<(i64, u32)>,
    ApiJson(decision): ApiJson<haven_ops::api::StepDecision>,
) -> Response {
    let decision = haven_ops::api::StepDecision {
        run: id,
        step,
        ..decision
    };
    // Who asks is who authenticated, whatever the body says.
    let mut decision = decision;
    decision.by = actor(&headers).to_string();
    answer(StatusCode::OK, instance.decide_step(&decision).await)
}

async fn holds(
    Acting(instance): Acting,
    ApiQuery(query): ApiQuery<haven_ops::api::HoldsQuery>,
) -> Response {
    answer(StatusCode::OK, instance.holds(&query).await)
}

async fn hold_add(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiJson(mut request): ApiJson<haven_ops::api::HoldRequest>,
) -> Response {
    // Who asks is who authenticated, whatever the body says.
    request.by = actor(&headers).to_string();
    answer(StatusCode::CREATED, instance.hold_add(&request).await)
}

async fn hold_lift(
    Acting(instance): Acting,
    headers: HeaderMap,
    ApiJson(mut request): ApiJson<haven_ops::api::HoldRequest>,
) -> Response {
    // Who asks is who authenticated, whatever the body says.
    request.by = actor(&headers).to_string();
    answer(StatusCode::OK, instance.hold_lift(&request).await)
}

async fn requests(
    Acting(instance): Acting,
    ApiQuery(query): ApiQuery<haven_ops::api::RequestsQuery>,
) -> Response {
    answer(StatusCode::OK, instance.requests(&query).await)
}

async fn request(Acting(instance): Acting, ApiPath(id): ApiPath<i64>) -> Response {
    answer(StatusCode::OK, instance.request(id).await)
}

/// Body of `POST /api/v1/requests/{id}/decide`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DecideBody {
    /// `approve`, `reject` or `review`.
    pub verdict: haven_ops::api::Verdict,
    /// Why (required to reject).
    #[serde(default)]
    pub note: Option<String>,
}

async fn decide_request(
    Acting(instance): Acting,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<DecideBody>,
) -> Response {
    let decision = haven_ops::api::RequestDecision {
        id,
        verdict: body.verdict,
        note: body.note,
    };
    answer(StatusCode::OK, instance.decide_request(&decision).await)
}

async fn preflight(Acting(instance): Acting) -> Response {
    answer(StatusCode::OK, instance.preflight().await)
}

async fn notify_test(Acting(instance): Acting, ApiPath(id): ApiPath<String>) -> Response {
    answer(StatusCode::OK, instance.notify_test(&id).await)
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
