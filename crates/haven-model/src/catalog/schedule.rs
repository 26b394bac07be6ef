//! When a policy's backups may start: cron × window × time zone.
//!
//! The cron expression is evaluated on the policy's local wall clock.
//! A local time that does not exist (the hour skipped when clocks go
//! forward) starts nothing; a local time that happens twice (clocks go
//! back) starts once, at its first occurrence. Starts outside the
//! policy's window are dropped (no job starts outside its window).

use std::str::FromStr;

use croner::Cron;
use jiff::civil::{DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, ToSpan};

use super::Window;

/// A cron schedule, parsed once where it is read (the catalog, the
/// settings, an API request) and never again: `minute hour day-of-month
/// month day-of-week`, evaluated on a local wall clock.
#[derive(Clone, Debug)]
pub struct CronSchedule {
    text: String,
    // Shared: a parsed expression is large, and plans clone it per task.
    cron: std::sync::Arc<Cron>,
}

/// A valid example, for errors.
pub const CRON_EXAMPLE: &str =
    "\"30 2 * * *\" (every day at 02:30) or \"0 */6 * * *\" (every 6 hours)";

impl CronSchedule {
    /// Parse a 5-field cron expression. Anything else (4 or 6 fields,
    /// words, a value out of range) is an error that says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let fields = text.split_whitespace().count();
        if fields != 5 {
            return Err(format!(
                "{text:?} is not a cron schedule: it has {fields} fields, and a schedule has 5 (minute hour day-of-month month day-of-week)"
            ));
        }
        let cron =
            Cron::from_str(text).map_err(|e| format!("{text:?} is not a cron schedule: {e}"))?;
        Ok(CronSchedule {
            text: text.to_string(),
            cron: std::sync::Arc::new(cron),
        })
    }

    /// The parsed expression.
    pub fn cron(&self) -> &Cron {
        &self.cron
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when both the day of month and the day of week are
    /// restricted: cron then fires when *either* matches (`0 2 1-7 * 0`
    /// is every one of days 1–7 and every Sunday, not the first Sunday;
    /// that is `0 2 * * 0#1`).
    pub fn days_match_either(&self) -> bool {
        let fields: Vec<&str> = self.text.split_whitespace().collect();
        let restricted = |f: &str| f != "*" && f != "?";
        fields.len() == 5 && restricted(fields[2]) && restricted(fields[4])
    }
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl std::fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for CronSchedule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for CronSchedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        CronSchedule::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An IANA time zone, resolved once where it is read; its name is kept
/// for display.
#[derive(Clone, Debug)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl Zone {
    /// Resolve an IANA name (`Europe/Berlin`, `UTC`).
    pub fn parse(name: &str) -> Result<Self, String> {
        let tz = TimeZone::get(name).map_err(|_| format!("{name:?} is not an IANA time zone"))?;
        Ok(Zone {
            name: name.to_string(),
            tz,
        })
    }

    /// UTC.
    pub fn utc() -> Self {
        Zone {
            name: "UTC".into(),
            tz: TimeZone::UTC,
        }
    }

    /// The time zone.
    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }

    /// The name as written.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl serde::Serialize for Zone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> serde::Deserialize<'de> for Zone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Zone::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// Is `t` inside the window (which may wrap past midnight)?
pub fn in_window(window: Option<Window>, t: Time) -> bool {
    match window {
        None => true,
        Some(w) if w.start < w.end => w.start <= t && t < w.end,
        Some(w) => t >= w.start || t < w.end,
    }
}

/// Every allowed start in `[from, until)`.
pub fn allowed_starts(
    cron: &Cron,
    tz: &TimeZone,
    window: Option<Window>,
    from: Timestamp,
    until: Timestamp,
) -> Vec<Timestamp> {
    let mut starts = Vec::new();
    // Civil times around the period (a day of slack for offsets).
    let first = tz.to_datetime(from) - 1.day();
    let last = tz.to_datetime(until) + 1.day();
    for civil in cron.iter_after(first) {
        if civil > last {
            break;
        }
        if !in_window(window, civil.time()) {
            continue;
        }
        let Some(at) = first_instant(tz, civil) else {
            continue; // skipped by a clock change
        };
        if at >= from && at < until {
            starts.push(at);
        }
    }
    starts.sort();
    starts.dedup();
    starts
}

