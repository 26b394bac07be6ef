//! Recovery: bring services back from their backups in dependency order
//! (`haven recover`). The run is planned without I/O in
//! `haven_model::recovery`; this module feeds it the evidence (drill
//! history, current sizes) and, later, runs it.

use std::collections::HashMap;

use haven_model::catalog::Catalog;
use haven_model::drills::predicted_rto;
use haven_model::recovery::{Estimate, Forecast, RunPlan, Selection, UnitKind, forecast, plan_run};
use serde::{Deserialize, Serialize};

/// What a dry-run asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForecastRequest {
    /// What to recover.
    pub selection: Selection,
}

/// Why a recovery cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The selection names nothing recoverable (no plan, no service, a
    /// dependency cycle).
    #[error(transparent)]
    Plan(#[from] haven_model::recovery::PlanError),
    /// The evidence cannot be read.
    #[error(transparent)]
    Store(#[from] haven_store::StoreError),
}

/// The dry-run: the planned run and what it will take, from the drill
/// history and each system's current size where there is one.
pub async fn dry_run(
    catalog: &Catalog,
    store: &dyn haven_store::Store,
    request: &ForecastRequest,
) -> Result<Forecast, RecoveryError> {
    let plan = plan_run(catalog, &request.selection)?;
    let estimates = estimates(store, &plan).await?;
    Ok(forecast(catalog, plan, &estimates))
}

/// Each system's restore estimate from its drills: the last passing
/// drill's throughput applied to its current size, plus that drill's
/// other steps.
async fn estimates(
    store: &dyn haven_store::Store,
    plan: &RunPlan,
) -> Result<HashMap<String, Estimate>, RecoveryError> {
    let sizes = crate::status::system_sizes(store).await?;
    let mut out = HashMap::new();
    for unit in plan.units.iter().filter(|u| u.kind == UnitKind::System) {
        let drills = store.drills(Some(&unit.id), 20).await?;
        let newest_first: Vec<&haven_model::drills::Drill> = drills.iter().collect();
        let Some(size) = sizes.get(&unit.id) else {
            continue;
        };
        let Some(duration) = predicted_rto(&newest_first, *size) else {
            continue;
        };
        let basis = newest_first
            .iter()
            .find(|d| d.verdict == haven_model::drills::Verdict::Pass && d.bytes > 0)
            .map_or_else(String::new, |d| {
                format!(
                    "drill {}: its restore throughput × the current size ({})",
                    d.id,
                    haven_model::units::human_bytes(*size as f64)
                )
            });
        out.insert(unit.id.clone(), Estimate { duration, basis });
    }
    Ok(out)
}
