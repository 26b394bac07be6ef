//! A recovery decided without I/O: which services, systems and vendors a
//! run brings back, in which waves (the recovery order), with which steps
//! (restore each backup set, the services' recovery steps, the systems'
//! checks), and what it will take (the dry-run's forecast: each item's
//! estimate, start and end from the disruption with at most
//! `concurrency` items side by side, against the services' RTO and MTD).

use std::collections::{BTreeMap, HashMap};

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::catalog::plan::{needs_of, recovery_order};

pub mod run;
use crate::catalog::recovery::{DEFAULT_CONCURRENCY, PlanServices, StepAction};

/// What to recover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// A `[[plan]]` of the catalog.
    Plan(String),
    /// These services (and what they need).
    Services(Vec<String>),
    /// Every service.
    All,
}

/// What a unit of work is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UnitKind {
    /// A system: its backup sets are restored, then its checks run.
    System,
    /// A service: its recovery steps run once what it needs is back.
    Service,
    /// A vendor: nothing to do but wait for it (its committed RTO).
    Vendor,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum StepKind {
    /// Restore one backup set of the system.
    Restore {
        /// The set.
        set: String,
    },
    /// One of the service's `[[service.recovery]]` steps.
    Recovery {
        /// Its index among them.
        index: usize,
        /// `command`, `sql`, `http`, `tcp`, `wait` or `checkpoint`.
        action: String,
    },
    /// One of the system's checks.
    Check {
        /// Its index among them.
        index: usize,
    },
}

/// One step of a run, numbered in the order the run lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlannedStep {
    /// Its number in the run (`haven recover confirm RUN STEP`).
    pub number: u32,
    /// The unit it belongs to.
    pub unit: String,
    /// What it does.
    pub kind: StepKind,
    /// How it is shown.
    pub name: String,
    /// A failed critical step halts the run.
    pub critical: bool,
}

/// A service, system or vendor of the run, with its steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Unit {
    /// Its id.
    pub id: String,
    /// What it is.
    pub kind: UnitKind,
    /// Its wave (0 first).
    pub wave: usize,
    /// What must be back before it starts.
    pub needs: Vec<String>,
    /// Its steps, in order.
    pub steps: Vec<PlannedStep>,
}

/// A run, planned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunPlan {
    /// The plan it follows, if any.
    pub plan: Option<String>,
    /// Units side by side, at most.
    pub concurrency: u32,
    /// The units, wave by wave, most urgent first within a wave.
    pub units: Vec<Unit>,
    /// Services of the plan left for later (deferred tiers), none of
    /// which a recovered service needs.
    pub deferred: Vec<String>,
}

impl RunPlan {
    /// A step by its number.
    pub fn step(&self, number: u32) -> Option<&PlannedStep> {
        self.units
            .iter()
            .flat_map(|u| &u.steps)
            .find(|s| s.number == number)
    }

    /// The services it recovers.
    pub fn services(&self) -> Vec<&str> {
        self.units
            .iter()
            .filter(|u| u.kind == UnitKind::Service)
            .map(|u| u.id.as_str())
            .collect()
    }
}

/// Why a run cannot be planned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// No such plan.
    #[error("there is no plan `{0}` in the catalog")]
    NoPlan(String),
    /// No such service.
    #[error("there is no service `{0}` in the catalog")]
    NoService(String),
    /// Nothing to recover, or no order (a dependency cycle).
    #[error("{0}")]
    Unplannable(String),
}

