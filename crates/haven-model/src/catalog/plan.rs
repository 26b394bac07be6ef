//! Recovery order: which services, systems and vendors to bring back in
//! which wave.
//!
//! Waves are Kahn layers of the dependency graph: everything in a wave
//! depends only on earlier waves. Foundations come first even where the
//! catalog does not say so: every system needs the network, DNS and
//! identity systems of the plan (in that order). Within a wave, items
//! are ordered by tier (a system or vendor takes the most critical tier
//! of the services that need it), then by impact per hour, then by id.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::SignedDuration;
use serde::Serialize;

use super::Catalog;

/// One item to recover.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanItem {
    /// `service`, `system` or `vendor`.
    pub kind: &'static str,
    /// Its id.
    pub id: String,
    /// Tier (for systems and vendors: the most critical service needing them).
    pub tier: Option<u8>,
    /// Its recovery time: a service's RTO, a vendor's committed RTO.
    #[serde(with = "opt_duration")]
    pub rto: Option<SignedDuration>,
    /// Financial impact per hour (services).
    pub impact_per_hour: Option<f64>,
}

/// The recovery plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecoveryOrder {
    /// Waves, first to last.
    pub waves: Vec<Vec<PlanItem>>,
    /// The chain of dependencies with the longest total recovery time.
    pub critical_path: Vec<String>,
    /// Its total (the sum of the RTOs along it).
    #[serde(with = "opt_duration")]
    pub critical_path_time: Option<SignedDuration>,
}

mod opt_duration {
    use jiff::SignedDuration;
    use serde::Serializer;

    pub fn serialize<S: Serializer>(d: &Option<SignedDuration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::super::duration::format_duration(*d)),
            None => s.serialize_none(),
        }
    }
}

/// Kinds that everything else needs, in the order they come back.
const FOUNDATIONS: &[&str] = &["network", "dns", "identity"];

/// The recovery order for `services` and everything they need (the whole
/// catalog when `services` is empty). Fails with the cycle when dependencies form one.
pub fn recovery_order(catalog: &Catalog, services: &[String]) -> Result<RecoveryOrder, String> {
    for wanted in services {
        if catalog.service(wanted).is_none() {
            return Err(format!("there is no service `{wanted}` in the catalog"));
        }
    }
    let nodes = nodes(catalog, services);
    let needs = needs(catalog, &nodes);
    let tier = tiers(catalog, &nodes, &needs);
    let waves = waves(&needs, |id| plan_item(catalog, &tier, id))?;
    let (time, path) = critical_path(&waves, &needs);
    Ok(RecoveryOrder {
        waves,
        critical_path: path,
        critical_path_time: (!time.is_zero()).then_some(time),
    })
}

/// The plan's nodes: the chosen services and everything they need (the
/// whole catalog, including what no service names, when none is chosen).
fn nodes<'a>(catalog: &'a Catalog, services: &'a [String]) -> Vec<&'a str> {
    let mut nodes: Vec<&str> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut stack: Vec<&str> = if services.is_empty() {
        catalog
            .services
            .iter()
            .map(|s| s.id.value.as_str())
            .chain(catalog.systems.iter().map(|s| s.id.value.as_str()))
            .chain(catalog.vendors.iter().map(|v| v.id.value.as_str()))
            .collect()
    } else {
        services.iter().map(String::as_str).collect()
    };
    while let Some(id) = stack.pop() {
        if !seen.insert(id) || catalog.kind_of(id).is_none() {
            continue;
        }
        nodes.push(id);
        if let Some(s) = catalog.service(id) {
            stack.extend(s.depends_on.iter().map(|d| d.value.as_str()));
        }
    }
    nodes
}

/// What each node needs: its declared dependencies, and, among systems,
/// the foundations (network, then DNS, then identity) before the rest.
fn needs<'a>(catalog: &'a Catalog, nodes: &[&'a str]) -> HashMap<&'a str, HashSet<&'a str>> {
    let present: HashSet<&str> = nodes.iter().copied().collect();
    let mut needs: HashMap<&str, HashSet<&str>> =
        nodes.iter().map(|n| (*n, HashSet::new())).collect();
    for id in nodes {
        if let Some(s) = catalog.service(id) {
            for d in &s.depends_on {
                if present.contains(d.value.as_str()) && catalog.kind_of(&d.value).is_some() {
                    needs.entry(id).or_default().insert(d.value.as_str());
                }
            }
        }
    }
    let rank = |id: &str| {
        catalog
            .system(id)
            .and_then(|s| FOUNDATIONS.iter().position(|k| *k == s.kind.value))
            .unwrap_or(FOUNDATIONS.len())
    };
    let systems: Vec<&str> = nodes
        .iter()
        .copied()
        .filter(|n| catalog.system(n).is_some())
        .collect();
    for a in &systems {
        for b in &systems {
            if rank(b) < rank(a) {
                needs.entry(a).or_default().insert(b);
            }
        }
    }
    needs
}

