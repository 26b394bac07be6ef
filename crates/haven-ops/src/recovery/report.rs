//! A recovery run as a report: who started it, why, from which
//! snapshots (and the data each lost), where to, what pre-flight found,
//! each service's measured RTO against its RTO and MTD, every step with
//! its times, outcome and the people who decided on it. Markdown, JSON,
//! or one self-contained HTML page (no scripts, no external resources)
//! with the run as an SVG Gantt chart of waves and steps.

use std::fmt::Write as _;

use haven_model::catalog::duration::format_duration;
use haven_model::recovery::run::{RunView, StepRecord, StepState};
use jiff::{SignedDuration, Timestamp};

use haven_model::markup::{escape, truncate};

fn opt(d: Option<SignedDuration>) -> String {
    d.map_or_else(|| "none".into(), format_duration)
}

fn state_text(s: StepState) -> &'static str {
    match s {
        StepState::Pending => "pending",
        StepState::Running => "running",
        StepState::Waiting => "waiting",
        StepState::Done => "done",
        StepState::Failed => "FAILED",
        StepState::Skipped => "skipped",
    }
}

fn took(s: &StepRecord) -> String {
    match (s.started_at, s.ended_at) {
        (Some(a), Some(b)) => format_duration(b.duration_since(a)),
        _ => String::new(),
    }
}

/// Who decided what on a step, in words.
fn decisions(s: &StepRecord) -> String {
    s.decisions
        .iter()
        .map(|d| {
            format!(
                "{} by {} at {}{}",
                d.decision.as_str(),
                d.by,
                d.at,
                d.note
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn facts(v: &RunView) -> Vec<(&'static str, String)> {
    let r = &v.run;
    let mut out = vec![
        ("state", r.state.as_str().to_string()),
        ("started by", r.by.clone()),
        (
            "reason",
            r.reason.clone().unwrap_or_else(|| "none given".into()),
        ),
        (
            "plan",
            r.plan.plan.clone().unwrap_or_else(|| "(selection)".into()),
        ),
        ("target", r.target.to_string()),
        ("started", r.started_at.to_string()),
        (
            "ended",
            r.ended_at
                .map_or_else(|| "not yet".into(), |t| t.to_string()),
        ),
        (
            "recovered to",
            r.at.map_or_else(
                || "the newest snapshots".into(),
                |t| format!("the newest snapshots at or before {t}"),
            ),
        ),
    ];
    if let Some(forced) = &r.forced {
        out.push(("pre-flight overridden", forced.clone()));
    }
    if let Some(closed) = &r.abandoned {
        out.push((
            "abandoned",
            format!(
                "by {} at {}: {}",
                closed.by,
                closed.at,
                closed.note.clone().unwrap_or_default()
            ),
        ));
    }
    if r.resumed > 0 {
        out.push(("resumed", format!("{} times", r.resumed)));
    }
    out
}

/// The run as Markdown.
pub fn markdown(v: &RunView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Recovery run {}: {}\n",
        v.run.id,
        v.run.state.as_str()
    );
    for (k, val) in facts(v) {
        let _ = writeln!(out, "- **{k}**: {val}");
    }
    let _ = writeln!(out, "\n## Services: objectives and measurements\n");
    let _ = writeln!(
        out,
        "| service | RTO | MTD | measured RTO | verdict |\n|---|---|---|---|---|"
    );
    for s in &v.services {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            s.service,
            opt(s.rto),
            opt(s.mtd),
            opt(s.measured_rto),
            s.verdict
        );
    }
    let _ = writeln!(out, "\n## Data restored and lost\n");
    let _ = writeln!(
        out,
        "| system | set | snapshot | taken | data lost |\n|---|---|---|---|---|"
    );
    for s in &v.run.snapshots {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            s.system,
            s.set,
            &s.snapshot[..s.snapshot.len().min(8)],
            s.time,
            format_duration(s.data_lost)
        );
    }
    if !v.run.preflight.is_empty() {
        let _ = writeln!(out, "\n## Pre-flight\n");
        for f in &v.run.preflight {
            let level = if f.blocking { "BLOCKING" } else { "warning" };
            let _ = writeln!(out, "- {level} ({}): {}", f.check, f.detail);
        }
    }
    let _ = writeln!(out, "\n## Steps\n");
    let _ = writeln!(
        out,
        "| # | step | state | attempts | started | took | detail | decisions |\n|---|---|---|---|---|---|---|---|"
    );
    let cell = |t: &str| t.replace('|', "\\|").replace('\n', " ");
    for s in &v.steps {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            s.number,
            cell(&s.name),
            state_text(s.state),
            s.attempts,
            s.started_at.map(|t| t.to_string()).unwrap_or_default(),
            took(s),
            cell(&s.detail),
            cell(&decisions(s))
        );
    }
    out
}

