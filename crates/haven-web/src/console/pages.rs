//! The console's pages and forms. Each reads or changes through the
//! instance interface as the logged-in user (`Acting`), and renders one
//! template.

use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use haven_model::actor::Actor;
use haven_model::catalog::duration::format_duration;
use haven_ops::api::{
    AlertAction, AlertsQuery, Caller, Instance, InstanceError, JobsQuery, LoginRequest,
    RequestDecision, RequestsQuery, Verdict,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Checked, NoFields, Viewer, age, failed, frame, render};
use crate::AppState;
use crate::access::{Acting, Origin};

/// `GET /`: services by tier, worst first, coloured by compliance and
/// readiness; open alerts by severity; what runs. From htmx, the grid
/// only.
pub(super) async fn overview(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Extension(started): Extension<std::sync::Arc<super::drills::Started>>,
    headers: HeaderMap,
) -> Response {
    let grid = match grid(&instance, started.running()).await {
        Ok(grid) => grid,
        Err(e) => return failed(&viewer, "overview", &e),
    };
    if headers.contains_key("hx-request") {
        return render("overview_summary.html", grid);
    }
    let mut context = frame(&viewer, "overview");
    if let Value::Object(grid) = grid {
        context.extend(grid);
    }
    render("overview.html", Value::Object(context))
}

async fn grid(instance: &dyn Instance, console_drills: usize) -> Result<Value, InstanceError> {
    let status = instance.status().await?;
    let open = AlertsQuery {
        open: true,
        service: None,
        limit: Some(1000),
    };
    let mut counts = std::collections::BTreeMap::new();
    for alert in instance.alerts(&open).await? {
        *counts.entry(alert.severity.as_str()).or_insert(0u32) += 1;
    }
    let recent = JobsQuery {
        limit: Some(500),
        ..JobsQuery::default()
    };
    let running: Vec<haven_model::jobs::Job> = instance
        .jobs(&recent)
        .await?
        .into_iter()
        .filter(|j| j.outcome == haven_model::jobs::Outcome::Running)
        .collect();
    // Scheduled drills run as jobs; drills started from the console
    // beside them.
    let drills = running
        .iter()
        .filter(|j| j.planned.kind == haven_model::jobs::JobKind::Drill)
        .count()
        + console_drills;
    let running_jobs = running.len() + console_drills - drills;
    let running_recoveries = instance
        .recoveries()
        .await?
        .iter()
        .filter(|r| r.ended_at.is_none())
        .count();
    Ok(overview_context(
        &status,
        &counts,
        Running {
            jobs: running_jobs,
            drills,
            recoveries: running_recoveries,
        },
    ))
}

/// What runs now.
#[derive(Clone, Copy, Default)]
pub(crate) struct Running {
    /// Jobs other than drills.
    pub jobs: usize,
    /// Drills (scheduled, or started from the console).
    pub drills: usize,
    /// Recovery runs.
    pub recoveries: usize,
}

/// The services shown as needing attention on every refresh, at most.
const ATTENTION: usize = 50;

/// The overview's numbers, from the status report and what runs: the
/// summary (refreshed by htmx: alerts, money at risk, what runs, the
/// services needing attention, worst first, at most [`ATTENTION`]) and
/// every service by tier (the full page only).
pub(crate) fn overview_context(
    status: &haven_ops::status::StatusReport,
    alert_counts: &std::collections::BTreeMap<&str, u32>,
    running: Running,
) -> Value {
    use haven_model::compliance::RpoState;
    let card = |s: &haven_ops::status::ServiceStatus| {
        let c = &s.compliance;
        json!({
            "id": c.service,
            "name": c.name,
            "tier": c.tier,
            "state": c.state.as_str(),
            "readiness": s.readiness.map_or("unknown", |r| r.as_str()),
            "age": age(c.age),
            "rpo": c.rpo.map(format_duration),
        })
    };
    let needs_attention = |s: &&haven_ops::status::ServiceStatus| {
        !matches!(s.compliance.state, RpoState::Ok | RpoState::NotApplicable)
            || s.readiness == Some(haven_model::drills::Readiness::Failed)
    };
    let attention: Vec<&haven_ops::status::ServiceStatus> =
        status.services.iter().filter(needs_attention).collect();
    let mut tiers: std::collections::BTreeMap<u8, Vec<Value>> = Default::default();
    for s in &status.services {
        tiers.entry(s.compliance.tier).or_default().push(card(s));
    }
    json!({
        "alert_counts": alert_counts.iter().map(|(s, n)| json!({"severity": s, "count": n})).collect::<Vec<_>>(),
        "running_jobs": running.jobs,
        "running_drills": running.drills,
        "running_recoveries": running.recoveries,
        "at_risk": money_at_risk(&status.services),
        "attention": attention.iter().take(ATTENTION).map(|s| card(s)).collect::<Vec<_>>(),
        "attention_more": attention.len().saturating_sub(ATTENTION),
        "services": status.services.len(),
        "tiers": tiers.into_iter().map(|(tier, services)| json!({"tier": tier, "services": services})).collect::<Vec<_>>(),
    })
}

