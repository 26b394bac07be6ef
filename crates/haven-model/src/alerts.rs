//! Alerts: the rules that watch protection degrade, how severe each is,
//! and the lifecycle of an alert (open → acknowledged → resolved).
//!
//! An alert stands for one *condition* (a dedup key such as
//! `job-failed:erp-db/db`): while the condition holds, new evidence of it
//! adds an occurrence to the same alert instead of opening another; when
//! it clears, the alert resolves itself. [`reconcile`] is the whole
//! lifecycle as a pure function of the open alerts and what was observed.
//!
//! Rule ids, severities and states are part of the JSON interface and of
//! the SIEM export (`docs/alerts.md`): never rename them.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::jobs::FailureClass;

/// What an alert watches. The id (`job-failed`) is stable.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// The last backup of a set failed.
    JobFailed,
    /// The last backup of a set left a restore point but not everything
    /// (unreadable files, a failed post-hook).
    JobPartial,
    /// The same failure class failed too often in a row: retries stopped.
    SystemicFailure,
    /// A system's last good backup is older than 80 % of its RPO.
    RpoAtRisk,
    /// … older than its RPO.
    RpoViolated,
    /// … older than 150 % of its RPO: the system is quarantined.
    RpoQuarantined,
    /// A backup ran longer than its policy's `max_duration`.
    DurationOverMax,
    /// A backup's duration is far from the system's own baseline (too
    /// long, or suspiciously short).
    DurationAnomaly,
    /// The bytes a backup changed are far above or below the baseline
    /// (a burst can be ransomware encrypting files; a drop, a source that
    /// vanished).
    VolumeAnomaly,
    /// A job started long after it was due.
    StartDelay,
    /// A repository's integrity check failed.
    IntegrityCheckFailed,
    /// A secondary repository is behind its primary by more than the RPO.
    CopyLag,
    /// A repository is at or above its capacity threshold.
    CapacityUsed,
    /// A repository is forecast to reach its capacity threshold soon.
    CapacityForecast,
    /// Haven's own database cannot be written (locked, full, failing):
    /// evidence is kept in memory and the server is degraded.
    StoreUnavailable,
    /// Something set up wrongly keeps Haven from protecting data: a task
    /// that cannot be scheduled, a catalog that does not load (later: a
    /// repository that cannot be reached, a secret that cannot be read).
    Setup,
    /// A system's last drill failed (restore, a check, or an objective
    /// missed); resolved by the next passing drill.
    DrillFailed,
    /// A tier 1–2 system's last passing drill is older than its drill
    /// interval; resolved by the next pass.
    DrillOverdue,
    /// The RTO a system's drills predict for its current size exceeds
    /// its RTO: the next disaster would miss it.
    PredictedRtoExceeded,
    /// A recovery run is halted: a critical step failed and waits for a
    /// person to retry or skip it.
    RecoveryHalted,
    /// A recovery's checkpoint has waited for a person longer than
    /// `[alerts] checkpoint_wait`.
    CheckpointWaiting,
    /// An admin made a four-eyes change without approval (break-glass):
    /// it stands until the change is reviewed.
    BreakGlass,
    /// Failed logins came in a burst (someone guessing passwords).
    Security,
}

impl Rule {
    /// Every rule, in documentation order.
    pub const ALL: [Rule; 23] = [
        Rule::JobFailed,
        Rule::JobPartial,
        Rule::SystemicFailure,
        Rule::RpoAtRisk,
        Rule::RpoViolated,
        Rule::RpoQuarantined,
        Rule::DurationOverMax,
        Rule::DurationAnomaly,
        Rule::VolumeAnomaly,
        Rule::StartDelay,
        Rule::IntegrityCheckFailed,
        Rule::CopyLag,
        Rule::CapacityUsed,
        Rule::CapacityForecast,
        Rule::StoreUnavailable,
        Rule::Setup,
        Rule::DrillFailed,
        Rule::DrillOverdue,
        Rule::PredictedRtoExceeded,
        Rule::RecoveryHalted,
        Rule::CheckpointWaiting,
        Rule::BreakGlass,
        Rule::Security,
    ];

