//! `haven status`: compliance per service and system with the next
//! scheduled run, from a running server or straight from the data dir.
//! Both paths call [`report`], so they show the same thing.

use haven_model::catalog::Catalog;
use haven_model::compliance::{self, RpoState, ServiceCompliance, SystemCompliance};
use haven_model::jobs::{Outcome, SetState};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::settings::Settings;

/// One service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Compliance.
    #[serde(flatten)]
    pub compliance: ServiceCompliance,
    /// The next scheduled backup of any of its systems.
    pub next_run: Option<Timestamp>,
}

/// One system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemStatus {
    /// Compliance.
    #[serde(flatten)]
    pub compliance: SystemCompliance,
    /// How its last job ended.
    pub last_outcome: Option<Outcome>,
    /// Its next scheduled backup.
    pub next_run: Option<Timestamp>,
}

/// The whole report: quarantined first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// When it was computed.
    pub generated_at: Timestamp,
    /// Where it came from: `server` or `data-dir`.
    pub source: String,
    /// Services, worst first.
    pub services: Vec<ServiceStatus>,
    /// Systems with backups, worst first.
    pub systems: Vec<SystemStatus>,
}

impl StatusReport {
    /// Keep only rows in `state`.
    pub fn only(mut self, state: RpoState) -> Self {
        self.services.retain(|s| s.compliance.state == state);
        self.systems.retain(|s| s.compliance.state == state);
        self
    }

    /// Does any service or system have `state`?
    pub fn any(&self, state: RpoState) -> bool {
        self.services.iter().any(|s| s.compliance.state == state)
            || self.systems.iter().any(|s| s.compliance.state == state)
    }
}

/// Compute the report.
pub fn report(
    catalog: &Catalog,
    plan: &Plan,
    states: &[SetState],
    settings: &Settings,
    now: Timestamp,
    source: &str,
) -> StatusReport {
    let compliance = compliance::evaluate(catalog, states, now, settings.thresholds);
    let next_of_system = |system: &str| {
        plan.backups_of(system)
            .iter()
            .filter_map(|t| plan.next_run(&t.key, now))
            .min()
    };
    let systems: Vec<SystemStatus> = compliance
        .systems
        .into_iter()
        .map(|c| {
            let last_outcome = states
                .iter()
                .filter(|s| s.system == c.system)
                .filter_map(|s| s.last_outcome)
                .min_by_key(|o| !matches!(o, Outcome::Failed | Outcome::Interrupted));
            let next_run = next_of_system(&c.system);
            SystemStatus {
                compliance: c,
                last_outcome,
                next_run,
            }
        })
        .collect();
    let services = compliance
        .services
        .into_iter()
        .map(|c| {
            let next_run = c.systems.iter().filter_map(|s| next_of_system(s)).min();
            ServiceStatus {
                compliance: c,
                next_run,
            }
        })
        .collect();
    StatusReport {
        generated_at: now,
        source: source.into(),
        services,
        systems,
    }
}
