//! The console's list pages (jobs, a job, maintenance, drills,
//! recoveries, a recovery with its decisions, the audit log, users and
//! tokens): each reads through the instance interface as the logged-in
//! user and fills the one list template.

use axum::Extension;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use haven_model::catalog::duration::format_duration;
use haven_model::recovery::run::Decision;
use haven_model::units::human_bytes;
use haven_ops::api::{AuditQuery, AuditVerifyRequest, Instance, JobsQuery, StepDecision};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Checked, Viewer, failed, frame, render, time};
use crate::access::Acting;

/// What a list page shows.
#[derive(Default)]
pub(super) struct List {
    pub(super) title: String,
    pub(super) caption: String,
    pub(super) columns: Vec<&'static str>,
    pub(super) rows: Vec<Value>,
    pub(super) empty: &'static str,
    pub(super) intro: Option<String>,
    pub(super) filters: Vec<Value>,
    pub(super) text: Option<(String, String)>,
    /// Forms that add something (a title, an action, fields), below.
    pub(super) adds: Vec<Value>,
    /// A chart Haven drew (its text escaped) and its caption, shown
    /// above the table.
    pub(super) svg: Option<(String, String)>,
    /// While something runs: the page re-fetches its live part this often.
    pub(super) refresh: Option<String>,
    /// What a form just did (shown above the page, announced).
    pub(super) notice: Option<String>,
}

/// Render `list` as page `page` of the navigation.
pub(super) fn show(viewer: &Viewer, page: &str, list: List) -> Response {
    let mut context = frame(viewer, page);
    let actions = list.rows.iter().any(|r| {
        r.get("actions")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    });
    for (key, value) in [
        ("title", json!(list.title)),
        ("caption", json!(list.caption)),
        ("columns", json!(list.columns)),
        ("rows", json!(list.rows)),
        ("empty", json!(list.empty)),
        ("intro", json!(list.intro)),
        ("filters", json!(list.filters)),
        ("actions", json!(actions)),
        ("text_title", json!(list.text.as_ref().map(|t| t.0.clone()))),
        ("text", json!(list.text.map(|t| t.1))),
        ("adds", json!(list.adds)),
        ("svg_caption", json!(list.svg.as_ref().map(|s| s.0.clone()))),
        ("svg", json!(list.svg.map(|s| s.1))),
        ("refresh", json!(list.refresh)),
        ("notice", json!(list.notice)),
    ] {
        context.insert(key.into(), value);
    }
    render("list.html", Value::Object(context))
}

/// A value's name as it serialises (`running`, `checkpoint`).
fn name_of(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => String::new(),
    }
}

/// The filters of the jobs page.
#[derive(Deserialize, Default)]
pub(super) struct JobsFilter {
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    failed: bool,
}

/// `GET /jobs?system=&failed=true`.
pub(super) async fn jobs(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Query(filter): Query<JobsFilter>,
) -> Response {
    let system = filter.system.clone().filter(|s| !s.trim().is_empty());
    let query = JobsQuery {
        system: system.clone(),
        failed: filter.failed,
        since: None,
        limit: Some(200),
    };
    let jobs = match instance.jobs(&query).await {
        Ok(jobs) => jobs,
        Err(e) => return failed(&viewer, "jobs", &e),
    };
    let rows = jobs
        .iter()
        .map(|j| {
            json!({
                "link": format!("/jobs/{}", j.id),
                "class": format!("outcome-{}", j.outcome.as_str()),
                "cells": [j.id.to_string(), j.planned.task.clone(), j.planned.trigger.as_str().to_string(),
                          time(j.started_at), j.outcome.as_str().to_string(), j.message.clone().unwrap_or_default()],
            })
        })
        .collect();
    let list = List {
        title: "Jobs".into(),
        caption: "Jobs, newest first (200 at most)".into(),
        columns: vec!["#", "Task", "Trigger", "Started", "Outcome", "Message"],
        rows,
        empty: "No jobs match.",
        filters: vec![
            json!({"name": "system", "label": "System", "value": system.unwrap_or_default()}),
            json!({"name": "failed", "label": "Failed only", "checkbox": true, "value": filter.failed}),
        ],
        ..List::default()
    };
    show(&viewer, "jobs", list)
}

