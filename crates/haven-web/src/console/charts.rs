//! Charts Haven draws for the console, as SVG with presentation
//! attributes only (no style: the CSP holds) and every text escaped.

use std::fmt::Write as _;

use haven_model::catalog::duration::format_duration;
use haven_model::jobs::{Job, Outcome};

/// A system's backup history, oldest first: a bar per job, its height the
/// job's duration, its colour the outcome, its title what it did.
pub(crate) fn backup_history(system: &str, jobs: &[Job]) -> String {
    const WIDTH: f64 = 600.0;
    const HEIGHT: f64 = 80.0;
    let mut runs: Vec<&Job> = jobs.iter().filter(|j| j.started_at.is_some()).collect();
    runs.sort_by_key(|j| j.started_at);
    let took = |j: &Job| match (j.started_at, j.ended_at) {
        (Some(from), Some(to)) => to.duration_since(from).as_secs_f64().max(0.0),
        _ => 0.0,
    };
    let longest = runs.iter().map(|j| took(j)).fold(0.001, f64::max);
    // At most 30 bars fill the width; fewer keep their width.
    let step = (WIDTH / runs.len().max(1) as f64).min(WIDTH / 30.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{}\" role=\"img\" aria-label=\"backup history of {}: {} runs\">",
        HEIGHT + 16.0,
        escape(system),
        runs.len()
    );
    for (i, job) in runs.iter().enumerate() {
        let h = (took(job) / longest * HEIGHT).max(2.0);
        let colour = match job.outcome {
            Outcome::Success => "#2f9e44",
            Outcome::Partial => "#f08c00",
            Outcome::Running => "#1c7ed6",
            _ => "#c92a2a",
        };
        let when = job
            .started_at
            .map(|t| format!("{t:.0}"))
            .unwrap_or_default();
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{colour}\"><title>{} {}: {}, {} bytes added</title></rect>",
            i as f64 * step + 1.0,
            HEIGHT - h,
            (step - 2.0).max(1.0),
            escape(&when),
            job.outcome.as_str(),
            format_duration(jiff::SignedDuration::from_secs_f64(took(job))),
            job.stats.bytes_added
        );
    }
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{:.1}\" font-size=\"11\">longest {}</text></svg>",
        HEIGHT + 13.0,
        format_duration(jiff::SignedDuration::from_secs_f64(longest))
    );
    svg
}

/// Each repository's usage as a bar against its capacity (a repository
/// without a declared capacity or a measurement has no bar).
pub(crate) fn usage(repositories: &[haven_ops::metrics::RepositoryUsage]) -> String {
    const WIDTH: f64 = 600.0;
    const LABEL: f64 = 160.0;
    const ROW: f64 = 22.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"repository usage against capacity\">",
        LABEL + WIDTH,
        ROW * repositories.len().max(1) as f64 + 4.0
    );
    for (i, r) in repositories.iter().enumerate() {
        let y = ROW * i as f64 + 2.0;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"12\">{}</text><rect x=\"{LABEL}\" y=\"{y:.1}\" width=\"{WIDTH}\" height=\"{:.1}\" fill=\"#e9ecef\"/>",
            y + ROW - 8.0,
            escape(&r.repository),
            ROW - 6.0
        );
        if let (Some(used), Some(cap)) = (r.used_bytes, r.capacity_bytes.filter(|c| *c > 0)) {
            let share = (used as f64 / cap as f64).min(1.0);
            let colour = if share >= 0.9 {
                "#c92a2a"
            } else if share >= 0.75 {
                "#f08c00"
            } else {
                "#2f9e44"
            };
            let _ = write!(
                svg,
                "<rect x=\"{LABEL}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{}: {:.0} % of its capacity</title></rect>",
                (share * WIDTH).max(1.0),
                ROW - 6.0,
                escape(&r.repository),
                share * 100.0
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
