//! RPO compliance from evidence: how old is the last restore point of
//! each system, and what does that mean against the objectives of the
//! services that depend on it.
//!
//! A system is as fresh as its stalest backup set. A set that never had
//! a good backup is measured from when Haven first had it to protect
//! (its RPO clock started then); without even that, there is no
//! evidence of protection at all and the system is quarantined.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::jobs::SetState;

/// Compliance with an RPO. Ordered from worst to best, so sorting puts
/// quarantined systems first.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RpoState {
    /// Older than 150 % of the RPO (by default): stop trusting this
    /// system's data, e.g. block deployments that depend on it.
    Quarantined,
    /// Older than the RPO: more data than agreed would be lost now.
    Violated,
    /// Never backed up: no restore point exists yet (the first backup is
    /// not due, or it failed), although the RPO is not yet passed.
    Unprotected,
    /// Older than the at-risk share of the RPO (80 % by default).
    AtRisk,
    /// Within objectives.
    Ok,
    /// No RPO applies, or nothing is backed up.
    NotApplicable,
}

impl RpoState {
    /// The state as shown and accepted by `--state`.
    pub fn as_str(self) -> &'static str {
        match self {
            RpoState::Quarantined => "quarantined",
            RpoState::Violated => "violated",
            RpoState::Unprotected => "unprotected",
            RpoState::AtRisk => "at-risk",
            RpoState::Ok => "ok",
            RpoState::NotApplicable => "n/a",
        }
    }

    /// Parse a state name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "quarantined" => RpoState::Quarantined,
            "violated" => RpoState::Violated,
            "unprotected" => RpoState::Unprotected,
            "at-risk" => RpoState::AtRisk,
            "ok" => RpoState::Ok,
            "n/a" | "not-applicable" => RpoState::NotApplicable,
            _ => return None,
        })
    }
}

/// Where the states begin, as shares of the RPO.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// `at-risk` above this share (default 0.8).
    pub at_risk: f64,
    /// `quarantined` above this share (default 1.5); `violated` is above 1.
    pub quarantine: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            at_risk: 0.8,
            quarantine: 1.5,
        }
    }
}

/// A state that never says `ok` for data that has no restore point at
/// all (worse states, which raise alerts, stay).
pub fn unless_never_backed_up(state: RpoState, never: bool) -> RpoState {
    match state {
        RpoState::Ok if never => RpoState::Unprotected,
        other => other,
    }
}

/// The state of data `age` old against `rpo`.
pub fn rpo_state(age: Option<SignedDuration>, rpo: SignedDuration, t: Thresholds) -> RpoState {
    let Some(age) = age else {
        return RpoState::Quarantined; // no evidence of protection at all
    };
    let share = age.as_secs_f64() / rpo.as_secs_f64().max(1.0);
    if share > t.quarantine {
        RpoState::Quarantined
    } else if share > 1.0 {
        RpoState::Violated
    } else if share > t.at_risk {
        RpoState::AtRisk
    } else {
        RpoState::Ok
    }
}

/// One system's compliance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SystemCompliance {
    /// The system.
    pub system: String,
    /// The strictest RPO of the services that depend on it directly.
    pub rpo: Option<SignedDuration>,
    /// The service that RPO comes from.
    pub rpo_from: Option<String>,
    /// The end of the last good backup of its stalest set.
    pub last_good_at: Option<Timestamp>,
    /// How old its data would be if it were lost now.
    pub age: Option<SignedDuration>,
    /// At least one set never had a good backup.
    pub never_backed_up: bool,
    /// A set fails systemically (no more automatic retries).
    pub systemic: bool,
    /// The state.
    pub state: RpoState,
}

/// One service's compliance: the worst of its systems.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServiceCompliance {
    /// The service.
    pub service: String,
    /// Its name.
    pub name: String,
    /// Its tier.
    pub tier: u8,
    /// Its RPO.
    pub rpo: Option<SignedDuration>,
    /// The last good backup of its stalest system.
    pub last_good_at: Option<Timestamp>,
    /// The age of that data.
    pub age: Option<SignedDuration>,
    /// The state: the worst of its systems against its own RPO.
    pub state: RpoState,
    /// Its backed-up systems, worst first.
    pub systems: Vec<String>,
}

/// Compliance of a whole catalog, worst first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Compliance {
    /// Services, worst state first, then by tier and id.
    pub services: Vec<ServiceCompliance>,
    /// Systems with backups, worst state first.
    pub systems: Vec<SystemCompliance>,
}

