//! The alert rules: from evidence (a finished job and its history, the
//! compliance evaluation, copy jobs, capacity samples) to what holds and
//! what cleared. Pure functions; the watch (`haven_ops::watch`) feeds
//! them and applies the lifecycle.
//!
//! Dedup keys (stable, `docs/alerts.md`): `job-failed:TASK`,
//! `job-partial:TASK`, `systemic-failure:SYSTEM/SET`,
//! `duration-over-max:TASK`, `duration-anomaly:TASK`,
//! `volume-anomaly:TASK`, `start-delay:TASK`,
//! `integrity-check-failed:REPOSITORY`, `rpo-at-risk:SYSTEM` (and
//! `-violated`, `-quarantined`), `copy-lag:SYSTEM/SET>REPOSITORY`,
//! `capacity-used:REPOSITORY`, `capacity-forecast:REPOSITORY`.

use crate::drills::DRILL_FAILED;
use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};

use crate::alerts::{Alert, Condition, Observation, Rule, Subject, severity};
use crate::anomaly::{Baseline, Deviation, Trend};
use crate::catalog::Catalog;
use crate::catalog::duration::format_duration;
use crate::compliance::{Compliance, RpoState};
use crate::jobs::{FailureClass, Job, JobKind, Outcome, SetState, Trigger};
use crate::units::human_bytes;

/// How the watch rules judge evidence (`[alerts]`).
#[derive(Clone, Debug, PartialEq)]
pub struct AlertSettings {
    /// Successful runs a baseline is computed from (the newest N).
    pub baseline_runs: usize,
    /// Fewer runs than this: no baseline yet, no anomaly alerts.
    pub baseline_min_runs: usize,
    /// How many MADs from the median a duration must be to be anomalous.
    pub duration_mads: f64,
    /// How many MADs from the median the changed bytes must be.
    pub volume_mads: f64,
    /// Start delay (scheduled → actual start) that raises an alert.
    pub start_delay: SignedDuration,
    /// Share of a repository's capacity that raises a capacity alert.
    pub capacity_share: f64,
    /// Forecasts reaching that share within this time raise an alert.
    pub capacity_horizon: SignedDuration,
    /// History a capacity forecast is fitted over.
    pub capacity_history: SignedDuration,
    /// The least history a forecast needs (three samples spanning at
    /// least this long) before it may alert: two samples seconds apart
    /// forecast nonsense.
    pub capacity_min_history: SignedDuration,
    /// A recovery's checkpoint waiting longer than this raises an alert.
    pub checkpoint_wait: SignedDuration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            baseline_runs: 20,
            baseline_min_runs: 5,
            duration_mads: 4.0,
            volume_mads: 6.0,
            start_delay: SignedDuration::from_mins(30),
            capacity_share: 0.8,
            capacity_horizon: SignedDuration::from_hours(14 * 24),
            capacity_history: SignedDuration::from_hours(30 * 24),
            capacity_min_history: SignedDuration::from_hours(3 * 24),
            checkpoint_wait: SignedDuration::from_mins(30),
        }
    }
}

/// The most critical service depending on each system: alerts about a
/// system are grouped under it and take its tier.
#[derive(Clone, Debug, Default)]
pub struct Subjects {
    by_system: HashMap<String, (String, u8)>,
    rpo: HashMap<String, SignedDuration>,
}

impl Subjects {
    /// Index a catalog.
    pub fn of(catalog: &Catalog) -> Subjects {
        let mut by_system: HashMap<String, (String, u8)> = HashMap::new();
        let mut rpo: HashMap<String, SignedDuration> = HashMap::new();
        for service in &catalog.services {
            let tier = service.tier.value;
            for dep in &service.depends_on {
                let entry = by_system
                    .entry(dep.value.clone())
                    .or_insert((service.id.value.to_string(), tier));
                if tier < entry.1 {
                    *entry = (service.id.value.to_string(), tier);
                }
                if let Some(r) = &service.rpo {
                    let e = rpo.entry(dep.value.clone()).or_insert(r.value);
                    *e = (*e).min(r.value);
                }
            }
        }
        Subjects { by_system, rpo }
    }

    /// The subject of something about a system (or a repository).
    pub fn subject(
        &self,
        system: Option<&str>,
        set: Option<&str>,
        repository: Option<&str>,
    ) -> Subject {
        let service = system.and_then(|s| self.by_system.get(s));
        Subject {
            service: service.map(|(s, _)| s.clone()),
            tier: service.map(|(_, t)| *t),
            system: system.map(String::from),
            backup_set: set.map(String::from),
            repository: repository.map(String::from),
        }
    }

    /// The strictest RPO of the services that need a system.
    pub fn rpo(&self, system: &str) -> Option<SignedDuration> {
        self.rpo.get(system).copied()
    }
}

