//! Escalation: which policy an alert follows (by severity, tier and time
//! of day on a business-hours calendar), and how it walks the policy's
//! steps until someone acknowledges.
//!
//! A step notifies once, then `repeat` more times `wait` apart; after the
//! last notification of a step and its `wait`, the next step starts.
//! After the last step the policy is done (the alert stays open and
//! visible, but nobody is paged again).

use jiff::Timestamp;

use crate::alerts::{EscalationProgress, Severity};
use crate::catalog::schedule::in_window;
use crate::catalog::watch::{Calendar, Escalation, Hours};

impl Calendar {
    /// Is `at` inside business hours (a working day that is not a
    /// holiday, inside the working hours, in the calendar's time zone)?
    /// A window that wraps past midnight belongs to the day it starts on.
    pub fn is_open(&self, at: Timestamp) -> bool {
        let local = self.timezone.value.tz().to_datetime(at);
        let time = local.time();
        if !in_window(Some(self.hours), time) {
            return false;
        }
        let wraps = self.hours.end <= self.hours.start;
        // After midnight in a wrapping window: the shift began yesterday.
        let day = if wraps && time < self.hours.end {
            local.date().yesterday().unwrap_or(local.date())
        } else {
            local.date()
        };
        self.days.contains(&day.weekday()) && !self.holidays.contains(&day)
    }
}

/// Does `policy` apply to an alert of `severity` for a service of `tier`
/// at `at`? `calendar` is the policy's calendar, looked up by the caller.
pub fn applies(
    policy: &Escalation,
    calendar: Option<&Calendar>,
    severity: Severity,
    tier: Option<u8>,
    at: Timestamp,
) -> bool {
    if !policy.severities.is_empty() && !policy.severities.contains(&severity) {
        return false;
    }
    if !policy.tiers.is_empty() && !tier.is_some_and(|t| policy.tiers.contains(&t)) {
        return false;
    }
    match (policy.hours, calendar) {
        (Hours::Any, _) => true,
        (Hours::Business, Some(c)) => c.is_open(at),
        (Hours::OffHours, Some(c)) => !c.is_open(at),
        (_, None) => false, // the loader requires a calendar
    }
}

/// The first policy (in catalog order) that applies.
pub fn select<'a>(
    policies: &'a [Escalation],
    calendars: &[Calendar],
    severity: Severity,
    tier: Option<u8>,
    at: Timestamp,
) -> Option<&'a Escalation> {
    policies.iter().find(|p| {
        let calendar = p
            .calendar
            .as_ref()
            .and_then(|id| calendars.iter().find(|c| c.id.value == id.value));
        applies(p, calendar, severity, tier, at)
    })
}

/// A notification to send now: which step, which channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The step (0-based).
    pub step: usize,
    /// Its round (0 = first notification of the step).
    pub round: u32,
    /// Channels in failover order.
    pub channels: Vec<String>,
}

fn page(policy: &Escalation, step: usize, round: u32) -> Option<Page> {
    let s = policy.steps.get(step)?;
    Some(Page {
        step,
        round,
        channels: s.channels.iter().map(|c| c.value.to_string()).collect(),
    })
}

/// Start escalating at `now`: the first page and the progress after it.
pub fn start(policy: &Escalation, now: Timestamp) -> Option<(Page, EscalationProgress)> {
    let first = page(policy, 0, 0)?;
    let wait = policy.steps[0].wait;
    Some((
        first,
        EscalationProgress {
            policy: policy.id.value.clone(),
            step: 0,
            round: 0,
            next_at: Some(now + wait),
        },
    ))
}

