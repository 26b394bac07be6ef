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

/// The measurements a capacity forecast needs at least: this many, over
/// at least [`FORECAST_MIN_SPAN`] (the `capacity-forecast` alert's
/// default).
pub const FORECAST_MIN_SAMPLES: usize = 3;
/// See [`FORECAST_MIN_SAMPLES`].
pub const FORECAST_MIN_SPAN: SignedDuration = SignedDuration::from_hours(3 * 24);
/// The measurements a forecast is fitted to: the newest 30 days.
const FORECAST_WINDOW: SignedDuration = SignedDuration::from_hours(30 * 24);

/// A repository's usage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepositoryUsage {
    /// Its catalog id.
    pub repository: String,
    /// Bytes used at the newest sample.
    pub used_bytes: Option<u64>,
    /// Its declared capacity.
    pub capacity_bytes: Option<u64>,
    /// Growth per day, a least-squares line through the last 30 days'
    /// measurements (none: fewer than [`FORECAST_MIN_SAMPLES`] over
    /// [`FORECAST_MIN_SPAN`]).
    #[serde(default)]
    pub growth_bytes_per_day: Option<f64>,
    /// When that line reaches the capacity (none: no capacity, no
    /// forecast, or not growing).
    #[serde(default)]
    pub full_at: Option<Timestamp>,
    /// The measurements taken in the last 30 days.
    #[serde(default)]
    pub samples: usize,
}

/// The growth of `samples` (oldest first) and when it reaches `capacity`.
pub fn forecast(
    samples: &[(Timestamp, u64)],
    capacity: Option<u64>,
) -> (Option<f64>, Option<Timestamp>) {
    let enough = samples.len() >= FORECAST_MIN_SAMPLES
        && samples
            .last()
            .zip(samples.first())
            .is_some_and(|(last, first)| last.0.duration_since(first.0) >= FORECAST_MIN_SPAN);
    let Some(trend) = enough
        .then(|| haven_model::anomaly::Trend::fit(samples))
        .flatten()
    else {
        return (None, None);
    };
    let full = capacity.and_then(|c| trend.reaches(c as f64));
    (Some(trend.bytes_per_day), full)
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
        let recent: Vec<(Timestamp, u64)> = samples
            .iter()
            .copied()
            .filter(|(t, _)| *t >= now - FORECAST_WINDOW)
            .collect();
        let (growth, full_at) = forecast(&recent, repo.capacity_bytes);
        repositories.push(RepositoryUsage {
            used_bytes: samples.last().map(|(_, bytes)| *bytes),
            capacity_bytes: repo.capacity_bytes,
            growth_bytes_per_day: growth,
            full_at,
            samples: recent.len(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_hours(24 * n)
    }

    #[test]
    fn a_forecast_needs_three_measurements_over_three_days() {
        let gib = 1u64 << 30;
        // 10 GiB a day from 100 GiB: 1 TiB (1024 GiB) is reached on day 92.4.
        let samples: Vec<(Timestamp, u64)> = (0..4)
            .map(|d| (day(d), (100 + 10 * d as u64) * gib))
            .collect();
        let (growth, full) = forecast(&samples, Some(1024 * gib));
        let growth = growth.expect("a trend");
        assert!((growth - 10.0 * gib as f64).abs() < 1.0, "{growth}");
        let full = full.expect("full some day");
        let days = full.duration_since(day(0)).as_secs_f64() / 86_400.0;
        assert!((days - 92.4).abs() < 0.01, "{days}");
        // Two measurements, or three within a day: no forecast.
        assert_eq!(forecast(&samples[..2], Some(gib)), (None, None));
        let close: Vec<(Timestamp, u64)> = (0..3)
            .map(|h| (day(0) + SignedDuration::from_hours(h), gib))
            .collect();
        assert_eq!(forecast(&close, Some(gib)), (None, None));
        // Shrinking: a growth, but never full.
        let shrinking: Vec<(Timestamp, u64)> =
            (0..4).map(|d| (day(d), (10 - d as u64) * gib)).collect();
        let (growth, full) = forecast(&shrinking, Some(100 * gib));
        assert!(growth.expect("a trend") < 0.0);
        assert_eq!(full, None);
    }
}
