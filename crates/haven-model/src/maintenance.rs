//! Maintenance windows: when one is on, and what it covers.
//!
//! Alerts raised inside a window are recorded as suppressed and notified
//! at its end if still open; compliance is not touched (the RPO clock
//! keeps running: data written during maintenance is just as much at
//! risk).

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::alerts::Subject;
use crate::catalog::Catalog;
use crate::catalog::schedule::allowed_starts;
use crate::catalog::watch::{MaintenanceTime, Scope};

/// One occurrence of a window: the time it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrence {
    /// Start.
    pub start: Timestamp,
    /// End (exclusive).
    pub end: Timestamp,
}

/// A maintenance window recorded at run time: added with `haven
/// maintenance add`, or a catalog window's occurrence ended early with
/// `haven maintenance end` (`window` names it; `start` is the
/// occurrence's start, `end` when it was ended).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Recorded {
    /// The record's number (`m<id>` in the CLI).
    pub id: i64,
    /// The catalog window it ends early, if any.
    pub window: Option<String>,
    /// What it covers.
    pub scope: Scope,
    /// Start.
    pub start: Timestamp,
    /// End (moved to the time it was ended early).
    pub end: Timestamp,
    /// Why.
    pub reason: Option<String>,
    /// Who added or ended it: the authenticated identity.
    pub created_by: String,
    /// The name the person declared, unverified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_by: Option<String>,
    /// When.
    pub created_at: Timestamp,
}

impl MaintenanceTime {
    /// The occurrence that contains `at`, if any. A recurring window
    /// that started before `at` and has not ended yet contains it.
    pub fn occurrence_at(&self, at: Timestamp) -> Option<Occurrence> {
        match self {
            MaintenanceTime::Once { start, end } => {
                (*start <= at && at < *end).then_some(Occurrence {
                    start: *start,
                    end: *end,
                })
            }
            MaintenanceTime::Recurring {
                schedule,
                duration,
                timezone,
            } => {
                let from = at - *duration + SignedDuration::from_secs(1);
                let starts = allowed_starts(
                    schedule.cron(),
                    timezone.tz(),
                    None,
                    from,
                    at + SignedDuration::from_secs(1),
                );
                // The latest start wins when occurrences overlap.
                let start = starts.into_iter().rev().find(|s| *s <= at)?;
                Some(Occurrence {
                    start,
                    end: start + *duration,
                })
            }
        }
    }

    /// The next occurrence that starts after `at` (within 400 days).
    pub fn next_after(&self, at: Timestamp) -> Option<Occurrence> {
        match self {
            MaintenanceTime::Once { start, end } => (*start > at).then_some(Occurrence {
                start: *start,
                end: *end,
            }),
            MaintenanceTime::Recurring {
                schedule,
                duration,
                timezone,
            } => {
                let start =
                    crate::catalog::schedule::next_start(schedule.cron(), timezone.tz(), None, at)?;
                Some(Occurrence {
                    start,
                    end: start + *duration,
                })
            }
        }
    }
}

impl Scope {
    /// Does the scope cover this subject? An empty scope covers
    /// everything; a service covers the systems it depends on.
    pub fn covers(&self, subject: &Subject, catalog: &Catalog) -> bool {
        if self.services.is_empty() && self.systems.is_empty() && self.repositories.is_empty() {
            return true;
        }
        if let Some(repo) = &subject.repository
            && self.repositories.contains(repo)
        {
            return true;
        }
        if let Some(service) = &subject.service
            && self.services.contains(service)
        {
            return true;
        }
        let Some(system) = &subject.system else {
            return false;
        };
        if self.systems.contains(system) {
            return true;
        }
        catalog.services.iter().any(|s| {
            self.services.iter().any(|x| s.id.value == *x)
                && s.depends_on.iter().any(|d| &d.value == system)
        })
    }
}

#[cfg(test)]
mod tests {
    use jiff::ToSpan;
    use jiff::civil::date;

    use super::*;
    use crate::catalog::{CronSchedule, Zone};

    fn berlin(d: i8, h: i8, m: i8) -> Timestamp {
        date(2026, 3, d)
            .at(h, m, 0, 0)
            .in_tz("Europe/Berlin")
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn a_weekly_window_is_on_exactly_its_hours_over_simulated_weeks_across_dst() {
        // Sundays 01:00–05:00 Berlin; DST starts on 29 March 2026 at 02:00.
        let window = MaintenanceTime::Recurring {
            schedule: CronSchedule::parse("0 1 * * 0").expect("cron"),
            duration: SignedDuration::from_hours(4),
            timezone: Zone::parse("Europe/Berlin").expect("zone"),
        };
        let start = berlin(1, 0, 0);
        let mut on_minutes = 0;
        let mut occurrences = std::collections::BTreeSet::new();
        let mut t = start;
        while t < start + (5 * 7 * 24).hours() {
            if let Some(o) = window.occurrence_at(t) {
                assert!(o.start <= t && t < o.end);
                occurrences.insert(o.start);
                on_minutes += 1;
            }
            t += 1.minute();
        }
        // Five Sundays, four hours each (absolute time; the window lasts
        // four real hours even on the night clocks go forward).
        assert_eq!(occurrences.len(), 5);
        assert_eq!(on_minutes, 5 * 4 * 60);
        assert!(occurrences.contains(&berlin(29, 1, 0)));
        assert_eq!(
            window.next_after(berlin(2, 12, 0)).map(|o| o.start),
            Some(berlin(8, 1, 0))
        );
    }

    #[test]
    fn a_one_off_window_covers_its_interval_only() {
        let window = MaintenanceTime::Once {
            start: berlin(10, 22, 0),
            end: berlin(11, 2, 0),
        };
        assert_eq!(window.occurrence_at(berlin(10, 21, 59)), None);
        assert!(window.occurrence_at(berlin(10, 22, 0)).is_some());
        assert!(window.occurrence_at(berlin(11, 1, 59)).is_some());
        assert_eq!(window.occurrence_at(berlin(11, 2, 0)), None);
    }

    #[test]
    fn scopes_cover_systems_of_their_services_and_repositories() {
        let scope = Scope {
            services: vec!["erp".into()],
            systems: vec!["mail".into()],
            repositories: vec!["offsite".into()],
        };
        let mut catalog = Catalog::default();
        catalog.services.push(crate::catalog::Service {
            id: crate::catalog::Located::new("erp".into(), Default::default()),
            name: "ERP".into(),
            description: None,
            owner: None,
            tier: crate::catalog::Located::new(1, Default::default()),
            business_functions: vec![],
            impact: Default::default(),
            mtd: None,
            rto: None,
            rpo: None,
            restore_estimate: None,
            impact_over_time: None,
            recovery: Vec::new(),
            unreadable: Vec::new(),
            data_classification: None,
            regulations: vec![],
            strategy: None,
            recovery_site: None,
            depends_on: vec![crate::catalog::Located::new(
                "erp-db".into(),
                Default::default(),
            )],
            review_interval: None,
            last_reviewed: None,
        });
        let system = |s: &str| Subject {
            system: Some(s.into()),
            ..Default::default()
        };
        assert!(scope.covers(&system("erp-db"), &catalog));
        assert!(scope.covers(&system("mail"), &catalog));
        assert!(!scope.covers(&system("crm-db"), &catalog));
        let repo = Subject {
            repository: Some("offsite".into()),
            ..Default::default()
        };
        assert!(scope.covers(&repo, &catalog));
        assert!(Scope::default().covers(&system("anything"), &catalog));
    }
}