    /// The stable rule id.
    pub fn id(self) -> &'static str {
        match self {
            Rule::JobFailed => "job-failed",
            Rule::JobPartial => "job-partial",
            Rule::SystemicFailure => "systemic-failure",
            Rule::RpoAtRisk => "rpo-at-risk",
            Rule::RpoViolated => "rpo-violated",
            Rule::RpoQuarantined => "rpo-quarantined",
            Rule::DurationOverMax => "duration-over-max",
            Rule::DurationAnomaly => "duration-anomaly",
            Rule::VolumeAnomaly => "volume-anomaly",
            Rule::StartDelay => "start-delay",
            Rule::IntegrityCheckFailed => "integrity-check-failed",
            Rule::CopyLag => "copy-lag",
            Rule::CapacityUsed => "capacity-used",
            Rule::CapacityForecast => "capacity-forecast",
            Rule::StoreUnavailable => "store-unavailable",
            Rule::Setup => "setup",
            Rule::DrillFailed => "drill-failed",
            Rule::DrillOverdue => "drill-overdue",
            Rule::PredictedRtoExceeded => "predicted-rto-exceeded",
            Rule::RecoveryHalted => "recovery-halted",
            Rule::CheckpointWaiting => "checkpoint-waiting",
            Rule::BreakGlass => "break-glass",
            Rule::Security => "security",
        }
    }

    /// Parse a rule id.
    pub fn parse(text: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == text)
    }

    /// The severity before tier and failure class are considered.
    pub fn base_severity(self) -> Severity {
        match self {
            Rule::SystemicFailure
            | Rule::RpoQuarantined
            | Rule::IntegrityCheckFailed
            | Rule::StoreUnavailable
            | Rule::RecoveryHalted
            | Rule::BreakGlass => Severity::Critical,
            Rule::JobFailed
            | Rule::RpoViolated
            | Rule::VolumeAnomaly
            | Rule::CopyLag
            | Rule::CapacityUsed
            | Rule::Setup
            | Rule::DrillFailed
            | Rule::PredictedRtoExceeded
            | Rule::CheckpointWaiting
            | Rule::Security => Severity::Major,
            Rule::JobPartial
            | Rule::RpoAtRisk
            | Rule::DurationOverMax
            | Rule::DurationAnomaly
            | Rule::StartDelay
            | Rule::CapacityForecast
            | Rule::DrillOverdue => Severity::Warning,
        }
    }
}

/// How urgent an alert is, least urgent first.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Worth knowing; nobody needs to act now.
    Info,
    /// Protection is degrading; act during working hours.
    Warning,
    /// Protection is failing; act today.
    Major,
    /// Data is at risk now; act immediately, day or night.
    Critical,
}

impl Severity {
    /// Every severity, least urgent first.
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Warning,
        Severity::Major,
        Severity::Critical,
    ];

    /// The severity as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }

    /// Parse a stored severity.
    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == text)
    }

    fn raised(self) -> Severity {
        match self {
            Severity::Info => Severity::Warning,
            Severity::Warning => Severity::Major,
            Severity::Major | Severity::Critical => Severity::Critical,
        }
    }

    fn lowered(self) -> Severity {
        match self {
            Severity::Info | Severity::Warning => Severity::Info,
            Severity::Major => Severity::Warning,
            Severity::Critical => Severity::Major,
        }
    }
}

/// The severity of an alert of `rule` for a service of `tier` (1 most
/// critical; `None` when no service depends on the subject), failing with
/// `class`:
/// - tier 1 raises the rule's severity one level, tier 4 lowers it;
/// - a failure that points at tampering or lost access (data-integrity,
///   authentication) is at least major: retries will not fix it.
pub fn severity(rule: Rule, tier: Option<u8>, class: Option<FailureClass>) -> Severity {
    let mut severity = rule.base_severity();
    if matches!(
        class,
        Some(FailureClass::DataIntegrity | FailureClass::Authentication)
    ) {
        severity = severity.max(Severity::Major);
    }
    match tier {
        Some(1) => severity.raised(),
        Some(4) => severity.lowered(),
        _ => severity,
    }
}

/// What an alert is about.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Subject {
    /// The most critical service affected (lowest tier), which alerts
    /// are grouped by.
    pub service: Option<String>,
    /// Its tier.
    pub tier: Option<u8>,
    /// The system.
    pub system: Option<String>,
    /// The backup set.
    pub backup_set: Option<String>,
    /// The repository.
    pub repository: Option<String>,
}

/// A condition observed now: the rule holds for this subject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// The dedup key: one alert per key while it holds.
    pub key: String,
    /// The rule.
    pub rule: Rule,
    /// How urgent.
    pub severity: Severity,
    /// What it is about.
    pub subject: Subject,
    /// One line for people (mail subjects, chat, the CLI).
    pub summary: String,
    /// Facts behind it (measured values, baselines, forecasts), shown
    /// with the alert and available to templates.
    pub facts: BTreeMap<String, String>,
    /// When the condition began (the failed job's end, the moment the
    /// RPO age crossed the threshold): the start of MTTD.
    pub since: Timestamp,
    /// The evidence (a job id, a measurement): new evidence of a held
    /// condition counts as another occurrence.
    pub evidence: Option<String>,
}

