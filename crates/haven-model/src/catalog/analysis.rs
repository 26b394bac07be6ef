//! Catalog analysis: pure functions from a [`Catalog`] to findings.
//!
//! Codes `HVN-E0xx` are errors (a commitment cannot be met, or the catalog
//! is inconsistent), `HVN-W0xx` warnings (risks to review). Load-time
//! problems (syntax, unknown keys, types) are `HVN-E001`–`HVN-E009`,
//! reported by the loader.

use std::collections::{BTreeSet, HashMap, HashSet};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::duration::format_duration;
use super::{Catalog, Finding, Service, schedule};

/// Every analysis, in a stable order. `now` starts the year over which
/// schedules are evaluated.
pub fn analyse(catalog: &Catalog, now: Timestamp) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(objectives(catalog));
    findings.extend(schedules(catalog, now));
    findings.extend(references(catalog));
    findings.extend(cycles(catalog));
    findings.extend(inversions(catalog));
    findings.extend(unprotected(catalog));
    findings
}

/// `HVN-E010` RTO above MTD; `HVN-E011` tier 1–2 without RPO, RTO or MTD.
pub fn objectives(catalog: &Catalog) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &catalog.services {
        let id = &s.id.value;
        if let (Some(rto), Some(mtd)) = (&s.rto, &s.mtd)
            && rto.value > mtd.value
        {
            out.push(
                Finding::error(
                    "HVN-E010",
                    format!(
                        "service {id}: RTO {} is longer than its MTD {}",
                        format_duration(rto.value),
                        format_duration(mtd.value)
                    ),
                    "the service must be back before the maximum tolerable downtime: lower the RTO or raise the MTD",
                )
                .object("service", id)
                .at(rto.at),
            );
        }
        if s.tier.value <= 2 {
            for (name, value) in [("rpo", &s.rpo), ("rto", &s.rto), ("mtd", &s.mtd)] {
                if value.is_none() {
                    out.push(
                        Finding::error(
                            "HVN-E011",
                            format!("tier-{} service {id} has no {name}", s.tier.value),
                            format!("tier 1 and 2 services need rpo, rto and mtd: add e.g. `{name} = \"4h\"`"),
                        )
                        .object("service", id)
                        .at(s.id.at),
                    );
                }
            }
        }
    }
    out
}

/// `HVN-E020`: a service's RPO cannot be met by the schedule of a system
/// it depends on: the longest time between two allowed backup starts
/// (cron × window × time zone, over a year, DST included) plus the
/// policy's maximum duration exceeds the RPO.
pub fn schedules(catalog: &Catalog, now: Timestamp) -> Vec<Finding> {
    let mut gaps: HashMap<&str, Option<Option<SignedDuration>>> = HashMap::new();
    let mut out = Vec::new();
    for svc in &catalog.services {
        let Some(rpo) = &svc.rpo else { continue };
        for dep in &svc.depends_on {
            let Some(system) = catalog.system(&dep.value) else {
                continue;
            };
            let Some(policy) = system
                .policy
                .as_ref()
                .and_then(|p| catalog.policies.iter().find(|x| x.id.value == p.value))
            else {
                continue;
            };
            // None: the schedule or zone is invalid (reported by the loader).
            let gap = *gaps.entry(policy.id.value.as_str()).or_insert_with(|| {
                let cron = schedule::parse_cron(&policy.schedule.value).ok()?;
                let tz = TimeZone::get(&policy.timezone.value).ok()?;
                Some(schedule::longest_gap(
                    &cron,
                    &tz,
                    policy.window.as_ref().map(|w| w.value),
                    now,
                ))
            });
            let Some(gap) = gap else { continue };
            let finish = policy
                .max_duration
                .as_ref()
                .map(|d| d.value)
                .or(policy.expected_duration)
                .unwrap_or(SignedDuration::ZERO);
            let window = policy
                .window
                .as_ref()
                .map(|w| {
                    format!(
                        " within {}-{}",
                        w.value.start.strftime("%H:%M"),
                        w.value.end.strftime("%H:%M")
                    )
                })
                .unwrap_or_default();
            let problem = match gap {
                None => Some(format!(
                    "policy {} (\"{}\"{window}, {}) starts backups fewer than twice a year",
                    policy.id.value, policy.schedule.value, policy.timezone.value
                )),
                Some(gap) if gap + finish > rpo.value => Some(format!(
                    "backups of system {} (policy {}: \"{}\"{window}, {}) can be {} apart, plus up to {} to finish: {} of data at risk",
                    system.id.value,
                    policy.id.value,
                    policy.schedule.value,
                    policy.timezone.value,
                    format_duration(gap),
                    format_duration(finish),
                    format_duration(gap + finish)
                )),
                Some(_) => None,
            };
            if let Some(problem) = problem {
                out.push(
                    Finding::error(
                        "HVN-E020",
                        format!(
                            "service {}: RPO {} cannot be met: {problem}",
                            svc.id.value,
                            format_duration(rpo.value)
                        ),
                        "schedule backups more often (or widen the window), shorten max_duration, or relax the RPO",
                    )
                    .object("service", &svc.id.value)
                    .object("system", &system.id.value)
                    .object("policy", &policy.id.value)
                    .at(rpo.at),
                );
            }
        }
    }
    out
}