fn facts(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

fn what(job: &Job) -> String {
    match (
        &job.planned.system,
        &job.planned.backup_set,
        &job.planned.repository,
    ) {
        (Some(system), Some(set), _) if job.planned.kind == JobKind::Backup => {
            format!("backup of {system}/{set}")
        }
        (Some(system), _, Some(repo)) => {
            format!("{} of {system} ({repo})", job.planned.kind.as_str())
        }
        (_, _, Some(repo)) => format!("{} of repository {repo}", job.planned.kind.as_str()),
        _ => job.planned.task.clone(),
    }
}

/// What a finished job says. `history` holds earlier successful jobs of
/// the same task, newest first (the baseline); `state` is the set's state
/// after the job (backups).
pub fn after_job(
    subjects: &Subjects,
    catalog: &Catalog,
    settings: &AlertSettings,
    job: &Job,
    state: Option<&SetState>,
    history: &[Job],
) -> Observation {
    let mut obs = Observation::default();
    let Some(ended) = job.ended_at else {
        return obs;
    };
    let seen = JobEvidence {
        job,
        subject: subjects.subject(
            job.planned.system.as_deref(),
            job.planned.backup_set.as_deref(),
            job.planned.repository.as_deref(),
        ),
        class: job.failure.as_ref().map(|f| f.class),
        ended,
    };
    outcome_rules(&seen, &mut obs);
    systemic_rule(&seen, state, &mut obs);
    start_delay_rule(&seen, settings, &mut obs);
    if job.planned.kind == JobKind::Backup
        && job.outcome.is_good()
        && let Some(duration) = job.duration()
    {
        max_duration_rule(&seen, catalog, duration, &mut obs);
        let runs: Vec<&Job> = history
            .iter()
            .filter(|j| j.id != job.id && j.outcome == Outcome::Success)
            .take(settings.baseline_runs)
            .collect();
        duration_anomaly_rule(&seen, settings, &runs, duration, &mut obs);
        volume_anomaly_rule(&seen, settings, &runs, &mut obs);
    }
    obs
}

/// A finished job as its rules see it.
struct JobEvidence<'a> {
    job: &'a Job,
    subject: Subject,
    class: Option<FailureClass>,
    ended: Timestamp,
}

impl JobEvidence<'_> {
    fn condition(
        &self,
        rule: Rule,
        key: String,
        summary: String,
        facts: BTreeMap<String, String>,
        since: Timestamp,
    ) -> Condition {
        Condition {
            key,
            rule,
            severity: severity(rule, self.subject.tier, self.class),
            subject: self.subject.clone(),
            summary,
            facts,
            since,
            evidence: Some(self.job.id.to_string()),
        }
    }

    /// The job's facts (number, outcome, attempt, failure, message) and
    /// the rule's own.
    fn facts(&self, extra: &[(&str, String)]) -> BTreeMap<String, String> {
        let job = self.job;
        let mut f = facts(&[
            ("job", job.id.to_string()),
            ("outcome", job.outcome.as_str().into()),
            ("attempt", job.planned.attempt.to_string()),
        ]);
        if let Some(failure) = &job.failure {
            f.insert("class".into(), failure.class.as_str().into());
            f.insert("detail".into(), failure.detail.clone());
            f.insert("layer".into(), failure.layer.as_str().into());
        }
        if let Some(message) = &job.message {
            f.insert("message".into(), message.clone());
        }
        f.extend(facts(extra));
        f
    }

    fn message(&self, otherwise: &'static str) -> &str {
        self.job.message.as_deref().unwrap_or(otherwise)
    }
}

/// `job-failed`, `job-partial`, `integrity-check-failed`: how it ended.
fn outcome_rules(seen: &JobEvidence<'_>, obs: &mut Observation) {
    let job = seen.job;
    let task = &job.planned.task;
    let failed_key = format!("job-failed:{task}");
    let partial_key = format!("job-partial:{task}");
    let integrity_key = job
        .planned
        .repository
        .as_ref()
        .map(|r| format!("integrity-check-failed:{r}"));
    let is_integrity =
        job.planned.kind == JobKind::Check && seen.class == Some(FailureClass::DataIntegrity);
    // A drill that ran and failed is `drill-failed`'s (raised when the
    // drill is recorded), not a job failure.
    let is_drill_verdict = job.planned.kind == JobKind::Drill
        && job
            .failure
            .as_ref()
            .is_some_and(|f| f.detail == DRILL_FAILED);
    match job.outcome {
        Outcome::Failed if is_drill_verdict => {
            obs.cleared
                .push((failed_key, "superseded by drill-failed".into()));
        }
        Outcome::Failed if is_integrity => {
            if let Some(key) = &integrity_key {
                obs.holding.push(seen.condition(
                    Rule::IntegrityCheckFailed,
                    key.clone(),
                    format!(
                        "integrity check of repository {} failed: {}",
                        job.planned.repository.as_deref().unwrap_or("?"),
                        seen.message("problems found")
                    ),
                    seen.facts(&[]),
                    seen.ended,
                ));
            }
            obs.cleared
                .push((failed_key, "superseded by integrity-check-failed".into()));
        }
        Outcome::Failed => {
            obs.holding.push(seen.condition(
                Rule::JobFailed,
                failed_key,
                format!("{} failed: {}", what(job), seen.message("no message")),
                seen.facts(&[]),
                seen.ended,
            ));
            obs.cleared
                .push((partial_key, format!("job {} failed instead", job.id)));
        }
        Outcome::Partial => {
            obs.holding.push(seen.condition(
                Rule::JobPartial,
                partial_key,
                format!(
                    "{} was incomplete: {}",
                    what(job),
                    seen.message("no message")
                ),
                seen.facts(&[]),
                seen.ended,
            ));
            obs.cleared
                .push((failed_key, format!("job {} left a restore point", job.id)));
        }
        Outcome::Success => {
            let reason = format!("job {} succeeded", job.id);
            obs.cleared.push((failed_key, reason.clone()));
            obs.cleared.push((partial_key, reason.clone()));
            if job.planned.kind == JobKind::Check
                && let Some(key) = integrity_key
            {
                obs.cleared.push((key, reason));
            }
        }
        Outcome::Running | Outcome::Interrupted | Outcome::Skipped => {}
    }
}