/// Plan a run of `selection` on `catalog`.
pub fn plan_run(catalog: &Catalog, selection: &Selection) -> Result<RunPlan, PlanError> {
    let (plan, wanted, concurrency, defer) = match selection {
        Selection::Plan(id) => {
            let plan = catalog
                .plans
                .iter()
                .find(|p| p.id.value == *id)
                .ok_or_else(|| PlanError::NoPlan(id.clone()))?;
            let wanted: Vec<String> = match &plan.services {
                PlanServices::All => all_services(catalog),
                PlanServices::Listed(list) => list.iter().map(|s| s.value.clone()).collect(),
            };
            (
                Some(id.clone()),
                wanted,
                plan.concurrency,
                plan.defer_tiers.clone(),
            )
        }
        Selection::Services(list) => (None, list.clone(), DEFAULT_CONCURRENCY, Vec::new()),
        Selection::All => (None, all_services(catalog), DEFAULT_CONCURRENCY, Vec::new()),
    };
    for id in &wanted {
        if catalog.service(id).is_none() {
            return Err(PlanError::NoService(id.clone()));
        }
    }
    let tier = |id: &str| catalog.service(id).map_or(4, |s| s.tier.value);
    let (kept, put_off): (Vec<String>, Vec<String>) = wanted
        .into_iter()
        .partition(|id| !defer.contains(&tier(id)));
    if kept.is_empty() {
        return Err(PlanError::Unplannable(
            "every service of the selection is in a deferred tier: nothing to recover".into(),
        ));
    }
    let order = recovery_order(catalog, &kept).map_err(PlanError::Unplannable)?;
    let needs = needs_of(catalog, &kept);
    let mut units = Vec::new();
    let mut number = 0;
    for (wave, items) in order.waves.iter().enumerate() {
        for item in items {
            let kind = match item.kind {
                "service" => UnitKind::Service,
                "system" => UnitKind::System,
                _ => UnitKind::Vendor,
            };
            let steps = unit_steps(catalog, kind, &item.id, &mut number);
            units.push(Unit {
                id: item.id.clone(),
                kind,
                wave,
                needs: needs.get(&item.id).cloned().unwrap_or_default(),
                steps,
            });
        }
    }
    let deferred = put_off
        .into_iter()
        .filter(|id| !units.iter().any(|u| u.id == *id))
        .collect();
    Ok(RunPlan {
        plan,
        concurrency,
        units,
        deferred,
    })
}

fn all_services(catalog: &Catalog) -> Vec<String> {
    catalog
        .services
        .iter()
        .map(|s| s.id.value.to_string())
        .collect()
}

/// A unit's steps: a system's sets restored, then its checks; a
/// service's recovery steps; nothing for a vendor.
fn unit_steps(catalog: &Catalog, kind: UnitKind, id: &str, number: &mut u32) -> Vec<PlannedStep> {
    let mut steps = Vec::new();
    let mut push = |kind: StepKind, name: String, critical: bool| {
        *number += 1;
        steps.push(PlannedStep {
            number: *number,
            unit: id.to_string(),
            kind,
            name,
            critical,
        });
    };
    match kind {
        UnitKind::System => {
            let Some(system) = catalog.system(id) else {
                return steps;
            };
            if system.policy.is_some() {
                for set in &system.backup_sets {
                    let name = format!("restore {id}/{}", set.name);
                    push(
                        StepKind::Restore {
                            set: set.name.to_string(),
                        },
                        name,
                        true,
                    );
                }
            }
            for (index, _) in system.checks.iter().enumerate() {
                let name = format!("check {} of {id}", index + 1);
                push(StepKind::Check { index }, name, true);
            }
        }
        UnitKind::Service => {
            let Some(service) = catalog.service(id) else {
                return steps;
            };
            for (index, step) in service.recovery.iter().enumerate() {
                let kind = StepKind::Recovery {
                    index,
                    action: step.action.type_name().to_string(),
                };
                push(
                    kind,
                    format!("{id}: {}", step.display_name()),
                    step.critical,
                );
            }
        }
        UnitKind::Vendor => {}
    }
    steps
}

/// What a system's restore is estimated to take, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    /// How long.
    pub duration: SignedDuration,
    /// Where the figure comes from (`drill 12 …`, `declared restore_estimate`).
    pub basis: String,
}

/// One item of the forecast, from the disruption.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ForecastItem {
    /// The unit.
    pub id: String,
    /// What it is.
    pub kind: UnitKind,
    /// Its wave (0 first).
    pub wave: usize,
    /// Its own time.
    pub estimate: SignedDuration,
    /// Where the estimate comes from.
    pub basis: String,
    /// When it starts (what it needs is back and a slot is free).
    pub start: SignedDuration,
    /// When it is back.
    pub end: SignedDuration,
    /// A service's RTO.
    pub rto: Option<SignedDuration>,
    /// A service's MTD.
    pub mtd: Option<SignedDuration>,
    /// `mtd` or `rto` when it is back later than that (`mtd` wins).
    pub late: Option<String>,
}

/// The dry-run's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Forecast {
    /// The planned run.
    pub plan: RunPlan,
    /// Every unit's timing, in the plan's order.
    pub items: Vec<ForecastItem>,
    /// The chain that ends last, first to last.
    pub critical_path: Vec<String>,
    /// When everything is back.
    pub completion: SignedDuration,
    /// What would miss its objectives, in words.
    pub breaches: Vec<String>,
}

