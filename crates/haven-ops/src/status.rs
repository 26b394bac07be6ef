//! `haven status`: compliance per service and system with the next
//! scheduled run, from a running server or straight from the data dir.
//! Both paths call [`report`], so they show the same thing.

use haven_model::catalog::Catalog;
use haven_model::compliance::{self, RpoState, ServiceCompliance, SystemCompliance};
use std::collections::HashMap;

use haven_model::drills::{Drill, Readiness, predicted_rto, system_config, system_readiness};
use haven_model::jobs::{JobKind, Outcome, SetState};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::instance::settings::Settings;
use haven_model::tasks::Plan;

/// One service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServiceStatus {
    /// Compliance.
    #[serde(flatten)]
    pub compliance: ServiceCompliance,
    /// The next scheduled backup of any of its systems.
    pub next_run: Option<Timestamp>,
    /// How well drills prove it recoverable (the worst of its systems).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Readiness>,
    /// The longest RTO its systems' drills predict (they are restored
    /// side by side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_rto: Option<SignedDuration>,
    /// What an hour of its downtime costs (the BIA's `impact.per_hour`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact_per_hour: Option<f64>,
    /// The currency of `impact_per_hour`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Why (the system and drill that decide it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_reason: Option<String>,
}

/// One system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SystemStatus {
    /// Compliance.
    #[serde(flatten)]
    pub compliance: SystemCompliance,
    /// How its last job ended.
    pub last_outcome: Option<Outcome>,
    /// Its next scheduled backup.
    pub next_run: Option<Timestamp>,
    /// How well drills prove it recoverable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Readiness>,
    /// The RTO its drills predict for its current size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_rto: Option<SignedDuration>,
    /// Why (its last drill, or none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_reason: Option<String>,
}