/// `GET /jobs/{id}`: the job and its log.
pub(super) async fn job(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
) -> Response {
    let job = match instance.job(id).await {
        Ok(job) => job,
        Err(e) => return failed(&viewer, "jobs", &e),
    };
    let field = |name: &str, value: String| json!({"cells": [name, value]});
    let rows = vec![
        field("Task", job.planned.task.clone()),
        field("System", job.planned.system.clone().unwrap_or_default()),
        field("Trigger", job.planned.trigger.as_str().to_string()),
        field("Started", time(job.started_at)),
        field("Ended", time(job.ended_at)),
        field("Outcome", job.outcome.as_str().to_string()),
        field("Snapshot", job.snapshot_id.clone().unwrap_or_default()),
        field("Bytes added", job.stats.bytes_added.to_string()),
        field(
            "Failure",
            job.failure
                .as_ref()
                .map(|f| f.detail.clone())
                .unwrap_or_default(),
        ),
    ];
    let list = List {
        title: format!("Job {id}"),
        caption: "What it did".into(),
        columns: vec!["Field", "Value"],
        rows,
        text: Some(("Log".into(), job.log.clone())),
        ..List::default()
    };
    show(&viewer, "jobs", list)
}

/// `GET /maintenance`: windows, active first.
pub(super) async fn maintenance(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let windows = match instance.windows().await {
        Ok(windows) => windows,
        Err(e) => return failed(&viewer, "maintenance", &e),
    };
    let rows = windows
        .iter()
        .map(|w| {
            let scope = [&w.scope.services, &w.scope.systems, &w.scope.repositories]
                .iter()
                .flat_map(|ids| ids.iter().cloned())
                .collect::<Vec<_>>()
                .join(", ");
            let end = (w.source == "added" && w.active).then(|| {
                json!({"action": format!("/maintenance/{}/end", w.id), "label": "End now",
                       "reason": false, "id": w.id, "hidden": []})
            });
            json!({"cells": [w.id.clone(), w.source.clone(), if w.active { "active" } else { "" }.to_string(),
                             if scope.is_empty() { "everything".to_string() } else { scope },
                             time(w.start), time(w.end), w.recurrence.clone().unwrap_or_default(),
                             w.reason.clone().unwrap_or_default()],
                   "actions": end.into_iter().collect::<Vec<_>>()})
        })
        .collect();
    let list = List {
        title: "Maintenance windows".into(),
        caption: "Windows from the catalog and added by people, active first".into(),
        columns: vec![
            "Window", "From", "Now", "Covers", "Start", "End", "Repeats", "Why",
        ],
        rows,
        empty: "No maintenance windows.",
        adds: vec![json!({
            "title": "Add a window",
            "action": "/maintenance",
            "button": "Add the window",
            "fields": [
                {"name": "services", "label": "Services (comma-separated; empty: everything)"},
                {"name": "systems", "label": "Systems (comma-separated)"},
                {"name": "start", "label": "Start (UTC)", "type": "datetime-local", "required": true},
                {"name": "end", "label": "End (UTC)", "type": "datetime-local", "required": true},
                {"name": "reason", "label": "Why", "required": true},
            ],
        })],
        ..List::default()
    };
    show(&viewer, "maintenance", list)
}

/// `GET /recoveries`: the runs, newest first.
pub(super) async fn recoveries(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let runs = match instance.recoveries().await {
        Ok(runs) => runs,
        Err(e) => return failed(&viewer, "recoveries", &e),
    };
    let rows = runs
        .iter()
        .map(|r| {
            json!({
                "link": format!("/recoveries/{}", r.id),
                "cells": [r.id.to_string(), r.state.as_str().to_string(), time(Some(r.started_at)), r.by.clone(),
                          r.plan.services().join(", "), r.reason.clone().unwrap_or_default()],
            })
        })
        .collect();
    let list = List {
        title: "Recoveries".into(),
        caption: "Recovery runs, newest first".into(),
        columns: vec!["Run", "State", "Started", "By", "Services", "Why"],
        rows,
        empty: "No recovery runs.",
        ..List::default()
    };
    show(&viewer, "recoveries", list)
}

/// `GET /recoveries/{id}`: its steps, with the decisions people take.
pub(super) async fn recovery(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
) -> Response {
    let view = match instance.recovery(id).await {
        Ok(view) => view,
        Err(e) => return failed(&viewer, "recoveries", &e),
    };
    let rows = view
        .steps
        .iter()
        .map(|s| {
            let state = name_of(&s.state);
            let decide = |decision: &str, label: &str, reason: bool| {
                json!({"action": format!("/recoveries/{id}/steps/{}/{decision}", s.number),
                       "label": label, "reason": reason, "id": format!("{}-{decision}", s.number), "hidden": []})
            };
            let actions: Vec<Value> = match state.as_str() {
                "waiting" => vec![decide("confirm", "Confirm", false), decide("skip", "Skip", true)],
                "failed" => vec![decide("retry", "Retry", true), decide("skip", "Skip", true)],
                _ => Vec::new(),
            };
            json!({
                "class": format!("step-{state}"),
                "cells": [s.number.to_string(), s.unit.clone(), s.name.clone(), state, s.attempts.to_string(),
                          time(s.started_at), time(s.ended_at), s.detail.clone()],
                "actions": actions,
            })
        })
        .collect();
    let measured: Vec<String> = view
        .services
        .iter()
        .map(|s| {
            let rto = s.measured_rto.map_or("not back".into(), format_duration);
            format!("{}: {rto} ({})", s.service, s.verdict)
        })
        .collect();
    let running = view.run.ended_at.is_none();
    let list = List {
        svg: Some((
            "Its steps on one time axis, a band per wave; green done, red failed, orange waiting, grey skipped, blue running".into(),
            haven_ops::recovery::report::gantt_svg(&view),
        )),
        refresh: running.then(|| format!("/recoveries/{id}")),
        title: format!("Recovery run {id} ({})", view.run.state.as_str()),
        caption: "Its steps in order; a waiting checkpoint or a failed step waits for a person"
            .into(),
        columns: vec![
            "Step", "Unit", "What", "State", "Attempts", "Started", "Ended", "Detail",
        ],
        rows,
        intro: Some(format!("Measured RTO: {}", measured.join("; "))),
        ..List::default()
    };
    show(&viewer, "recoveries", list)
}

