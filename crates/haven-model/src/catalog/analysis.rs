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
    findings.extend(recovery_timing(catalog));
    findings.extend(unprotected(catalog));
    findings.extend(single_points(catalog));
    findings.extend(tier_inversions(catalog));
    findings.extend(intolerable_mtds(catalog));
    findings.extend(cron_pitfalls(catalog));
    findings.extend(compliance(catalog));
    findings.extend(copies(catalog));
    findings.extend(staleness(catalog, now));
    findings.extend(secrets_on_command_lines(catalog));
    findings.extend(undrilled(catalog));
    findings
}

/// `HVN-W035`: a tier 1–2 service with backed-up systems that no
/// `[[drill]]` entry covers: nothing proves it recoverable unless someone
/// drills it by hand, and its readiness lapses.
pub fn undrilled(catalog: &Catalog) -> Vec<Finding> {
    catalog
        .services
        .iter()
        .filter(|s| s.tier.value <= 2)
        .filter(|s| catalog.drill_schedule_of_service(&s.id.value).is_none())
        .filter(|s| {
            s.depends_on.iter().any(|d| {
                catalog
                    .system(&d.value)
                    .is_some_and(|sys| sys.policy.is_some() && !sys.backup_sets.is_empty())
            })
        })
        .map(|s| {
            let tier = s.tier.value;
            let days = crate::drills::drill_interval(tier).as_hours() / 24;
            Finding::warning(
                "HVN-W035",
                format!(
                    "tier-{tier} service {} has no drill schedule: nothing proves it recoverable unless it is drilled by hand (`haven drill {}`), and its readiness lapses after {days} days",
                    s.id.value, s.id.value
                ),
                format!(
                    "add a [[drill]] entry covering it (`tiers = [{tier}]` or `services = [\"{}\"]`) with a schedule more frequent than its interval, e.g. schedule = \"0 3 * * 0\" (Sundays 03:00)",
                    s.id.value
                ),
            )
            .object("service", &s.id.value)
            .at(s.id.at)
        })
        .collect()
}

/// The policies protecting a service's data: those of the systems it
/// depends on, with the system id.
fn policies_of<'a>(
    catalog: &'a Catalog,
    svc: &Service,
) -> Vec<(&'a super::System, &'a super::Policy)> {
    svc.depends_on
        .iter()
        .filter_map(|d| catalog.system(&d.value))
        .filter_map(|sys| Some((sys, catalog.policy_of(sys)?)))
        .collect()
}

/// `HVN-W021`: a system or vendor that two or more tier-1 services need,
/// directly or through other services, with no working alternative.
pub fn single_points(catalog: &Catalog) -> Vec<Finding> {
    // System or vendor → the tier-1 services needing it, each with the
    // service it is needed through (None: directly).
    let mut needed_by: HashMap<&str, Vec<(&str, Option<&str>)>> = HashMap::new();
    for svc in catalog.services.iter().filter(|s| s.tier.value == 1) {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut stack: Vec<(&str, Option<&str>)> = svc
            .depends_on
            .iter()
            .map(|d| (d.value.as_str(), None))
            .collect();
        while let Some((node, via)) = stack.pop() {
            if !seen.insert(node) {
                continue;
            }
            match catalog.service(node) {
                Some(inner) => stack.extend(
                    inner
                        .depends_on
                        .iter()
                        .map(|d| (d.value.as_str(), Some(via.unwrap_or(node)))),
                ),
                None => needed_by
                    .entry(node)
                    .or_default()
                    .push((svc.id.value.as_str(), via)),
            }
        }
    }
    let mut out = Vec::new();
    let candidates = catalog
        .systems
        .iter()
        .map(|s| ("system", s.id.value.as_str(), s.id.at))
        .chain(
            catalog
                .vendors
                .iter()
                .map(|v| ("vendor", v.id.value.as_str(), v.id.at)),
        );
    for (kind, id, at) in candidates {
        let Some(services) = needed_by.get(id) else {
            continue;
        };
        if services.len() < 2 || !catalog.working_alternatives(id).is_empty() {
            continue;
        }
        let how: Vec<String> = services
            .iter()
            .map(|(s, via)| match via {
                Some(via) => format!("{s} through {via}"),
                None => format!("{s} directly"),
            })
            .collect();
        let mut f = Finding::warning(
            "HVN-W021",
            format!(
                "single point of failure: {kind} {id} is needed by {} tier-1 services ({}) and has no alternative",
                services.len(),
                how.join(", ")
            ),
            "add redundancy and declare it with `alternatives = [\"…\"]`, or accept the risk in the services' continuity plans",
        )
        .object(kind, id)
        .at(at);
        for (s, _) in services {
            f = f.object("service", *s);
        }
        out.push(f);
    }
    out
}

