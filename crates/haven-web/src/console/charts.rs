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

/// A service's dependency graph, left to right: the service, then what it
/// needs, each thing in the column of its longest chain from the service;
/// a box per service, system and vendor, filled by its state (`states`:
/// id → RPO state or readiness word), the state written beside its name.
pub(crate) fn dependency_graph(
    graph: &haven_model::catalog::graph::Neighbourhood,
    states: &std::collections::HashMap<String, String>,
) -> String {
    const BOX_W: f64 = 200.0;
    const BOX_H: f64 = 38.0;
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
        let Some(&(x, y)) = at.get(node.id.as_str()) else {
            continue;
        };
        let state = states.get(&node.id).map_or("", String::as_str);
        let (fill, stroke) = match state {
            "quarantined" | "violated" | "failed" => ("#fde8e8", "#8b1a1a"),
            "unprotected" | "at-risk" | "needs-verification" | "not-verified" => {
                ("#fff4d6", "#7a4b00")
            }
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
    svg.push_str("</svg>");
    svg
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max - 1).collect();
    format!("{cut}…")
}
