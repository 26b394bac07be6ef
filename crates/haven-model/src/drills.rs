//! Drills: a restore into a sandbox, verified by the system's checks,
//! with every step timed. What a drill measured and the verdict it earns
//! against the objectives are decided here, without I/O.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::catalog::duration::format_duration;

/// What a step of a drill did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// Restore the snapshot into the sandbox (every blob verified as it is
    /// read).
    Restore,
    /// Load a dump into a service in the sandbox.
    Load,
    /// Start the service in the sandbox.
    Start,
    /// One of the system's checks.
    Check,
}

/// One timed step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Step {
    /// What it did.
    pub kind: StepKind,
    /// Which (`restore set default`, `check 1: command pg_isready`).
    pub name: String,
    /// When it started.
    pub started_at: Timestamp,
    /// How long it took.
    pub duration: SignedDuration,
    /// Whether it succeeded.
    pub ok: bool,
    /// What it found (an output excerpt, the error).
    pub detail: String,
}

/// Pass or fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Restored, every check passed, objectives met.
    Pass,
    /// Something did not hold (see the reasons).
    Fail,
}

impl Verdict {
    /// As shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
        }
    }
}

/// The objectives a drill of a system is judged against: the strictest of
/// the services that need it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Objectives {
    /// Recovery time objective.
    pub rto: Option<SignedDuration>,
    /// Recovery point objective.
    pub rpo: Option<SignedDuration>,
    /// Maximum tolerable downtime.
    pub mtd: Option<SignedDuration>,
}

/// A drill of one system, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Drill {
    /// The drill's number (0 before it is stored).
    pub id: i64,
    /// The system drilled.
    pub system: String,
    /// Who or what started it (`local:ana`, `schedule`).
    pub by: String,
    /// The snapshot restored.
    pub snapshot_id: String,
    /// When that snapshot was taken.
    pub snapshot_time: Timestamp,
    /// The kind of sandbox (`files`, `command`).
    pub sandbox: String,
    /// When the drill started.
    pub started_at: Timestamp,
    /// When it ended.
    pub ended_at: Timestamp,
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// Restore to verified: the sum of the steps.
    pub measured_rto: SignedDuration,
    /// Drill start minus the point the restored data reaches.
    pub achieved_rpo: SignedDuration,
    /// Bytes restored.
    pub bytes: u64,
    /// The objectives judged against.
    pub objectives: Objectives,
    /// The verdict.
    pub verdict: Verdict,
    /// Why it failed (empty for a pass).
    pub reasons: Vec<String>,
    /// A fingerprint of what the drill depends on in the catalog (the
    /// system's kind, sets, checks, recovery point query): a change means
    /// the pass no longer proves the system as it is declared now.
    #[serde(default)]
    pub config: String,
}

/// How well a service (or system) is proven recoverable, worst first.
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
pub enum Readiness {
    /// The last drill failed.
    Failed,
    /// Never drilled.
    NotVerified,
    /// A drill passed, but the catalog changed since or the drill
    /// interval ran out.
    NeedsVerification,
    /// A drill passed within the drill interval, on the catalog as it is.
    Verified,
}

impl Readiness {
    /// As shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Readiness::Failed => "failed",
            Readiness::NotVerified => "not-verified",
            Readiness::NeedsVerification => "needs-verification",
            Readiness::Verified => "verified",
        }
    }
}

/// How often a tier must be proven by default: tier 1 every 30 days,
/// tier 2 every 90, the rest every 365.
pub fn drill_interval(tier: u8) -> SignedDuration {
    let days = match tier {
        1 => 30,
        2 => 90,
        _ => 365,
    };
    SignedDuration::from_hours(24 * days)
}

/// The RTO a system's drills predict for restoring `bytes` now: its last
/// passing drill's restore throughput applied to the current size, plus
/// that drill's other steps (load, start, checks) as they took. `None`
/// without a passing drill that restored something.
pub fn predicted_rto(drills: &[&Drill], bytes: u64) -> Option<SignedDuration> {
    let last = drills
        .iter()
        .find(|d| d.verdict == Verdict::Pass && d.bytes > 0)?;
    let restore: f64 = last
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Restore)
        .map(|s| s.duration.as_secs_f64())
        .sum();
    let rest: f64 = last
        .steps
        .iter()
        .filter(|s| s.kind != StepKind::Restore)
        .map(|s| s.duration.as_secs_f64())
        .sum();
    let per_byte = restore / last.bytes as f64;
    SignedDuration::try_from_secs_f64(per_byte * bytes as f64 + rest).ok()
}

/// How a system's measured RTO moves over its passing drills.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RtoTrend {
    /// The service or system.
    pub id: String,
    /// Passing drills counted.
    pub drills: usize,
    /// The first and the last measured RTO.
    pub first: SignedDuration,
    /// The last.
    pub last: SignedDuration,
    /// The median.
    pub median: SignedDuration,
    /// The least-squares change per 30 days (null with fewer than two
    /// drills at distinct times).
    pub change_per_30_days: Option<SignedDuration>,
}