/// `HVN-W034`: a schedule restricting both the day of month and the day
/// of week, which cron reads as either (almost always a mistake).
pub fn cron_pitfalls(catalog: &Catalog) -> Vec<Finding> {
    let mut schedules: Vec<(String, &super::CronSchedule, super::Origin)> = Vec::new();
    for p in &catalog.policies {
        schedules.push((
            format!("policy {}", p.id.value),
            &p.schedule.value,
            p.schedule.at,
        ));
        if let Some(check) = &p.integrity_check {
            let what = format!("policy {} integrity check", p.id.value);
            schedules.push((what, &check.schedule.value, check.schedule.at));
        }
    }
    for d in &catalog.drills {
        let what = format!("drill {}", d.id.value);
        schedules.push((what, &d.schedule.value, d.schedule.at));
    }
    for m in &catalog.maintenance {
        if let super::watch::MaintenanceTime::Recurring { schedule, .. } = &m.when {
            schedules.push((format!("maintenance {}", m.id.value), schedule, m.id.at));
        }
    }
    schedules
        .into_iter()
        .filter(|(_, schedule, _)| schedule.days_match_either())
        .map(|(what, schedule, at)| {
            Finding::warning(
                "HVN-W034",
                format!(
                    "{what}: \"{schedule}\" restricts both the day of month and the day of week, so it runs on any day that matches either (\"0 2 1-7 * 0\" is days 1 to 7 and every Sunday)"
                ),
                "for the first Sunday of the month write \"0 2 * * 0#1\" (nth weekday); to mean either day, keep it and ignore this warning",
            )
            .at(at)
        })
        .collect()
}

/// `HVN-W033`: a service whose MTD is later than the point its declared
/// impact curve passes its tolerable loss.
pub fn intolerable_mtds(catalog: &Catalog) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &catalog.services {
        let (Some(mtd), Some(curve), Some(tolerable)) =
            (&s.mtd, &s.impact_over_time, s.impact.tolerable_loss)
        else {
            continue;
        };
        let Some(limit) = super::bia::intolerable_after(&curve.value, tolerable) else {
            continue;
        };
        if mtd.value <= limit {
            continue;
        }
        let currency = s.impact.currency.as_deref().unwrap_or("");
        out.push(
            Finding::warning(
                "HVN-W033",
                format!(
                    "service {}: MTD {} is later than the point its losses become intolerable: its impact curve passes the tolerable loss of {tolerable:.0} {currency} after {}",
                    s.id.value,
                    format_duration(mtd.value),
                    format_duration(limit)
                ),
                format!(
                    "set mtd = \"{}\" or less (and an RTO inside it), or revisit the tolerable loss or the curve with the business owner",
                    format_duration(limit)
                ),
            )
            .object("service", &s.id.value)
            .at(mtd.at),
        );
    }
    out
}

/// `HVN-W032`: a service that depends on a less critical service (a tier-1
/// service needing a tier-3 one): in a disruption the dependency is
/// recovered with its own, lower priority, whatever the RTOs say.
pub fn tier_inversions(catalog: &Catalog) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &catalog.services {
        for dep in &s.depends_on {
            let Some(d) = catalog.service(&dep.value) else {
                continue;
            };
            if d.tier.value <= s.tier.value {
                continue;
            }
            out.push(
                Finding::warning(
                    "HVN-W032",
                    format!(
                        "tier-{} service {} depends on tier-{} service {}: in a disruption {} is recovered with tier-{} priority",
                        s.tier.value, s.id.value, d.tier.value, d.id.value, d.id.value, d.tier.value
                    ),
                    format!(
                        "what a tier-{} service needs is tier {} in practice: raise {} to tier {}, or make {} work without it and remove the dependency",
                        s.tier.value, s.tier.value, d.id.value, s.tier.value, s.id.value
                    ),
                )
                .object("service", &s.id.value)
                .object("service", &d.id.value)
                .at(dep.at),
            );
        }
    }
    out
}