/// Evaluate every service and backed-up system at `now`.
pub fn evaluate(
    catalog: &Catalog,
    states: &[SetState],
    now: Timestamp,
    thresholds: Thresholds,
) -> Compliance {
    let mut by_set: HashMap<(&str, &str), &SetState> = HashMap::new();
    for state in states {
        by_set.insert((&state.system, &state.backup_set), state);
    }
    // The strictest RPO per system, from the services that need it.
    let mut strictest: HashMap<&str, (SignedDuration, &str)> = HashMap::new();
    for service in &catalog.services {
        let Some(rpo) = &service.rpo else { continue };
        for dep in &service.depends_on {
            let entry = strictest
                .entry(dep.value.as_str())
                .or_insert((rpo.value, &service.id.value));
            if rpo.value < entry.0 {
                *entry = (rpo.value, &service.id.value);
            }
        }
    }
    let mut systems = Vec::new();
    let mut evidence: HashMap<&str, (Option<Timestamp>, Option<SignedDuration>, bool)> =
        HashMap::new();
    for system in &catalog.systems {
        if system.policy.is_none() || system.backup_sets.is_empty() {
            continue;
        }
        let id = system.id.value.as_str();
        let mut last_good: Option<Option<Timestamp>> = None;
        let mut age: Option<Option<SignedDuration>> = None;
        let mut never = false;
        let mut systemic = false;
        for set in &system.backup_sets {
            let state = by_set.get(&(id, set.name.as_str()));
            systemic |= state.is_some_and(|s| s.systemic);
            let set_good = state.and_then(|s| s.last_good_at);
            never |= set_good.is_none();
            let since = state.map(|s| s.last_good_at.unwrap_or(s.first_seen));
            let set_age = since.map(|t| now.duration_since(t).max(SignedDuration::ZERO));
            // The stalest set decides; a set without evidence is stalest.
            let worse = match age {
                None => true,
                Some(None) => false,
                Some(Some(current)) => set_age.is_none_or(|a| a > current),
            };
            if worse {
                age = Some(set_age);
                last_good = Some(set_good);
            }
        }
        let age = age.flatten();
        let last_good_at = last_good.flatten();
        evidence.insert(id, (last_good_at, age, never));
        let (rpo, rpo_from) = match strictest.get(id) {
            Some((rpo, from)) => (Some(*rpo), Some((*from).to_string())),
            None => (None, None),
        };
        let state = rpo.map_or(RpoState::NotApplicable, |rpo| {
            unless_never_backed_up(rpo_state(age, rpo, thresholds), never)
        });
        systems.push(SystemCompliance {
            system: id.to_string(),
            rpo,
            rpo_from,
            last_good_at,
            age,
            never_backed_up: never,
            systemic,
            state,
        });
    }
    let mut services = Vec::new();
    for service in &catalog.services {
        let mut rows: Vec<(RpoState, &str, Option<Timestamp>, Option<SignedDuration>)> = service
            .depends_on
            .iter()
            .filter_map(|dep| {
                let (good, age, never) = evidence.get(dep.value.as_str())?;
                let state = service.rpo.as_ref().map_or(RpoState::NotApplicable, |rpo| {
                    unless_never_backed_up(rpo_state(*age, rpo.value, thresholds), *never)
                });
                Some((state, dep.value.as_str(), *good, *age))
            })
            .collect();
        // Worst first; among equals the stalest (no evidence is stalest).
        rows.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| b.3.is_none().cmp(&a.3.is_none()))
                .then_with(|| b.3.cmp(&a.3))
                .then_with(|| a.1.cmp(b.1))
        });
        let worst = rows.first();
        services.push(ServiceCompliance {
            service: service.id.value.to_string(),
            name: service.name.clone(),
            tier: service.tier.value,
            rpo: service.rpo.as_ref().map(|r| r.value),
            last_good_at: worst.and_then(|w| w.2),
            age: worst.and_then(|w| w.3),
            state: worst.map_or(RpoState::NotApplicable, |w| w.0),
            systems: rows.iter().map(|r| r.1.to_string()).collect(),
        });
    }
    services.sort_by(|a, b| (a.state, a.tier, &a.service).cmp(&(b.state, b.tier, &b.service)));
    systems.sort_by(|a, b| (a.state, &a.system).cmp(&(b.state, &b.system)));
    Compliance { services, systems }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    fn hours(h: i64) -> SignedDuration {
        SignedDuration::from_secs(h * H)
    }

    #[test]
    fn states_follow_the_share_of_the_rpo() {
        let t = Thresholds::default();
        let rpo = hours(10);
        let cases = [
            (Some(hours(0)), RpoState::Ok),
            (Some(hours(8)), RpoState::Ok),
            (
                Some(hours(8) + SignedDuration::from_secs(1)),
                RpoState::AtRisk,
            ),
            (Some(hours(10)), RpoState::AtRisk),
            (
                Some(hours(10) + SignedDuration::from_secs(1)),
                RpoState::Violated,
            ),
            (Some(hours(15)), RpoState::Violated),
            (
                Some(hours(15) + SignedDuration::from_secs(1)),
                RpoState::Quarantined,
            ),
            (None, RpoState::Quarantined),
        ];
        for (age, want) in cases {
            assert_eq!(rpo_state(age, rpo, t), want, "age {age:?}");
        }
        let strict = Thresholds {
            at_risk: 0.5,
            quarantine: 2.0,
        };
        assert_eq!(rpo_state(Some(hours(6)), rpo, strict), RpoState::AtRisk);
        assert_eq!(rpo_state(Some(hours(16)), rpo, strict), RpoState::Violated);
    }

    /// A system never backed up is not `ok`, whatever its young age; a
    /// service is as good as its worst system.
    #[test]
    fn never_backed_up_is_unprotected_not_ok() {
        assert_eq!(
            unless_never_backed_up(RpoState::Ok, true),
            RpoState::Unprotected
        );
        assert_eq!(unless_never_backed_up(RpoState::Ok, false), RpoState::Ok);
        for worse in [RpoState::AtRisk, RpoState::Violated, RpoState::Quarantined] {
            assert_eq!(unless_never_backed_up(worse, true), worse);
        }
    }

    #[test]
    fn states_sort_worst_first() {
        let mut states = vec![
            RpoState::Ok,
            RpoState::NotApplicable,
            RpoState::Quarantined,
            RpoState::AtRisk,
            RpoState::Unprotected,
            RpoState::Violated,
        ];
        states.sort();
        assert_eq!(
            states,
            [
                RpoState::Quarantined,
                RpoState::Violated,
                RpoState::Unprotected,
                RpoState::AtRisk,
                RpoState::Ok,
                RpoState::NotApplicable
            ]
        );
        for s in states {
            assert_eq!(RpoState::parse(s.as_str()), Some(s));
        }
    }
}