/// Where an alert is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AlertState {
    /// Nobody has taken it yet: escalation runs.
    Open,
    /// Someone took it: escalation stops; it stays until resolved.
    Acknowledged,
    /// The condition cleared or someone resolved it.
    Resolved,
}

impl AlertState {
    /// The state as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Open => "open",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }

    /// Parse a stored state.
    pub fn parse(text: &str) -> Option<AlertState> {
        Some(match text {
            "open" => AlertState::Open,
            "acknowledged" => AlertState::Acknowledged,
            "resolved" => AlertState::Resolved,
            _ => return None,
        })
    }
}

/// Where an alert's escalation stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EscalationProgress {
    /// The escalation policy.
    pub policy: String,
    /// The step last notified (0-based).
    pub step: usize,
    /// How many times that step was repeated so far.
    pub round: u32,
    /// When the next notification is due (`None`: the policy is done).
    pub next_at: Option<Timestamp>,
}

impl std::fmt::Display for EscalationProgress {
    /// `oncall step 2 (round 1), next at …`, or `oncall done`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.next_at {
            Some(next) => write!(
                f,
                "{} step {} (round {}), next at {next}",
                self.policy,
                self.step + 1,
                self.round + 1
            ),
            None => write!(f, "{} done", self.policy),
        }
    }
}

/// An alert as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Alert {
    /// The alert's number.
    pub id: i64,
    /// Its dedup key.
    pub key: String,
    /// The rule.
    pub rule: Rule,
    /// How urgent (the highest seen while open).
    pub severity: Severity,
    /// What it is about.
    pub subject: Subject,
    /// One line.
    pub summary: String,
    /// Facts of the latest occurrence.
    pub facts: BTreeMap<String, String>,
    /// Where it is in its life.
    pub state: AlertState,
    /// When the condition began.
    pub condition_since: Timestamp,
    /// When the alert was raised.
    pub first_seen: Timestamp,
    /// When the condition was last observed.
    pub last_seen: Timestamp,
    /// How many times it was observed with new evidence.
    pub occurrences: u32,
    /// The latest evidence.
    pub evidence: Option<String>,
    /// Raised inside a maintenance window (that window's id): recorded,
    /// not notified until the window ends.
    pub suppressed_by: Option<String>,
    /// When people were first notified.
    pub notified_at: Option<Timestamp>,
    /// Escalation progress.
    pub escalation: Option<EscalationProgress>,
    /// When it was acknowledged.
    pub acknowledged_at: Option<Timestamp>,
    /// By whom: the authenticated identity.
    pub acknowledged_by: Option<String>,
    /// The name the person declared, unverified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_declared: Option<String>,
    /// When it was resolved.
    pub resolved_at: Option<Timestamp>,
    /// By whom (`haven` when the condition cleared by itself).
    pub resolved_by: Option<String>,
    /// The name the person declared, unverified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_declared: Option<String>,
    /// Why.
    pub resolution: Option<String>,
}

impl Alert {
    /// Open or acknowledged.
    pub fn is_active(&self) -> bool {
        self.state != AlertState::Resolved
    }

    /// Mean time to detect, for this alert: condition start → alert.
    pub fn time_to_detect(&self) -> SignedDuration {
        self.first_seen
            .duration_since(self.condition_since)
            .max(SignedDuration::ZERO)
    }

    /// Alert → acknowledgement.
    pub fn time_to_acknowledge(&self) -> Option<SignedDuration> {
        Some(self.acknowledged_at?.duration_since(self.first_seen))
    }

    /// Condition start → resolution.
    pub fn time_to_resolve(&self) -> Option<SignedDuration> {
        Some(self.resolved_at?.duration_since(self.condition_since))
    }
}

/// One attempt to deliver a notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Delivery {
    /// The attempt's number.
    pub id: i64,
    /// The alert (`None` for `haven notify test`).
    pub alert_id: Option<i64>,
    /// The channel id.
    pub channel: String,
    /// Its type (`email`, `webhook`, …).
    pub channel_type: String,
    /// The escalation step it belongs to.
    pub step: Option<usize>,
    /// 1 for the first try on this channel, 2 for the first retry, …
    pub attempt: u32,
    /// When it ended.
    pub at: Timestamp,
    /// Did the channel accept the message?
    pub ok: bool,
    /// Why not (never holds a secret).
    pub error: Option<String>,
}

