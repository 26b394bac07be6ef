//! Retention: which snapshots a keep-policy keeps, and why.
//!
//! Rules, applied within each group of snapshots (by host, paths and/or
//! tags), newest first:
//!
//! - `keep_last N`: the N newest snapshots;
//! - `keep_hourly/daily/weekly/monthly/yearly N`: the newest snapshot of
//!   each of the N most recent hours / days / ISO weeks / months / years
//!   that have snapshots, in the given time zone;
//! - `keep_within D`: every snapshot taken less than D before `now`.
//!
//! A snapshot is kept if any rule keeps it, or if it is protected (by a
//! retention lock or a legal hold), whatever the rules say; each decision
//! lists every reason, so an operator (or auditor) sees why.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// How many snapshots to keep per rule. Zero disables a rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeepPolicy {
    /// The newest N.
    pub last: u32,
    /// Newest per hour, for N hours.
    pub hourly: u32,
    /// Newest per day, for N days.
    pub daily: u32,
    /// Newest per ISO week, for N weeks.
    pub weekly: u32,
    /// Newest per month, for N months.
    pub monthly: u32,
    /// Newest per year, for N years.
    pub yearly: u32,
    /// Everything newer than `now - within`.
    pub within: Option<SignedDuration>,
}

impl KeepPolicy {
    /// True when no rule is set (such a policy would remove everything).
    pub fn is_empty(&self) -> bool {
        self.last == 0
            && self.hourly == 0
            && self.daily == 0
            && self.weekly == 0
            && self.monthly == 0
            && self.yearly == 0
            && self.within.is_none()
    }
}

/// What the policy needs to know of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRef {
    /// Snapshot id.
    pub id: String,
    /// When it was taken.
    pub time: Timestamp,
    /// Host it came from.
    pub host: String,
    /// Paths it holds.
    pub paths: Vec<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// Why it must not be removed (retention lock, legal holds), if at all.
    /// A protected snapshot is always kept, whatever the policy.
    pub protected_by: Vec<String>,
}

/// Which snapshot attributes form a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GroupBy {
    /// Group by host.
    pub host: bool,
    /// Group by the set of paths.
    pub paths: bool,
    /// Group by the set of tags.
    pub tags: bool,
}

impl Default for GroupBy {
    /// Host and paths, like a backup's parent selection.
    fn default() -> Self {
        GroupBy {
            host: true,
            paths: true,
            tags: false,
        }
    }
}

impl std::str::FromStr for GroupBy {
    type Err = String;

    /// `host,paths,tags` in any combination, or `none`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut g = GroupBy {
            host: false,
            paths: false,
            tags: false,
        };
        if s.trim() == "none" {
            return Ok(g);
        }
        for part in s.split(',').map(str::trim) {
            match part {
                "host" => g.host = true,
                "paths" => g.paths = true,
                "tags" => g.tags = true,
                other => {
                    return Err(format!(
                        "unknown group-by field {other:?} (use host, paths, tags, or none)"
                    ));
                }
            }
        }
        Ok(g)
    }
}

/// The group key of a snapshot under a `GroupBy`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GroupKey {
    /// Host, when grouping by host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Sorted paths, when grouping by paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Sorted tags, when grouping by tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

impl GroupBy {
    fn key(&self, s: &SnapshotRef) -> GroupKey {
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        GroupKey {
            host: self.host.then(|| s.host.clone()),
            paths: self.paths.then(|| sorted(&s.paths)),
            tags: self.tags.then(|| sorted(&s.tags)),
        }
    }
}

/// The verdict on one snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Snapshot id.
    pub id: String,
    /// When it was taken.
    pub time: Timestamp,
    /// Kept or to be removed.
    pub keep: bool,
    /// Every rule that keeps it, or why it goes.
    pub reasons: Vec<String>,
}

/// The verdicts for one group, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupDecision {
    /// What the group's snapshots share.
    pub key: GroupKey,
    /// One decision per snapshot, newest first.
    pub decisions: Vec<Decision>,
}

#[derive(Clone, Copy)]
enum Period {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    fn name(self) -> &'static str {
        match self {
            Period::Hour => "hourly",
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
            Period::Year => "yearly",
        }
    }

    /// The calendar bucket of `time` in `tz`, as a printable label.
    fn bucket(self, time: Timestamp, tz: &TimeZone) -> String {
        let zoned = time.to_zoned(tz.clone());
        match self {
            Period::Hour => zoned.strftime("%Y-%m-%d %H:00").to_string(),
            Period::Day => zoned.strftime("%Y-%m-%d").to_string(),
            Period::Week => {
                let week = zoned.date().iso_week_date();
                format!("{}-W{:02}", week.year(), week.week())
            }
            Period::Month => zoned.strftime("%Y-%m").to_string(),
            Period::Year => zoned.strftime("%Y").to_string(),
        }
    }
}

