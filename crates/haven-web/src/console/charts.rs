//! Charts Haven draws for the console, as SVG with presentation
//! attributes only (no style: the CSP holds) and every text escaped.

use std::fmt::Write as _;

use haven_model::catalog::duration::format_duration;
use haven_model::jobs::{Job, Outcome};
use haven_model::markup::{escape, truncate};
use haven_model::units::human_bytes;

/// A system's backup history, oldest first: a bar per job in two bands,
/// above its duration, below what it added to the repository; its colour
/// the outcome, its title what it did.
pub(crate) fn backup_history(system: &str, jobs: &[Job]) -> String {
    const WIDTH: f64 = 600.0;
    const TIME_H: f64 = 60.0;
    const SIZE_H: f64 = 36.0;
    const GAP: f64 = 18.0;
    let mut runs: Vec<&Job> = jobs.iter().filter(|j| j.started_at.is_some()).collect();
    runs.sort_by_key(|j| j.started_at);
    let took = |j: &Job| match (j.started_at, j.ended_at) {
        (Some(from), Some(to)) => to.duration_since(from).as_secs_f64().max(0.0),
        _ => 0.0,
    };
    let longest = runs.iter().map(|j| took(j)).fold(0.001, f64::max);
    let largest = runs
        .iter()
        .map(|j| j.stats.bytes_added)
        .max()
        .unwrap_or(0)
        .max(1);
    // At most 30 bars fill the width; fewer keep their width.
    let step = (WIDTH / runs.len().max(1) as f64).min(WIDTH / 30.0);
    let size_top = TIME_H + GAP;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{}\" role=\"img\" aria-label=\"backup history of {}: {} runs, their durations and what each added\">",
        size_top + SIZE_H + 16.0,
        escape(system),
        runs.len()
    );
    for (i, job) in runs.iter().enumerate() {
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
        let title = format!(
            "{} {}: {}, {} added",
            escape(&when),
            job.outcome.as_str(),
            format_duration(jiff::SignedDuration::from_secs_f64(took(job))),
            human_bytes(job.stats.bytes_added as f64)
        );
        let x = i as f64 * step + 1.0;
        let w = (step - 2.0).max(1.0);
        let h = (took(job) / longest * TIME_H).max(2.0);
        let added = job.stats.bytes_added as f64 / largest as f64 * SIZE_H;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{colour}\"><title>{title}</title></rect>\
             <rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"#5c7cfa\"><title>{title}</title></rect>",
            TIME_H - h,
            size_top + SIZE_H - added.max(1.0),
            added.max(1.0),
        );
    }
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{:.1}\" font-size=\"11\">duration (longest {})</text>\
         <text x=\"0\" y=\"{:.1}\" font-size=\"11\">added (most {})</text></svg>",
        TIME_H + 13.0,
        format_duration(jiff::SignedDuration::from_secs_f64(longest)),
        size_top + SIZE_H + 13.0,
        human_bytes(largest as f64)
    );
    svg
}

