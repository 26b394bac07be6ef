//! Recovery order: which services, systems and vendors to bring back in
//! which wave.
//!
//! Waves are Kahn layers of the dependency graph: everything in a wave
//! depends only on earlier waves. Foundations come first even where the
//! catalog does not say so: every system needs the network, DNS and
//! identity systems of the plan (in that order). Within a wave, items
//! are ordered by deadline (the tightest RTO among the services that
//! need an item), then tier (the most critical of those services), then
//! impact per hour, then id.
//!
//! One timing model, the same as `catalog check`'s: every objective
//! counts from the moment of disruption, and nothing is back before what
//! it needs. An item's earliest completion is the latest completion
//! among what it needs plus its own restore estimate (a vendor is back
//! at its committed RTO); an item without an estimate counts as taking
//! no time of its own (listed in `without_estimate`). The critical path
//! is the chain that ends last.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::SignedDuration;
use serde::Serialize;

use super::{Catalog, Service, System, Vendor};

/// One item to recover.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PlanItem {
    /// `service`, `system` or `vendor`.
    pub kind: &'static str,
    /// Its id.
    pub id: String,
    /// Tier (for systems and vendors: the most critical service needing them).
    pub tier: Option<u8>,
    /// Its recovery time objective: a service's RTO, a vendor's committed
    /// RTO; counted from the disruption.
    pub rto: Option<SignedDuration>,
    /// The tightest RTO among the services that need it (its own for a
    /// service): how urgent it is. Waves are ordered by it.
    pub deadline: Option<SignedDuration>,
    /// A service's maximum tolerable downtime, from the disruption.
    pub mtd: Option<SignedDuration>,
    /// Its own step once what it needs is back (declared `restore_estimate`).
    pub restore_estimate: Option<SignedDuration>,
    /// The earliest it can be back, from the disruption.
    pub earliest_completion: Option<SignedDuration>,
    /// What it waits for last (the dependency that completes latest).
    pub waits_for: Option<String>,
    /// `mtd` or `rto` when its earliest completion is later than that
    /// objective (`mtd` wins when both are missed).
    pub late: Option<&'static str>,
    /// Financial impact per hour (services).
    pub impact_per_hour: Option<f64>,
}

/// The recovery plan.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RecoveryOrder {
    /// Waves, first to last.
    pub waves: Vec<Vec<PlanItem>>,
    /// The chain that completes last, first to last.
    pub critical_path: Vec<String>,
    /// When its last item completes, from the disruption.
    pub critical_path_time: Option<SignedDuration>,
    /// Services and systems with no `restore_estimate` (counted as
    /// taking no time of their own).
    pub without_estimate: Vec<String>,
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
    let ids = Ids::new(catalog);
    let nodes = nodes(catalog, &ids, services);
    let needs = needs(catalog, &nodes);
    let urgency = urgency(catalog, &nodes, &needs);
    let mut waves = waves(&needs, |id| plan_item(&ids, &urgency, id))?;
    let alternatives: HashMap<&str, Vec<&str>> = nodes
        .iter()
        .map(|n| (*n, ids.alternatives(n)))
        .filter(|(_, a)| !a.is_empty())
        .collect();
    let (time, path) = timing(&mut waves, &needs, &alternatives);
    let without_estimate = waves
        .iter()
        .flatten()
        .filter(|i| i.kind != "vendor" && i.restore_estimate.is_none())
        .map(|i| i.id.clone())
        .collect();
    Ok(RecoveryOrder {
        waves,
        critical_path: path,
        critical_path_time: (!time.is_zero()).then_some(time),
        without_estimate,
    })
}

/// What each item of the recovery order for `services` needs before it
/// (its declared dependencies present in the order, and the foundations
/// before other systems): the same relation the waves are built from.
pub fn needs_of(catalog: &Catalog, services: &[String]) -> BTreeMap<String, Vec<String>> {
    let nodes = nodes(catalog, &Ids::new(catalog), services);
    needs(catalog, &nodes)
        .into_iter()
        .map(|(id, needs)| {
            let mut needs: Vec<String> = needs.into_iter().map(String::from).collect();
            needs.sort();
            (id.to_string(), needs)
        })
        .collect()
}

/// The catalog's services, systems and vendors by id: a plan looks each
/// node up several times, and scanning the catalog for each made a
/// catalog of thousands of systems take minutes.
struct Ids<'a> {
    services: HashMap<&'a str, &'a Service>,
    systems: HashMap<&'a str, &'a System>,
    vendors: HashMap<&'a str, &'a Vendor>,
}