/// `systemic-failure`: the set's failure streak stopped its retries.
fn systemic_rule(seen: &JobEvidence<'_>, state: Option<&SetState>, obs: &mut Observation) {
    let job = seen.job;
    let (Some(state), Some(system), Some(set)) =
        (state, &job.planned.system, &job.planned.backup_set)
    else {
        return;
    };
    let key = format!("systemic-failure:{system}/{set}");
    if !state.systemic {
        obs.cleared.push((key, "the failure streak ended".into()));
        return;
    }
    let class_text = state.streak_class.map_or("unknown", |c| c.as_str());
    obs.holding.push(seen.condition(
        Rule::SystemicFailure,
        key,
        format!(
            "backups of {system}/{set} failed {} times in a row ({class_text}): automatic retries stopped",
            state.failure_streak
        ),
        seen.facts(&[("streak", state.failure_streak.to_string())]),
        seen.ended,
    ));
}

/// `start-delay`: only for runs that had a due time to keep.
fn start_delay_rule(seen: &JobEvidence<'_>, settings: &AlertSettings, obs: &mut Observation) {
    let job = seen.job;
    if !matches!(job.planned.trigger, Trigger::Schedule | Trigger::CatchUp) {
        return;
    }
    let Some(delay) = job.start_delay() else {
        return;
    };
    let key = format!("start-delay:{}", job.planned.task);
    if delay <= settings.start_delay {
        obs.cleared
            .push((key, format!("job {} started on time", job.id)));
        return;
    }
    obs.holding.push(seen.condition(
        Rule::StartDelay,
        key,
        format!(
            "{} started {} late (due {})",
            what(job),
            format_duration(delay),
            job.planned.scheduled_at
        ),
        seen.facts(&[
            ("scheduled_at", job.planned.scheduled_at.to_string()),
            ("delay", format_duration(delay)),
            ("threshold", format_duration(settings.start_delay)),
        ]),
        job.started_at.unwrap_or(seen.ended),
    ));
}

/// `duration-over-max`: longer than the policy allows.
fn max_duration_rule(
    seen: &JobEvidence<'_>,
    catalog: &Catalog,
    duration: SignedDuration,
    obs: &mut Observation,
) {
    let job = seen.job;
    let max = job
        .planned
        .policy
        .as_ref()
        .and_then(|p| catalog.policy(p))
        .and_then(|p| p.max_duration.as_ref().map(|m| m.value));
    let key = format!("duration-over-max:{}", job.planned.task);
    match max {
        Some(max) if duration > max => obs.holding.push(seen.condition(
            Rule::DurationOverMax,
            key,
            format!(
                "{} took {}, longer than the policy's maximum {}",
                what(job),
                format_duration(duration),
                format_duration(max)
            ),
            seen.facts(&[
                ("duration", format_duration(duration)),
                ("max_duration", format_duration(max)),
            ]),
            seen.ended,
        )),
        _ => obs
            .cleared
            .push((key, format!("job {} finished within the maximum", job.id))),
    }
}

/// `duration-anomaly`: far from the set's own baseline, either way.
fn duration_anomaly_rule(
    seen: &JobEvidence<'_>,
    settings: &AlertSettings,
    runs: &[&Job],
    duration: SignedDuration,
    obs: &mut Observation,
) {
    let job = seen.job;
    let seconds: Vec<f64> = runs
        .iter()
        .filter_map(|j| j.duration())
        .map(|d| d.as_secs_f64())
        .collect();
    let key = format!("duration-anomaly:{}", job.planned.task);
    let Some(base) = Baseline::of(&seconds, settings.baseline_min_runs) else {
        return;
    };
    let floor = (base.median * 0.25).max(60.0);
    let deviation = base.judge(duration.as_secs_f64(), settings.duration_mads, floor);
    if deviation == Deviation::Normal {
        obs.cleared
            .push((key, format!("job {} took a normal time", job.id)));
        return;
    }
    let (word, hint) = if deviation == Deviation::Above {
        ("longer", "slow storage or network, or much more data")
    } else {
        ("shorter", "a source that shrank or was skipped")
    };
    let median = SignedDuration::from_secs_f64(base.median);
    obs.holding.push(seen.condition(
        Rule::DurationAnomaly,
        key,
        format!(
            "{} took {} — far {word} than its usual {} ({hint})",
            what(job),
            format_duration(duration),
            format_duration(median)
        ),
        seen.facts(&[
            ("duration", format_duration(duration)),
            ("baseline_median", format_duration(median)),
            ("baseline_mad_seconds", format!("{:.0}", base.mad)),
            ("baseline_runs", base.samples.to_string()),
            ("deviation", deviation.as_str().into()),
        ]),
        seen.ended,
    ));
}