/// How far back a policy's retention keeps snapshots, in days (the
/// longest of its calendar rules and its minimum).
pub fn retention_days(r: &super::Retention) -> u32 {
    let rules = [
        r.keep_daily,
        r.keep_weekly.map(|n| n.saturating_mul(7)),
        r.keep_monthly.map(|n| n.saturating_mul(30)),
        r.keep_yearly.map(|n| n.saturating_mul(365)),
        r.keep_hourly.map(|n| n / 24),
        r.min_days.as_ref().map(|d| d.value),
    ];
    rules.into_iter().flatten().max().unwrap_or(0)
}

/// `HVN-E022` data stored where its regulations do not allow;
/// `HVN-E023` retention shorter than a regulation's minimum;
/// `HVN-E024` retention longer than a regulation's maximum (personal
/// data); `HVN-E025` immutability shorter than a regulation requires.
pub fn compliance(catalog: &Catalog) -> Vec<Finding> {
    let mut out = Vec::new();
    for svc in &catalog.services {
        let regulations: Vec<&super::Regulation> = svc
            .regulations
            .iter()
            .filter_map(|r| catalog.regulations.iter().find(|x| x.id.value == r.value))
            .collect();
        if regulations.is_empty() {
            continue;
        }
        for (sys, policy) in policies_of(catalog, svc) {
            let base = |f: Finding| {
                f.object("service", &svc.id.value)
                    .object("system", &sys.id.value)
                    .object("policy", &policy.id.value)
            };
            for reg in &regulations {
                if !reg.allowed_jurisdictions.is_empty() {
                    for repo_ref in std::iter::once(&policy.repository).chain(&policy.copies) {
                        let Some(repo) = catalog
                            .repositories
                            .iter()
                            .find(|r| r.id.value == repo_ref.value)
                        else {
                            continue;
                        };
                        let place = repo.jurisdiction.as_ref().map(|j| j.value.clone());
                        if place
                            .as_ref()
                            .is_none_or(|j| !reg.allowed_jurisdictions.contains(j))
                        {
                            out.push(
                                base(Finding::error(
                                    "HVN-E022",
                                    format!(
                                        "service {}: {} allows data only in {}, but policy {} stores system {} in repository {} ({})",
                                        svc.id.value,
                                        reg.id.value,
                                        reg.allowed_jurisdictions.join(", "),
                                        policy.id.value,
                                        sys.id.value,
                                        repo.id.value,
                                        place.as_deref().unwrap_or("jurisdiction not declared")
                                    ),
                                    "use a repository in an allowed jurisdiction (and declare `jurisdiction` on every repository)",
                                ))
                                .object("repository", &repo.id.value)
                                .object("regulation", &reg.id.value)
                                .at(repo_ref.at),
                            );
                        }
                    }
                }
                let kept = retention_days(&policy.retention);
                if let Some(min) = reg.min_retention_days
                    && kept < min
                {
                    out.push(
                        base(Finding::error(
                            "HVN-E023",
                            format!(
                                "service {}: {} requires keeping backups {min} days, policy {} keeps {kept}",
                                svc.id.value, reg.id.value, policy.id.value
                            ),
                            format!("raise the policy's retention (e.g. `min_days = {min}` or more keep_monthly/keep_yearly)"),
                        ))
                        .object("regulation", &reg.id.value)
                        .at(policy.id.at),
                    );
                }
                if let Some(max) = reg.max_retention_days
                    && kept > max
                {
                    out.push(
                        base(Finding::error(
                            "HVN-E024",
                            format!(
                                "service {}: {} allows keeping personal data at most {max} days, policy {} keeps {kept}",
                                svc.id.value, reg.id.value, policy.id.value
                            ),
                            "shorten the policy's retention for this data, or separate it from data that must be kept longer",
                        ))
                        .object("regulation", &reg.id.value)
                        .at(policy.id.at),
                    );
                }
                if let Some(min) = reg.min_immutability_days {
                    let days = policy.immutability_days.as_ref().map_or(0, |d| d.value);
                    if days < min {
                        let at = policy
                            .immutability_days
                            .as_ref()
                            .map_or(policy.id.at, |d| d.at);
                        out.push(
                            base(Finding::error(
                                "HVN-E025",
                                format!(
                                    "service {}: {} requires backups immutable for {min} days, policy {} locks them for {days}",
                                    svc.id.value, reg.id.value, policy.id.value
                                ),
                                format!("set `immutability_days = {min}` (or more) on the policy"),
                            ))
                            .object("regulation", &reg.id.value)
                            .at(at),
                        );
                    }
                }
            }
        }
    }
    out
}

