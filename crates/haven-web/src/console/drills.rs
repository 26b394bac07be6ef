//! The console's drills: the recorded ones, a form to run one, and a
//! drill's report. A drill restores a whole system and can take as long
//! as its restore, so the form starts it in the background and the page
//! follows it (refreshing while it runs) instead of holding the browser's
//! request open; the drill itself runs through the instance interface as
//! the person who asked, like any other action.

use std::sync::{Arc, Mutex};

use axum::Extension;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use haven_model::catalog::duration::format_duration;
use haven_model::drills::Drill;
use haven_ops::api::{DrillRequest, DrillsQuery, Instance, InstanceError, ServiceDrillRequest};
use haven_ops::drills::report;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::lists::{List, show};
use super::{Checked, Viewer, failed, frame, render, time};
use crate::access::Acting;

/// How long a drill started here stays listed after it ended (its
/// record stays for good; this is only the "started from the console"
/// line, which carries why a drill could not run at all).
const KEPT_FOR: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

/// At most this many such lines.
const KEPT_AT_MOST: usize = 50;

/// Drills started from this console, while they run and for a while
/// after.
#[derive(Default)]
pub(crate) struct Started(Mutex<Vec<StartedDrill>>);

#[derive(Clone)]
struct StartedDrill {
    number: u64,
    /// `service:ID` or `system:ID`.
    subject: String,
    by: String,
    at: Timestamp,
    ended: Option<(Timestamp, Result<(), String>)>,
}

impl Started {
    fn start(&self, subject: &str, by: &str) -> u64 {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Timestamp::now();
        list.retain(|d| d.ended.as_ref().is_none_or(|(at, _)| now - KEPT_FOR < *at));
        let number = list.iter().map(|d| d.number).max().unwrap_or(0) + 1;
        list.push(StartedDrill {
            number,
            subject: subject.to_string(),
            by: by.to_string(),
            at: now,
            ended: None,
        });
        let excess = list.len().saturating_sub(KEPT_AT_MOST);
        list.drain(..excess);
        number
    }

    fn end(&self, number: u64, result: Result<(), String>) {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = list.iter_mut().find(|d| d.number == number) {
            d.ended = Some((Timestamp::now(), result));
        }
    }

    /// How many run now.
    pub(crate) fn running(&self) -> usize {
        let list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        list.iter().filter(|d| d.ended.is_none()).count()
    }

    fn list(&self) -> Vec<StartedDrill> {
        let list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        list.iter().rev().cloned().collect()
    }
}

/// `GET /drills`: drills started here, then the recorded ones, newest
/// first; a form to run one.
pub(super) async fn drills(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Extension(started): Extension<Arc<Started>>,
) -> Response {
    let query = DrillsQuery {
        id: None,
        system: None,
        limit: Some(200),
    };
    let (drills, status) = match (instance.drills(&query).await, instance.status().await) {
        (Ok(drills), Ok(status)) => (drills, status),
        (Err(e), _) | (_, Err(e)) => return failed(&viewer, "drills", &e),
    };
    let started = started.list();
    let running = started.iter().any(|d| d.ended.is_none());
    let mut rows: Vec<Value> = started.iter().filter_map(started_row).collect();
    rows.extend(drills.iter().map(|d| {
        json!({
            "link": format!("/drills/{}", d.id),
            "class": format!("verdict-{}", d.verdict.as_str()),
            "cells": [d.id.to_string(), d.system.clone(), time(Some(d.started_at)), d.verdict.as_str().to_string(),
                      format_duration(d.measured_rto), format_duration(d.achieved_rpo), d.reasons.join("; ")],
        })
    }));
    // A service (its systems in recovery order, timed as a whole: its
    // measured RTO) or one system.
    let subjects: Vec<Value> = status
        .services
        .iter()
        .filter(|s| !s.compliance.systems.is_empty())
        .map(|s| json!({"value": format!("service:{}", s.compliance.service), "label": format!("service {}", s.compliance.service)}))
        .chain(status.systems.iter().map(|s| {
            json!({"value": format!("system:{}", s.compliance.system), "label": format!("system {}", s.compliance.system)})
        }))
        .collect();
    let list = List {
        title: "Drills".into(),
        caption: "Restores into a sandbox, measured, newest first".into(),
        columns: vec![
            "#",
            "System",
            "Started",
            "Verdict",
            "Measured RTO",
            "Achieved RPO",
            "Why",
        ],
        rows,
        empty: "No drills yet.",
        refresh: running.then(|| "/drills".to_string()),
        adds: (!subjects.is_empty())
            .then(|| {
                json!({
                "title": "Run a drill",
                "intro": "Restores the newest backup into a sandbox, runs the checks there and measures how long it took; production is never touched. A service's systems are restored in recovery order and timed as a whole: its measured RTO. This page follows it.",
                "action": "/drills",
                "button": "Run the drill",
                "fields": [{"name": "subject", "label": "Service or system", "options": subjects, "required": true}],
                })
            })
            .into_iter()
            .collect(),
        ..List::default()
    };
    show(&viewer, "drills", list)
}