/// The tier of every node: the most critical service needing it.
fn tiers<'a>(
    catalog: &'a Catalog,
    nodes: &[&'a str],
    needs: &HashMap<&'a str, HashSet<&'a str>>,
) -> HashMap<&'a str, u8> {
    let present: HashSet<&str> = nodes.iter().copied().collect();
    let mut tier: HashMap<&str, u8> = HashMap::new();
    for s in &catalog.services {
        if !present.contains(s.id.value.as_str()) {
            continue;
        }
        let t = s.tier.value;
        let mut stack = vec![s.id.value.as_str()];
        let mut visited = HashSet::new();
        while let Some(n) = stack.pop() {
            if !visited.insert(n) {
                continue;
            }
            let e = tier.entry(n).or_insert(t);
            *e = (*e).min(t);
            stack.extend(needs.get(n).into_iter().flatten().copied());
        }
    }
    tier
}

fn plan_item(catalog: &Catalog, tier: &HashMap<&str, u8>, id: &str) -> PlanItem {
    let (kind, rto, impact) = if let Some(s) = catalog.service(id) {
        (
            "service",
            s.rto.as_ref().map(|r| r.value),
            s.impact.per_hour,
        )
    } else if catalog.system(id).is_some() {
        ("system", None, None)
    } else {
        let v = catalog.vendors.iter().find(|v| v.id.value == id);
        (
            "vendor",
            v.and_then(|v| v.sla_rto.as_ref().map(|r| r.value)),
            None,
        )
    };
    PlanItem {
        kind,
        id: id.to_string(),
        tier: tier.get(id).copied(),
        rto,
        impact_per_hour: impact,
    }
}

/// Kahn layering: each wave needs only earlier waves; inside a wave the
/// most critical (tier, then impact) comes first.
fn waves(
    needs: &HashMap<&str, HashSet<&str>>,
    item: impl Fn(&str) -> PlanItem,
) -> Result<Vec<Vec<PlanItem>>, String> {
    let mut remaining: BTreeMap<&str, HashSet<&str>> =
        needs.iter().map(|(k, v)| (*k, v.clone())).collect();
    let mut waves = Vec::new();
    while !remaining.is_empty() {
        let ready: Vec<&str> = remaining
            .iter()
            .filter(|(_, n)| n.is_empty())
            .map(|(k, _)| *k)
            .collect();
        if ready.is_empty() {
            let stuck: Vec<&str> = remaining.keys().copied().collect();
            return Err(format!(
                "the dependencies of {} form a cycle: there is no recovery order (see HVN-E013)",
                stuck.join(", ")
            ));
        }
        for r in &ready {
            remaining.remove(r);
        }
        for n in remaining.values_mut() {
            for r in &ready {
                n.remove(r);
            }
        }
        let mut wave: Vec<PlanItem> = ready.iter().map(|id| item(id)).collect();
        wave.sort_by(|a, b| {
            a.tier
                .unwrap_or(u8::MAX)
                .cmp(&b.tier.unwrap_or(u8::MAX))
                .then(
                    b.impact_per_hour
                        .unwrap_or(0.0)
                        .total_cmp(&a.impact_per_hour.unwrap_or(0.0)),
                )
                .then(a.id.cmp(&b.id))
        });
        waves.push(wave);
    }
    Ok(waves)
}

/// The critical path: the longest sum of recovery times along a chain.
fn critical_path(
    waves: &[Vec<PlanItem>],
    needs: &HashMap<&str, HashSet<&str>>,
) -> (SignedDuration, Vec<String>) {
    let mut best: HashMap<String, (SignedDuration, Vec<String>)> = HashMap::new();
    for wave in waves {
        for it in wave {
            let own = it.rto.unwrap_or(SignedDuration::ZERO);
            let before = needs
                .get(it.id.as_str())
                .into_iter()
                .flatten()
                .filter_map(|d| best.get(*d))
                .max_by_key(|(t, _)| *t)
                .cloned()
                .unwrap_or((SignedDuration::ZERO, Vec::new()));
            let mut path = before.1;
            path.push(it.id.clone());
            best.insert(it.id.clone(), (before.0 + own, path));
        }
    }
    best.into_values()
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .unwrap_or((SignedDuration::ZERO, Vec::new()))
}
