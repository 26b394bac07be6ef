//! Baselines and forecasts for the watch rules (groundwork for the alert
//! issue): is a job's duration or volume far from the system's own
//! history, and when will a repository fill up?
//!
//! Pure functions of the numbers given; no clock, no I/O.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// The median and the median absolute deviation of a sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// The median.
    pub median: f64,
    /// The median absolute deviation (robust spread).
    pub mad: f64,
    /// How many values it was computed from.
    pub samples: usize,
}

fn median_of(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

impl Baseline {
    /// The baseline of `values` (e.g. the last N successful runs' durations
    /// in seconds); `None` when there are fewer than `min_samples` finite
    /// values, too few to say what is normal.
    pub fn of(values: &[f64], min_samples: usize) -> Option<Baseline> {
        let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if finite.len() < min_samples.max(1) {
            return None;
        }
        let median = median_of(&mut finite)?;
        let mut deviations: Vec<f64> = finite.iter().map(|v| (v - median).abs()).collect();
        let mad = median_of(&mut deviations)?;
        Some(Baseline {
            median,
            mad,
            samples: finite.len(),
        })
    }

    /// Where `value` lies: below, inside or above `median ± k·MAD`. A
    /// floor on the spread (`min_spread`, absolute) keeps perfectly
    /// regular histories (MAD 0) from flagging every tiny change.
    pub fn judge(&self, value: f64, k: f64, min_spread: f64) -> Deviation {
        let spread = (k * self.mad).max(min_spread.abs());
        if value > self.median + spread {
            Deviation::Above
        } else if value < self.median - spread {
            Deviation::Below
        } else {
            Deviation::Normal
        }
    }
}

/// A value against its baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Deviation {
    /// Far below (a backup that is suspiciously short or small).
    Below,
    /// Within the normal range.
    Normal,
    /// Far above (slow, or a burst of changed data).
    Above,
}

impl Deviation {
    /// `below`, `normal` or `above`.
    pub fn as_str(self) -> &'static str {
        match self {
            Deviation::Below => "below",
            Deviation::Normal => "normal",
            Deviation::Above => "above",
        }
    }
}

/// A least-squares line through (time, bytes) points.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// Growth in bytes per day.
    pub bytes_per_day: f64,
    /// The fitted value at the last point's time.
    pub bytes_now: f64,
    /// The last point's time.
    pub at: Timestamp,
}

impl Trend {
    /// Fit a line through `points` (at least two distinct times).
    pub fn fit(points: &[(Timestamp, u64)]) -> Option<Trend> {
        let last = points.iter().map(|(t, _)| *t).max()?;
        let xs: Vec<f64> = points
            .iter()
            .map(|(t, _)| t.duration_since(last).as_secs_f64() / 86_400.0)
            .collect();
        let ys: Vec<f64> = points.iter().map(|(_, b)| *b as f64).collect();
        let n = xs.len() as f64;
        let mean_x = xs.iter().sum::<f64>() / n;
        let mean_y = ys.iter().sum::<f64>() / n;
        let sxx: f64 = xs.iter().map(|x| (x - mean_x).powi(2)).sum();
        if sxx <= f64::EPSILON {
            return None;
        }
        let sxy: f64 = xs
            .iter()
            .zip(&ys)
            .map(|(x, y)| (x - mean_x) * (y - mean_y))
            .sum();
        let slope = sxy / sxx;
        Some(Trend {
            bytes_per_day: slope,
            bytes_now: mean_y - slope * mean_x,
            at: last,
        })
    }

    /// When the line reaches `bytes`; `None` when it does not grow (or
    /// is already there: then the time of the last point).
    pub fn reaches(&self, bytes: f64) -> Option<Timestamp> {
        if self.bytes_now >= bytes {
            return Some(self.at);
        }
        if self.bytes_per_day <= 0.0 {
            return None;
        }
        let days = (bytes - self.bytes_now) / self.bytes_per_day;
        // Beyond ~100 years the forecast means nothing (and would overflow).
        if days > 36_500.0 {
            return None;
        }
        Some(self.at + SignedDuration::from_secs_f64(days * 86_400.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_are_robust_to_outliers() {
        let runs = [60.0, 62.0, 58.0, 61.0, 59.0, 600.0, 60.0];
        let b = Baseline::of(&runs, 5).expect("baseline");
        assert_eq!(b.median, 60.0);
        assert_eq!(b.mad, 1.0);
        assert_eq!(b.samples, 7);
        let cases = [
            (60.0, Deviation::Normal),
            (64.0, Deviation::Normal),
            (70.0, Deviation::Above),
            (10.0, Deviation::Below),
        ];
        for (value, want) in cases {
            assert_eq!(b.judge(value, 5.0, 0.0), want, "{value}");
        }
        // Too few runs to judge.
        assert_eq!(Baseline::of(&[1.0, 2.0], 5), None);
        assert_eq!(Baseline::of(&[f64::NAN; 10], 1), None);
        // A perfectly regular history: the floor decides.
        let flat = Baseline::of(&[100.0; 10], 5).expect("flat");
        assert_eq!(flat.mad, 0.0);
        assert_eq!(flat.judge(101.0, 5.0, 5.0), Deviation::Normal);
        assert_eq!(flat.judge(106.0, 5.0, 5.0), Deviation::Above);
        let even = Baseline::of(&[1.0, 2.0, 3.0, 4.0], 1).expect("even");
        assert_eq!(even.median, 2.5);
    }

    #[test]
    fn capacity_forecasts_follow_the_least_squares_line() {
        let day = |d: i64| Timestamp::from_second(1_800_000_000 + d * 86_400).expect("t");
        let tb = 1_000_000_000_000u64;
        // 10 TB growing 100 GB a day, with noise that cancels out.
        let points: Vec<(Timestamp, u64)> = (0..30)
            .map(|d| {
                let noise = if d % 2 == 0 { 5_000_000_000 } else { 0 };
                (
                    day(d),
                    10 * tb + d as u64 * 100_000_000_000 + noise - 2_500_000_000,
                )
            })
            .collect();
        let trend = Trend::fit(&points).expect("trend");
        assert!((trend.bytes_per_day - 1e11).abs() < 2e8, "{trend:?}");
        // The line is at 12.9 TB on day 29: 80 % of 16 TB (12.8 TB) is
        // already reached; 14 TB is 11 days away.
        assert_eq!(trend.reaches(12.8e12), Some(day(29)));
        let at_14 = trend.reaches(14.0e12).expect("reached");
        let days = at_14.duration_since(day(29)).as_secs_f64() / 86_400.0;
        assert!((days - 11.0).abs() < 0.2, "{days}");
        // No growth: never.
        let flat: Vec<(Timestamp, u64)> = (0..10).map(|d| (day(d), tb)).collect();
        assert_eq!(Trend::fit(&flat).expect("fit").reaches(2e12), None);
        // One time only: no line.
        assert_eq!(Trend::fit(&[(day(0), 1), (day(0), 2)]), None);
        assert_eq!(Trend::fit(&[]), None);
    }
}