/// The first allowed start strictly after `after`, looking up to 400 days
/// ahead; `None` when the schedule never starts in that time.
pub fn next_start(
    cron: &Cron,
    tz: &TimeZone,
    window: Option<Window>,
    after: Timestamp,
) -> Option<Timestamp> {
    // Widen the search step by step: most schedules start within a day,
    // and a short range keeps the common case cheap.
    let from = after + SignedDuration::from_secs(1);
    let mut start = from;
    for days in [1, 7, 31, 400] {
        let until = from + SignedDuration::from_hours(24 * days);
        if let Some(first) = allowed_starts(cron, tz, window, start, until).first() {
            return Some(*first);
        }
        start = until;
    }
    None
}

/// A deterministic offset in `[0, stagger)` for one system, so systems
/// that share a policy do not all start at the same second.
pub fn stagger_offset(key: &str, stagger: Option<SignedDuration>) -> SignedDuration {
    let Some(stagger) = stagger.filter(|s| s.as_secs() > 0) else {
        return SignedDuration::ZERO;
    };
    // FNV-1a: stable across releases and platforms, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    SignedDuration::from_secs((hash % stagger.as_secs().unsigned_abs()) as i64)
}

/// The first instant that shows `civil` on the wall clock, if any.
fn first_instant(tz: &TimeZone, civil: DateTime) -> Option<Timestamp> {
    let ambiguous = tz.to_ambiguous_zoned(civil);
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => {
            ambiguous.earlier().ok().map(|z| z.timestamp())
        }
        AmbiguousOffset::Gap { .. } => None,
    }
}

/// The longest time between consecutive allowed starts during the year
/// from `from` (DST changes included); the gap that crosses the end of
/// that year counts too. `None` when the schedule starts fewer than two
/// times in the year and the following month.
pub fn longest_gap(
    cron: &Cron,
    tz: &TimeZone,
    window: Option<Window>,
    from: Timestamp,
) -> Option<SignedDuration> {
    longest_gap_at(cron, tz, window, from).map(|g| g.length)
}

/// The longest gap between two allowed starts, and where it falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    /// Its length.
    pub length: SignedDuration,
    /// The start before it.
    pub after: Timestamp,
    /// The start that ends it.
    pub until: Timestamp,
}

/// [`longest_gap`], with where the (first) longest gap falls.
pub fn longest_gap_at(
    cron: &Cron,
    tz: &TimeZone,
    window: Option<Window>,
    from: Timestamp,
) -> Option<Gap> {
    let year_end = from + SignedDuration::from_hours(366 * 24);
    let until = year_end + SignedDuration::from_hours(31 * 24);
    let starts = allowed_starts(cron, tz, window, from, until);
    let mut longest: Option<Gap> = None;
    for pair in starts.windows(2) {
        if pair[0] >= year_end {
            break;
        }
        let length = pair[1].duration_since(pair[0]);
        if longest.is_none_or(|l| length > l.length) {
            longest = Some(Gap {
                length,
                after: pair[0],
                until: pair[1],
            });
        }
    }
    longest
}

/// A change of a time zone's clocks: when, and which local hours it
/// repeats (clocks go back) or skips (clocks go forward).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockChange {
    /// The moment of the change.
    pub at: Timestamp,
    /// The local date of the change.
    pub date: jiff::civil::Date,
    /// True when clocks go back (local times between `from` and `to`
    /// happen twice); false when they go forward (those times do not
    /// happen at all).
    pub repeats: bool,
    /// First local time affected.
    pub from: Time,
    /// First local time no longer affected.
    pub to: Time,
}

impl ClockChange {
    /// "repeats the hour from 02:00 to 03:00 on 2026-10-25 (clocks go back)".
    pub fn describe(&self) -> String {
        let what = if self.repeats {
            "repeats the local times from {from} to {to} on {date} (clocks go back; a start time that happens twice starts once)"
        } else {
            "skips the local times from {from} to {to} on {date} (clocks go forward; a start time that does not exist starts nothing)"
        };
        what.replace("{from}", &self.from.strftime("%H:%M").to_string())
            .replace("{to}", &self.to.strftime("%H:%M").to_string())
            .replace("{date}", &self.date.to_string())
    }
}