/// Where a notification goes and what it says: the watch decides it,
/// the notifier delivers it.
#[derive(Clone, Debug)]
pub struct Notification {
    /// The alert (`None` for tests).
    pub alert: Option<Alert>,
    /// The escalation step.
    pub step: Option<usize>,
    /// Channels in failover order.
    pub channels: Vec<String>,
}

/// A notification on its way: kept from the moment it is queued until a
/// channel took it or every channel failed, so that a server stopped in
/// the middle (during a retry's backoff, say) resumes it where it stood.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingNotification {
    /// Assigned when queued.
    pub id: i64,
    /// The alert.
    pub alert_id: i64,
    /// The escalation step.
    pub step: Option<usize>,
    /// Channels in failover order.
    pub channels: Vec<String>,
    /// The channel (index into `channels`) to try next.
    pub channel: usize,
    /// Its next attempt (1 = first try).
    pub attempt: u32,
    /// Not before then (a retry's backoff).
    pub not_before: Timestamp,
    /// When it was queued.
    pub queued_at: Timestamp,
}

/// What observing did to the alerts.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A new condition: raise an alert.
    Open(Condition),
    /// A held condition seen again; `new_evidence` counts an occurrence.
    Seen {
        /// The alert.
        id: i64,
        /// What was observed.
        condition: Condition,
        /// Was the evidence new (another occurrence)?
        new_evidence: bool,
    },
    /// The condition cleared: resolve the alert.
    Clear {
        /// The alert.
        id: i64,
        /// Why it cleared.
        reason: String,
    },
}

/// What was observed in one evaluation.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// Conditions that hold now.
    pub holding: Vec<Condition>,
    /// Keys observed not to hold (e.g. a later backup of the set
    /// succeeded), with the reason.
    pub cleared: Vec<(String, String)>,
    /// Rules evaluated in full: any active alert of these rules whose
    /// key is not in `holding` has cleared.
    pub swept: Vec<Rule>,
}

/// The lifecycle: compare what holds now with the active alerts.
pub fn reconcile(active: &[Alert], observation: &Observation) -> Vec<Change> {
    let by_key: HashMap<&str, &Alert> = active
        .iter()
        .filter(|a| a.is_active())
        .map(|a| (a.key.as_str(), a))
        .collect();
    let mut changes = Vec::new();
    let mut holding: HashSet<&str> = HashSet::new();
    for condition in &observation.holding {
        if !holding.insert(condition.key.as_str()) {
            continue; // observed twice in one evaluation: one occurrence
        }
        match by_key.get(condition.key.as_str()) {
            None => changes.push(Change::Open(condition.clone())),
            Some(alert) => changes.push(Change::Seen {
                id: alert.id,
                new_evidence: condition.evidence.is_some() && condition.evidence != alert.evidence,
                condition: condition.clone(),
            }),
        }
    }
    let mut cleared: HashSet<i64> = HashSet::new();
    for (key, reason) in &observation.cleared {
        if holding.contains(key.as_str()) {
            continue;
        }
        if let Some(alert) = by_key.get(key.as_str())
            && cleared.insert(alert.id)
        {
            changes.push(Change::Clear {
                id: alert.id,
                reason: reason.clone(),
            });
        }
    }
    for alert in active.iter().filter(|a| a.is_active()) {
        if observation.swept.contains(&alert.rule)
            && !holding.contains(alert.key.as_str())
            && cleared.insert(alert.id)
        {
            changes.push(Change::Clear {
                id: alert.id,
                reason: "the condition no longer holds".into(),
            });
        }
    }
    changes
}

/// An alert raised from a condition at `now`.
pub fn raise(id: i64, condition: Condition, now: Timestamp) -> Alert {
    Alert {
        id,
        key: condition.key,
        rule: condition.rule,
        severity: condition.severity,
        subject: condition.subject,
        summary: condition.summary,
        facts: condition.facts,
        state: AlertState::Open,
        condition_since: condition.since.min(now),
        first_seen: now,
        last_seen: now,
        occurrences: 1,
        evidence: condition.evidence,
        suppressed_by: None,
        notified_at: None,
        escalation: None,
        acknowledged_at: None,
        acknowledged_by: None,
        acknowledged_declared: None,
        resolved_at: None,
        resolved_by: None,
        resolved_declared: None,
        resolution: None,
    }
}

