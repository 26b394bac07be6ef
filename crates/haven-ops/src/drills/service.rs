//! Drills of a service: the backed-up systems it needs (directly or
//! through the services it depends on) in recovery order, a wave's
//! systems side by side, timed as a whole. Each system drill is the same
//! as `haven drill SYSTEM`'s and recorded as such; the service drill
//! records the waves, the system drills' numbers, and its own verdict
//! against the service's objectives.

use std::path::{Path, PathBuf};
use std::time::Instant;

use haven_model::catalog::Catalog;
use haven_model::catalog::plan::recovery_order;
use haven_model::drills::{Drill, Objectives, ServiceDrill, Verdict, judge_service};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{DrillError, DrillOutcome, DrillRequest, run};

/// What service to drill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServiceDrillRequest {
    /// The service.
    pub service: String,
    /// Every system's newest snapshots taken at or before this time.
    #[serde(default)]
    pub at: Option<Timestamp>,
    /// Keep the sandboxes afterwards (forensics).
    #[serde(default)]
    pub keep: bool,
    /// Who asks.
    pub by: String,
}

/// A service drill and its system drills.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServiceDrillOutcome {
    /// The service drill.
    #[serde(flatten)]
    pub drill: ServiceDrill,
    /// Each system's drill (and kept sandbox), in the order they ended.
    pub systems: Vec<DrillOutcome>,
}

/// The systems to drill, wave by wave, and those the service needs that
/// hold nothing to drill (with why).
pub fn waves(
    catalog: &Catalog,
    service: &str,
) -> Result<(Vec<Vec<String>>, Vec<String>), DrillError> {
    if catalog.service(service).is_none() {
        return Err(DrillError::NoService(format!(
            "no service {service:?} in the catalog"
        )));
    }
    let order = recovery_order(catalog, &[service.to_string()]).map_err(DrillError::Unknown)?;
    let mut waves = Vec::new();
    let mut not_drilled = Vec::new();
    for wave in &order.waves {
        let mut systems = Vec::new();
        for item in wave.iter().filter(|i| i.kind == "system") {
            let Some(system) = catalog.system(&item.id) else {
                continue;
            };
            if system.policy.is_some() && !system.backup_sets.is_empty() {
                systems.push(item.id.clone());
            } else if system.holds_data() {
                not_drilled.push(format!(
                    "{} holds data but has no backup: the service cannot be recovered without it",
                    item.id
                ));
            } else {
                not_drilled.push(format!("{} has no backup (it holds no data)", item.id));
            }
        }
        if !systems.is_empty() {
            waves.push(systems);
        }
    }
    if waves.is_empty() {
        return Err(DrillError::Unknown(format!(
            "service {service} needs no backed-up system: nothing to drill"
        )));
    }
    Ok((waves, not_drilled))
}

/// Drill `request.service` (blocking): wave by wave, each wave's systems
/// on threads of their own. A failed wave does not stop the next (the
/// evidence shows every system's state), but the service fails; so does
/// a system whose drill cannot even start (no snapshot, no room, the
/// repository unreachable), named in `not_drilled`.
pub fn run_service(
    catalog: &Catalog,
    data_dir: &Path,
    request: &ServiceDrillRequest,
    now: Timestamp,
) -> Result<ServiceDrillOutcome, DrillError> {
    let (waves, mut not_drilled) = waves(catalog, &request.service)?;
    let started = Instant::now();
    let mut systems = Vec::new();
    let mut not_started = Vec::new();
    for wave in &waves {
        let at = now + elapsed(started);
        let ran: Vec<Result<DrillOutcome, DrillError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = wave
                .iter()
                .map(|system| {
                    let one = DrillRequest {
                        system: system.clone(),
                        snapshot: None,
                        at: request.at,
                        keep: request.keep,
                        by: format!("{} (drill of service {})", request.by, request.service),
                    };
                    scope.spawn(move || run(catalog, data_dir, &one, at))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(DrillError::Stopped("a system drill panicked".into()))
                    })
                })
                .collect()
        });
        for (system, outcome) in wave.iter().zip(ran) {
            match outcome {
                Ok(outcome) => systems.push(outcome),
                // The others' evidence is kept; the service fails.
                Err(e) => not_started.push(format!("{system} could not be drilled: {e}")),
            }
        }
    }
    let measured_rto = elapsed(started);
    let drills: Vec<Drill> = systems.iter().map(|o| o.drill.clone()).collect();
    let achieved_rpo = drills
        .iter()
        .map(|d| d.achieved_rpo)
        .max()
        .unwrap_or(SignedDuration::ZERO);
    let objectives = service_objectives(catalog, &request.service);
    let (mut verdict, mut reasons) = judge_service(&drills, measured_rto, achieved_rpo, objectives);
    let missing = not_drilled.iter().filter(|n| n.contains("holds data"));
    for reason in missing.chain(&not_started) {
        verdict = Verdict::Fail;
        reasons.push(reason.clone());
    }
    not_drilled.extend(not_started);
    Ok(ServiceDrillOutcome {
        drill: ServiceDrill {
            id: 0,
            service: request.service.clone(),
            by: request.by.clone(),
            started_at: now,
            ended_at: now + measured_rto,
            waves,
            drills: Vec::new(),
            not_drilled,
            measured_rto,
            achieved_rpo,
            objectives,
            verdict,
            reasons,
        },
        systems,
    })
}

/// [`run_service`] off the async threads; its system drills, then the
/// service drill, recorded in `store`.
pub async fn run_service_and_record(
    catalog: std::sync::Arc<Catalog>,
    data_dir: PathBuf,
    request: ServiceDrillRequest,
    now: Timestamp,
    store: &dyn haven_store::Store,
) -> Result<ServiceDrillOutcome, DrillError> {
    let mut outcome =
        tokio::task::spawn_blocking(move || run_service(&catalog, &data_dir, &request, now))
            .await
            .map_err(|e| DrillError::Stopped(e.to_string()))??;
    let unrecorded = |e: haven_store::StoreError| DrillError::Unrecorded(e.to_string());
    for system in &mut outcome.systems {
        system.drill = store
            .record_drill(&system.drill)
            .await
            .map_err(unrecorded)?;
        outcome.drill.drills.push(system.drill.id);
    }
    outcome.drill = store
        .record_service_drill(&outcome.drill)
        .await
        .map_err(unrecorded)?;
    Ok(outcome)
}

fn elapsed(since: Instant) -> SignedDuration {
    SignedDuration::try_from(since.elapsed()).unwrap_or(SignedDuration::MAX)
}

fn service_objectives(catalog: &Catalog, service: &str) -> Objectives {
    catalog
        .service(service)
        .map(|s| Objectives {
            rto: s.rto.as_ref().map(|r| r.value),
            rpo: s.rpo.as_ref().map(|r| r.value),
            mtd: s.mtd.as_ref().map(|r| r.value),
        })
        .unwrap_or_default()
}