/// A drill started here that is still running or could not run (one
/// that was recorded is listed as recorded).
fn started_row(d: &StartedDrill) -> Option<Value> {
    let (state, why) = match &d.ended {
        None => ("running".to_string(), format!("started by {}", d.by)),
        Some((_, Ok(_))) => return None,
        Some((at, Err(why))) => (format!("could not run ({})", time(Some(*at))), why.clone()),
    };
    Some(json!({
        "class": if d.ended.is_none() { "verdict-running" } else { "verdict-fail" },
        "cells": ["-", d.subject.replacen(':', " ", 1), time(Some(d.at)), state, "-", "-", why],
    }))
}

/// The run-a-drill form: `service:ID` or `system:ID`.
#[derive(Deserialize)]
pub(super) struct RunForm {
    subject: String,
}

/// `POST /drills`: start a drill of the service or system as the viewer, in the
/// background; to the drills page, which follows it.
pub(super) async fn run(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Extension(started): Extension<Arc<Started>>,
    Checked(form): Checked<RunForm>,
) -> Response {
    let (kind, name) = form
        .subject
        .trim()
        .split_once(':')
        .unwrap_or(("system", ""));
    let (service, name) = (kind == "service", name.to_string());
    let number = started.start(&form.subject, &viewer.actor);
    let by = viewer.actor.clone();
    tokio::spawn(async move {
        let result = if service {
            let request = ServiceDrillRequest {
                service: name,
                at: None,
                keep: false,
                by,
            };
            instance.drill_service(&request).await.map(|_| ())
        } else {
            let request = DrillRequest {
                system: name,
                snapshot: None,
                at: None,
                keep: false,
                by,
            };
            instance.drill(&request).await.map(|_| ())
        };
        started.end(number, result.map_err(|e| e.message));
    });
    Redirect::to("/drills").into_response()
}

async fn recorded(instance: &dyn Instance, id: i64) -> Result<Drill, InstanceError> {
    let query = DrillsQuery {
        id: Some(id),
        system: None,
        limit: Some(1),
    };
    instance
        .drills(&query)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            InstanceError::new(
                haven_model::errors::ErrorCode::NoSuchDrill,
                format!("no drill {id}"),
            )
        })
}

/// `GET /drills/{id}`: the drill's report — what was restored from
/// which snapshot, its objectives against what was measured, each step
/// on a timeline, the verdict and why.
pub(super) async fn drill(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
) -> Response {
    let d = match recorded(&instance, id).await {
        Ok(d) => d,
        Err(e) => return failed(&viewer, "drills", &e),
    };
    let mut context = frame(&viewer, "drills");
    let facts: Vec<Value> = report::facts(&d)
        .into_iter()
        .map(|(label, value)| json!({"label": label, "value": value}))
        .collect();
    let objectives: Vec<Value> = report::objectives(&d)
        .into_iter()
        .map(|(what, objective, measured)| json!({"what": what, "objective": objective, "measured": measured}))
        .collect();
    let steps: Vec<Value> = d
        .steps
        .iter()
        .map(|s| {
            json!({"name": s.name, "ok": s.ok, "duration": format_duration(s.duration), "detail": s.detail})
        })
        .collect();
    context.insert(
        "drill".into(),
        json!({
            "id": d.id,
            "system": d.system,
            "verdict": d.verdict.as_str(),
            "facts": facts,
            "objectives": objectives,
            "steps": steps,
            "reasons": d.reasons,
            "timeline": report::timeline_svg(&d),
        }),
    );
    render("drill.html", Value::Object(context))
}

/// `GET /drills/{id}/report.{html|md}`: the report to keep (one
/// self-contained page, or Markdown), as a download.
pub(super) async fn download(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Path((id, file)): Path<(i64, String)>,
) -> Response {
    let d = match recorded(&instance, id).await {
        Ok(d) => d,
        Err(e) => return failed(&viewer, "drills", &e),
    };
    let (body, kind) = match file.as_str() {
        "report.html" => (report::html(&d), "text/html; charset=utf-8"),
        "report.md" => (report::markdown(&d), "text/markdown; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let name = format!(
        "attachment; filename=\"drill-{id}.{}\"",
        file.rsplit('.').next().unwrap_or("txt")
    );
    (
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        body,
    )
        .into_response()
}