impl Alert {
    /// The alert after its condition was seen again. The severity only
    /// rises while the alert is active (it never drops silently).
    pub fn seen(&self, condition: &Condition, new_evidence: bool, now: Timestamp) -> Alert {
        let mut next = self.clone();
        next.last_seen = now;
        next.severity = self.severity.max(condition.severity);
        next.summary.clone_from(&condition.summary);
        next.facts.clone_from(&condition.facts);
        if new_evidence {
            next.occurrences += 1;
            next.evidence.clone_from(&condition.evidence);
        }
        next
    }

    /// The alert resolved at `now` by `by`.
    pub fn resolved(&self, now: Timestamp, by: &crate::actor::Actor, reason: &str) -> Alert {
        let mut next = self.clone();
        next.state = AlertState::Resolved;
        next.resolved_at = Some(now);
        next.resolved_by = Some(by.who.clone());
        next.resolved_declared.clone_from(&by.declared);
        next.resolution = Some(reason.into());
        if let Some(e) = &mut next.escalation {
            e.next_at = None;
        }
        next
    }

    /// The alert acknowledged at `now` by `by`: escalation stops.
    pub fn acknowledged(&self, now: Timestamp, by: &crate::actor::Actor) -> Alert {
        let mut next = self.clone();
        next.state = AlertState::Acknowledged;
        next.acknowledged_at = Some(now);
        next.acknowledged_by = Some(by.who.clone());
        next.acknowledged_declared.clone_from(&by.declared);
        if let Some(e) = &mut next.escalation {
            e.next_at = None;
        }
        next
    }
}

/// Mean times over a set of alerts (MTTD, MTTA, MTTR), `None` where no
/// alert has the measure.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeanTimes {
    /// Mean time to detect.
    pub mttd: Option<SignedDuration>,
    /// Mean time to acknowledge.
    pub mtta: Option<SignedDuration>,
    /// Mean time to resolve.
    pub mttr: Option<SignedDuration>,
    /// How many alerts.
    pub alerts: usize,
}

fn mean(values: impl Iterator<Item = SignedDuration>) -> Option<SignedDuration> {
    let (sum, n) = values.fold((0i128, 0i128), |(s, n), d| (s + d.as_millis(), n + 1));
    (n > 0).then(|| SignedDuration::from_millis((sum / n) as i64))
}