/// What an hour costs, per currency, of the services whose data is past
/// its RPO or that failed their drills, beside all services' (the BIA's
/// `impact.per_hour`).
fn money_at_risk(services: &[haven_ops::status::ServiceStatus]) -> Vec<Value> {
    use haven_model::compliance::RpoState;
    let mut by_currency: std::collections::BTreeMap<String, (f64, f64, u32)> = Default::default();
    for s in services {
        let Some(per_hour) = s.impact_per_hour else {
            continue;
        };
        let entry = by_currency
            .entry(s.currency.clone().unwrap_or_else(|| "(no currency)".into()))
            .or_default();
        entry.1 += per_hour;
        let failing = matches!(
            s.compliance.state,
            RpoState::Violated | RpoState::Quarantined
        ) || s.readiness == Some(haven_model::drills::Readiness::Failed);
        if failing {
            entry.0 += per_hour;
            entry.2 += 1;
        }
    }
    by_currency
        .into_iter()
        .map(|(currency, (risk, all, n))| {
            json!({"currency": currency, "at_risk": money(risk), "all": money(all), "services": n})
        })
        .collect()
}

/// An amount with thousands separators, no decimals.
fn money(amount: f64) -> String {
    let whole = format!("{:.0}", amount.max(0.0));
    let mut out = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `GET /alerts`: open and acknowledged alerts, with their actions.
pub(super) async fn alerts(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let query = AlertsQuery {
        open: true,
        service: None,
        limit: Some(500),
    };
    let alerts = match instance.alerts(&query).await {
        Ok(alerts) => alerts,
        Err(e) => return failed(&viewer, "alerts", &e),
    };
    let rows: Vec<Value> = alerts
        .iter()
        .map(|a| {
            json!({
                "id": a.id,
                "severity": a.severity.as_str(),
                "summary": a.summary,
                "service": a.subject.service.clone().unwrap_or_default(),
                "since": super::time(Some(a.first_seen)),
                "state": a.state.as_str(),
            })
        })
        .collect();
    let mut context = frame(&viewer, "alerts");
    context.insert("alerts".into(), json!(rows));
    render("alerts.html", Value::Object(context))
}

/// `POST /alerts/{id}/ack|resolve`.
pub(super) async fn alert_action(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Path((id, action)): Path<(i64, String)>,
    Checked(_): Checked<NoFields>,
) -> Response {
    let request = AlertAction {
        id,
        by: Actor::new(viewer.actor.clone(), None),
        reason: None,
    };
    let done = match action.as_str() {
        "ack" => instance.acknowledge(&request).await,
        "resolve" => instance.resolve(&request).await,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match done {
        Ok(_) => Redirect::to("/alerts").into_response(),
        Err(e) => failed(&viewer, "alerts", &e),
    }
}

/// `GET /requests`: four-eyes requests, pending ones with their forms.
pub(super) async fn requests(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let requests = match instance.requests(&RequestsQuery::default()).await {
        Ok(requests) => requests,
        Err(e) => return failed(&viewer, "requests", &e),
    };
    let rows: Vec<Value> = requests
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "action": r.action, "target": r.target, "because": r.because,
                "requested_by": r.requested_by, "state": r.state.as_str(), "outcome": r.outcome,
            })
        })
        .collect();
    let mut context = frame(&viewer, "requests");
    context.insert("requests".into(), json!(rows));
    render("requests.html", Value::Object(context))
}

/// The decision form.
#[derive(Deserialize)]
pub(super) struct Decide {
    verdict: Verdict,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /requests/{id}/decide`.
pub(super) async fn decide(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
    Checked(form): Checked<Decide>,
) -> Response {
    let decision = RequestDecision {
        id,
        verdict: form.verdict,
        note: form.note.filter(|n| !n.trim().is_empty()),
    };
    match instance.decide_request(&decision).await {
        Ok(_) => Redirect::to("/requests").into_response(),
        Err(e) => failed(&viewer, "requests", &e),
    }
}

/// `POST /logout`.
pub(super) async fn logout(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Checked(_): Checked<NoFields>,
) -> Response {
    let _ = instance.logout(&viewer.secret).await;
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("haven_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}

/// `GET /login`.
pub(super) async fn login_form(State(state): State<AppState>) -> Response {
    login_page(&state, "", None, StatusCode::OK)
}

fn login_page(
    state: &AppState,
    name: &str,
    problem: Option<String>,
    status: StatusCode,
) -> Response {
    let mut response = render(
        "login.html",
        json!({"name": name, "problem": problem, "sso": state.instance.sso_enabled()}),
    );
    *response.status_mut() = status;
    response
}

/// The login form.
#[derive(Deserialize)]
pub(super) struct LoginForm {
    name: String,
    password: String,
    #[serde(default)]
    totp: Option<String>,
}

/// `POST /login`: the session cookie and to the overview, or the form
/// again with why not.
pub(super) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Origin(origin): Origin,
    Form(form): Form<LoginForm>,
) -> Response {
    // Login CSRF: a page of another site must not log the browser in (as
    // someone else). Browsers say where a form came from.
    if !same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "this login form did not come from this site",
        )
            .into_response();
    }
    let request = LoginRequest {
        name: form.name.clone(),
        password: form.password,
        totp: form.totp.filter(|t| !t.trim().is_empty()),
    };
    let instance = state.instance.acting(Caller::owner("login", origin));
    match instance.login(&request).await {
        Ok(granted) => {
            let mut response = Redirect::to("/").into_response();
            let cookie = crate::session::session_cookie(&granted, &headers);
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(e) => {
            let status =
                StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
            login_page(&state, &form.name, Some(e.message), status)
        }
    }
}

/// Did the request come from a page of this site (its `Origin`, when the
/// browser sends one, names the host it was sent to)?
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // `null` (an opaque origin: a sandboxed frame, a file) is not ours.
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped_by_thousands() {
        assert_eq!(money(0.0), "0");
        assert_eq!(money(999.4), "999");
        assert_eq!(money(12_500.0), "12,500");
        assert_eq!(money(1_234_567.0), "1,234,567");
        assert_eq!(money(-5.0), "0");
    }
}