/// The measured-RTO trend of every system with passing drills, by system.
pub fn rto_trends(drills: &[Drill]) -> Vec<RtoTrend> {
    trends(
        drills
            .iter()
            .filter(|d| d.verdict == Verdict::Pass)
            .map(|d| (d.system.as_str(), d.started_at, d.measured_rto)),
    )
}

/// Trends of `(subject, when, measured RTO)` points, by subject.
fn trends<'a>(points: impl Iterator<Item = (&'a str, Timestamp, SignedDuration)>) -> Vec<RtoTrend> {
    let mut by_subject: std::collections::BTreeMap<&str, Vec<(Timestamp, SignedDuration)>> =
        Default::default();
    for (subject, at, rto) in points {
        by_subject.entry(subject).or_default().push((at, rto));
    }
    by_subject
        .into_iter()
        .map(|(subject, mut list)| {
            list.sort_by_key(|(at, _)| *at);
            let mut sorted: Vec<SignedDuration> = list.iter().map(|(_, rto)| *rto).collect();
            sorted.sort();
            let points: Vec<(Timestamp, u64)> = list
                .iter()
                .map(|(at, rto)| (*at, rto.as_millis().max(0) as u64))
                .collect();
            let change = crate::anomaly::Trend::fit(&points).and_then(|t| {
                SignedDuration::try_from_secs_f64(t.bytes_per_day * 30.0 / 1000.0).ok()
            });
            RtoTrend {
                id: subject.to_string(),
                drills: list.len(),
                first: list[0].1,
                last: list[list.len() - 1].1,
                median: sorted[sorted.len() / 2],
                change_per_30_days: change,
            }
        })
        .collect()
}

/// The fingerprint of what a drill of `system` depends on.
pub fn system_config(system: &crate::catalog::System) -> String {
    let parts = serde_json::json!({
        "kind": system.kind.value,
        "sets": system.backup_sets,
        "checks": system.checks,
        "recovery_point_query": system.recovery_point_query,
    });
    blake3::hash(parts.to_string().as_bytes()).to_hex()[..16].to_string()
}

/// A system's readiness from its drills (newest first), its catalog
/// fingerprint now, and its drill interval; with the reason.
pub fn system_readiness(
    drills: &[&Drill],
    config: &str,
    interval: SignedDuration,
    now: Timestamp,
) -> (Readiness, String) {
    let Some(last) = drills.first() else {
        return (Readiness::NotVerified, "never drilled".into());
    };
    if last.verdict == Verdict::Fail {
        let why = last.reasons.first().cloned().unwrap_or_default();
        return (
            Readiness::Failed,
            format!(
                "drill {} on {} failed: {why}",
                last.id,
                last.started_at.strftime("%Y-%m-%d")
            ),
        );
    }
    if last.config != config {
        return (
            Readiness::NeedsVerification,
            format!("the catalog changed since drill {} passed", last.id),
        );
    }
    if now.duration_since(last.started_at) > interval {
        return (
            Readiness::NeedsVerification,
            format!(
                "drill {} passed on {}, longer ago than the drill interval ({})",
                last.id,
                last.started_at.strftime("%Y-%m-%d"),
                format_duration(interval)
            ),
        );
    }
    (
        Readiness::Verified,
        format!(
            "drill {} passed on {}",
            last.id,
            last.started_at.strftime("%Y-%m-%d")
        ),
    )
}

/// The failure detail of a drill job whose drill ran and failed (its
/// alert is `drill-failed`, not `job-failed`).
pub const DRILL_FAILED: &str = "drill-failed";

/// The strictest objectives of the services that need `system` directly.
pub fn objectives_of(catalog: &crate::catalog::Catalog, system: &str) -> Objectives {
    let min = |a: Option<SignedDuration>, b: Option<SignedDuration>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    catalog
        .services_needing(system)
        .into_iter()
        .fold(Objectives::default(), |o, s| Objectives {
            rto: min(o.rto, s.rto.as_ref().map(|r| r.value)),
            rpo: min(o.rpo, s.rpo.as_ref().map(|r| r.value)),
            mtd: min(o.mtd, s.mtd.as_ref().map(|r| r.value)),
        })
}