/// A decision form.
#[derive(Deserialize)]
pub(super) struct StepForm {
    #[serde(default)]
    note: Option<String>,
}

/// `POST /recoveries/{id}/steps/{step}/{decision}`.
pub(super) async fn decide_step(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Path((id, step, decision)): Path<(i64, u32, String)>,
    Checked(form): Checked<StepForm>,
) -> Response {
    let decision = match decision.as_str() {
        "confirm" => Decision::Confirm,
        "retry" => Decision::Retry,
        "skip" => Decision::Skip,
        _ => return axum::http::StatusCode::NOT_FOUND.into_response(),
    };
    let request = StepDecision {
        run: id,
        step,
        decision,
        by: viewer.actor.clone(),
        note: form.note.filter(|n| !n.trim().is_empty()),
    };
    match instance.decide_step(&request).await {
        Ok(_) => Redirect::to(&format!("/recoveries/{id}")).into_response(),
        Err(e) => failed(&viewer, "recoveries", &e),
    }
}

/// The audit page's filters.
#[derive(Deserialize, Default)]
pub(super) struct AuditFilter {
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
}

/// `GET /audit?actor=&action=&target=&outcome=`: the newest entries
/// (matching the filters) and whether the log verifies.
pub(super) async fn audit(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Query(filter): Query<AuditFilter>,
) -> Response {
    let report = match instance.audit_verify(&AuditVerifyRequest::default()).await {
        Ok(report) => report,
        Err(e) => return failed(&viewer, "audit", &e),
    };
    let v = &report.verification;
    let query = AuditQuery {
        limit: Some(200),
        actor: filter.actor.clone(),
        action: filter.action.clone(),
        target: filter.target.clone(),
        outcome: filter.outcome.clone(),
        newest: true,
        ..AuditQuery::default()
    };
    let entries = match instance.audit_entries(&query).await {
        Ok(entries) => entries,
        Err(e) => return failed(&viewer, "audit", &e),
    };
    let rows = entries
        .iter()
        .map(|e| {
            json!({"cells": [e.seq.to_string(), time(Some(e.at)), e.actor.clone(), e.role.clone().unwrap_or_default(),
                             e.action.clone(), e.target.clone(), e.origin.clone(), e.outcome.clone()]})
        })
        .collect();
    let verdict = if v.problems.is_empty() {
        format!(
            "The log is intact: {} entries, {} signed checkpoints hold ({} of them outside the database).",
            v.entries, v.checkpoints_ok, report.outside
        )
    } else {
        let first = v
            .problems
            .iter()
            .map(|p| p.detail.clone())
            .collect::<Vec<_>>();
        format!("The log does NOT verify: {}", first.join("; "))
    };
    let list = List {
        title: "Audit log".into(),
        caption: "The newest entries matching the filters (200 at most, among the newest 100,000), newest first".into(),
        filters: vec![
            json!({"name": "actor", "label": "Who", "value": filter.actor.unwrap_or_default()}),
            json!({"name": "action", "label": "Action starts with", "value": filter.action.unwrap_or_default()}),
            json!({"name": "target", "label": "Target", "value": filter.target.unwrap_or_default()}),
            json!({"name": "outcome", "label": "Outcome", "value": filter.outcome.unwrap_or_default()}),
        ],
        columns: vec![
            "#", "When", "Who", "Role", "Action", "Target", "From", "Outcome",
        ],
        rows,
        empty: "No entries match.",
        intro: Some(verdict),
        ..List::default()
    };
    show(&viewer, "audit", list)
}

/// The add-a-window form.
#[derive(Deserialize)]
pub(super) struct WindowForm {
    #[serde(default)]
    services: String,
    #[serde(default)]
    systems: String,
    start: String,
    end: String,
    reason: String,
}

