//! A service's page: its objectives against what was measured, what it
//! needs (drawn), who needs it, its systems with their backup history and
//! data age, their drills, and the catalog's findings about it.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::Path;
use axum::response::Response;
use haven_model::catalog::duration::format_duration;
use haven_ops::api::{Instance, InstanceError, JobsQuery};
use haven_ops::status::{ServiceDetail, ServiceStatus, StatusReport};
use serde_json::{Value, json};

use super::{Viewer, age, charts, failed, frame, render, time};
use crate::access::Acting;

/// `GET /services/{id}`.
pub(super) async fn service(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    let (status, detail) = match (instance.status().await, instance.service(&id).await) {
        (Ok(status), Ok(detail)) => (status, detail),
        (Err(e), _) | (_, Err(e)) => return failed(&viewer, "service", &e),
    };
    let Some(s) = status.services.iter().find(|s| s.compliance.service == id) else {
        return failed(&viewer, "service", &InstanceError::no_such_service(&id));
    };
    let mut context = frame(&viewer, "service");
    context.insert("service".into(), summary(s));
    context.insert(
        "rto".into(),
        rto(&instance, &id, &detail.objectives, s).await,
    );
    context.insert("systems".into(), json!(system_rows(&status, s)));
    let states = states(&status);
    let needs: Vec<Value> = detail
        .graph
        .nodes
        .iter()
        .skip(1)
        .map(|n| need(n, &states))
        .collect();
    let ServiceDetail {
        graph, findings, ..
    } = detail;
    context.insert(
        "graph".into(),
        json!(charts::dependency_graph(&graph, &states)),
    );
    context.insert("needs".into(), json!(needs));
    context.insert("dependents".into(), json!(graph.dependents));
    context.insert("findings".into(), json!(findings));
    let systems = &s.compliance.systems;
    context.insert(
        "charts".into(),
        json!(history(&instance, &status, systems).await),
    );
    context.insert(
        "drills".into(),
        json!(recent_drills(&instance, systems).await),
    );
    render("service.html", Value::Object(context))
}

/// Its objectives against what was measured.
fn summary(s: &ServiceStatus) -> Value {
    json!({
        "name": s.compliance.name,
        "tier": s.compliance.tier,
        "state": s.compliance.state.as_str(),
        "age": age(s.compliance.age),
        "rpo": s.compliance.rpo.map(format_duration),
        "readiness": s.readiness.map_or("unknown", |r| r.as_str()),
        "readiness_reason": s.readiness_reason,
        "predicted_rto": s.predicted_rto.map_or("not predicted yet (no drill)".into(), format_duration),
    })
}

/// Its RTO and MTD against what was measured: the newest service drill
/// (its systems restored in recovery order, timed as a whole) and what
/// its systems' drills predict.
async fn rto(
    instance: &dyn Instance,
    id: &str,
    objectives: &haven_model::drills::Objectives,
    s: &ServiceStatus,
) -> Value {
    let query = haven_ops::api::ServiceDrillsQuery {
        service: Some(id.to_string()),
        limit: Some(1),
    };
    let newest = instance
        .service_drills(&query)
        .await
        .ok()
        .and_then(|d| d.into_iter().next());
    let measured = newest.map_or(
        "not measured yet: no service drill (run one from Drills, or `haven drill SERVICE`)"
            .to_string(),
        |d| {
            format!(
                "{} in service drill {} on {} ({})",
                format_duration(d.measured_rto),
                d.id,
                time(Some(d.started_at)),
                d.verdict.as_str()
            )
        },
    );
    json!({
        "objective": objectives.rto.map(format_duration),
        "mtd": objectives.mtd.map(format_duration),
        "measured": measured,
        "predicted": s.predicted_rto.map(format_duration),
    })
}

/// Its backed-up systems.
fn system_rows(status: &StatusReport, s: &ServiceStatus) -> Vec<Value> {
    status
        .systems
        .iter()
        .filter(|x| s.compliance.systems.contains(&x.compliance.system))
        .map(|x| {
            json!({
                "id": x.compliance.system,
                "state": x.compliance.state.as_str(),
                "last_good": x.compliance.last_good_at.map_or("never".into(), |t| time(Some(t))),
                "readiness": x.readiness.map_or("unknown", |r| r.as_str()),
            })
        })
        .collect()
}

/// Every service's and system's RPO state, by id.
fn states(status: &StatusReport) -> HashMap<String, String> {
    let systems = status
        .systems
        .iter()
        .map(|x| &x.compliance)
        .map(|c| (c.system.clone(), c.state.as_str().to_string()));
    let services = status
        .services
        .iter()
        .map(|x| &x.compliance)
        .map(|c| (c.service.clone(), c.state.as_str().to_string()));
    systems.chain(services).collect()
}

/// A thing it needs, as the list beside the graph shows it.
fn need(n: &haven_model::catalog::graph::Node, states: &HashMap<String, String>) -> Value {
    let link = match n.kind.as_str() {
        "service" => Some(format!("/services/{}", n.id)),
        "system" => Some(format!("/jobs?system={}", n.id)),
        _ => None,
    };
    json!({"id": n.id, "kind": n.kind, "state": states.get(&n.id), "link": link})
}

/// Each system's last 30 backups and its data age against its RPO.
async fn history(instance: &dyn Instance, status: &StatusReport, systems: &[String]) -> Vec<Value> {
    let mut charts = Vec::new();
    for system in systems {
        let query = JobsQuery {
            system: Some(system.clone()),
            limit: Some(30),
            ..JobsQuery::default()
        };
        let Ok(jobs) = instance.jobs(&query).await else {
            continue;
        };
        let rpo = status
            .systems
            .iter()
            .find(|x| &x.compliance.system == system)
            .and_then(|x| x.compliance.rpo);
        let age = charts::data_age(system, &jobs, rpo, status.generated_at);
        charts.push(
            json!({"system": system, "svg": charts::backup_history(system, &jobs), "age": age}),
        );
    }
    charts
}

/// The newest drills of `systems` (five each at most), newest first.
async fn recent_drills(instance: &dyn Instance, systems: &[String]) -> Vec<Value> {
    let mut drills = Vec::new();
    for system in systems {
        let query = haven_ops::api::DrillsQuery {
            id: None,
            system: Some(system.clone()),
            limit: Some(5),
        };
        drills.extend(instance.drills(&query).await.unwrap_or_default());
    }
    drills.sort_by_key(|d| std::cmp::Reverse(d.started_at));
    drills
        .iter()
        .map(|d| {
            json!({"id": d.id, "system": d.system, "started": time(Some(d.started_at)),
                   "verdict": d.verdict.as_str(), "rto": format_duration(d.measured_rto),
                   "reasons": d.reasons.join("; ")})
        })
        .collect()
}