/// `HVN-W026` (3-2-1): tier-1 data with fewer than two copies, or with
/// all copies in one location on one kind of media.
pub fn copies(catalog: &Catalog) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for svc in catalog.services.iter().filter(|s| s.tier.value == 1) {
        for (sys, policy) in policies_of(catalog, svc) {
            if !seen.insert((sys.id.value.as_str(), policy.id.value.as_str())) {
                continue;
            }
            let repos: Vec<&super::Repository> = std::iter::once(&policy.repository)
                .chain(&policy.copies)
                .filter_map(|r| catalog.repository(&r.value))
                .collect();
            let problem = if policy.copies.is_empty() {
                Some("one backup copy only (no `copies`)".to_string())
            } else {
                let sites: HashSet<Option<&str>> =
                    repos.iter().map(|r| r.region.as_deref()).collect();
                let media: HashSet<Option<&str>> =
                    repos.iter().map(|r| r.media.as_deref()).collect();
                (sites.len() < 2 && media.len() < 2)
                    .then(|| "every copy is in the same region on the same media".to_string())
            };
            if let Some(problem) = problem {
                out.push(
                    Finding::warning(
                        "HVN-W026",
                        format!(
                            "3-2-1: tier-1 service {} keeps system {} with policy {}: {problem}",
                            svc.id.value, sys.id.value, policy.id.value
                        ),
                        "add `copies = [\"…\"]` with a repository in another region or on other media (ideally offline or immutable)",
                    )
                    .object("service", &svc.id.value)
                    .object("system", &sys.id.value)
                    .object("policy", &policy.id.value)
                    .at(policy.repository.at),
                );
            }
        }
    }
    out
}

/// `HVN-W027` a service not reviewed within its interval; `HVN-W028` a
/// vendor whose continuity evidence is over a year old, or whose contract
/// ends within 90 days.
pub fn staleness(catalog: &Catalog, now: Timestamp) -> Vec<Finding> {
    let today = now.to_zoned(TimeZone::UTC).date();
    let mut out = Vec::new();
    for svc in &catalog.services {
        let Some(interval) = &svc.review_interval else {
            continue;
        };
        let due = svc.last_reviewed.as_ref().and_then(|d| {
            d.value
                .to_zoned(TimeZone::UTC)
                .ok()
                .map(|z| z.timestamp() + interval.value)
        });
        if due.is_none_or(|due| due < now) {
            let when = svc
                .last_reviewed
                .as_ref()
                .map_or("never".to_string(), |d| format!("last on {}", d.value));
            out.push(
                Finding::warning(
                    "HVN-W027",
                    format!(
                        "service {} is due for review (every {}; {when})",
                        svc.id.value,
                        format_duration(interval.value)
                    ),
                    "review the entry with its owner and update `last_reviewed`",
                )
                .object("service", &svc.id.value)
                .at(svc.last_reviewed.as_ref().map_or(interval.at, |d| d.at)),
            );
        }
    }
    for v in &catalog.vendors {
        let old = match &v.last_evidence {
            None => Some("no continuity evidence on record".to_string()),
            Some(d) if d.value < today.saturating_sub(jiff::Span::new().years(1)) => Some(format!(
                "continuity evidence from {} is over a year old",
                d.value
            )),
            Some(_) => None,
        };
        if let Some(old) = old {
            out.push(
                Finding::warning(
                    "HVN-W028",
                    format!("vendor {}: {old}", v.id.value),
                    "ask the vendor for current evidence (SOC 2 report, ISO 22301 certificate, test results) and record `last_evidence`",
                )
                .object("vendor", &v.id.value)
                .at(v.last_evidence.as_ref().map_or(v.id.at, |d| d.at)),
            );
        }
        if let Some(end) = &v.contract_end
            && end.value <= today.saturating_add(jiff::Span::new().days(90))
        {
            out.push(
                Finding::warning(
                    "HVN-W028",
                    format!("vendor {}: the contract ends on {} (within 90 days)", v.id.value, end.value),
                    "renew the contract or plan the exit: the services that depend on this vendor need a continuity path",
                )
                .object("vendor", &v.id.value)
                .at(end.at),
            );
        }
    }
    out
}