/// MTTD, MTTA and MTTR of `alerts`.
pub fn mean_times(alerts: &[Alert]) -> MeanTimes {
    MeanTimes {
        mttd: mean(alerts.iter().map(Alert::time_to_detect)),
        mtta: mean(alerts.iter().filter_map(Alert::time_to_acknowledge)),
        mttr: mean(alerts.iter().filter_map(Alert::time_to_resolve)),
        alerts: alerts.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_mins(minutes)
    }

    fn condition(key: &str, rule: Rule, evidence: Option<&str>) -> Condition {
        Condition {
            key: key.into(),
            rule,
            severity: rule.base_severity(),
            subject: Subject::default(),
            summary: format!("{key} holds"),
            facts: BTreeMap::new(),
            since: at(0),
            evidence: evidence.map(String::from),
        }
    }

    #[test]
    fn severity_follows_rule_tier_and_class() {
        let cases = [
            (Rule::JobFailed, Some(2), None, Severity::Major),
            (Rule::JobFailed, Some(1), None, Severity::Critical),
            (Rule::JobFailed, Some(4), None, Severity::Warning),
            (Rule::JobPartial, Some(3), None, Severity::Warning),
            (
                Rule::JobPartial,
                Some(3),
                Some(FailureClass::DataIntegrity),
                Severity::Major,
            ),
            (
                Rule::JobFailed,
                Some(4),
                Some(FailureClass::Authentication),
                Severity::Warning,
            ),
            (Rule::RpoQuarantined, Some(1), None, Severity::Critical),
            (Rule::CapacityForecast, None, None, Severity::Warning),
            (Rule::StartDelay, Some(4), None, Severity::Info),
        ];
        for (rule, tier, class, expected) in cases {
            assert_eq!(
                severity(rule, tier, class),
                expected,
                "{rule:?} tier {tier:?} {class:?}"
            );
        }
    }

    #[test]
    fn rule_ids_round_trip_and_are_unique() {
        let ids: HashSet<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
        assert_eq!(ids.len(), Rule::ALL.len());
        for rule in Rule::ALL {
            assert_eq!(Rule::parse(rule.id()), Some(rule));
            assert_eq!(
                serde_json::to_string(&rule).ok(),
                Some(format!("\"{}\"", rule.id()))
            );
        }
    }

    #[test]
    fn one_alert_per_condition_counts_occurrences_and_clears() {
        // First observation: opens.
        let obs = Observation {
            holding: vec![condition("job-failed:a/db", Rule::JobFailed, Some("7"))],
            ..Default::default()
        };
        let changes = reconcile(&[], &obs);
        let Change::Open(c) = &changes[0] else {
            panic!("{changes:?}")
        };
        let alert = raise(1, c.clone(), at(5));
        assert_eq!(alert.time_to_detect(), SignedDuration::from_mins(5));

        // The same evidence again: seen, not a new occurrence.
        let changes = reconcile(std::slice::from_ref(&alert), &obs);
        assert!(matches!(
            &changes[..],
            [Change::Seen {
                id: 1,
                new_evidence: false,
                ..
            }]
        ));

        // A second failed job: another occurrence of the same alert.
        let obs2 = Observation {
            holding: vec![condition("job-failed:a/db", Rule::JobFailed, Some("9"))],
            ..Default::default()
        };
        let changes = reconcile(std::slice::from_ref(&alert), &obs2);
        let Change::Seen {
            condition,
            new_evidence: true,
            ..
        } = &changes[0]
        else {
            panic!("{changes:?}")
        };
        let alert = alert.seen(condition, true, at(60));
        assert_eq!(alert.occurrences, 2);
        assert_eq!(alert.last_seen, at(60));

        // The next backup succeeds: cleared.
        let obs3 = Observation {
            cleared: vec![("job-failed:a/db".into(), "backup 10 succeeded".into())],
            ..Default::default()
        };
        let changes = reconcile(std::slice::from_ref(&alert), &obs3);
        assert_eq!(
            changes,
            vec![Change::Clear {
                id: 1,
                reason: "backup 10 succeeded".into()
            }]
        );
        let alert = alert.resolved(
            at(120),
            &crate::actor::Actor::haven(),
            "backup 10 succeeded",
        );
        assert_eq!(
            alert.time_to_resolve(),
            Some(SignedDuration::from_mins(120))
        );
        // Resolved alerts are history: the condition again is a new alert.
        let changes = reconcile(std::slice::from_ref(&alert), &obs2);
        assert!(matches!(&changes[..], [Change::Open(_)]));
    }

    #[test]
    fn a_swept_rule_clears_what_no_longer_holds_and_keeps_the_rest() {
        let a = raise(
            1,
            condition("rpo-violated:a", Rule::RpoViolated, None),
            at(0),
        );
        let b = raise(
            2,
            condition("rpo-violated:b", Rule::RpoViolated, None),
            at(0),
        );
        let other = raise(3, condition("job-failed:c/x", Rule::JobFailed, None), at(0));
        let obs = Observation {
            holding: vec![condition("rpo-violated:b", Rule::RpoViolated, None)],
            swept: vec![Rule::RpoViolated, Rule::RpoAtRisk],
            ..Default::default()
        };
        let changes = reconcile(&[a, b, other], &obs);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(matches!(changes[0], Change::Seen { id: 2, .. }));
        assert!(matches!(changes[1], Change::Clear { id: 1, .. }));
    }

    #[test]
    fn acknowledging_stops_escalation_and_mean_times_are_measured() {
        let mut alert = raise(1, condition("k", Rule::CopyLag, None), at(10));
        alert.escalation = Some(EscalationProgress {
            policy: "p".into(),
            step: 0,
            round: 0,
            next_at: Some(at(25)),
        });
        let acked = alert.acknowledged(at(16), &crate::actor::Actor::new("api-token", Some("ana")));
        assert_eq!(acked.state, AlertState::Acknowledged);
        assert_eq!(acked.escalation.as_ref().and_then(|e| e.next_at), None);
        assert!(acked.is_active());
        let done = acked.resolved(
            at(70),
            &crate::actor::Actor::new("api-token", Some("ana")),
            "fixed the mount",
        );
        let other = raise(2, condition("k2", Rule::CopyLag, None), at(30));
        let times = mean_times(&[done, other]);
        // detect: 10 and 30 min → 20; acknowledge: 6 min; resolve: 70 min.
        assert_eq!(times.mttd, Some(SignedDuration::from_mins(20)));
        assert_eq!(times.mtta, Some(SignedDuration::from_mins(6)));
        assert_eq!(times.mttr, Some(SignedDuration::from_mins(70)));
    }
}