/// Apply `policy` to `snapshots`, grouped by `group_by`. `now` anchors
/// `keep_within`; `tz` defines calendar periods. Pure: same input, same
/// output.
pub fn apply(
    policy: &KeepPolicy,
    snapshots: &[SnapshotRef],
    group_by: GroupBy,
    now: Timestamp,
    tz: &TimeZone,
) -> Vec<GroupDecision> {
    let mut groups: std::collections::BTreeMap<GroupKey, Vec<&SnapshotRef>> = Default::default();
    for s in snapshots {
        groups.entry(group_by.key(s)).or_default().push(s);
    }
    groups
        .into_iter()
        .map(|(key, mut members)| {
            // Newest first; ties broken by id so the result is deterministic.
            members.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
            GroupDecision {
                key,
                decisions: decide(policy, &members, now, tz),
            }
        })
        .collect()
}

fn decide(
    policy: &KeepPolicy,
    newest_first: &[&SnapshotRef],
    now: Timestamp,
    tz: &TimeZone,
) -> Vec<Decision> {
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); newest_first.len()];
    for (i, _) in newest_first.iter().enumerate().take(policy.last as usize) {
        reasons[i].push(format!("last {}", policy.last));
    }
    let periods = [
        (Period::Hour, policy.hourly),
        (Period::Day, policy.daily),
        (Period::Week, policy.weekly),
        (Period::Month, policy.monthly),
        (Period::Year, policy.yearly),
    ];
    for (period, count) in periods {
        let mut left = count;
        let mut previous: Option<String> = None;
        for (i, s) in newest_first.iter().enumerate() {
            if left == 0 {
                break;
            }
            let bucket = period.bucket(s.time, tz);
            // The first (newest) snapshot seen in a bucket represents it.
            if previous.as_ref() != Some(&bucket) {
                reasons[i].push(format!("{} snapshot for {bucket}", period.name()));
                previous = Some(bucket);
                left -= 1;
            }
        }
    }
    if let Some(within) = policy.within {
        let cutoff = now.checked_sub(within).unwrap_or(Timestamp::MIN);
        for (i, s) in newest_first.iter().enumerate() {
            if s.time > cutoff {
                reasons[i].push(format!("within {}", friendly(within)));
            }
        }
    }
    newest_first
        .iter()
        .zip(reasons)
        .map(|(s, mut reasons)| {
            reasons.extend(s.protected_by.iter().cloned());
            let keep = !reasons.is_empty();
            Decision {
                id: s.id.clone(),
                time: s.time,
                keep,
                reasons: if keep {
                    reasons
                } else {
                    vec!["no rule keeps it".to_string()]
                },
            }
        })
        .collect()
}