/// The verdict of a drill from its steps and measurements.
pub fn judge(
    steps: &[Step],
    measured_rto: SignedDuration,
    achieved_rpo: SignedDuration,
    objectives: Objectives,
) -> (Verdict, Vec<String>) {
    let mut reasons: Vec<String> = steps
        .iter()
        .filter(|s| !s.ok)
        .map(|s| match s.kind {
            StepKind::Restore => format!("restore failed: {}", s.detail),
            StepKind::Load => format!("load failed: {}", s.detail),
            StepKind::Start => format!("start failed: {}", s.detail),
            StepKind::Check => format!("{} failed: {}", s.name, s.detail),
        })
        .collect();
    // (what was measured, its value, the objective's name, its limit)
    let limits = [
        ("measured RTO", measured_rto, "RTO", objectives.rto),
        ("measured RTO", measured_rto, "MTD", objectives.mtd),
        ("achieved RPO", achieved_rpo, "RPO", objectives.rpo),
    ];
    for (what, measured, objective, limit) in limits {
        if let Some(limit) = limit.filter(|l| measured > *l) {
            reasons.push(format!(
                "{what} {} is over the {objective} of {}",
                format_duration(measured),
                format_duration(limit)
            ));
        }
    }
    let verdict = if reasons.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    (verdict, reasons)
}

/// A drill of a service: its backed-up systems drilled wave by wave in
/// recovery order (a wave's systems side by side), timed as a whole.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServiceDrill {
    /// Its number (0 before it is stored).
    pub id: i64,
    /// The service.
    pub service: String,
    /// Who or what started it.
    pub by: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When the last system was verified (or the drill stopped).
    pub ended_at: Timestamp,
    /// The systems drilled, wave by wave (recovery order).
    pub waves: Vec<Vec<String>>,
    /// The system drills, by number, in the order they ended.
    pub drills: Vec<i64>,
    /// Systems the service needs that hold no backup to drill, and why.
    pub not_drilled: Vec<String>,
    /// Start to the last system verified: the service's measured RTO.
    pub measured_rto: SignedDuration,
    /// The worst achieved RPO among its systems.
    pub achieved_rpo: SignedDuration,
    /// The service's own objectives.
    pub objectives: Objectives,
    /// The verdict.
    pub verdict: Verdict,
    /// Why it failed (empty for a pass).
    pub reasons: Vec<String>,
}

/// A service drill's verdict: every system drill passed, and the whole
/// (measured from its start) within the service's RTO and MTD, its data
/// within its RPO.
pub fn judge_service(
    drills: &[Drill],
    measured_rto: SignedDuration,
    achieved_rpo: SignedDuration,
    objectives: Objectives,
) -> (Verdict, Vec<String>) {
    let mut reasons: Vec<String> = drills
        .iter()
        .filter(|d| d.verdict == Verdict::Fail)
        .map(|d| {
            format!(
                "system {} failed its drill: {}",
                d.system,
                d.reasons.first().cloned().unwrap_or_default()
            )
        })
        .collect();
    let (_, mut over) = judge(&[], measured_rto, achieved_rpo, objectives);
    reasons.append(&mut over);
    let verdict = if reasons.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    (verdict, reasons)
}

