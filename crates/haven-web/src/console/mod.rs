//! The console: server-rendered pages (minijinja templates compiled into
//! the binary, HTML auto-escaped), htmx for live refreshes (the overview
//! re-fetches its grid; a request from htmx gets the fragment only, and
//! every page answers `Vary: HX-Request`), no script of our own and no
//! inline one (the CSP forbids it). Every page needs a console session
//! (else to `/login`); every form carries the session's CSRF token; every
//! action goes through the same instance interface as the API, acting as
//! the logged-in user, so its roles, scope and four eyes apply.

mod charts;
mod drills;
mod lists;
mod pages;
mod service;
mod users;

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::Environment;
use serde::Serialize;

use crate::AppState;
use crate::session::{csrf_matches, session_secret};
use haven_model::access::csrf_token;
use haven_ops::api::InstanceError;
use serde_json::{Value, json};

/// The templates, compiled in.
static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for &(name, text) in SOURCES {
        if let Err(e) = env.add_template(name, text) {
            tracing::error!("the console template {name} does not compile: {e}");
        }
    }
    env
});

/// The templates' names and texts.
const SOURCES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("overview.html", include_str!("templates/overview.html")),
    (
        "overview_grid.html",
        include_str!("templates/overview_grid.html"),
    ),
    (
        "overview_summary.html",
        include_str!("templates/overview_summary.html"),
    ),
    ("alerts.html", include_str!("templates/alerts.html")),
    ("requests.html", include_str!("templates/requests.html")),
    ("service.html", include_str!("templates/service.html")),
    ("list.html", include_str!("templates/list.html")),
    ("drill.html", include_str!("templates/drill.html")),
];

/// The session a page is shown in (set by [`gate`]).
#[derive(Clone)]
pub(crate) struct Viewer {
    /// Who, as recorded.
    pub actor: String,
    /// The session's secret (its CSRF token is derived from it).
    pub secret: String,
}

/// The console's pages and forms, on the instance of `state`.
pub(crate) fn router(state: AppState) -> Router {
    let gated = Router::new()
        .route("/", get(pages::overview))
        .route("/services/{id}", get(service::service))
        .route("/alerts", get(pages::alerts))
        .route("/alerts/{id}/{action}", post(pages::alert_action))
        .route("/requests", get(pages::requests))
        .route("/requests/{id}/decide", post(pages::decide))
        .route("/jobs", get(lists::jobs))
        .route("/jobs/{id}", get(lists::job))
        .route(
            "/maintenance",
            get(lists::maintenance).post(lists::add_window),
        )
        .route("/maintenance/{id}/end", post(lists::end_window))
        .route("/drills", get(drills::drills).post(drills::run))
        .route("/drills/{id}", get(drills::drill))
        .route("/drills/{id}/{file}", get(drills::download))
        .route("/repositories", get(lists::repositories))
        .route("/recoveries", get(lists::recoveries))
        .route("/recoveries/{id}", get(lists::recovery))
        .route(
            "/recoveries/{id}/steps/{step}/{decision}",
            post(lists::decide_step),
        )
        .route("/audit", get(lists::audit))
        .route("/users", get(users::users).post(users::add_user))
        .route("/users/{name}/{action}", post(users::user_action))
        .route("/tokens", post(users::add_token))
        .route("/tokens/{id}/revoke", post(users::revoke_token))
        .route("/logout", post(pages::logout))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), gate))
        .layer(axum::Extension(std::sync::Arc::new(
            drills::Started::default(),
        )));
    Router::new()
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/assets/{file}", get(asset))
        .merge(gated)
        .with_state(state)
}

/// Only with a live console session: its user acts (else to `/login`).
async fn gate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let secret = session_secret(request.headers());
    let identity = match &secret {
        Some(secret) => haven_ops::api::Instance::session(&state.instance, secret)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let (Some(identity), Some(secret)) = (identity, secret) else {
        return Redirect::to("/login").into_response();
    };
    request.extensions_mut().insert(Viewer {
        actor: identity.actor.clone(),
        secret,
    });
    request.extensions_mut().insert(identity);
    next.run(request).await
}

/// Render `template` with `context`; a template that fails is a 500
/// with the reason logged (never shown).
pub(crate) fn render(template: &str, context: impl Serialize) -> Response {
    let rendered = TEMPLATES
        .get_template(template)
        .and_then(|t| t.render(context));
    match rendered {
        Ok(html) => {
            let mut response = Html(html).into_response();
            let headers = response.headers_mut();
            headers.insert(header::VARY, HeaderValue::from_static("HX-Request"));
            // Pages are one session's view (some carry a secret shown
            // once): never kept by a browser or a proxy.
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            tracing::error!("the console page {template} did not render: {e:#}");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page did not render").into_response()
        }
    }
}