fn friendly(d: SignedDuration) -> String {
    format!("{d:#}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: &str, time: &str) -> SnapshotRef {
        SnapshotRef {
            id: id.into(),
            time: time.parse().expect("timestamp"),
            host: "h".into(),
            paths: vec!["/data".into()],
            tags: vec![],
            protected_by: vec![],
        }
    }

    /// A snapshot every 6 hours for 40 days, ending 2026-11-20T18:00Z.
    fn series() -> Vec<SnapshotRef> {
        let end: Timestamp = "2026-11-20T18:00:00Z".parse().expect("ts");
        (0..160)
            .map(|i| {
                let t = end - SignedDuration::from_hours(6 * i);
                SnapshotRef {
                    id: format!("s{i:03}"),
                    time: t,
                    host: "h".into(),
                    paths: vec!["/data".into()],
                    tags: vec![],
                    protected_by: vec![],
                }
            })
            .collect()
    }

    fn kept(policy: &KeepPolicy, snapshots: &[SnapshotRef], now: &str) -> Vec<String> {
        let groups = apply(
            policy,
            snapshots,
            GroupBy::default(),
            now.parse().expect("now"),
            &TimeZone::UTC,
        );
        groups
            .iter()
            .flat_map(|g| g.decisions.iter().filter(|d| d.keep).map(|d| d.id.clone()))
            .collect()
    }

    #[test]
    fn table_of_policies() {
        let s = series();
        let now = "2026-11-21T00:00:00Z";
        let cases: Vec<(&str, KeepPolicy, Vec<&str>)> = vec![
            (
                "last 3",
                KeepPolicy {
                    last: 3,
                    ..Default::default()
                },
                vec!["s000", "s001", "s002"],
            ),
            // Newest of each day: 18:00 of each day (s000 = 20th 18:00, s004 = 19th 18:00, …).
            (
                "daily 3",
                KeepPolicy {
                    daily: 3,
                    ..Default::default()
                },
                vec!["s000", "s004", "s008"],
            ),
            (
                "hourly 2",
                KeepPolicy {
                    hourly: 2,
                    ..Default::default()
                },
                vec!["s000", "s001"],
            ),
            // 2026-11-20 is a Friday (ISO week 47); week 46 ends Sunday 15th.
            (
                "weekly 2",
                KeepPolicy {
                    weekly: 2,
                    ..Default::default()
                },
                vec!["s000", "s020"],
            ),
            // November's newest, then October's newest (31st 18:00 = 20 days + … back).
            (
                "monthly 2",
                KeepPolicy {
                    monthly: 2,
                    ..Default::default()
                },
                vec!["s000", "s080"],
            ),
            (
                "yearly 5 (only one year exists)",
                KeepPolicy {
                    yearly: 5,
                    ..Default::default()
                },
                vec!["s000"],
            ),
            // s003 was taken exactly 24 h before now: not "less than" 1d.
            (
                "within 1d (boundary excluded)",
                KeepPolicy {
                    within: Some(SignedDuration::from_hours(24)),
                    ..Default::default()
                },
                vec!["s000", "s001", "s002"],
            ),
            (
                "within 25h",
                KeepPolicy {
                    within: Some(SignedDuration::from_hours(25)),
                    ..Default::default()
                },
                vec!["s000", "s001", "s002", "s003"],
            ),
            (
                "last 1 + daily 2 overlap",
                KeepPolicy {
                    last: 1,
                    daily: 2,
                    ..Default::default()
                },
                vec!["s000", "s004"],
            ),
            ("empty policy keeps nothing", KeepPolicy::default(), vec![]),
        ];
        for (name, policy, expected) in cases {
            assert_eq!(kept(&policy, &s, now), expected, "{name}");
        }
    }

    #[test]
    fn every_decision_says_why() {
        let s = series();
        let policy = KeepPolicy {
            last: 1,
            daily: 2,
            ..Default::default()
        };
        let groups = apply(
            &policy,
            &s,
            GroupBy::default(),
            "2026-11-21T00:00:00Z".parse().expect("now"),
            &TimeZone::UTC,
        );
        let d = &groups[0].decisions;
        assert_eq!(
            d[0].reasons,
            vec![
                "last 1".to_string(),
                "daily snapshot for 2026-11-20".to_string()
            ]
        );
        assert_eq!(d[1].reasons, vec!["no rule keeps it".to_string()]);
        assert!(!d[1].keep);
        assert_eq!(
            d[4].reasons,
            vec!["daily snapshot for 2026-11-19".to_string()]
        );
    }

    #[test]
    fn days_follow_the_time_zone() {
        // 23:30 UTC on the 20th is already the 21st in Berlin.
        let s = vec![
            snap("late", "2026-11-20T23:30:00Z"),
            snap("early", "2026-11-20T20:00:00Z"),
        ];
        let policy = KeepPolicy {
            daily: 2,
            ..Default::default()
        };
        let now: Timestamp = "2026-11-21T12:00:00Z".parse().expect("now");
        let utc = apply(&policy, &s, GroupBy::default(), now, &TimeZone::UTC);
        assert_eq!(
            utc[0].decisions.iter().filter(|d| d.keep).count(),
            1,
            "same UTC day"
        );
        let berlin = TimeZone::get("Europe/Berlin").expect("tz database");
        let local = apply(&policy, &s, GroupBy::default(), now, &berlin);
        assert_eq!(
            local[0].decisions.iter().filter(|d| d.keep).count(),
            2,
            "different Berlin days"
        );
    }

    #[test]
    fn protected_snapshots_are_kept_whatever_the_policy() {
        let mut s = series();
        s[10].protected_by = vec!["legal hold: case 42".into()];
        s[11].protected_by = vec!["retention lock until 2027-01-01T00:00:00Z".into()];
        let policy = KeepPolicy {
            last: 1,
            ..Default::default()
        };
        let groups = apply(
            &policy,
            &s,
            GroupBy::default(),
            "2026-11-21T00:00:00Z".parse().expect("now"),
            &TimeZone::UTC,
        );
        let d = &groups[0].decisions;
        assert_eq!(d.iter().filter(|d| d.keep).count(), 3);
        assert_eq!(d[10].reasons, vec!["legal hold: case 42".to_string()]);
        assert!(d[11].keep && d[11].reasons[0].starts_with("retention lock"));
        // Protection adds to, never replaces, the policy's own reasons.
        s[0].protected_by = vec!["legal hold: audit".into()];
        let groups = apply(
            &policy,
            &s,
            GroupBy::default(),
            "2026-11-21T00:00:00Z".parse().expect("now"),
            &TimeZone::UTC,
        );
        assert_eq!(
            groups[0].decisions[0].reasons,
            vec!["last 1".to_string(), "legal hold: audit".to_string()]
        );
    }

    #[test]
    fn groups_are_decided_separately() {
        let mut a = snap("a1", "2026-11-20T10:00:00Z");
        a.host = "alpha".into();
        let mut b = snap("b1", "2026-11-19T10:00:00Z");
        b.host = "beta".into();
        let policy = KeepPolicy {
            last: 1,
            ..Default::default()
        };
        let now = "2026-11-21T00:00:00Z";
        assert_eq!(
            kept(&policy, &[a.clone(), b.clone()], now),
            vec!["a1", "b1"]
        );
        let one_group = apply(
            &policy,
            &[a, b],
            "none".parse().expect("group"),
            now.parse().expect("now"),
            &TimeZone::UTC,
        );
        assert_eq!(one_group.len(), 1);
        assert_eq!(one_group[0].decisions.iter().filter(|d| d.keep).count(), 1);
        assert!("host,colour".parse::<GroupBy>().is_err());
    }
}