/// The measured-RTO trend of every service with passing service drills.
pub fn service_rto_trends(drills: &[ServiceDrill]) -> Vec<RtoTrend> {
    trends(
        drills
            .iter()
            .filter(|d| d.verdict == Verdict::Pass)
            .map(|d| (d.service.as_str(), d.started_at, d.measured_rto)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(kind: StepKind, name: &str, secs: i64, ok: bool) -> Step {
        Step {
            kind,
            name: name.into(),
            started_at: Timestamp::UNIX_EPOCH,
            duration: SignedDuration::from_secs(secs),
            ok,
            detail: if ok { "ok".into() } else { "exit 1".into() },
        }
    }

    fn drill(id: i64, days_ago: i64, verdict: Verdict, config: &str, now: Timestamp) -> Drill {
        Drill {
            id,
            system: "db".into(),
            by: "schedule".into(),
            snapshot_id: String::new(),
            snapshot_time: now,
            sandbox: "files".into(),
            started_at: now - SignedDuration::from_hours(24 * days_ago),
            ended_at: now,
            steps: vec![],
            measured_rto: SignedDuration::ZERO,
            achieved_rpo: SignedDuration::ZERO,
            bytes: 0,
            objectives: Objectives::default(),
            verdict,
            reasons: if verdict == Verdict::Fail {
                vec!["check 1 failed".into()]
            } else {
                vec![]
            },
            config: config.into(),
        }
    }

    /// not-verified → verified → needs-verification (catalog changed, or
    /// the interval ran out) → failed → verified.
    #[test]
    fn readiness_follows_the_drills_the_catalog_and_the_interval() {
        let now: Timestamp = "2026-11-29T00:00:00Z".parse().expect("now");
        let interval = drill_interval(1);
        assert_eq!(interval, SignedDuration::from_hours(30 * 24));
        let state =
            |drills: &[&Drill], config: &str| system_readiness(drills, config, interval, now).0;
        assert_eq!(state(&[], "a"), Readiness::NotVerified);
        let passed = drill(1, 3, Verdict::Pass, "a", now);
        assert_eq!(state(&[&passed], "a"), Readiness::Verified);
        assert_eq!(
            state(&[&passed], "b"),
            Readiness::NeedsVerification,
            "catalog changed"
        );
        let old = drill(1, 31, Verdict::Pass, "a", now);
        assert_eq!(
            state(&[&old], "a"),
            Readiness::NeedsVerification,
            "interval ran out"
        );
        let failed = drill(2, 1, Verdict::Fail, "a", now);
        let (s, why) = system_readiness(&[&failed, &passed], "a", interval, now);
        assert_eq!(s, Readiness::Failed);
        assert!(why.contains("check 1 failed"), "{why}");
        let again = drill(3, 0, Verdict::Pass, "a", now);
        assert_eq!(state(&[&again, &failed], "a"), Readiness::Verified);
        // Worst first.
        let mut all = [
            Readiness::Verified,
            Readiness::Failed,
            Readiness::NeedsVerification,
            Readiness::NotVerified,
        ];
        all.sort();
        assert_eq!(all[0], Readiness::Failed);
    }

    #[test]
    fn the_measured_rto_trend_follows_the_passing_drills() {
        let now: Timestamp = "2026-11-29T00:00:00Z".parse().expect("now");
        let with_rto = |id: i64, days_ago: i64, secs: i64, verdict: Verdict| {
            let mut d = drill(id, days_ago, verdict, "a", now);
            d.measured_rto = SignedDuration::from_secs(secs);
            d
        };
        // One more minute every 30 days; a failed drill does not count.
        let drills = [
            with_rto(1, 60, 600, Verdict::Pass),
            with_rto(2, 30, 660, Verdict::Pass),
            with_rto(3, 15, 9_999, Verdict::Fail),
            with_rto(4, 0, 720, Verdict::Pass),
        ];
        let trends = rto_trends(&drills);
        assert_eq!(trends.len(), 1);
        let t = &trends[0];
        assert_eq!(
            (
                t.drills,
                t.first.as_secs(),
                t.last.as_secs(),
                t.median.as_secs()
            ),
            (3, 600, 720, 660)
        );
        let change = t.change_per_30_days.expect("a trend").as_secs_f64();
        assert!((change - 60.0).abs() < 0.5, "{change}");
    }

    /// Restore throughput from the last pass, applied to today's size.
    #[test]
    fn the_rto_is_predicted_from_the_last_passing_drill() {
        let now: Timestamp = "2026-11-29T00:00:00Z".parse().expect("now");
        let mut pass = drill(1, 1, Verdict::Pass, "a", now);
        pass.bytes = 1_000;
        pass.steps = vec![
            step(StepKind::Restore, "restore", 100, true),
            step(StepKind::Check, "check", 20, true),
        ];
        let failed = drill(2, 0, Verdict::Fail, "a", now);
        // Twice the data: twice the restore, the same checks.
        assert_eq!(
            predicted_rto(&[&failed, &pass], 2_000),
            Some(SignedDuration::from_secs(220))
        );
        assert_eq!(predicted_rto(&[&failed], 2_000), None);
    }

    #[test]
    fn a_drill_passes_only_when_every_step_and_objective_holds() {
        let h = |n: i64| SignedDuration::from_hours(n);
        let objectives = Objectives {
            rto: Some(h(4)),
            rpo: Some(h(1)),
            mtd: Some(h(8)),
        };
        let good = [
            step(StepKind::Restore, "restore set default", 60, true),
            step(StepKind::Check, "check 1 (command)", 2, true),
        ];
        assert_eq!(
            judge(&good, h(1), h(0), objectives),
            (Verdict::Pass, vec![])
        );
        let cases: [(&[Step], i64, i64, &str); 5] = [
            (
                &[step(StepKind::Restore, "restore", 1, false)],
                1,
                0,
                "restore failed: exit 1",
            ),
            (
                &[step(StepKind::Check, "check 2 (sql)", 1, false)],
                1,
                0,
                "check 2 (sql) failed",
            ),
            (&good, 5, 0, "measured RTO 5h is over the RTO of 4h"),
            (&good, 9, 0, "measured RTO 9h is over the MTD of 8h"),
            (&good, 1, 2, "achieved RPO 2h is over the RPO of 1h"),
        ];
        for (steps, rto, rpo, says) in cases {
            let (verdict, reasons) = judge(steps, h(rto), h(rpo), objectives);
            assert_eq!(verdict, Verdict::Fail);
            assert!(
                reasons.iter().any(|r| r.contains(says)),
                "{reasons:?} lacks {says}"
            );
        }
        // Without objectives only the steps count.
        assert_eq!(
            judge(&good, h(100), h(100), Objectives::default()).0,
            Verdict::Pass
        );
    }
}