/// How old a system's newest restore point was over the time its jobs
/// cover, against its RPO: the age climbs until a good backup resets it
/// (a sawtooth); the RPO a dashed line. `None` without a good backup.
pub(crate) fn data_age(
    system: &str,
    jobs: &[Job],
    rpo: Option<jiff::SignedDuration>,
    now: jiff::Timestamp,
) -> Option<String> {
    const WIDTH: f64 = 600.0;
    const HEIGHT: f64 = 90.0;
    let mut good: Vec<jiff::Timestamp> = jobs
        .iter()
        .filter(|j| j.outcome.is_good())
        .filter_map(|j| j.ended_at)
        .collect();
    good.sort();
    let first = *good.first()?;
    let span = now.duration_since(first).as_secs_f64().max(1.0);
    let mut peaks: Vec<f64> = good
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64())
        .collect();
    let age_now = now.duration_since(*good.last()?).as_secs_f64().max(0.0);
    peaks.push(age_now);
    let rpo_secs = rpo.map(|r| r.as_secs_f64());
    let top = peaks
        .iter()
        .copied()
        .chain(rpo_secs.map(|r| r * 1.2))
        .fold(1.0, f64::max);
    let x = |t: jiff::Timestamp| t.duration_since(first).as_secs_f64() / span * WIDTH;
    let y = |age: f64| HEIGHT - age / top * HEIGHT;
    let mut points = vec![format!("0,{HEIGHT}")];
    for pair in good.windows(2) {
        let age = pair[1].duration_since(pair[0]).as_secs_f64();
        points.push(format!("{:.1},{:.1}", x(pair[1]), y(age)));
        points.push(format!("{:.1},{HEIGHT}", x(pair[1])));
    }
    points.push(format!("{WIDTH:.1},{:.1}", y(age_now)));
    let over = rpo_secs.is_some_and(|r| age_now > r);
    let label = |secs: f64| format_duration(jiff::SignedDuration::from_secs_f64(secs.max(0.0)));
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{}\" role=\"img\" aria-label=\"age of the newest restore point of {} over time: now {}{}\">\
         <polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
        HEIGHT + 16.0,
        escape(system),
        label(age_now),
        rpo_secs.map_or(String::new(), |r| format!(", RPO {}", label(r))),
        points.join(" "),
        if over { "#c92a2a" } else { "#1d5e2b" },
    );
    if let Some(r) = rpo_secs {
        let _ = write!(
            svg,
            "<line x1=\"0\" y1=\"{0:.1}\" x2=\"{WIDTH}\" y2=\"{0:.1}\" stroke=\"#8b1a1a\" stroke-dasharray=\"6 4\"/>\
             <text x=\"2\" y=\"{1:.1}\" font-size=\"11\" fill=\"#8b1a1a\">RPO {2}</text>",
            y(r),
            (y(r) - 3.0).max(10.0),
            label(r)
        );
    }
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{:.1}\" font-size=\"11\">{:.0} … now (age now {})</text></svg>",
        HEIGHT + 13.0,
        first,
        label(age_now)
    );
    Some(svg)
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

/// A box of the dependency graph.
const BOX_W: f64 = 200.0;
const BOX_H: f64 = 38.0;

/// A service's dependency graph, left to right: the service, then what it
/// needs, each thing in the column of its longest chain from the service;
/// a box per service, system and vendor, filled by its state (`states`:
/// id → RPO state or readiness word), the state written beside its name.
pub(crate) fn dependency_graph(
    graph: &haven_model::catalog::graph::Neighbourhood,
    states: &std::collections::HashMap<String, String>,
) -> String {
    const COL: f64 = 250.0;
    const ROW: f64 = 50.0;
    let mut rows_in: std::collections::HashMap<usize, usize> = Default::default();
    let mut at: std::collections::HashMap<&str, (f64, f64)> = Default::default();
    for node in &graph.nodes {
        let row = rows_in.entry(node.depth).or_default();
        at.insert(
            node.id.as_str(),
            (node.depth as f64 * COL + 2.0, *row as f64 * ROW + 2.0),
        );
        *row += 1;
    }
    let columns = rows_in.len().max(1) as f64;
    let rows = rows_in.values().copied().max().unwrap_or(1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{:.0}\" role=\"img\" aria-label=\"what {} needs: {} services, systems and vendors\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#4a5260\"/></marker></defs>",
        (columns - 1.0) * COL + BOX_W + 4.0,
        (rows - 1.0) * ROW + BOX_H + 4.0,
        escape(graph.nodes.first().map_or("", |n| n.id.as_str())),
        graph.nodes.len().saturating_sub(1),
    );
    for (from, to) in &graph.edges {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (at.get(from.as_str()), at.get(to.as_str()))
        else {
            continue;
        };
        let (x1, y1, y2) = (x1 + BOX_W, y1 + BOX_H / 2.0, y2 + BOX_H / 2.0);
        let mid = (x1 + x2) / 2.0;
        let _ = write!(
            svg,
            "<path d=\"M{x1:.1},{y1:.1} C{mid:.1},{y1:.1} {mid:.1},{y2:.1} {x2:.1},{y2:.1}\" fill=\"none\" stroke=\"#4a5260\" marker-end=\"url(#arrow)\"/>"
        );
    }
    for node in &graph.nodes {
        if let Some(&(x, y)) = at.get(node.id.as_str()) {
            let state = states.get(&node.id).map_or("", String::as_str);
            graph_node(&mut svg, node, state, x, y);
        }
    }
    svg.push_str("</svg>");
    svg
}