/// The first clock change of `tz` in `(after, until]`, if any.
pub fn clock_change_between(
    tz: &TimeZone,
    after: Timestamp,
    until: Timestamp,
) -> Option<ClockChange> {
    let transition = tz.following(after).next()?;
    let at = transition.timestamp();
    if at > until {
        return None;
    }
    let before = tz.to_offset(at - SignedDuration::from_secs(1));
    let after_offset = transition.offset();
    let old_local = at.to_zoned(TimeZone::fixed(before)).datetime();
    let new_local = at.to_zoned(TimeZone::fixed(after_offset)).datetime();
    let repeats = after_offset < before;
    let (from, to) = if repeats {
        (new_local.time(), old_local.time())
    } else {
        (old_local.time(), new_local.time())
    };
    Some(ClockChange {
        at,
        date: new_local.date(),
        repeats,
        from,
        to,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn parse_cron(text: &str) -> Result<Cron, String> {
        CronSchedule::parse(text).map(|s| s.cron().clone())
    }

    /// What a first catalog got wrong: each is refused where it is read,
    /// saying why, instead of loading and never running.
    #[test]
    fn a_schedule_that_is_not_five_cron_fields_is_refused_with_the_reason() {
        for (text, says) in [
            ("0 */6 * *", "4 fields"),
            ("every 6 hours", "3 fields"),
            ("", "0 fields"),
            ("0 0 */6 * * *", "6 fields"),
            ("61 * * * *", "not a cron schedule"),
            ("0 25 * * *", "not a cron schedule"),
        ] {
            let error = CronSchedule::parse(text).expect_err(text);
            assert!(error.contains(says), "{text:?}: {error}");
        }
        let ok = CronSchedule::parse("*/15 * * * 1-5").expect("valid");
        assert_eq!(ok.as_str(), "*/15 * * * 1-5");
        assert_eq!(
            serde_json::to_string(&ok).expect("json"),
            "\"*/15 * * * 1-5\""
        );
    }

    #[test]
    fn clock_changes_are_named_with_their_date_and_hours() {
        let berlin = TimeZone::get("Europe/Berlin").expect("tz");
        let ts = |s: &str| s.parse::<Timestamp>().expect("ts");
        let autumn = clock_change_between(
            &berlin,
            ts("2026-10-24T00:00:00Z"),
            ts("2026-10-26T00:00:00Z"),
        )
        .expect("a change");
        assert!(autumn.repeats);
        assert_eq!(autumn.date.to_string(), "2026-10-25");
        assert_eq!(
            autumn.describe(),
            "repeats the local times from 02:00 to 03:00 on 2026-10-25 (clocks go back; a start time that happens twice starts once)"
        );
        let spring = clock_change_between(
            &berlin,
            ts("2026-03-28T00:00:00Z"),
            ts("2026-03-30T00:00:00Z"),
        )
        .expect("a change");
        assert!(!spring.repeats);
        assert_eq!(
            (
                spring.from.to_string().as_str(),
                spring.to.to_string().as_str()
            ),
            ("02:00:00", "03:00:00")
        );
        assert_eq!(spring.date.to_string(), "2026-03-29");
        assert!(
            clock_change_between(
                &berlin,
                ts("2026-06-01T00:00:00Z"),
                ts("2026-06-02T00:00:00Z")
            )
            .is_none()
        );
        assert!(
            clock_change_between(
                &TimeZone::UTC,
                ts("2026-01-01T00:00:00Z"),
                ts("2027-01-01T00:00:00Z")
            )
            .is_none()
        );
        // The every-15-minutes gap of the autumn night, and where it is.
        let quarter = parse_cron("*/15 * * * *").expect("cron");
        let gap = longest_gap_at(&quarter, &berlin, None, ts("2026-09-01T00:00:00Z")).expect("gap");
        assert_eq!(gap.length, SignedDuration::from_mins(75));
        assert_eq!(gap.after, ts("2026-10-25T00:45:00Z"));
        assert_eq!(gap.until, ts("2026-10-25T02:00:00Z"));
    }

    /// `0 2 1-7 * 0` runs on days 1–7 *or* Sundays (cron); the first
    /// Sunday is `0 2 * * 0#1`.
    #[test]
    fn day_of_month_and_day_of_week_together_mean_either() {
        let either = CronSchedule::parse("0 2 1-7 * 0").expect("cron");
        assert!(either.days_match_either());
        let first_sunday = CronSchedule::parse("0 2 * * 0#1").expect("cron");
        assert!(!first_sunday.days_match_either());
        assert!(
            !CronSchedule::parse("0 2 1 * *")
                .expect("cron")
                .days_match_either()
        );
        let utc = TimeZone::UTC;
        let ts = |s: &str| s.parse::<Timestamp>().expect("ts");
        // 2 November 2026 is a Monday: days 1–7 match either way.
        let next = next_start(either.cron(), &utc, None, ts("2026-11-01T12:00:00Z"));
        assert_eq!(next, Some(ts("2026-11-02T02:00:00Z")));
        let next = next_start(first_sunday.cron(), &utc, None, ts("2026-11-01T12:00:00Z"));
        assert_eq!(
            next,
            Some(ts("2026-12-06T02:00:00Z")),
            "the first Sunday of December"
        );
    }

    #[test]
    fn a_time_zone_is_resolved_once_or_refused() {
        assert_eq!(
            Zone::parse("Europe/Berlin").expect("zone").name(),
            "Europe/Berlin"
        );
        let error = Zone::parse("Mars/Olympus").expect_err("unknown");
        assert!(error.contains("not an IANA time zone"), "{error}");
        let json: Result<Zone, _> = serde_json::from_str("\"Nowhere/Land\"");
        assert!(json.is_err());
    }

    /// The reference: walk every minute of real time, and start whenever
    /// the wall clock shows a matching time for the first time.
    fn brute_force_gap(
        cron: &Cron,
        tz: &TimeZone,
        window: Option<Window>,
        from: Timestamp,
    ) -> Option<SignedDuration> {
        let year_end = from + SignedDuration::from_hours(366 * 24);
        let until = year_end + SignedDuration::from_hours(31 * 24);
        let mut seen: HashSet<DateTime> = HashSet::new();
        let mut last: Option<Timestamp> = None;
        let mut longest: Option<SignedDuration> = None;
        let mut t = from;
        while t < until {
            let civil = tz.to_datetime(t);
            if seen.insert(civil)
                && in_window(window, civil.time())
                && cron.is_time_matching(&civil).unwrap_or(false)
            {
                if let Some(prev) = last
                    && prev < year_end
                {
                    let gap = t.duration_since(prev);
                    longest = Some(longest.map_or(gap, |l| l.max(gap)));
                }
                last = Some(t);
            }
            t += SignedDuration::from_mins(1);
        }
        longest
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn window(start: &str, end: &str) -> Option<Window> {
        Some(Window {
            start: start.parse().expect("time"),
            end: end.parse().expect("time"),
        })
    }

    #[test]
    fn known_gaps() {
        let berlin = TimeZone::get("Europe/Berlin").expect("tz");
        let from = at("2026-01-01T00:00:00Z");
        let daily = parse_cron("0 2 * * *").expect("cron");
        // 02:00 does not exist on the day clocks go forward in Berlin
        // (2026-03-29): that day starts nothing, so two starts are two
        // days apart, less the hour the clocks skipped.
        assert_eq!(
            longest_gap(&daily, &berlin, None, from),
            Some(SignedDuration::from_hours(47))
        );
        let daily_3 = parse_cron("0 3 * * *").expect("cron");
        // 03:00 exists every day; the 23h and 25h days make gaps of 23h
        // and 25h.
        assert_eq!(
            longest_gap(&daily_3, &berlin, None, from),
            Some(SignedDuration::from_hours(25))
        );
        let hourly = parse_cron("0 * * * *").expect("cron");
        // Hourly, but only inside 22:00-06:00: from 05:00 to 22:00.
        assert_eq!(
            longest_gap(&hourly, &TimeZone::UTC, window("22:00", "06:00"), from),
            Some(SignedDuration::from_hours(17))
        );
        let weekdays = parse_cron("30 1 * * 1-5").expect("cron");
        // Friday 01:30 to Monday 01:30.
        assert_eq!(
            longest_gap(&weekdays, &TimeZone::UTC, None, from),
            Some(SignedDuration::from_hours(72))
        );
        // A window that excludes every start: never.
        assert_eq!(
            longest_gap(&daily_3, &TimeZone::UTC, window("10:00", "11:00"), from),
            None
        );
    }

    #[test]
    fn next_start_skips_the_hour_clocks_jump_over_and_respects_windows() {
        let berlin = TimeZone::get("Europe/Berlin").expect("tz");
        let daily_2 = parse_cron("30 2 * * *").expect("cron");
        // 2026-03-29 02:30 does not exist in Berlin: the next start after
        // the 28th's is on the 30th.
        let after = at("2026-03-28T01:30:00Z");
        assert_eq!(
            next_start(&daily_2, &berlin, None, after),
            Some(at("2026-03-30T00:30:00Z"))
        );
        // Clocks go back on 2026-10-25: 02:30 happens twice, starts once.
        let before = at("2026-10-24T00:30:00Z");
        let first = next_start(&daily_2, &berlin, None, before).expect("start");
        assert_eq!(first, at("2026-10-25T00:30:00Z"));
        assert_eq!(
            next_start(&daily_2, &berlin, None, first),
            Some(at("2026-10-26T01:30:00Z"))
        );
        let hourly = parse_cron("0 * * * *").expect("cron");
        assert_eq!(
            next_start(
                &hourly,
                &TimeZone::UTC,
                window("22:00", "06:00"),
                at("2026-01-01T06:00:00Z")
            ),
            Some(at("2026-01-01T22:00:00Z"))
        );
        let never = parse_cron("0 3 * * *").expect("cron");
        assert_eq!(
            next_start(
                &never,
                &TimeZone::UTC,
                window("10:00", "11:00"),
                at("2026-01-01T00:00:00Z")
            ),
            None
        );
        // A yearly schedule is found months ahead.
        let yearly = parse_cron("0 4 1 1 *").expect("cron");
        assert_eq!(
            next_start(&yearly, &TimeZone::UTC, None, at("2026-02-01T00:00:00Z")),
            Some(at("2027-01-01T04:00:00Z"))
        );
    }

    #[test]
    fn stagger_offsets_are_stable_and_bounded() {
        let stagger = Some(SignedDuration::from_mins(20));
        let a = stagger_offset("erp-db", stagger);
        assert_eq!(a, stagger_offset("erp-db", stagger));
        assert!(a < SignedDuration::from_mins(20) && a >= SignedDuration::ZERO);
        assert_eq!(stagger_offset("erp-db", None), SignedDuration::ZERO);
        let distinct: HashSet<SignedDuration> = (0..50)
            .map(|i| stagger_offset(&format!("system-{i}"), stagger))
            .collect();
        assert!(
            distinct.len() > 30,
            "offsets spread out: {}",
            distinct.len()
        );
    }

    fn cron_strategy() -> impl Strategy<Value = String> {
        let minute = prop_oneof![
            (0u32..60).prop_map(|m| m.to_string()),
            (2u32..31).prop_map(|k| format!("*/{k}")),
        ];
        let hour = prop_oneof![
            (0u32..24).prop_map(|h| h.to_string()),
            (0u32..24, 0u32..24).prop_map(|(a, b)| format!("{},{}", a.min(b), a.max(b))),
            (1u32..8).prop_map(|k| format!("*/{k}")),
            Just("1-3".to_string()),
            Just("*".to_string()),
        ];
        let dow = prop_oneof![
            Just("*".to_string()),
            Just("1-5".to_string()),
            Just("0,6".to_string()),
            Just("3".to_string()),
        ];
        (minute, hour, dow).prop_map(|(m, h, d)| format!("{m} {h} * * {d}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        /// The gap computed from cron occurrences equals a brute-force walk
        /// over every minute of a year, DST transitions included.
        #[test]
        fn longest_gap_matches_brute_force(
            expr in cron_strategy(),
            zone in prop::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
            win in prop::option::of((0u32..24, 0u32..24)),
        ) {
            let cron = parse_cron(&expr).expect("generated cron parses");
            let tz = TimeZone::get(zone).expect("tz");
            let window = win
                .filter(|(a, b)| a != b)
                .map(|(a, b)| Window {
                    start: Time::new(a as i8, 0, 0, 0).expect("time"),
                    end: Time::new(b as i8, 0, 0, 0).expect("time"),
                });
            let from = at("2026-01-01T00:00:00Z");
            prop_assert_eq!(
                longest_gap(&cron, &tz, window, from),
                brute_force_gap(&cron, &tz, window, from),
                "{} in {} window {:?}", expr, zone, window
            );
        }
    }
}