/// `volume-anomaly`: changed data far above (a burst: ransomware?) or
/// below (a vanished source?) the baseline.
fn volume_anomaly_rule(
    seen: &JobEvidence<'_>,
    settings: &AlertSettings,
    runs: &[&Job],
    obs: &mut Observation,
) {
    let job = seen.job;
    let changed: Vec<f64> = runs.iter().map(|j| j.stats.bytes_changed as f64).collect();
    let key = format!("volume-anomaly:{}", job.planned.task);
    let Some(base) = Baseline::of(&changed, settings.baseline_min_runs) else {
        return;
    };
    let value = job.stats.bytes_changed as f64;
    let floor = (base.median * 0.5).max(1024.0 * 1024.0);
    let deviation = base.judge(value, settings.volume_mads, floor);
    if deviation == Deviation::Normal {
        obs.cleared
            .push((key, format!("job {} changed a normal volume", job.id)));
        return;
    }
    let hint = if deviation == Deviation::Above {
        "a burst of changed data: check for mass encryption (ransomware) or a bulk load"
    } else {
        "far less data than usual: check for a vanished source or changed excludes"
    };
    obs.holding.push(seen.condition(
        Rule::VolumeAnomaly,
        key,
        format!(
            "{} changed {} — usually {} ({hint})",
            what(job),
            human_bytes(value),
            human_bytes(base.median)
        ),
        seen.facts(&[
            ("bytes_changed", job.stats.bytes_changed.to_string()),
            ("baseline_median_bytes", format!("{:.0}", base.median)),
            ("baseline_mad_bytes", format!("{:.0}", base.mad)),
            ("baseline_runs", base.samples.to_string()),
            ("deviation", deviation.as_str().into()),
        ]),
        seen.ended,
    ));
}

/// RPO states worse than ok, per system (swept: every system each time).
pub fn rpo(
    subjects: &Subjects,
    compliance: &Compliance,
    now: Timestamp,
    at_risk: f64,
    quarantine: f64,
) -> Observation {
    let mut obs = Observation {
        swept: vec![Rule::RpoAtRisk, Rule::RpoViolated, Rule::RpoQuarantined],
        ..Default::default()
    };
    for system in &compliance.systems {
        let (rule, share) = match system.state {
            RpoState::AtRisk => (Rule::RpoAtRisk, at_risk),
            RpoState::Violated => (Rule::RpoViolated, 1.0),
            RpoState::Quarantined => (Rule::RpoQuarantined, quarantine),
            // Unprotected: no restore point yet, within the RPO (the
            // status says so; at-risk and beyond alert as usual).
            RpoState::Unprotected | RpoState::Ok | RpoState::NotApplicable => continue,
        };
        let (Some(rpo), Some(age)) = (system.rpo, system.age) else {
            continue;
        };
        // The condition began when the age crossed the threshold.
        let since = now - age + SignedDuration::from_secs_f64(rpo.as_secs_f64() * share);
        // Grouped and ranked like every alert about the system (its most
        // critical service); the service the RPO comes from is a fact.
        let subject = subjects.subject(Some(&system.system), None, None);
        let last = system
            .last_good_at
            .map_or("never backed up".to_string(), |t| {
                format!("last good backup {t}")
            });
        obs.holding.push(Condition {
            key: format!("{}:{}", rule.id(), system.system),
            rule,
            severity: severity(rule, subject.tier, None),
            subject,
            summary: format!(
                "{}: RPO {} — data {} old ({}){}",
                system.system,
                system.state.as_str(),
                format_duration(age),
                last,
                if system.systemic {
                    "; failures are systemic"
                } else {
                    ""
                }
            ),
            facts: facts(&[
                ("rpo", format_duration(rpo)),
                ("rpo_from", system.rpo_from.clone().unwrap_or_default()),
                ("age", format_duration(age)),
                ("state", system.state.as_str().into()),
                (
                    "last_good_at",
                    system.last_good_at.map_or("-".into(), |t| t.to_string()),
                ),
            ]),
            since: since.min(now),
            evidence: None,
        });
    }
    obs
}

