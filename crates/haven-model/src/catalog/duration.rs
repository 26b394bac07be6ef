//! Human durations in the catalog: `15m`, `4h`, `2d`, `1w`, `1h 30m`.

use jiff::{SignedDuration, Span, SpanRelativeTo};

/// Parse a human duration. Days are 24 hours; months and years have no
/// fixed length and are refused.
pub fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let span: Span = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (use e.g. 15m, 4h, 2d, 1w or 1h 30m)"))?;
    let duration = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|_| format!("{text:?}: use days or weeks instead of months or years"))?;
    if duration.is_negative() {
        return Err(format!("{text:?} must not be negative"));
    }
    Ok(duration)
}

/// Render a duration the way the catalog writes them (`4h`, `1d 12h`).
pub fn format_duration(d: SignedDuration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            parts.push(format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    parts.join(" ")
}

/// An age or a wait for people: its two largest units, so 14 s reads
/// `14s`, 1 min 24 s `1m 24s`, and 2 days 5 hours 3 minutes `2d 5h`.
pub fn format_age(d: SignedDuration) -> String {
    const UNITS: [(char, i64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];
    let secs = d.as_secs().max(0);
    let Some(first) = UNITS.iter().position(|(_, size)| secs >= *size) else {
        return "0s".into();
    };
    let (unit, size) = UNITS[first];
    let mut text = format!("{}{unit}", secs / size);
    if let Some((next, next_size)) = UNITS.get(first + 1) {
        let rest = secs % size / next_size;
        if rest > 0 {
            text.push_str(&format!(" {rest}{next}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_keep_their_two_largest_units() {
        for (secs, text) in [
            (0, "0s"),
            (14, "14s"),
            (84, "1m 24s"),
            (7_503, "2h 5m"),
            (3 * 86_400 + 4 * 3_600 + 600, "3d 4h"),
            (86_400 + 59, "1d"),
            (-5, "0s"),
        ] {
            assert_eq!(format_age(SignedDuration::from_secs(secs)), text, "{secs}");
        }
    }

    #[test]
    fn parses_the_usual_forms() {
        for (text, secs) in [
            ("15m", 900),
            ("4h", 14_400),
            ("2d", 172_800),
            ("1w", 604_800),
            ("1h 30m", 5_400),
            ("1h30m", 5_400),
            ("90s", 90),
        ] {
            assert_eq!(
                parse_duration(text).map(|d| d.as_secs()),
                Ok(secs),
                "{text}"
            );
        }
        for bad in ["", "soon", "3 months", "1y", "-4h"] {
            assert!(parse_duration(bad).is_err(), "{bad} must be refused");
        }
        assert_eq!(format_duration(SignedDuration::from_secs(5_400)), "1h 30m");
        assert_eq!(format_duration(SignedDuration::from_hours(36)), "1d 12h");
    }
}