/// The forecast of `plan`: each system's estimate from `estimates` (drill
/// history, else the declared `restore_estimate`), each service's its
/// declared `restore_estimate` else its `wait` steps; a vendor is back at
/// its committed RTO. Items start in plan order as soon as what they need
/// is back and one of `concurrency` slots is free (vendors take none).
pub fn forecast(
    catalog: &Catalog,
    plan: RunPlan,
    estimates: &HashMap<String, Estimate>,
) -> Forecast {
    let mut done: BTreeMap<String, (SignedDuration, Option<String>)> = BTreeMap::new();
    let mut slots = vec![SignedDuration::ZERO; plan.concurrency.max(1) as usize];
    let mut items = Vec::new();
    for unit in &plan.units {
        let (estimate, basis) = own_time(catalog, unit, estimates);
        // A need is met when it, or a working alternative, is back.
        let back = |need: &String| {
            std::iter::once(need.as_str())
                .chain(catalog.working_alternatives(need))
                .filter_map(|x| done.get(x).map(|(t, _)| (*t, x.to_string())))
                .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)))
        };
        let (ready, waits_for) = unit
            .needs
            .iter()
            .filter_map(back)
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .map_or((SignedDuration::ZERO, None), |(t, n)| (t, Some(n)));
        let (start, end) = if unit.kind == UnitKind::Vendor {
            (ready, ready.max(estimate))
        } else {
            let slot = slots.iter_mut().min().expect("at least one slot");
            let start = ready.max(*slot);
            *slot = start + estimate;
            (start, start + estimate)
        };
        let (rto, mtd) = catalog.service(&unit.id).map_or((None, None), |s| {
            (
                s.rto.as_ref().map(|r| r.value),
                s.mtd.as_ref().map(|m| m.value),
            )
        });
        let late = if mtd.is_some_and(|m| end > m) {
            Some("mtd".to_string())
        } else if rto.is_some_and(|r| end > r) {
            Some("rto".to_string())
        } else {
            None
        };
        done.insert(unit.id.clone(), (end, waits_for));
        items.push(ForecastItem {
            id: unit.id.clone(),
            kind: unit.kind,
            wave: unit.wave,
            estimate,
            basis,
            start,
            end,
            rto,
            mtd,
            late,
        });
    }
    let (completion, critical_path) = critical_path(&done);
    let breaches = items
        .iter()
        .filter_map(|i| {
            let (what, limit) = match i.late.as_deref()? {
                "mtd" => ("MTD", i.mtd?),
                _ => ("RTO", i.rto?),
            };
            Some(format!(
                "{} would be back after {}, later than its {what} of {}",
                i.id,
                crate::catalog::duration::format_duration(i.end),
                crate::catalog::duration::format_duration(limit)
            ))
        })
        .collect();
    Forecast {
        plan,
        items,
        critical_path,
        completion,
        breaches,
    }
}

/// A unit's own time and where it comes from.
fn own_time(
    catalog: &Catalog,
    unit: &Unit,
    estimates: &HashMap<String, Estimate>,
) -> (SignedDuration, String) {
    let declared =
        |d: Option<SignedDuration>| d.map(|d| (d, "declared restore_estimate".to_string()));
    let found = match unit.kind {
        UnitKind::System => estimates
            .get(&unit.id)
            .map(|e| (e.duration, e.basis.clone()))
            .or_else(|| {
                declared(
                    catalog
                        .system(&unit.id)
                        .and_then(|s| s.restore_estimate.as_ref().map(|r| r.value)),
                )
            }),
        UnitKind::Service => catalog.service(&unit.id).and_then(|s| {
            declared(s.restore_estimate.as_ref().map(|r| r.value)).or_else(|| {
                let waits: SignedDuration = s
                    .recovery
                    .iter()
                    .filter_map(|step| match step.action {
                        StepAction::Wait { duration } => Some(duration),
                        _ => None,
                    })
                    .sum();
                (!waits.is_zero()).then(|| (waits, "its wait steps".to_string()))
            })
        }),
        UnitKind::Vendor => catalog
            .vendors
            .iter()
            .find(|v| v.id.value == unit.id)
            .and_then(|v| v.sla_rto.as_ref())
            .map(|r| (r.value, "committed RTO".to_string())),
    };
    found.unwrap_or((SignedDuration::ZERO, "no estimate (counted as none)".into()))
}

/// The chain that ends last (the longest among equals), and when.
fn critical_path(
    done: &BTreeMap<String, (SignedDuration, Option<String>)>,
) -> (SignedDuration, Vec<String>) {
    let chain = |last: &str| {
        let mut path = vec![last.to_string()];
        while let Some((_, Some(before))) = done.get(path.last().expect("non-empty")) {
            path.push(before.clone());
        }
        path.reverse();
        path
    };
    done.iter()
        .map(|(id, (end, _))| (*end, chain(id)))
        .max_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.len().cmp(&b.1.len()))
                .then(b.1.cmp(&a.1))
        })
        .unwrap_or((SignedDuration::ZERO, Vec::new()))
}