impl<'a> Ids<'a> {
    fn new(catalog: &'a Catalog) -> Self {
        Ids {
            services: catalog
                .services
                .iter()
                .map(|s| (s.id.value.as_str(), s))
                .collect(),
            systems: catalog
                .systems
                .iter()
                .map(|s| (s.id.value.as_str(), s))
                .collect(),
            vendors: catalog
                .vendors
                .iter()
                .map(|v| (v.id.value.as_str(), v))
                .collect(),
        }
    }

    fn known(&self, id: &str) -> bool {
        self.services.contains_key(id)
            || self.systems.contains_key(id)
            || self.vendors.contains_key(id)
    }

    /// What can take over for `id` ([`Catalog::working_alternatives`]).
    fn alternatives(&self, id: &str) -> Vec<&'a str> {
        let declared = match self.systems.get(id) {
            Some(s) => Some(&s.alternatives),
            None => self.vendors.get(id).map(|v| &v.alternatives),
        };
        declared
            .into_iter()
            .flatten()
            .map(|a| a.value.as_str())
            .filter(|a| *a != id && self.known(a))
            .collect()
    }
}

/// The plan's nodes: the chosen services and everything they need (the
/// whole catalog, including what no service names, when none is chosen).
fn nodes<'a>(catalog: &'a Catalog, ids: &Ids<'a>, services: &'a [String]) -> Vec<&'a str> {
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
        if !seen.insert(id) || !ids.known(id) {
            continue;
        }
        nodes.push(id);
        if let Some(s) = ids.services.get(id) {
            stack.extend(s.depends_on.iter().map(|d| d.value.as_str()));
        }
        // What can take over is recovered too.
        stack.extend(ids.alternatives(id));
    }
    nodes
}

/// What each node needs: its declared dependencies, and, among systems,
/// the foundations (network, then DNS, then identity) before the rest.
fn needs<'a>(catalog: &'a Catalog, nodes: &[&'a str]) -> HashMap<&'a str, HashSet<&'a str>> {
    // Every node is in the catalog (see `nodes`): look ids up once, not
    // by scanning the catalog for each (catalogs of thousands of systems).
    let present: HashSet<&str> = nodes.iter().copied().collect();
    let mut needs: HashMap<&str, HashSet<&str>> =
        nodes.iter().map(|n| (*n, HashSet::new())).collect();
    for s in &catalog.services {
        let id = s.id.value.as_str();
        if !present.contains(id) {
            continue;
        }
        for d in &s.depends_on {
            if present.contains(d.value.as_str()) {
                needs.entry(id).or_default().insert(d.value.as_str());
            }
        }
    }
    // Systems by foundation rank (network 0, DNS 1, identity 2, the rest
    // after): each needs every present system of a lower rank. Only the
    // foundations are ever needed this way, and they are few.
    let mut by_rank: Vec<Vec<&str>> = vec![Vec::new(); FOUNDATIONS.len() + 1];
    for s in &catalog.systems {
        let id = s.id.value.as_str();
        if present.contains(id) {
            let rank = FOUNDATIONS
                .iter()
                .position(|k| *k == s.kind.value)
                .unwrap_or(FOUNDATIONS.len());
            by_rank[rank].push(id);
        }
    }
    for (rank, systems) in by_rank.iter().enumerate() {
        let lower: Vec<&str> = by_rank[..rank].iter().flatten().copied().collect();
        if lower.is_empty() {
            continue;
        }
        for a in systems {
            needs.entry(a).or_default().extend(lower.iter().copied());
        }
    }
    needs
}

/// How urgent each node is: the most critical tier and the tightest RTO
/// among the services needing it (directly or through others).
#[derive(Default)]
struct Urgency<'a> {
    tier: HashMap<&'a str, u8>,
    deadline: HashMap<&'a str, SignedDuration>,
}

fn urgency<'a>(
    catalog: &'a Catalog,
    nodes: &[&'a str],
    needs: &HashMap<&'a str, HashSet<&'a str>>,
) -> Urgency<'a> {
    let present: HashSet<&str> = nodes.iter().copied().collect();
    let mut urgency = Urgency::default();
    for s in &catalog.services {
        if !present.contains(s.id.value.as_str()) {
            continue;
        }
        let t = s.tier.value;
        let rto = s.rto.as_ref().map(|r| r.value);
        let mut stack = vec![s.id.value.as_str()];
        let mut visited = HashSet::new();
        while let Some(n) = stack.pop() {
            if !visited.insert(n) {
                continue;
            }
            let e = urgency.tier.entry(n).or_insert(t);
            *e = (*e).min(t);
            if let Some(rto) = rto {
                let d = urgency.deadline.entry(n).or_insert(rto);
                *d = (*d).min(rto);
            }
            stack.extend(needs.get(n).into_iter().flatten().copied());
        }
    }
    urgency
}