/// One box of the dependency graph at (`x`, `y`): filled by its state,
/// its label and its kind and state written in it.
fn graph_node(
    svg: &mut String,
    node: &haven_model::catalog::graph::Node,
    state: &str,
    x: f64,
    y: f64,
) {
    let (fill, stroke) = match state {
        "quarantined" | "violated" | "failed" => ("#fde8e8", "#8b1a1a"),
        "unprotected" | "at-risk" | "needs-verification" | "not-verified" => ("#fff4d6", "#7a4b00"),
        "ok" | "verified" => ("#e5f4e8", "#1d5e2b"),
        _ => ("#f4f6f8", "#4a5260"),
    };
    let rx = if node.kind == "service" { 2 } else { 14 };
    let _ = write!(
        svg,
        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"{rx}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"2\"><title>{} {}{}</title></rect>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#1b1f24\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{stroke}\">{} {}</text>",
        node.kind,
        escape(&node.label),
        if state.is_empty() {
            String::new()
        } else {
            format!(": {state}")
        },
        x + 6.0,
        y + 15.0,
        escape(&truncate(&node.label, 30)),
        x + 6.0,
        y + 30.0,
        node.kind,
        escape(state),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use haven_model::jobs::{JobKind, JobStats, NewJob, Trigger};
    use jiff::{SignedDuration, Timestamp};

    fn at(hours: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_hours(hours)
    }

    fn backup(id: i64, ended: i64, outcome: Outcome) -> Job {
        Job {
            id,
            planned: NewJob {
                kind: JobKind::Backup,
                task: "backup:s/set".into(),
                system: Some("s".into()),
                backup_set: Some("set".into()),
                policy: None,
                repository: None,
                trigger: Trigger::Schedule,
                attempt: 1,
                scheduled_at: at(ended),
            },
            started_at: Some(at(ended) - SignedDuration::from_mins(10)),
            ended_at: Some(at(ended)),
            outcome,
            stats: JobStats {
                bytes_added: 1000 * id as u64,
                ..JobStats::default()
            },
            snapshot_id: None,
            failure: None,
            message: None,
            log: String::new(),
        }
    }

    /// Good backups at 0 h, 10 h and 20 h, a failed one at 30 h, now 40 h,
    /// RPO 24 h: the age climbs to 10 h twice, then to 20 h now, under
    /// the RPO (drawn); the failed run resets nothing.
    #[test]
    fn the_data_age_climbs_until_a_good_backup_resets_it() {
        let jobs = vec![
            backup(4, 30, Outcome::Failed),
            backup(3, 20, Outcome::Success),
            backup(2, 10, Outcome::Success),
            backup(1, 0, Outcome::Success),
        ];
        let svg =
            data_age("s", &jobs, Some(SignedDuration::from_hours(24)), at(40)).expect("a chart");
        // Width 600 over 40 h: 15 px an hour; height 90 for 28.8 h (RPO × 1.2).
        let y = |h: f64| 90.0 - h / 28.8 * 90.0;
        let expected = format!(
            "0,90 150.0,{:.1} 150.0,90 300.0,{:.1} 300.0,90 600.0,{:.1}",
            y(10.0),
            y(10.0),
            y(20.0)
        );
        assert!(svg.contains(&expected), "{svg}");
        assert!(svg.contains("RPO 1d") && svg.contains("now 20h"), "{svg}");
        assert!(svg.contains("stroke=\"#1d5e2b\""), "under the RPO: green");
        // Past the RPO now: red.
        let late =
            data_age("s", &jobs, Some(SignedDuration::from_hours(12)), at(40)).expect("a chart");
        assert!(late.contains("stroke=\"#c92a2a\""), "{late}");
        // Never a good backup: no chart.
        assert!(data_age("s", &jobs[..1], None, at(40)).is_none());
    }

    #[test]
    fn the_backup_history_draws_duration_and_size_per_run() {
        let jobs = vec![
            backup(2, 10, Outcome::Failed),
            backup(1, 0, Outcome::Success),
        ];
        let svg = backup_history("s", &jobs);
        assert_eq!(
            svg.matches("<rect").count(),
            4,
            "two bands, two runs: {svg}"
        );
        assert!(svg.contains("added (most 2.0 KiB)"), "{svg}");
        assert!(svg.contains("#c92a2a") && svg.contains("#2f9e44"), "{svg}");
    }
}