/// Copy lag: per backup set and copy target, how far the secondary is
/// behind the primary. The secondary holds what the primary had when the
/// last successful copy started.
pub fn copy_lag(
    subjects: &Subjects,
    catalog: &Catalog,
    states: &[SetState],
    copies: &HashMap<String, Timestamp>,
    now: Timestamp,
) -> Observation {
    let mut obs = Observation {
        swept: vec![Rule::CopyLag],
        ..Default::default()
    };
    for state in states {
        let Some(system) = catalog.system(&state.system) else {
            continue;
        };
        let Some(policy) = catalog.policy_of(system) else {
            continue;
        };
        let Some(rpo) = subjects.rpo(&state.system) else {
            continue;
        };
        let Some(primary) = state.last_good_at else {
            continue; // nothing to copy yet
        };
        for target in &policy.copies {
            let task = format!(
                "copy:{}/{}>{}",
                state.system, state.backup_set, target.value
            );
            let copied = copies.get(&task).copied();
            let lag = match copied {
                Some(at) if at >= primary => SignedDuration::ZERO,
                Some(at) => primary.duration_since(at),
                // Never copied: everything since Haven protects the set.
                None => now.duration_since(state.first_seen),
            };
            if lag <= rpo {
                continue;
            }
            let subject = subjects.subject(
                Some(&state.system),
                Some(&state.backup_set),
                Some(&target.value),
            );
            obs.holding.push(Condition {
                key: format!(
                    "copy-lag:{}/{}>{}",
                    state.system, state.backup_set, target.value
                ),
                rule: Rule::CopyLag,
                severity: severity(Rule::CopyLag, subject.tier, None),
                subject,
                summary: format!(
                    "copy of {}/{} in {} is {} behind the primary (RPO {})",
                    state.system,
                    state.backup_set,
                    target.value,
                    format_duration(lag),
                    format_duration(rpo)
                ),
                facts: facts(&[
                    ("lag", format_duration(lag)),
                    ("rpo", format_duration(rpo)),
                    ("primary_last_good_at", primary.to_string()),
                    (
                        "last_copy_started_at",
                        copied.map_or("never".into(), |t| t.to_string()),
                    ),
                ]),
                since: copied.map_or(state.first_seen, |c| c + rpo).min(now),
                evidence: None,
            });
        }
    }
    obs
}

/// Capacity of one repository from its samples (oldest first).
pub fn capacity(
    subjects: &Subjects,
    catalog: &Catalog,
    settings: &AlertSettings,
    repository: &str,
    samples: &[(Timestamp, u64)],
) -> Observation {
    let mut obs = Observation::default();
    let used_key = format!("capacity-used:{repository}");
    let forecast_key = format!("capacity-forecast:{repository}");
    let capacity = catalog
        .repository(repository)
        .and_then(|r| r.capacity_bytes);
    let (Some(capacity), Some((at, used))) = (capacity, samples.last().copied()) else {
        return obs;
    };
    let threshold = capacity as f64 * settings.capacity_share;
    let percent = |b: f64| format!("{:.1} %", 100.0 * b / capacity as f64);
    let subject = subjects.subject(None, None, Some(repository));
    let share_text = format!("{:.0} %", settings.capacity_share * 100.0);
    if used as f64 >= threshold {
        obs.holding.push(Condition {
            key: used_key,
            rule: Rule::CapacityUsed,
            severity: severity(Rule::CapacityUsed, None, None),
            subject: subject.clone(),
            summary: format!(
                "repository {repository} is {} full ({} of {}), at or above {share_text}",
                percent(used as f64),
                human_bytes(used as f64),
                human_bytes(capacity as f64)
            ),
            facts: facts(&[
                ("used_bytes", used.to_string()),
                ("capacity_bytes", capacity.to_string()),
                ("used", percent(used as f64)),
                ("threshold", share_text.clone()),
            ]),
            since: at,
            evidence: Some(at.as_millisecond().to_string()),
        });
        obs.cleared
            .push((forecast_key, "the threshold is reached".into()));
        return obs;
    }
    obs.cleared
        .push((used_key, format!("usage fell to {}", percent(used as f64))));
    let horizon_end = at + settings.capacity_horizon;
    let window_start = at - settings.capacity_history;
    let recent: Vec<(Timestamp, u64)> = samples
        .iter()
        .copied()
        .filter(|(t, _)| *t >= window_start)
        .collect();
    let enough = recent.len() >= 3
        && recent
            .last()
            .zip(recent.first())
            .is_some_and(|(last, first)| {
                last.0.duration_since(first.0) >= settings.capacity_min_history
            });
    let forecast = enough
        .then(|| Trend::fit(&recent))
        .flatten()
        .and_then(|t| Some((t, t.reaches(threshold)?)));
    match forecast {
        Some((trend, eta)) if eta <= horizon_end => {
            let left = eta.duration_since(at).max(SignedDuration::ZERO);
            obs.holding.push(Condition {
                key: forecast_key,
                rule: Rule::CapacityForecast,
                severity: severity(Rule::CapacityForecast, None, None),
                subject,
                summary: format!(
                    "repository {repository} is forecast to reach {share_text} of its capacity on {} (in {}; growing {}/day, now {})",
                    eta.strftime("%Y-%m-%d"),
                    format_duration(left),
                    human_bytes(trend.bytes_per_day),
                    percent(used as f64)
                ),
                facts: facts(&[
                    ("forecast_at", eta.to_string()),
                    ("days_left", format!("{:.1}", left.as_secs_f64() / 86_400.0)),
                    ("growth_bytes_per_day", format!("{:.0}", trend.bytes_per_day)),
                    ("used_bytes", used.to_string()),
                    ("capacity_bytes", capacity.to_string()),
                    ("samples", recent.len().to_string()),
                ]),
                since: at,
                evidence: Some(eta.strftime("%Y-%m-%d").to_string()),
            });
        }
        _ => obs.cleared.push((
            forecast_key,
            "no longer forecast to fill within the horizon".into(),
        )),
    }
    obs
}