/// The run as one self-contained HTML page.
pub fn html(v: &RunView) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Recovery run {id}</title>\
         <style>body{{font-family:sans-serif;max-width:70em;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}}\
         .met{{color:#176b2c}}.missed{{color:#a4161a}}</style></head><body>\
         <h1>Recovery run {id}: {state}</h1><table>",
        id = v.run.id,
        state = v.run.state.as_str(),
    );
    for (k, val) in facts(v) {
        let _ = write!(
            out,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(k),
            escape(&val)
        );
    }
    out.push_str("</table><h2>Services: objectives and measurements</h2><table><tr><th>service</th><th>RTO</th><th>MTD</th><th>measured RTO</th><th>verdict</th></tr>");
    for s in &v.services {
        let class = if s.verdict == "met" { "met" } else { "missed" };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            escape(&s.service),
            opt(s.rto),
            opt(s.mtd),
            opt(s.measured_rto),
            escape(&s.verdict)
        );
    }
    out.push_str("</table><h2>Timeline</h2>");
    out.push_str(&gantt_svg(v));
    out.push_str("<h2>Data restored and lost</h2><table><tr><th>system</th><th>set</th><th>snapshot</th><th>taken</th><th>data lost</th></tr>");
    for s in &v.run.snapshots {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.system),
            escape(&s.set),
            escape(&s.snapshot[..s.snapshot.len().min(8)]),
            s.time,
            format_duration(s.data_lost)
        );
    }
    out.push_str("</table>");
    if !v.run.preflight.is_empty() {
        out.push_str("<h2>Pre-flight</h2><ul>");
        for f in &v.run.preflight {
            let level = if f.blocking { "BLOCKING" } else { "warning" };
            let _ = write!(
                out,
                "<li>{level} ({}): {}</li>",
                escape(&f.check),
                escape(&f.detail)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("<h2>Steps</h2><table><tr><th>#</th><th>step</th><th>state</th><th>attempts</th><th>started</th><th>took</th><th>detail</th><th>decisions</th></tr>");
    for s in &v.steps {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s.number,
            escape(&s.name),
            state_text(s.state),
            s.attempts,
            s.started_at.map(|t| t.to_string()).unwrap_or_default(),
            took(s),
            escape(&s.detail),
            escape(&decisions(s))
        );
    }
    out.push_str("</table></body></html>\n");
    out
}

/// The steps as bars on one time axis from the run's start, grouped by
/// wave (a band per wave), coloured by outcome (presentation attributes
/// only: no style, so a strict CSP shows it; the console embeds it).
pub fn gantt_svg(v: &RunView) -> String {
    const WIDTH: f64 = 640.0;
    const LABEL: f64 = 260.0;
    const ROW: f64 = 20.0;
    let start = v.run.started_at;
    let end = v
        .steps
        .iter()
        .filter_map(|s| s.ended_at.or(s.started_at))
        .max()
        .unwrap_or(start)
        .max(start);
    let total = end.duration_since(start).as_secs_f64().max(0.001);
    let x_of = |t: Timestamp| LABEL + t.duration_since(start).as_secs_f64() / total * WIDTH;
    let wave_of = |unit: &str| {
        v.run
            .plan
            .units
            .iter()
            .find(|u| u.id == unit)
            .map_or(0, |u| u.wave)
    };
    let height = ROW * v.steps.len() as f64 + 30.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"recovery timeline by wave\">",
        LABEL + WIDTH + 20.0
    );
    for (i, s) in v.steps.iter().enumerate() {
        let y = ROW * i as f64 + 5.0;
        let wave = wave_of(&s.unit);
        if wave % 2 == 1 {
            let _ = write!(
                svg,
                "<rect x=\"0\" y=\"{y}\" width=\"{}\" height=\"{ROW}\" fill=\"#f1f3f5\"/>",
                LABEL + WIDTH
            );
        }
        let colour = match s.state {
            StepState::Done => "#2f9e44",
            StepState::Failed => "#c92a2a",
            StepState::Skipped => "#868e96",
            StepState::Waiting => "#f08c00",
            _ => "#1c7ed6",
        };
        if let Some(from) = s.started_at {
            let x = x_of(from);
            let w = (x_of(s.ended_at.unwrap_or(end)) - x).max(1.5);
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{} ({}) {}</title></rect>",
                y + 3.0,
                ROW - 6.0,
                escape(&s.name),
                state_text(s.state),
                took(s)
            );
        }
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"11\">w{} {}</text>",
            y + ROW - 6.0,
            wave + 1,
            escape(&truncate(&s.name, 38))
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{LABEL}\" y=\"{:.1}\" font-size=\"11\">0</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text></svg>",
        height - 5.0,
        LABEL + WIDTH,
        height - 5.0,
        format_duration(end.duration_since(start))
    );
    svg
}