/// `HVN-W029`: a command line (dump, hook, channel, check) that carries
/// a secret literally, where every local user sees it (`ps`) and every
/// error quoting the command repeats it.
pub fn secrets_on_command_lines(catalog: &Catalog) -> Vec<Finding> {
    let mut commands: Vec<(String, &str, super::Origin, &'static str, &str)> = Vec::new();
    for sys in &catalog.systems {
        for set in &sys.backup_sets {
            for (role, command) in [
                ("the dump command", &set.command),
                ("the restore_command", &set.restore_command),
                ("the recover_command", &set.recover_command),
                ("the start command", &set.start),
            ] {
                if let Some(command) = command {
                    let what = format!("system {}, backup set {}: {role}", sys.id.value, set.name);
                    commands.push((what, command, set.at, "system", &sys.id.value));
                }
            }
        }
        for check in &sys.checks {
            if let super::Check::Command { run, .. } = check {
                let what = format!("system {}: a check command", sys.id.value);
                commands.push((what, run, sys.id.at, "system", &sys.id.value));
            }
        }
    }
    for svc in &catalog.services {
        for step in &svc.recovery {
            if let super::recovery::StepAction::Command { run, .. } = &step.action {
                let what = format!("service {}: a recovery command", svc.id.value);
                commands.push((what, run, step.at, "service", &svc.id.value));
            }
        }
    }
    for policy in &catalog.policies {
        for (hook, command) in [
            ("pre_hook", &policy.pre_hook),
            ("post_hook", &policy.post_hook),
        ] {
            if let Some(command) = command {
                let what = format!("policy {}: the {hook}", policy.id.value);
                commands.push((what, command, policy.id.at, "policy", &policy.id.value));
            }
        }
    }
    for channel in &catalog.channels {
        if let super::watch::ChannelKind::Command { run, .. } = &channel.kind {
            let what = format!("channel {}: the command", channel.id.value);
            commands.push((what, run, channel.id.at, "channel", &channel.id.value));
        }
    }
    commands
        .into_iter()
        .filter(|(_, command, ..)| crate::redact::secret_on_command_line(command))
        .map(|(what, command, at, kind, id)| {
            Finding::warning(
                "HVN-W029",
                format!(
                    "{what} carries a secret literally: {}",
                    crate::redact::mask(command)
                ),
                "move it into the environment and refer to it: e.g. env = { PGPASSWORD = \"file:/etc/haven/erp.pw\" } \
                 (a command line is visible to every local user and repeated by errors; Haven masks it, other tools do not)",
            )
            .object(kind, id)
            .at(at)
        })
        .collect()
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
                // A value that is there but unreadable was reported (HVN-E003).
                if value.is_none() && !s.unreadable.contains(&name) {
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
/// policy's maximum duration exceeds the RPO. When only a clock change
/// makes the gap that long, the finding says so, with the date, and
/// advises what helps (UTC, or a schedule around the changed hours).
pub fn schedules(catalog: &Catalog, now: Timestamp) -> Vec<Finding> {
    let mut gaps: HashMap<&str, PolicyGap> = HashMap::new();
    let mut out = Vec::new();
    for svc in &catalog.services {
        let Some(rpo) = &svc.rpo else { continue };
        for dep in &svc.depends_on {
            let Some(system) = catalog.system(&dep.value) else {
                continue;
            };
            let Some(policy) = catalog.policy_of(system) else {
                continue;
            };
            let gap = gaps
                .entry(policy.id.value.as_str())
                .or_insert_with(|| PolicyGap::of(policy, now));
            let Some((problem, help)) = gap.problem(policy, &system.id.value, rpo.value) else {
                continue;
            };
            out.push(
                Finding::error(
                    "HVN-E020",
                    format!(
                        "service {}: RPO {} cannot be met: {problem}",
                        svc.id.value,
                        format_duration(rpo.value)
                    ),
                    help,
                )
                .object("service", &svc.id.value)
                .object("system", &system.id.value)
                .object("policy", &policy.id.value)
                .at(rpo.at),
            );
        }
    }
    out
}

/// A policy's longest gap between backup starts, the clock change inside
/// it (if any), and how long the longest gap would be without clock
/// changes (the same schedule on a fixed offset).
struct PolicyGap {
    gap: Option<schedule::Gap>,
    change: Option<schedule::ClockChange>,
    without_changes: Option<SignedDuration>,
}

impl PolicyGap {
    fn of(policy: &super::Policy, now: Timestamp) -> PolicyGap {
        let cron = policy.schedule.value.cron();
        let tz = policy.timezone.value.tz();
        let window = policy.window.as_ref().map(|w| w.value);
        let gap = schedule::longest_gap_at(cron, tz, window, now);
        let change = gap.and_then(|g| schedule::clock_change_between(tz, g.after, g.until));
        let without_changes = change.and_then(|_| {
            let fixed = TimeZone::fixed(tz.to_offset(now));
            schedule::longest_gap(cron, &fixed, window, now)
        });
        PolicyGap {
            gap,
            change,
            without_changes,
        }
    }

    /// What is wrong for a system needing `rpo`, and the help that works.
    fn problem(
        &self,
        policy: &super::Policy,
        system: &str,
        rpo: SignedDuration,
    ) -> Option<(String, String)> {
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
        let (id, cron, tz) = (
            &policy.id.value,
            &policy.schedule.value,
            &policy.timezone.value,
        );
        let Some(gap) = self.gap else {
            return Some((
                format!(
                    "policy {id} (\"{cron}\"{window}, {tz}) starts backups fewer than twice a year"
                ),
                "schedule backups more often (or widen the window), or relax the RPO".into(),
            ));
        };
        if gap.length + finish <= rpo {
            return None;
        }
        let apart = format!(
            "backups of system {system} (policy {id}: \"{cron}\"{window}, {tz}) can be {} apart",
            format_duration(gap.length)
        );
        let at_risk = format!(
            "plus up to {} to finish: {} of data at risk",
            format_duration(finish),
            format_duration(gap.length + finish)
        );
        match (self.change, self.without_changes) {
            // The clock change alone makes the gap too long.
            (Some(change), Some(steady)) if steady + finish <= rpo => Some((
                format!("{apart} when {tz} {}, {at_risk}", change.describe()),
                format!(
                    "the gap comes from the clock change, not from how often the schedule runs: set `timezone = \"UTC\"` on policy {id} (its schedule and window then read in UTC), or keep start times out of {}-{} local time",
                    change.from.strftime("%H:%M"),
                    change.to.strftime("%H:%M")
                ),
            )),
            _ => Some((
                format!("{apart}, {at_risk}"),
                "schedule backups more often (or widen the window), shorten max_duration, or relax the RPO".into(),
            )),
        }
    }
}

/// `HVN-E012`: a reference to an object that does not exist.
pub fn references(catalog: &Catalog) -> Vec<Finding> {
    let known = Known::of(catalog);
    references_in(catalog)
        .into_iter()
        .filter_map(|reference| {
            let names = known.of_kind(reference.kind);
            if names.contains(reference.name) {
                return None;
            }
            let what = reference.kind.what();
            let hint = closest(reference.name, names.iter().copied())
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            let (from_kind, from_id) = reference.from;
            Some(
                Finding::error(
                    "HVN-E012",
                    format!("{from_kind} {from_id}: unknown {what} `{}`", reference.name),
                    format!(
                        "{hint}define it (a {} table with `id = \"{}\"`) or fix the reference",
                        tables(what),
                        reference.name
                    ),
                )
                .object(from_kind, from_id)
                .at(reference.at),
            )
        })
        .collect()
}

/// What a reference names.
#[derive(Clone, Copy)]
enum RefKind {
    /// A dependency: a service, system or vendor.
    Dependency,
    /// What can take over: a system or vendor.
    Taker,
    Team,
    Policy,
    Repository,
    Regulation,
    Channel,
    Calendar,
    Service,
    System,
}

impl RefKind {
    fn what(self) -> &'static str {
        match self {
            RefKind::Dependency => "service, system or vendor",
            RefKind::Taker => "system or vendor",
            RefKind::Team => "team",
            RefKind::Policy => "policy",
            RefKind::Repository => "repository",
            RefKind::Regulation => "regulation",
            RefKind::Channel => "channel",
            RefKind::Calendar => "calendar",
            RefKind::Service => "service",
            RefKind::System => "system",
        }
    }
}

/// One reference: who makes it, to what kind, the name, where written.
struct Reference<'a> {
    from: (&'static str, &'a str),
    kind: RefKind,
    name: &'a str,
    at: super::Origin,
}

/// The ids a catalog defines, by kind.
struct Known<'a> {
    deps: BTreeSet<&'a str>,
    takers: BTreeSet<&'a str>,
    teams: BTreeSet<&'a str>,
    policies: BTreeSet<&'a str>,
    repositories: BTreeSet<&'a str>,
    regulations: BTreeSet<&'a str>,
    channels: BTreeSet<&'a str>,
    calendars: BTreeSet<&'a str>,
    services: BTreeSet<&'a str>,
    systems: BTreeSet<&'a str>,
}

