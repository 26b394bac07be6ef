//! What `/metrics` exposes, gathered in one pass: jobs by system, kind
//! and outcome; compliance and readiness (from the status report); open
//! alerts by severity; drills and recoveries by outcome; repository
//! usage against capacity. Numbers only, from the evidence: the HTTP
//! layer renders them in the Prometheus text format.

use std::collections::BTreeMap;

use haven_model::catalog::Catalog;
use haven_store::{AlertFilter, JobCount, Store, StoreError};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::status::StatusReport;

/// The drills and recoveries looked at (the newest).
const RECENT: u32 = 10_000;
/// How far back the newest capacity sample of a repository is looked for.
const CAPACITY_HISTORY: SignedDuration = SignedDuration::from_hours(24 * 400);

/// Everything `/metrics` shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// When.
    pub generated_at: Timestamp,
    /// Every job recorded, by system, kind and outcome.
    pub jobs: Vec<JobCount>,
    /// Compliance, readiness, RPO ages and predicted RTOs.
    pub status: StatusReport,
    /// Open (or acknowledged) alerts by severity.
    pub open_alerts: BTreeMap<String, u64>,
    /// Recorded drills by system and verdict.
    pub drills: Vec<DrillCount>,
    /// Recovery runs by state.
    pub recoveries: BTreeMap<String, u64>,
    /// Each service's measured RTO in its last completed recovery, in
    /// seconds.
    pub measured_rto: BTreeMap<String, i64>,
    /// Repositories: bytes used (the newest sample) and capacity.
    pub repositories: Vec<RepositoryUsage>,
}

/// How many drills of a system ended with a verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillCount {
    /// The system.
    pub system: String,
    /// `passed`, `failed`, …
    pub verdict: String,
    /// How many.
    pub count: u64,
}

/// A repository's usage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryUsage {
    /// Its catalog id.
    pub repository: String,
    /// Bytes used at the newest sample.
    pub used_bytes: Option<u64>,
    /// Its declared capacity.
    pub capacity_bytes: Option<u64>,
}

/// Gather the snapshot from the store, the catalog and the status report.
pub async fn snapshot(
    store: &dyn Store,
    catalog: &Catalog,
    status: StatusReport,
) -> Result<MetricsSnapshot, StoreError> {
    let now = status.generated_at;
    let filter = AlertFilter {
        active: true,
        service: None,
        limit: u32::MAX,
    };
    let mut open_alerts = BTreeMap::new();
    for alert in store.alerts(&filter).await? {
        *open_alerts
            .entry(alert.severity.as_str().to_string())
            .or_insert(0) += 1;
    }
    let mut by_verdict: BTreeMap<(String, String), u64> = BTreeMap::new();
    for drill in store.drills(None, RECENT).await? {
        let key = (drill.system.clone(), drill.verdict.as_str().to_string());
        *by_verdict.entry(key).or_insert(0) += 1;
    }
    let drills = by_verdict
        .into_iter()
        .map(|((system, verdict), count)| DrillCount {
            system,
            verdict,
            count,
        })
        .collect();
    let (recoveries, measured_rto) = recoveries(store, catalog).await?;
    let mut repositories = Vec::new();
    for repo in &catalog.repositories {
        let id = repo.id.value.to_string();
        let samples = store.capacity_samples(&id, now - CAPACITY_HISTORY).await?;
        repositories.push(RepositoryUsage {
            used_bytes: samples.last().map(|(_, bytes)| *bytes),
            capacity_bytes: repo.capacity_bytes,
            repository: id,
        });
    }
    Ok(MetricsSnapshot {
        generated_at: now,
        jobs: store.job_counts().await?,
        status,
        open_alerts,
        drills,
        recoveries,
        measured_rto,
        repositories,
    })
}

/// Recovery runs by state, and each service's measured RTO in its newest
/// completed run.
async fn recoveries(
    store: &dyn Store,
    catalog: &Catalog,
) -> Result<(BTreeMap<String, u64>, BTreeMap<String, i64>), StoreError> {
    let mut by_state = BTreeMap::new();
    let mut measured = BTreeMap::new();
    // Newest first: the first measurement of a service is its latest.
    for run in store.recoveries(RECENT).await? {
        *by_state.entry(run.state.as_str().to_string()).or_insert(0) += 1;
        if run.ended_at.is_none() {
            continue;
        }
        let Some((run, steps)) = store.recovery(run.id).await? else {
            continue;
        };
        let view = haven_model::recovery::run::RunView::new(catalog, run, steps);
        for service in view.services {
            if let Some(rto) = service.measured_rto {
                measured.entry(service.service).or_insert(rto.as_secs());
            }
        }
    }
    Ok((by_state, measured))
}