/// Haven's own database failing: the error, since when, and how many
/// records are held in memory meanwhile.
#[derive(Clone, Copy, Debug)]
pub struct StoreDown<'a> {
    /// The last error.
    pub error: &'a str,
    /// Since when.
    pub since: Timestamp,
    /// Records held in memory.
    pub pending_records: usize,
}

/// Haven's own database (`store-unavailable`): failing, or writable
/// again (`None`).
pub fn store(trouble: Option<StoreDown<'_>>) -> Observation {
    let key = Rule::StoreUnavailable.id().to_string();
    let Some(trouble) = trouble else {
        return Observation {
            cleared: vec![(key, "the database can be written again".into())],
            ..Observation::default()
        };
    };
    Observation {
        holding: vec![Condition {
            key,
            rule: Rule::StoreUnavailable,
            severity: Rule::StoreUnavailable.base_severity(),
            subject: Subject::default(),
            summary: format!(
                "Haven cannot write its database ({}); job results are kept in memory and retried",
                trouble.error
            ),
            facts: facts(&[
                ("error", trouble.error.to_string()),
                ("since", trouble.since.to_string()),
                ("pending_records", trouble.pending_records.to_string()),
            ]),
            since: trouble.since,
            evidence: None,
        }],
        ..Observation::default()
    }
}

/// A setup problem: what keeps Haven from protecting something, found
/// without running a job (a task the plan cannot schedule, a catalog that
/// does not load).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupProblem {
    /// Stable within its source (`system:erp-db`, `policy:nightly`).
    pub key: String,
    /// The system it leaves unprotected, if one.
    pub system: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for SetupProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// `setup:SOURCE:KEY`: one alert per problem a source (`plan`, `catalog`)
/// reports now; an active setup alert of that source that is no longer
/// reported has cleared.
pub fn setup(
    subjects: &Subjects,
    source: &str,
    problems: &[SetupProblem],
    active: &[Alert],
    now: Timestamp,
) -> Observation {
    let prefix = format!("{}:{source}:", Rule::Setup.id());
    let holding: Vec<Condition> = problems
        .iter()
        .map(|p| {
            let subject = subjects.subject(p.system.as_deref(), None, None);
            Condition {
                key: format!("{prefix}{}", p.key),
                rule: Rule::Setup,
                severity: severity(Rule::Setup, subject.tier, None),
                subject,
                summary: p.message.clone(),
                facts: facts(&[("source", source.to_string()), ("problem", p.key.clone())]),
                since: now,
                evidence: None,
            }
        })
        .collect();
    let cleared = active
        .iter()
        .filter(|a| a.is_active() && a.key.starts_with(&prefix))
        .filter(|a| !holding.iter().any(|c| c.key == a.key))
        .map(|a| (a.key.clone(), "the problem is gone".to_string()))
        .collect();
    Observation {
        holding,
        cleared,
        swept: Vec::new(),
    }
}

/// `drill-failed:SYSTEM`: a drill of the system failed; a passing one
/// resolves it.
pub fn drill(subjects: &Subjects, drill: &crate::drills::Drill) -> Observation {
    let key = format!("{}:{}", Rule::DrillFailed.id(), drill.system);
    if drill.verdict == crate::drills::Verdict::Pass {
        return Observation {
            cleared: vec![(key, format!("drill {} passed", drill.id))],
            ..Observation::default()
        };
    }
    let subject = subjects.subject(Some(&drill.system), None, None);
    Observation {
        holding: vec![Condition {
            key,
            rule: Rule::DrillFailed,
            severity: severity(Rule::DrillFailed, subject.tier, None),
            subject,
            summary: format!(
                "drill {} of {} failed: {}",
                drill.id,
                drill.system,
                drill.reasons.first().cloned().unwrap_or_default()
            ),
            facts: facts(&[
                ("drill", drill.id.to_string()),
                ("reasons", drill.reasons.join("; ")),
                ("measured_rto", format_duration(drill.measured_rto)),
                ("achieved_rpo", format_duration(drill.achieved_rpo)),
            ]),
            since: drill.ended_at,
            evidence: Some(drill.id.to_string()),
        }],
        ..Observation::default()
    }
}