impl<'a> Known<'a> {
    fn of(catalog: &'a Catalog) -> Known<'a> {
        let services: BTreeSet<&str> = catalog
            .services
            .iter()
            .map(|s| s.id.value.as_str())
            .collect();
        let systems: BTreeSet<&str> = catalog
            .systems
            .iter()
            .map(|s| s.id.value.as_str())
            .collect();
        let vendors = catalog.vendors.iter().map(|v| v.id.value.as_str());
        let takers: BTreeSet<&str> = systems.iter().copied().chain(vendors).collect();
        Known {
            deps: services
                .iter()
                .copied()
                .chain(takers.iter().copied())
                .collect(),
            takers,
            teams: catalog.teams.iter().map(|t| t.id.value.as_str()).collect(),
            policies: catalog
                .policies
                .iter()
                .map(|p| p.id.value.as_str())
                .collect(),
            repositories: catalog
                .repositories
                .iter()
                .map(|r| r.id.value.as_str())
                .collect(),
            regulations: catalog
                .regulations
                .iter()
                .map(|r| r.id.value.as_str())
                .collect(),
            channels: catalog
                .channels
                .iter()
                .map(|c| c.id.value.as_str())
                .collect(),
            calendars: catalog
                .calendars
                .iter()
                .map(|c| c.id.value.as_str())
                .collect(),
            services,
            systems,
        }
    }

    fn of_kind(&self, kind: RefKind) -> &BTreeSet<&'a str> {
        match kind {
            RefKind::Dependency => &self.deps,
            RefKind::Taker => &self.takers,
            RefKind::Team => &self.teams,
            RefKind::Policy => &self.policies,
            RefKind::Repository => &self.repositories,
            RefKind::Regulation => &self.regulations,
            RefKind::Channel => &self.channels,
            RefKind::Calendar => &self.calendars,
            RefKind::Service => &self.services,
            RefKind::System => &self.systems,
        }
    }
}