/// `HVN-E012`: a reference to an object that does not exist.
pub fn references(catalog: &Catalog) -> Vec<Finding> {
    let ids = |v: &mut dyn Iterator<Item = &String>| -> HashSet<String> { v.cloned().collect() };
    let teams = ids(&mut catalog.teams.iter().map(|t| &t.id.value));
    let policies = ids(&mut catalog.policies.iter().map(|p| &p.id.value));
    let repositories = ids(&mut catalog.repositories.iter().map(|r| &r.id.value));
    let regulations = ids(&mut catalog.regulations.iter().map(|r| &r.id.value));
    let mut out = Vec::new();
    let mut unknown = |from: (&'static str, &str),
                       what: &str,
                       name: &super::Located<String>,
                       known: &dyn Fn(&str) -> bool,
                       candidates: Vec<&String>| {
        if known(&name.value) {
            return;
        }
        let hint = closest(&name.value, candidates.iter().map(|s| s.as_str()))
            .map(|c| format!("did you mean `{c}`? "))
            .unwrap_or_default();
        out.push(
            Finding::error(
                "HVN-E012",
                format!("{} {}: unknown {what} `{}`", from.0, from.1, name.value),
                format!(
                    "{hint}define it (a {} table with `id = \"{}\"`) or fix the reference",
                    tables(what),
                    name.value
                ),
            )
            .object(from.0, from.1)
            .at(name.at),
        );
    };
    let all_deps: Vec<&String> = catalog
        .services
        .iter()
        .map(|s| &s.id.value)
        .chain(catalog.systems.iter().map(|s| &s.id.value))
        .chain(catalog.vendors.iter().map(|v| &v.id.value))
        .collect();
    for s in &catalog.services {
        let from = ("service", s.id.value.as_str());
        for dep in &s.depends_on {
            unknown(
                from,
                "service, system or vendor",
                dep,
                &|id| catalog.kind_of(id).is_some(),
                all_deps.clone(),
            );
        }
        if let Some(owner) = &s.owner {
            unknown(
                from,
                "team",
                owner,
                &|id| teams.contains(id),
                teams.iter().collect(),
            );
        }
        for r in &s.regulations {
            unknown(
                from,
                "regulation",
                r,
                &|id| regulations.contains(id),
                regulations.iter().collect(),
            );
        }
    }
    for s in &catalog.systems {
        let from = ("system", s.id.value.as_str());
        if let Some(policy) = &s.policy {
            unknown(
                from,
                "policy",
                policy,
                &|id| policies.contains(id),
                policies.iter().collect(),
            );
        }
        if let Some(owner) = &s.owner {
            unknown(
                from,
                "team",
                owner,
                &|id| teams.contains(id),
                teams.iter().collect(),
            );
        }
    }
    for p in &catalog.policies {
        let from = ("policy", p.id.value.as_str());
        for r in std::iter::once(&p.repository).chain(&p.copies) {
            unknown(
                from,
                "repository",
                r,
                &|id| repositories.contains(id),
                repositories.iter().collect(),
            );
        }
    }
    out
}

/// `HVN-E013`: services that depend on each other in a cycle (no recovery
/// order exists).
pub fn cycles(catalog: &Catalog) -> Vec<Finding> {
    let edges: HashMap<&str, Vec<&str>> = catalog
        .services
        .iter()
        .map(|s| {
            let deps = s
                .depends_on
                .iter()
                .map(|d| d.value.as_str())
                .filter(|d| catalog.service(d).is_some())
                .collect();
            (s.id.value.as_str(), deps)
        })
        .collect();
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut done: HashSet<&str> = HashSet::new();
    for s in &catalog.services {
        let mut path: Vec<&str> = Vec::new();
        walk(
            s.id.value.as_str(),
            &edges,
            &mut path,
            &mut done,
            &mut found,
        );
    }
    found
        .into_iter()
        .map(|cycle| {
            let first = catalog.service(&cycle[0]);
            let mut shown = cycle.clone();
            shown.push(cycle[0].clone());
            let mut f = Finding::error(
                "HVN-E013",
                format!("dependency cycle: {}", shown.join(" → ")),
                "services in a cycle have no recovery order: break the cycle (often one of the dependencies is really on a shared system)",
            );
            for id in &cycle {
                f = f.object("service", id);
            }
            match first {
                Some(s) => f.at(s.id.at),
                None => f,
            }
        })
        .collect()
}

fn walk<'a>(
    node: &'a str,
    edges: &HashMap<&'a str, Vec<&'a str>>,
    path: &mut Vec<&'a str>,
    done: &mut HashSet<&'a str>,
    found: &mut BTreeSet<Vec<String>>,
) {
    if let Some(pos) = path.iter().position(|n| *n == node) {
        // Normalise: start the cycle at its smallest id, so each is
        // reported once.
        let cycle = &path[pos..];
        let start = cycle
            .iter()
            .enumerate()
            .min_by_key(|(_, id)| **id)
            .map_or(0, |(i, _)| i);
        let rotated: Vec<String> = cycle[start..]
            .iter()
            .chain(&cycle[..start])
            .map(|s| s.to_string())
            .collect();
        found.insert(rotated);
        return;
    }
    if done.contains(node) {
        return;
    }
    path.push(node);
    for next in edges.get(node).into_iter().flatten() {
        walk(next, edges, path, done, found);
    }
    path.pop();
    done.insert(node);
}