/// `drill-overdue:SYSTEM` (a tier 1–2 system whose last passing drill
/// is older than its drill interval) and `predicted-rto-exceeded:SYSTEM`
/// (its drills predict, for its current size, a restore longer than its
/// RTO). `drills` in any order; `sizes`: each system's bytes now. Swept:
/// what no longer holds resolves.
pub fn drill_readiness(
    subjects: &Subjects,
    catalog: &Catalog,
    drills: &[crate::drills::Drill],
    sizes: &HashMap<String, u64>,
    now: Timestamp,
) -> Observation {
    use crate::drills::{Verdict, objectives_of, predicted_rto};
    let mut obs = Observation {
        swept: vec![Rule::DrillOverdue, Rule::PredictedRtoExceeded],
        ..Default::default()
    };
    for system in catalog.systems.iter().filter(|s| s.policy.is_some()) {
        let id = system.id.value.as_str();
        let mut mine: Vec<&crate::drills::Drill> =
            drills.iter().filter(|d| d.system == id).collect();
        mine.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        let subject = subjects.subject(Some(id), None, None);
        let interval = catalog.drill_interval_of_system(id);
        let last_pass = mine.iter().find(|d| d.verdict == Verdict::Pass);
        if catalog.tier_of_system(id) <= 2
            && let Some(pass) = last_pass
            && now.duration_since(pass.started_at) > interval
        {
            let rule = Rule::DrillOverdue;
            obs.holding.push(Condition {
                key: format!("{}:{id}", rule.id()),
                rule,
                severity: severity(rule, subject.tier, None),
                subject: subject.clone(),
                summary: format!(
                    "{id}: last passing drill {} on {}, longer ago than its drill interval ({}); drill it (`haven drill {id}`)",
                    pass.id,
                    pass.started_at.strftime("%Y-%m-%d"),
                    format_duration(interval)
                ),
                facts: facts(&[
                    ("drill", pass.id.to_string()),
                    ("interval", format_duration(interval)),
                ]),
                since: pass.started_at + interval,
                evidence: Some(pass.id.to_string()),
            });
        }
        let rto = objectives_of(catalog, id).rto;
        let predicted = sizes.get(id).and_then(|b| predicted_rto(&mine, *b));
        let basis = mine
            .iter()
            .find(|d| d.verdict == Verdict::Pass && d.bytes > 0);
        if let (Some(rto), Some(predicted), Some(basis)) = (rto, predicted, basis)
            && predicted > rto
        {
            let rule = Rule::PredictedRtoExceeded;
            obs.holding.push(Condition {
                key: format!("{}:{id}", rule.id()),
                rule,
                severity: severity(rule, subject.tier, None),
                subject,
                summary: format!(
                    "{id}: restoring it now would take about {} (from drill {}'s throughput and its current size), over its RTO of {}",
                    format_duration(predicted),
                    basis.id,
                    format_duration(rto)
                ),
                facts: facts(&[
                    ("predicted_rto", format_duration(predicted)),
                    ("rto", format_duration(rto)),
                    ("drill", basis.id.to_string()),
                ]),
                since: now,
                evidence: Some(basis.id.to_string()),
            });
        }
    }
    obs
}

/// `recovery-halted:RUN` (a live run's critical step failed and waits
/// for a person to retry or skip it) and `checkpoint-waiting:RUN:STEP` (a
/// checkpoint has waited longer than `wait`). `runs`: the live runs (not
/// refused, completed or interrupted). Swept: what no longer holds (the
/// step retried, skipped or confirmed; the run ended) resolves.
pub fn recovery(
    catalog: &Catalog,
    runs: &[crate::recovery::run::RunView],
    wait: SignedDuration,
    now: Timestamp,
) -> Observation {
    use crate::recovery::run::StepState;
    let mut holding = Vec::new();
    for view in runs {
        let run = &view.run;
        let services = run.plan.services();
        let tier = services
            .iter()
            .filter_map(|s| catalog.service(s).map(|s| s.tier.value))
            .min();
        let subject = Subject {
            service: services.first().map(|s| (*s).to_string()),
            tier,
            ..Subject::default()
        };
        let mut raise = |rule: Rule, key: String, summary: String, since: Timestamp, step: u32| {
            holding.push(Condition {
                key,
                rule,
                severity: rule.base_severity(),
                subject: subject.clone(),
                summary,
                facts: facts(&[
                    ("run", run.id.to_string()),
                    ("step", step.to_string()),
                    ("services", services.join(", ")),
                ]),
                since,
                evidence: Some(format!("{}:{step}", run.id)),
            });
        };
        for step in view.waiting_for_people() {
            let since = step.ended_at.or(step.started_at).unwrap_or(run.started_at);
            if step.state == StepState::Failed {
                raise(
                    Rule::RecoveryHalted,
                    format!("{}:{}", Rule::RecoveryHalted.id(), run.id),
                    format!(
                        "recovery run {} is halted: step {} ({}) failed: {}; retry or skip it",
                        run.id, step.number, step.name, step.detail
                    ),
                    since,
                    step.number,
                );
            } else if now.duration_since(since) > wait {
                raise(
                    Rule::CheckpointWaiting,
                    format!(
                        "{}:{}:{}",
                        Rule::CheckpointWaiting.id(),
                        run.id,
                        step.number
                    ),
                    format!(
                        "recovery run {} has waited {} at checkpoint {}: {}",
                        run.id,
                        format_duration(now.duration_since(since)),
                        step.number,
                        step.detail
                    ),
                    since,
                    step.number,
                );
            }
        }
    }
    Observation {
        holding,
        cleared: Vec::new(),
        swept: vec![Rule::RecoveryHalted, Rule::CheckpointWaiting],
    }
}