/// If something is due at `now`: the page to send (`None` when the
/// policy has just run out of steps) and the progress after it. `None`
/// when nothing is due. When several pages were due (the server was
/// down), only the next one is sent, not a burst.
pub fn advance(
    policy: &Escalation,
    progress: &EscalationProgress,
    now: Timestamp,
) -> Option<(Option<Page>, EscalationProgress)> {
    let due = progress.next_at?;
    if due > now {
        return None;
    }
    let repeat = policy.steps.get(progress.step).map_or(0, |s| s.repeat);
    let (step, round) = if progress.round < repeat {
        (progress.step, progress.round + 1)
    } else {
        (progress.step + 1, 0)
    };
    let mut next = progress.clone();
    match page(policy, step, round) {
        Some(page) => {
            next.step = step;
            next.round = round;
            next.next_at = Some(now + policy.steps[step].wait);
            Some((Some(page), next))
        }
        None => {
            next.next_at = None;
            Some((None, next))
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::{Time, Weekday, date};
    use jiff::{SignedDuration, ToSpan};

    use super::*;
    use crate::catalog::watch::Step;
    use crate::catalog::{Located, Origin, Window, Zone};

    fn located<T>(v: T) -> Located<T> {
        Located::new(v, Origin::default())
    }

    fn office() -> Calendar {
        Calendar {
            id: located("office".into()),
            timezone: located(Zone::parse("Europe/Berlin").expect("zone")),
            days: vec![
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
            ],
            hours: Window {
                start: Time::constant(8, 0, 0, 0),
                end: Time::constant(18, 0, 0, 0),
            },
            holidays: vec![date(2026, 12, 24), date(2026, 12, 25)],
        }
    }

    fn policy(id: &str, hours: Hours, severities: Vec<Severity>, steps: Vec<Step>) -> Escalation {
        Escalation {
            id: located(id.into()),
            severities,
            tiers: Vec::new(),
            hours,
            calendar: (hours != Hours::Any).then(|| located("office".into())),
            steps,
        }
    }

    fn step(channels: &[&str], wait_mins: i64, repeat: u32) -> Step {
        Step {
            channels: channels
                .iter()
                .map(|c| located(c.to_string().into()))
                .collect(),
            wait: SignedDuration::from_mins(wait_mins),
            repeat,
        }
    }

    fn berlin(y: i16, m: i8, d: i8, h: i8, min: i8) -> Timestamp {
        date(y, m, d)
            .at(h, min, 0, 0)
            .in_tz("Europe/Berlin")
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn business_hours_follow_days_hours_holidays_and_dst() {
        let cal = office();
        // Over four simulated weeks around the end of DST (25 Oct 2026),
        // minute by minute, open minutes are exactly working-day minutes
        // from 08:00 to 18:00 local time.
        let start = berlin(2026, 10, 12, 0, 0);
        let mut open_minutes = 0;
        let mut t = start;
        while t < start + SignedDuration::from_hours(28 * 24 + 1) {
            let local = jiff::tz::TimeZone::get("Europe/Berlin")
                .map(|tz| tz.to_datetime(t))
                .unwrap_or_default();
            let working = !matches!(local.weekday(), Weekday::Saturday | Weekday::Sunday)
                && local.hour() >= 8
                && local.hour() < 18;
            assert_eq!(cal.is_open(t), working, "{local}");
            open_minutes += i32::from(working);
            t += SignedDuration::from_mins(1);
        }
        assert_eq!(open_minutes, 20 * 10 * 60);
        // Holidays are closed even on a weekday at noon.
        assert!(!cal.is_open(berlin(2026, 12, 24, 12, 0)));
        assert!(cal.is_open(berlin(2026, 12, 23, 12, 0)));
    }

    #[test]
    fn a_night_shift_window_belongs_to_the_day_it_starts() {
        let mut cal = office();
        cal.hours = Window {
            start: Time::constant(22, 0, 0, 0),
            end: Time::constant(6, 0, 0, 0),
        };
        cal.days = vec![Weekday::Friday];
        assert!(cal.is_open(berlin(2026, 11, 20, 23, 0))); // Friday night
        assert!(cal.is_open(berlin(2026, 11, 21, 3, 0))); // … into Saturday
        assert!(!cal.is_open(berlin(2026, 11, 21, 23, 0))); // Saturday night
        assert!(!cal.is_open(berlin(2026, 11, 20, 3, 0))); // Thursday's shift
    }

    #[test]
    fn the_first_matching_policy_is_chosen_by_severity_tier_and_time() {
        let cals = [office()];
        let mut tier1 = policy(
            "tier1-critical",
            Hours::Any,
            vec![Severity::Critical],
            vec![step(&["pager"], 5, 0)],
        );
        tier1.tiers = vec![1];
        let policies = [
            tier1,
            policy(
                "office",
                Hours::Business,
                vec![],
                vec![step(&["mail"], 60, 0)],
            ),
            policy(
                "night",
                Hours::OffHours,
                vec![],
                vec![step(&["sms"], 30, 0)],
            ),
        ];
        let monday_noon = berlin(2026, 11, 23, 12, 0);
        let monday_night = berlin(2026, 11, 23, 23, 0);
        let pick =
            |sev, tier, at| select(&policies, &cals, sev, tier, at).map(|p| p.id.value.as_str());
        assert_eq!(
            pick(Severity::Critical, Some(1), monday_night),
            Some("tier1-critical")
        );
        assert_eq!(
            pick(Severity::Critical, Some(2), monday_noon),
            Some("office")
        );
        assert_eq!(pick(Severity::Warning, None, monday_night), Some("night"));
        assert_eq!(
            pick(Severity::Warning, None, berlin(2026, 12, 25, 12, 0)),
            Some("night")
        );
    }

    #[test]
    fn steps_repeat_then_escalate_then_stop_over_a_simulated_day() {
        let p = policy(
            "p",
            Hours::Any,
            vec![],
            vec![step(&["mail", "sms"], 15, 2), step(&["manager"], 60, 0)],
        );
        let t0 = berlin(2026, 11, 23, 2, 0);
        let (first, mut progress) = start(&p, t0).expect("a first page");
        assert_eq!(first.channels, vec!["mail", "sms"]);
        let mut pages = vec![(0, first.step, first.round)];
        // Minute by minute for a day: pages at 0, 15, 30 (step 0 and two
        // repeats), 45 (step 1), then nothing.
        let mut t = t0;
        for minute in 1..=24 * 60 {
            t = t0 + minute.minutes();
            if let Some((page, next)) = advance(&p, &progress, t) {
                if let Some(page) = page {
                    pages.push((minute, page.step, page.round));
                }
                progress = next;
            }
        }
        assert_eq!(pages, vec![(0, 0, 0), (15, 0, 1), (30, 0, 2), (45, 1, 0)]);
        // The last wait ran out at 1h45: the policy is done.
        assert_eq!(progress.next_at, None);
        assert_eq!(advance(&p, &progress, t), None);
    }

    #[test]
    fn a_late_check_sends_one_page_not_a_burst() {
        let p = policy("p", Hours::Any, vec![], vec![step(&["a"], 5, 10)]);
        let t0 = Timestamp::UNIX_EPOCH;
        let (_, progress) = start(&p, t0).expect("page");
        let (page, next) = advance(&p, &progress, t0 + 2.hours()).expect("due");
        let page = page.expect("a page");
        assert_eq!((page.step, page.round), (0, 1));
        assert_eq!(next.next_at, Some(t0 + 2.hours() + 5.minutes()));
    }
}