/// The whole report: quarantined first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Add each system's and service's readiness from the recorded drills
    /// (any order; the drill interval is the shortest among the services
    /// needing the system: their `[[drill]]` entry's, else their tier's), and the RTO they predict for each system's
    /// current size (`sizes`: bytes of its newest good backups).
    pub fn with_readiness(
        mut self,
        catalog: &Catalog,
        drills: &[Drill],
        sizes: &HashMap<String, u64>,
    ) -> Self {
        let now = self.generated_at;
        let mut by_system: HashMap<&str, Vec<&Drill>> = HashMap::new();
        for d in drills {
            by_system.entry(d.system.as_str()).or_default().push(d);
        }
        for list in by_system.values_mut() {
            list.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        }
        let mut of_system: HashMap<String, (Readiness, String)> = HashMap::new();
        let mut predicted: HashMap<String, Option<SignedDuration>> = HashMap::new();
        for row in &mut self.systems {
            let id = row.compliance.system.clone();
            let Some(system) = catalog.system(&id) else {
                continue;
            };
            let drills = by_system.get(id.as_str()).cloned().unwrap_or_default();
            let (state, why) = system_readiness(
                &drills,
                &system_config(system),
                catalog.drill_interval_of_system(&id),
                now,
            );
            row.readiness = Some(state);
            row.readiness_reason = Some(why.clone());
            row.predicted_rto = sizes.get(&id).and_then(|b| predicted_rto(&drills, *b));
            predicted.insert(id.clone(), row.predicted_rto);
            of_system.insert(id, (state, format!("{}: {why}", system.id.value)));
        }
        for row in &mut self.services {
            let worst = row
                .compliance
                .systems
                .iter()
                .filter_map(|s| of_system.get(s))
                .min_by_key(|(state, _)| *state);
            let (state, why) = worst.cloned().unwrap_or((
                Readiness::NotVerified,
                "no system of it is backed up, so none is drilled".into(),
            ));
            row.readiness = Some(state);
            row.readiness_reason = Some(why);
            row.predicted_rto = row
                .compliance
                .systems
                .iter()
                .filter_map(|s| predicted.get(s).copied().flatten())
                .max();
        }
        self
    }

    /// Keep only rows in `state`.
    pub fn only(mut self, state: RpoState) -> Self {
        self.services.retain(|s| s.compliance.state == state);
        self.systems.retain(|s| s.compliance.state == state);
        self
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
    // The next backup of each system. Tasks of one policy with one
    // stagger offset share their next time: computed once.
    let mut shared: HashMap<(&str, SignedDuration), Option<Timestamp>> = HashMap::new();
    let mut next_by_system: HashMap<&str, Timestamp> = HashMap::new();
    for task in plan.tasks.values() {
        let (Some(system), Some(schedule)) = (&task.spec.record.system, &task.schedule) else {
            continue;
        };
        if task.spec.record.kind != JobKind::Backup {
            continue;
        }
        let policy = task.spec.record.policy.as_deref().unwrap_or(&task.key);
        let next = *shared.entry((policy, schedule.offset)).or_insert_with(|| {
            schedule
                .next_slot(now - schedule.offset)
                .map(|slot| slot + schedule.offset)
        });
        if let Some(next) = next {
            let entry = next_by_system.entry(system).or_insert(next);
            *entry = (*entry).min(next);
        }
    }
    let next_of_system = |system: &str| next_by_system.get(system).copied();
    // A system's last outcome: a failure of any set shows first.
    let mut last_by_system: HashMap<&str, Outcome> = HashMap::new();
    for state in states {
        let Some(outcome) = state.last_outcome else {
            continue;
        };
        let entry = last_by_system.entry(&state.system).or_insert(outcome);
        if matches!(outcome, Outcome::Failed | Outcome::Interrupted) {
            *entry = outcome;
        }
    }
    let systems: Vec<SystemStatus> = compliance
        .systems
        .into_iter()
        .map(|c| {
            let last_outcome = last_by_system.get(c.system.as_str()).copied();
            let next_run = next_of_system(&c.system);
            SystemStatus {
                compliance: c,
                last_outcome,
                next_run,
                readiness: None,
                readiness_reason: None,
                predicted_rto: None,
            }
        })
        .collect();
    let services = compliance
        .services
        .into_iter()
        .map(|c| {
            let next_run = c.systems.iter().filter_map(|s| next_of_system(s)).min();
            let impact = catalog.service(&c.service).map(|s| &s.impact);
            ServiceStatus {
                impact_per_hour: impact.and_then(|i| i.per_hour),
                currency: impact.and_then(|i| i.currency.clone()),
                compliance: c,
                next_run,
                readiness: None,
                readiness_reason: None,
                predicted_rto: None,
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

/// A service as its page shows it beyond its compliance: what it needs
/// (the dependency graph below it) and the catalog's findings about it or
/// anything it needs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServiceDetail {
    /// Its declared objectives (RTO, RPO, MTD).
    #[serde(default)]
    pub objectives: haven_model::drills::Objectives,
    /// The service's part of the dependency graph.
    pub graph: haven_model::catalog::graph::Neighbourhood,
    /// The catalog's findings naming it or what it needs, errors first.
    pub findings: Vec<FindingView>,
}

/// A catalog finding, as answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FindingView {
    /// Its stable code (`HVN-W042`).
    pub code: String,
    /// `error` or `warning`.
    pub severity: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

/// The detail of service `id` in `catalog` (none: no such service),
/// findings as of `now`.
pub fn service_detail(catalog: &Catalog, id: &str, now: Timestamp) -> Option<ServiceDetail> {
    let graph = haven_model::catalog::graph::neighbourhood(catalog, id)?;
    let mut findings: Vec<_> = haven_model::catalog::analysis::analyse(catalog, now)
        .into_iter()
        .filter(|f| {
            f.objects
                .iter()
                .any(|o| graph.nodes.iter().any(|n| n.id == o.id && n.kind == o.kind))
        })
        .collect();
    findings.sort_by(|a, b| a.severity.cmp(&b.severity).then(a.code.cmp(b.code)));
    let findings = findings.into_iter().map(FindingView::from).collect();
    let service = catalog.service(id)?;
    let objectives = haven_model::drills::Objectives {
        rto: service.rto.as_ref().map(|d| d.value),
        rpo: service.rpo.as_ref().map(|d| d.value),
        mtd: service.mtd.as_ref().map(|d| d.value),
    };
    Some(ServiceDetail {
        objectives,
        graph,
        findings,
    })
}

/// The catalog's findings (what `haven catalog check` reports of the
/// catalog the instance runs), errors first.
pub fn findings(catalog: &Catalog, now: Timestamp) -> Vec<FindingView> {
    let mut findings = haven_model::catalog::analysis::analyse(catalog, now);
    findings.sort_by(|a, b| a.severity.cmp(&b.severity).then(a.code.cmp(b.code)));
    findings.into_iter().map(FindingView::from).collect()
}

impl From<haven_model::catalog::finding::Finding> for FindingView {
    fn from(f: haven_model::catalog::finding::Finding) -> Self {
        FindingView {
            code: f.code.to_string(),
            severity: format!("{:?}", f.severity).to_lowercase(),
            message: f.message,
            help: f.help,
        }
    }
}

/// The whole dependency graph: services, systems and vendors, and who
/// depends on what; also as Graphviz DOT and Mermaid text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CatalogGraph {
    /// Every service, system and vendor (depth 0).
    pub nodes: Vec<haven_model::catalog::graph::Node>,
    /// `(from, to)`: `from` depends on `to`.
    pub edges: Vec<(String, String)>,
    /// The graph in Graphviz DOT.
    pub dot: String,
    /// The graph as a Mermaid flowchart.
    pub mermaid: String,
}

/// The dependency graph of `catalog`.
pub fn catalog_graph(catalog: &Catalog) -> CatalogGraph {
    let (nodes, edges) = haven_model::catalog::graph::whole(catalog);
    CatalogGraph {
        nodes,
        edges,
        dot: haven_model::catalog::graph::dot(catalog),
        mermaid: haven_model::catalog::graph::mermaid(catalog),
    }
}

/// Each system's size now: the bytes of its sets' newest good backups.
pub async fn system_sizes(
    store: &dyn haven_store::Store,
) -> Result<HashMap<String, u64>, haven_store::StoreError> {
    let mut sizes: HashMap<String, u64> = HashMap::new();
    for job in store
        .latest_jobs(JobKind::Backup, &[Outcome::Success, Outcome::Partial])
        .await?
    {
        if let Some(system) = &job.planned.system {
            *sizes.entry(system.clone()).or_default() += job.stats.bytes_total;
        }
    }
    Ok(sizes)
}