/// `HVN-W014`: a service promises a shorter RTO than something it needs
/// can deliver (a dependency service's RTO, or a vendor's committed RTO).
pub fn inversions(catalog: &Catalog) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &catalog.services {
        let Some(rto) = &s.rto else { continue };
        for dep in &s.depends_on {
            let dep_rto = catalog
                .service(&dep.value)
                .and_then(|d: &Service| d.rto.as_ref().map(|r| r.value))
                .or_else(|| {
                    catalog
                        .vendors
                        .iter()
                        .find(|v| v.id.value == dep.value)
                        .and_then(|v| v.sla_rto.as_ref().map(|r| r.value))
                });
            if let Some(dep_rto) = dep_rto
                && dep_rto > rto.value
            {
                let kind = catalog.kind_of(&dep.value).unwrap_or("service");
                out.push(
                    Finding::warning(
                        "HVN-W014",
                        format!(
                            "service {} has RTO {} but depends on {kind} {} with RTO {}",
                            s.id.value,
                            format_duration(rto.value),
                            dep.value,
                            format_duration(dep_rto)
                        ),
                        "a service cannot be back before what it needs: shorten the dependency's RTO, add an alternative, or relax this RTO",
                    )
                    .object("service", &s.id.value)
                    .object(kind, &dep.value)
                    .at(dep.at),
                );
            }
        }
    }
    out
}

/// `HVN-E015`: a system that holds data but no policy protects;
/// `HVN-W016`: a service that depends on such systems.
pub fn unprotected(catalog: &Catalog) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut exposed: HashSet<&str> = HashSet::new();
    for s in &catalog.systems {
        let has_data = s.holds_data() || !s.backup_sets.is_empty();
        let protected = s.policy.is_some() && !s.backup_sets.is_empty();
        if has_data && !protected {
            exposed.insert(s.id.value.as_str());
            let missing = match (s.policy.is_some(), s.backup_sets.is_empty()) {
                (false, true) => "no policy and no backup sets",
                (false, false) => "no policy",
                _ => "no backup sets",
            };
            out.push(
                Finding::error(
                    "HVN-E015",
                    format!(
                        "system {} ({}) holds data but is not protected: {missing}",
                        s.id.value, s.kind.value
                    ),
                    "add `policy = \"…\"` and a `[[system.backup_set]]` with paths or a dump command",
                )
                .object("system", &s.id.value)
                .at(s.id.at),
            );
        }
    }
    for svc in &catalog.services {
        let systems: Vec<&str> = svc
            .depends_on
            .iter()
            .map(|d| d.value.as_str())
            .filter(|d| exposed.contains(d))
            .collect();
        if !systems.is_empty() {
            let mut f = Finding::warning(
                "HVN-W016",
                format!(
                    "service {} relies on unprotected systems: {}",
                    svc.id.value,
                    systems.join(", ")
                ),
                "protect those systems (see HVN-E015), or the service cannot be restored",
            )
            .object("service", &svc.id.value)
            .at(svc.id.at);
            for id in systems {
                f = f.object("system", id);
            }
            out.push(f);
        }
    }
    out
}

/// `service, system or vendor` → `[[service]], [[system]] or [[vendor]]`.
fn tables(what: &str) -> String {
    format!(
        "[[{}]]",
        what.replace(", ", "]], [[").replace(" or ", "]] or [[")
    )
}

/// The candidate closest to `word` (for "did you mean"), if close enough.
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