/// `break-glass:REQUEST` (critical) for every change an admin made
/// without approval and nobody has reviewed yet; the summary says when
/// the review is due (or how long it is overdue). Swept: a reviewed one
/// resolves.
pub fn break_glass(requests: &[crate::approval::ApprovalRequest], now: Timestamp) -> Observation {
    let holding = requests
        .iter()
        .filter(|r| r.awaits_review())
        .map(|r| {
            let due = r.review_due.unwrap_or(r.requested_at);
            let when = if now >= due {
                format!("overdue by {}", format_duration(now.duration_since(due)))
            } else {
                format!("due by {due}")
            };
            Condition {
                key: format!("{}:{}", Rule::BreakGlass.id(), r.id),
                rule: Rule::BreakGlass,
                severity: Rule::BreakGlass.base_severity(),
                subject: Subject::default(),
                summary: format!(
                    "{} made {} on {} without approval (break-glass: {}); its review is {when}: `haven request review {}`",
                    r.requested_by,
                    r.action,
                    r.target,
                    r.reason.as_deref().unwrap_or("no reason"),
                    r.id
                ),
                facts: facts(&[
                    ("request", r.id.to_string()),
                    ("action", r.action.clone()),
                    ("by", r.requested_by.clone()),
                ]),
                since: r.requested_at,
                evidence: Some(format!("request:{}", r.id)),
            }
        })
        .collect();
    Observation {
        holding,
        cleared: Vec::new(),
        swept: vec![Rule::BreakGlass],
    }
}

/// `security:login-failures` (major) while at least `burst` logins failed
/// within the last `window` (against any accounts: someone guessing
/// passwords); resolved when the window holds fewer.
pub fn login_failures(
    failures: u64,
    burst: u32,
    window: SignedDuration,
    now: Timestamp,
) -> Observation {
    let mut holding = Vec::new();
    if failures >= u64::from(burst) {
        holding.push(Condition {
            key: format!("{}:login-failures", Rule::Security.id()),
            rule: Rule::Security,
            severity: Rule::Security.base_severity(),
            subject: Subject::default(),
            summary: format!(
                "{failures} failed logins within {}: someone may be guessing passwords (accounts lock after repeated failures; the audit log's session.login entries say which accounts and from where)",
                format_duration(window)
            ),
            facts: facts(&[("failures", failures.to_string())]),
            since: now,
            evidence: None,
        });
    }
    Observation {
        holding,
        cleared: Vec::new(),
        swept: vec![Rule::Security],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Located, Origin, Repository};

    fn with_repository(capacity: u64) -> Catalog {
        let at = |v: &str| Located::new(v.to_string(), Origin::default());
        Catalog {
            repositories: vec![Repository {
                id: Located::new("main".into(), Origin::default()),
                url: at("/srv/main"),
                jurisdiction: None,
                region: None,
                storage_tier: None,
                media: None,
                capacity_bytes: Some(capacity),
                password: None,
            }],
            ..Catalog::default()
        }
    }

    /// Two samples seconds apart on a fresh install forecast "80 % in a
    /// few minutes": a forecast needs three samples over the minimum
    /// history before it may alert; the capacity rule itself does not.
    #[test]
    fn a_capacity_forecast_needs_enough_history() {
        let catalog = with_repository(1_000);
        let subjects = Subjects::of(&catalog);
        let settings = AlertSettings::default();
        let t0: Timestamp = "2026-11-01T00:00:00Z".parse().expect("ts");
        let s = |secs: i64, used: u64| (t0 + SignedDuration::from_secs(secs), used);
        let forecasts = |samples: &[(Timestamp, u64)]| {
            capacity(&subjects, &catalog, &settings, "main", samples)
                .holding
                .iter()
                .filter(|c| c.rule == Rule::CapacityForecast)
                .count()
        };
        assert_eq!(forecasts(&[s(0, 500), s(30, 510)]), 0, "seconds apart");
        let day = 86_400;
        assert_eq!(
            forecasts(&[s(0, 500), s(day, 550), s(2 * day, 600)]),
            0,
            "2 days < 3 days"
        );
        // Three samples over four days, growing 50 a day: 800 in 4 more days.
        assert_eq!(forecasts(&[s(0, 500), s(2 * day, 600), s(4 * day, 700)]), 1);
        let used = capacity(&subjects, &catalog, &settings, "main", &[s(0, 900)]);
        assert!(used.holding.iter().any(|c| c.rule == Rule::CapacityUsed));
    }
}