/// A console form, accepted only with its session's CSRF token (the
/// `csrf` field every form carries; the form's type need not name it):
/// every form handler takes its fields through this, so none can forget
/// the check.
pub(crate) struct Checked<T>(pub T);

/// A form with no fields but its token.
#[derive(serde::Deserialize)]
pub(crate) struct NoFields {}

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Checked<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(default)]
            csrf: String,
        }
        let viewer = request.extensions().get::<Viewer>().cloned();
        let body = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let token: Option<Token> = serde_urlencoded::from_bytes(&body).ok();
        let matches = viewer
            .zip(token)
            .is_some_and(|(viewer, token)| csrf_matches(&viewer.secret, &token.csrf));
        if !matches {
            return Err((
                StatusCode::FORBIDDEN,
                "this form did not come from your session (its CSRF token does not match): reload the page",
            )
                .into_response());
        }
        serde_urlencoded::from_bytes(&body)
            .map(Checked)
            .map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("the form does not read: {e}"),
                )
                    .into_response()
            })
    }
}

/// The embedded assets: our stylesheet and htmx.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind): (&'static [u8], &str) = match file.as_str() {
        "haven.css" => (
            include_bytes!("../../assets/haven.css"),
            "text/css; charset=utf-8",
        ),
        "htmx.min.js" => (
            include_bytes!("../../assets/htmx.min.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// What every page of a session shows.
pub(crate) fn frame(viewer: &Viewer, page: &str) -> serde_json::Map<String, Value> {
    let mut context = serde_json::Map::new();
    context.insert("viewer".into(), json!(viewer.actor));
    context.insert("csrf".into(), json!(csrf_token(&viewer.secret)));
    context.insert("page".into(), json!(page));
    context
}

/// A page that could not be made: the instance's words, its status.
pub(crate) fn failed(viewer: &Viewer, page: &str, e: &InstanceError) -> Response {
    let mut context = frame(viewer, page);
    context.insert("problem".into(), json!(e.message));
    let mut response = render("base.html", Value::Object(context));
    *response.status_mut() =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
}

/// How old the newest restore point is.
pub(crate) fn age(d: Option<jiff::SignedDuration>) -> String {
    d.map_or(
        "never backed up".into(),
        haven_model::catalog::duration::format_duration,
    )
}

/// A time to the second (UTC).
pub(crate) fn time(t: Option<jiff::Timestamp>) -> String {
    t.map_or("-".into(), |t| format!("{t:.0}"))
}

/// The overview of `status` as the console renders it: the whole page, or
/// (`fragment`) what an htmx refresh fetches. For the benchmark
/// (`benches/console.rs`).
pub fn overview_html(status: &haven_ops::status::StatusReport, fragment: bool) -> String {
    let context = pages::overview_context(
        status,
        &std::collections::BTreeMap::new(),
        pages::Running::default(),
    );
    let template = if fragment {
        "overview_summary.html"
    } else {
        "overview.html"
    };
    TEMPLATES
        .get_template(template)
        .and_then(|t| t.render(context))
        .unwrap_or_else(|e| format!("the page did not render: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every template compiles and the list renders with all its parts.
    #[test]
    fn the_list_template_renders_every_part() {
        let mut env = Environment::new();
        for &(name, text) in SOURCES {
            env.add_template(name, text)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
        let context = json!({
            "viewer": "user:x", "csrf": "c", "page": "users", "title": "T", "caption": "C",
            "columns": ["a"], "rows": [{"cells": ["1"], "actions": [{"action": "/x", "label": "X", "reason": true, "id": "x", "hidden": []}]}],
            "actions": true, "notice": "done",
            "adds": [{"id": "user", "title": "Add", "action": "/users", "button": "Go",
                      "fields": [{"name": "name", "label": "Name", "required": true},
                                 {"name": "user", "label": "U", "options": ["a", "b"]},
                                 {"name": "expires", "label": "E", "value": "90d"}]},
                     {"title": "Other", "action": "/o", "button": "Go", "fields": [{"name": "name", "label": "N"}]}],
        });
        let html = TEMPLATES
            .get_template("list.html")
            .and_then(|t| t.render(context))
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(
            html.contains("id=\"user-name\"") && html.contains("id=\"add-name\""),
            "{html}"
        );
        assert!(
            html.contains("value=\"90d\"") && html.contains("role=\"status\">done"),
            "{html}"
        );
    }
}