/// A reference written as a located name.
fn located<'a, T: AsRef<str>>(
    from: (&'static str, &'a str),
    kind: RefKind,
    name: &'a super::Located<T>,
) -> Reference<'a> {
    Reference {
        from,
        kind,
        name: name.value.as_ref(),
        at: name.at,
    }
}

/// Every reference the catalog makes, in document order.
fn references_in(catalog: &Catalog) -> Vec<Reference<'_>> {
    use RefKind as K;
    let mut out = Vec::new();
    for s in &catalog.services {
        let from = ("service", s.id.value.as_str());
        out.extend(s.depends_on.iter().map(|d| located(from, K::Dependency, d)));
        out.extend(s.owner.iter().map(|o| located(from, K::Team, o)));
        out.extend(
            s.regulations
                .iter()
                .map(|r| located(from, K::Regulation, r)),
        );
    }
    for s in &catalog.systems {
        let from = ("system", s.id.value.as_str());
        out.extend(s.policy.iter().map(|p| located(from, K::Policy, p)));
        out.extend(s.owner.iter().map(|o| located(from, K::Team, o)));
        out.extend(s.alternatives.iter().map(|a| located(from, K::Taker, a)));
    }
    for v in &catalog.vendors {
        let from = ("vendor", v.id.value.as_str());
        out.extend(v.alternatives.iter().map(|a| located(from, K::Taker, a)));
    }
    for p in &catalog.policies {
        let from = ("policy", p.id.value.as_str());
        let repos = std::iter::once(&p.repository).chain(&p.copies);
        out.extend(repos.map(|r| located(from, K::Repository, r)));
    }
    for e in &catalog.escalations {
        let from = ("escalation", e.id.value.as_str());
        out.extend(e.calendar.iter().map(|c| located(from, K::Calendar, c)));
        let channels = e.steps.iter().flat_map(|s| &s.channels);
        out.extend(channels.map(|c| located(from, K::Channel, c)));
    }
    for d in &catalog.drills {
        let from = ("drill", d.id.value.as_str());
        out.extend(d.services.iter().map(|s| located(from, K::Service, s)));
    }
    for p in &catalog.plans {
        if let super::recovery::PlanServices::Listed(list) = &p.services {
            let from = ("plan", p.id.value.as_str());
            out.extend(list.iter().map(|s| located(from, K::Service, s)));
        }
    }
    for m in &catalog.maintenance {
        // Scope entries are plain strings: point at the window's id.
        let from = ("maintenance", m.id.value.as_str());
        let scope = [
            (K::Service, &m.scope.services),
            (K::System, &m.scope.systems),
            (K::Repository, &m.scope.repositories),
        ];
        for (kind, names) in scope {
            out.extend(names.iter().map(|name| Reference {
                from,
                kind,
                name: name.as_str(),
                at: m.id.at,
            }));
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
            // Point at the entry that closes the cycle: the last service's
            // dependency on the first.
            let closing = catalog
                .service(cycle.last().map_or("", String::as_str))
                .and_then(|s| s.depends_on.iter().find(|d| d.value == cycle[0]))
                .map(|d| d.at);
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
            match closing {
                Some(at) => f.at(at),
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
            let rto_of = |id: &str| {
                catalog
                    .service(id)
                    .and_then(|d: &Service| d.rto.as_ref().map(|r| r.value))
                    .or_else(|| {
                        catalog
                            .vendors
                            .iter()
                            .find(|v| v.id.value == id)
                            .and_then(|v| v.sla_rto.as_ref().map(|r| r.value))
                    })
            };
            // What can take over counts: the earliest of them is back.
            let alternatives = catalog.working_alternatives(&dep.value);
            let dep_rto = std::iter::once(dep.value.as_str())
                .chain(alternatives.iter().copied())
                .filter_map(rto_of)
                .min();
            if let Some(dep_rto) = dep_rto
                && dep_rto > rto.value
            {
                let kind = catalog.kind_of(&dep.value).unwrap_or("service");
                let (with, help) = if alternatives.is_empty() {
                    (
                        String::new(),
                        "a service cannot be back before what it needs: shorten the dependency's RTO, add an alternative, or relax this RTO".to_string(),
                    )
                } else {
                    (
                        format!(
                            " (the earliest of it and its alternatives {})",
                            alternatives.join(", ")
                        ),
                        format!(
                            "a service cannot be back before what it needs, and even {}'s alternatives are not back sooner: shorten their RTOs or relax this RTO",
                            dep.value
                        ),
                    )
                };
                out.push(
                    Finding::warning(
                        "HVN-W014",
                        format!(
                            "service {} has RTO {} but depends on {kind} {} with RTO {}{with}",
                            s.id.value,
                            format_duration(rto.value),
                            dep.value,
                            format_duration(dep_rto)
                        ),
                        help,
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

/// `HVN-E030` / `HVN-W031`: a service that cannot be back within its MTD
/// (error) or its RTO (warning), by the recovery plan's timing model:
/// from the disruption, nothing back before what it needs, each step
/// taking its declared `restore_estimate`.
pub fn recovery_timing(catalog: &Catalog) -> Vec<Finding> {
    // A cycle has no order (HVN-E013 says so).
    let Ok(order) = super::plan::recovery_order(catalog, &[]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in order.waves.iter().flatten() {
        let (Some(late), Some(end), Some(svc)) = (
            item.late,
            item.earliest_completion,
            catalog.service(&item.id),
        ) else {
            continue;
        };
        let chain = super::plan::chain_to(&order, &item.id);
        let steps: Vec<String> = chain
            .iter()
            .filter_map(|id| order.waves.iter().flatten().find(|i| &i.id == id))
            .map(
                |i| match (i.kind, i.restore_estimate, i.earliest_completion) {
                    ("vendor", _, Some(at)) => {
                        format!("{} (back at {})", i.id, format_duration(at))
                    }
                    (_, Some(own), _) => format!("{} (+{})", i.id, format_duration(own)),
                    _ => format!("{} (no estimate)", i.id),
                },
            )
            .collect();
        let (code, objective, at, help) = match late {
            "mtd" => (
                "HVN-E030",
                svc.mtd.as_ref(),
                "MTD",
                "beyond the MTD the damage is intolerable: shorten the restores along the chain (measured estimates, an alternative, parallel restores), or revisit the MTD with the business",
            ),
            _ => (
                "HVN-W031",
                svc.rto.as_ref(),
                "RTO",
                "shorten the restores along the chain (measured estimates, an alternative, parallel restores), or set an RTO the chain can meet",
            ),
        };
        let Some(objective) = objective else { continue };
        let message = format!(
            "service {} cannot be back within its {at} {}: the earliest is {} after a disruption ({})",
            item.id,
            format_duration(objective.value),
            format_duration(end),
            steps.join(" → ")
        );
        let finding = if late == "mtd" {
            Finding::error(code, message, help)
        } else {
            Finding::warning(code, message, help)
        };
        let mut finding = finding.object("service", &item.id).at(objective.at);
        for id in chain.iter().filter(|id| **id != item.id) {
            finding = finding.object(catalog.kind_of(id).unwrap_or("system"), id);
        }
        out.push(finding);
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