fn plan_item(ids: &Ids<'_>, urgency: &Urgency<'_>, id: &str) -> PlanItem {
    let value = |d: &Option<super::Located<SignedDuration>>| d.as_ref().map(|d| d.value);
    let (kind, rto, mtd, estimate, impact) = if let Some(s) = ids.services.get(id) {
        (
            "service",
            value(&s.rto),
            value(&s.mtd),
            value(&s.restore_estimate),
            s.impact.per_hour,
        )
    } else if let Some(s) = ids.systems.get(id) {
        ("system", None, None, value(&s.restore_estimate), None)
    } else {
        let v = ids.vendors.get(id);
        let sla = v.and_then(|v| value(&v.sla_rto));
        ("vendor", sla, None, None, None)
    };
    PlanItem {
        kind,
        id: id.to_string(),
        tier: urgency.tier.get(id).copied(),
        rto,
        deadline: urgency.deadline.get(id).copied(),
        mtd,
        restore_estimate: estimate,
        earliest_completion: None,
        waits_for: None,
        late: None,
        impact_per_hour: impact,
    }
}

/// Kahn layering: each wave needs only earlier waves; inside a wave the
/// most urgent (RTO, then tier, then impact) comes first.
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
        // Each node's needs are few; a wave can be thousands of systems.
        let back: HashSet<&str> = ready.iter().copied().collect();
        for n in remaining.values_mut() {
            n.retain(|d| !back.contains(d));
        }
        let mut wave: Vec<PlanItem> = ready.iter().map(|id| item(id)).collect();
        wave.sort_by(|a, b| {
            a.deadline
                .unwrap_or(SignedDuration::MAX)
                .cmp(&b.deadline.unwrap_or(SignedDuration::MAX))
                .then(a.tier.unwrap_or(u8::MAX).cmp(&b.tier.unwrap_or(u8::MAX)))
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

/// Each item's earliest completion (the latest among what it needs,
/// plus its own estimate; a vendor at its committed RTO), what it waits
/// for, and whether it misses its objectives; then the chain that ends
/// last and when.
fn timing(
    waves: &mut [Vec<PlanItem>],
    needs: &HashMap<&str, HashSet<&str>>,
    alternatives: &HashMap<&str, Vec<&str>>,
) -> (SignedDuration, Vec<String>) {
    let mut done: HashMap<String, (SignedDuration, Option<String>)> = HashMap::new();
    for wave in waves.iter_mut() {
        for it in wave.iter_mut() {
            // A dependency is back when it or one of its alternatives is.
            let back = |d: &str| {
                std::iter::once(d)
                    .chain(alternatives.get(d).into_iter().flatten().copied())
                    .filter_map(|x| done.get(x).map(|(t, _)| (*t, x.to_string())))
                    .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)))
            };
            let (ready, waits_for) = needs
                .get(it.id.as_str())
                .into_iter()
                .flatten()
                .filter_map(|d| back(d))
                .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
                .map_or((SignedDuration::ZERO, None), |(t, d)| (t, Some(d)));
            let end = if it.kind == "vendor" {
                ready.max(it.rto.unwrap_or(SignedDuration::ZERO))
            } else {
                ready + it.restore_estimate.unwrap_or(SignedDuration::ZERO)
            };
            it.earliest_completion = Some(end);
            it.waits_for = waits_for.clone();
            it.late = if it.mtd.is_some_and(|m| end > m) {
                Some("mtd")
            } else if it.kind == "service" && it.rto.is_some_and(|r| end > r) {
                Some("rto")
            } else {
                None
            };
            done.insert(it.id.clone(), (end, waits_for));
        }
    }
    let chain = |last: &str| {
        let mut path = vec![last.to_string()];
        while let Some(Some(before)) = done
            .get(path.last().expect("non-empty"))
            .map(|d| d.1.clone())
        {
            path.push(before);
        }
        path.reverse();
        path
    };
    // The latest completion; among equals, the longest chain (what waits
    // for the rest), then the first id.
    let Some((time, path)) = done
        .iter()
        .map(|(id, (time, _))| (*time, chain(id)))
        .max_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.len().cmp(&b.1.len()))
                .then(b.1.cmp(&a.1))
        })
    else {
        return (SignedDuration::ZERO, Vec::new());
    };
    (time, path)
}

/// The chain an item waits for, first to last (itself included).
pub fn chain_to(order: &RecoveryOrder, id: &str) -> Vec<String> {
    let by_id: HashMap<&str, &PlanItem> = order
        .waves
        .iter()
        .flatten()
        .map(|i| (i.id.as_str(), i))
        .collect();
    let mut chain = vec![id.to_string()];
    while let Some(before) = by_id
        .get(chain.last().map_or("", String::as_str))
        .and_then(|i| i.waits_for.clone())
    {
        chain.push(before);
    }
    chain.reverse();
    chain
}