/// A time from a form: RFC 3339, or a browser's `datetime-local`
/// (`2026-11-29T14:30`), read as UTC.
fn form_time(text: &str) -> Result<jiff::Timestamp, String> {
    let text = text.trim();
    text.parse::<jiff::Timestamp>()
        .or_else(|_| {
            text.parse::<jiff::civil::DateTime>()
                .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC))
                .map(|z| z.timestamp())
        })
        .map_err(|_| format!("{text:?} is not a time (2026-11-29T14:30, UTC)"))
}

fn ids(text: &str) -> Vec<String> {
    text.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `POST /maintenance`: add a window.
pub(super) async fn add_window(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Checked(form): Checked<WindowForm>,
) -> Response {
    let times = form_time(&form.start).and_then(|s| Ok((s, form_time(&form.end)?)));
    let (start, end) = match times {
        Ok(times) => times,
        Err(why) => {
            let e = haven_ops::api::InstanceError::new(
                haven_model::errors::ErrorCode::InvalidWindow,
                why,
            );
            return failed(&viewer, "maintenance", &e);
        }
    };
    let request = haven_ops::api::AddWindow {
        window: haven_ops::api::NewWindow {
            scope: haven_model::catalog::watch::Scope {
                services: ids(&form.services),
                systems: ids(&form.systems),
                repositories: Vec::new(),
            },
            start,
            end,
            reason: Some(form.reason),
        },
        by: haven_model::actor::Actor::new(viewer.actor.clone(), None),
    };
    match instance.add_window(&request).await {
        Ok(_) => Redirect::to("/maintenance").into_response(),
        Err(e) => failed(&viewer, "maintenance", &e),
    }
}

/// `POST /maintenance/{id}/end`.
pub(super) async fn end_window(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Checked(_): Checked<super::NoFields>,
) -> Response {
    let request = haven_ops::api::EndWindow {
        id,
        by: haven_model::actor::Actor::new(viewer.actor.clone(), None),
    };
    match instance.end_window(&request).await {
        Ok(_) => Redirect::to("/maintenance").into_response(),
        Err(e) => failed(&viewer, "maintenance", &e),
    }
}

/// How fast a repository grows, or why that is not known yet.
fn growth(per_day: Option<f64>, samples: usize) -> String {
    match per_day {
        Some(g) if g >= 0.0 => format!("+{}", human_bytes(g)),
        Some(g) => format!("-{}", human_bytes(-g)),
        None => format!("not known yet ({samples} measurements; needs 3 over 3 days)"),
    }
}

/// When a repository fills up at its trend.
fn full(r: &haven_ops::metrics::RepositoryUsage, now: jiff::Timestamp) -> String {
    match (r.capacity_bytes, r.growth_bytes_per_day, r.full_at) {
        (None, _, _) => "-".into(),
        (_, None, _) => "not forecast yet".into(),
        (_, Some(_), None) => "not growing".into(),
        (_, Some(_), Some(at)) => format!(
            "{} (in {})",
            at.strftime("%Y-%m-%d"),
            format_duration(at.duration_since(now).max(jiff::SignedDuration::ZERO))
        ),
    }
}

/// `GET /repositories`: each catalog repository's usage against its
/// capacity, from the newest measurement.
pub(super) async fn repositories(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let snapshot = match instance.metrics().await {
        Ok(snapshot) => snapshot,
        Err(e) => return failed(&viewer, "repositories", &e),
    };
    let rows = snapshot
        .repositories
        .iter()
        .map(|r| {
            let share = match (r.used_bytes, r.capacity_bytes) {
                (Some(used), Some(cap)) if cap > 0 => format!("{:.0} %", used as f64 / cap as f64 * 100.0),
                _ => "-".into(),
            };
            json!({"cells": [r.repository.clone(), r.used_bytes.map_or("not measured yet".into(), |b| human_bytes(b as f64)),
                             r.capacity_bytes.map_or("not declared".into(), |b| human_bytes(b as f64)), share,
                             growth(r.growth_bytes_per_day, r.samples), full(r, snapshot.generated_at)]})
        })
        .collect();
    let list = List {
        title: "Repositories".into(),
        caption:
            "Space used at the newest measurement (after each job), against the declared capacity"
                .into(),
        columns: vec![
            "Repository",
            "Used",
            "Capacity",
            "Used share",
            "Growth per day",
            "Full (forecast)",
        ],
        rows,
        empty: "No repositories in the catalog.",
        svg: Some((
            "Used against capacity; green below 75 %, orange below 90 %, red above".into(),
            super::charts::usage(&snapshot.repositories),
        )),
        intro: Some(
            "The forecast is a straight line through the last 30 days' measurements (one after each job; at least 3 over 3 days); the capacity-forecast alert warns before a repository fills up (docs/alerts.md)."
                .into(),
        ),
        ..List::default()
    };
    show(&viewer, "repositories", list)
}
