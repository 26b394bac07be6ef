//! `GET /metrics`: the instance's numbers in the Prometheus (OpenMetrics)
//! text format, for a scraper holding a token: jobs by system, kind and
//! outcome; last-good-backup age and RPO per system; compliance and
//! readiness state counts; predicted and measured RTO per service; open
//! alerts by severity; drills and recoveries by outcome; repository
//! usage and capacity; and the API's own request counts and latencies.
//! Names and labels are listed in `docs/server.md`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use haven_ops::api::Instance;
use haven_ops::metrics::MetricsSnapshot;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::document;

/// Every metric family `/metrics` serves, as scraped (a family with no
/// sample yet is left out of a scrape). `docs/server.md` lists the same.
pub const FAMILIES: &[&str] = &[
    "haven_jobs_total",
    "haven_last_good_backup_age_seconds",
    "haven_rpo_seconds",
    "haven_services_by_compliance",
    "haven_services_by_readiness",
    "haven_service_predicted_rto_seconds",
    "haven_service_measured_rto_seconds",
    "haven_alerts_open",
    "haven_drills",
    "haven_recoveries",
    "haven_repository_used_bytes",
    "haven_repository_capacity_bytes",
    "haven_http_requests_total",
    "haven_http_request_duration_seconds",
];

/// The API's own request metrics, shared by every request.
#[derive(Clone)]
pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics {
            requests: Family::default(),
            // 1 ms to about 33 s.
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
        }
    }
}

/// Count and time every request (by its route's pattern, never its
/// path: ids stay out of the labels).
pub(crate) async fn observe(
    State(metrics): State<ApiMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |m| m.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = RouteLabels { method, route };
    metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method: labels.method,
            route: labels.route,
            status: response.status().as_u16().to_string(),
        })
        .inc();
    response
}

/// `GET /metrics`.
pub(crate) async fn metrics(
    State((instance, api)): State<(Arc<dyn Instance>, ApiMetrics)>,
) -> Response {
    let snapshot = match instance.metrics().await {
        Ok(snapshot) => snapshot,
        Err(e) => return document(&e.document()),
    };
    let mut registry = Registry::with_prefix("haven");
    register_instance(&mut registry, &snapshot);
    registry.register(
        "http_requests",
        "API requests answered, by method, route and status",
        api.requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "How long the API took to answer, by method and route",
        api.latency.clone(),
    );
    let mut text = String::new();
    if let Err(e) = encode(&mut text, &registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// A family of gauges `name`, one per label set.
fn gauges<const N: usize>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = ([(&'static str, String); N], i64)>,
) {
    let family = Family::<Vec<(&'static str, String)>, Gauge>::default();
    for (labels, value) in values {
        family.get_or_create(&labels.to_vec()).set(value);
    }
    registry.register(name, help, family);
}

/// The instance's numbers.
fn register_instance(registry: &mut Registry, s: &MetricsSnapshot) {
    let jobs = Family::<Vec<(&'static str, String)>, Counter>::default();
    for count in &s.jobs {
        let labels = vec![
            ("system", count.system.clone().unwrap_or_default()),
            ("kind", count.kind.clone()),
            ("outcome", count.outcome.clone()),
        ];
        jobs.get_or_create(&labels).inc_by(count.count);
    }
    registry.register("jobs", "Jobs recorded, by system, kind and outcome", jobs);
    let systems = &s.status.systems;
    gauges(
        registry,
        "last_good_backup_age_seconds",
        "How old a system's data would be if it were lost now (its stalest set's last good backup)",
        systems.iter().filter_map(|x| {
            let age = x.compliance.age?;
            Some(([("system", x.compliance.system.clone())], age.as_secs()))
        }),
    );
    gauges(
        registry,
        "rpo_seconds",
        "The strictest RPO a system must meet",
        systems.iter().filter_map(|x| {
            Some((
                [("system", x.compliance.system.clone())],
                x.compliance.rpo?.as_secs(),
            ))
        }),
    );
    let mut by_state = std::collections::BTreeMap::new();
    for service in &s.status.services {
        *by_state
            .entry(service.compliance.state.as_str())
            .or_insert(0) += 1;
    }
    gauges(
        registry,
        "services_by_compliance",
        "Services by RPO compliance state",
        by_state
            .into_iter()
            .map(|(state, n)| ([("state", state.to_string())], n)),
    );
    let mut by_readiness = std::collections::BTreeMap::new();
    for service in &s.status.services {
        let readiness = service.readiness.map_or("unknown", |r| r.as_str());
        *by_readiness.entry(readiness).or_insert(0) += 1;
    }
    gauges(
        registry,
        "services_by_readiness",
        "Services by how well drills prove them recoverable",
        by_readiness
            .into_iter()
            .map(|(r, n)| ([("readiness", r.to_string())], n)),
    );
    register_rto_and_outcomes(registry, s);
}

fn register_rto_and_outcomes(registry: &mut Registry, s: &MetricsSnapshot) {
    gauges(
        registry,
        "service_predicted_rto_seconds",
        "The RTO a service's drills predict for its current size",
        s.status.services.iter().filter_map(|x| {
            Some((
                [("service", x.compliance.service.clone())],
                x.predicted_rto?.as_secs(),
            ))
        }),
    );
    gauges(
        registry,
        "service_measured_rto_seconds",
        "A service's measured RTO in its newest completed recovery",
        s.measured_rto
            .iter()
            .map(|(service, secs)| ([("service", service.clone())], *secs)),
    );
    gauges(
        registry,
        "alerts_open",
        "Open (and acknowledged) alerts by severity",
        s.open_alerts
            .iter()
            .map(|(sev, n)| ([("severity", sev.clone())], count(*n))),
    );
    gauges(
        registry,
        "drills",
        "Recorded drills by system and verdict",
        s.drills.iter().map(|d| {
            let labels = [("system", d.system.clone()), ("verdict", d.verdict.clone())];
            (labels, count(d.count))
        }),
    );
    gauges(
        registry,
        "recoveries",
        "Recovery runs by state",
        s.recoveries
            .iter()
            .map(|(state, n)| ([("state", state.clone())], count(*n))),
    );
    gauges(
        registry,
        "repository_used_bytes",
        "Bytes a repository used at its newest measurement",
        s.repositories
            .iter()
            .filter_map(|r| Some(([("repository", r.repository.clone())], count(r.used_bytes?)))),
    );
    gauges(
        registry,
        "repository_capacity_bytes",
        "A repository's declared capacity",
        s.repositories.iter().filter_map(|r| {
            Some((
                [("repository", r.repository.clone())],
                count(r.capacity_bytes?),
            ))
        }),
    );
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
