//! A drill as a report an auditor accepts (ISO 22301 §8.5, NIST SP 800-34
//! test evidence, SOC 2 A1.3): when, what was restored from which
//! snapshot, into what, who asked, each step with its result and
//! duration, objectives against what was measured, the verdict and its
//! reasons. Markdown, or one self-contained HTML page (no scripts, no
//! external resources) with the step timeline as an SVG chart.

use std::fmt::Write as _;

use haven_model::catalog::duration::format_duration;
use haven_model::drills::{Drill, Verdict};
use haven_model::markup::{escape, truncate};
use jiff::SignedDuration;

/// The drill as Markdown.
pub fn markdown(d: &Drill) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Drill {} of {}: {}\n",
        d.id,
        d.system,
        d.verdict.as_str().to_uppercase()
    );
    for (k, v) in facts(d) {
        let _ = writeln!(out, "- **{k}**: {v}");
    }
    let _ = writeln!(out, "\n## Objectives and measurements\n");
    let _ = writeln!(out, "| | objective | measured |\n|---|---|---|");
    for (what, objective, measured) in objectives(d) {
        let _ = writeln!(out, "| {what} | {objective} | {measured} |");
    }
    let _ = writeln!(out, "\n## Steps\n");
    let _ = writeln!(
        out,
        "| step | result | duration | detail |\n|---|---|---|---|"
    );
    for s in &d.steps {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            s.name.replace('|', "\\|"),
            if s.ok { "ok" } else { "FAILED" },
            format_duration(s.duration),
            s.detail.replace('|', "\\|")
        );
    }
    if !d.reasons.is_empty() {
        let _ = writeln!(out, "\n## Why it failed\n");
        for r in &d.reasons {
            let _ = writeln!(out, "- {r}");
        }
    }
    out
}

/// The drill as one self-contained HTML page.
pub fn html(d: &Drill) -> String {
    let mut out = String::new();
    let verdict_class = match d.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Drill {id} of {system}</title>\
         <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}}\
         .pass{{color:#176b2c}}.fail{{color:#a4161a}}</style></head><body>\
         <h1>Drill {id} of {system}: <span class=\"{verdict_class}\">{verdict}</span></h1>",
        id = d.id,
        system = escape(&d.system),
        verdict = d.verdict.as_str().to_uppercase(),
    );
    out.push_str("<table>");
    for (k, v) in facts(d) {
        let _ = write!(
            out,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(k),
            escape(&v)
        );
    }
    out.push_str("</table><h2>Objectives and measurements</h2><table><tr><th></th><th>objective</th><th>measured</th></tr>");
    for (what, objective, measured) in objectives(d) {
        let _ = write!(
            out,
            "<tr><th>{what}</th><td>{}</td><td>{}</td></tr>",
            escape(&objective),
            escape(&measured)
        );
    }
    out.push_str("</table><h2>Timeline</h2>");
    out.push_str(&timeline_svg(d));
    out.push_str("<h2>Steps</h2><table><tr><th>step</th><th>result</th><th>duration</th><th>detail</th></tr>");
    for s in &d.steps {
        let (class, result) = if s.ok {
            ("pass", "ok")
        } else {
            ("fail", "FAILED")
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"{class}\">{result}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.name),
            format_duration(s.duration),
            escape(&s.detail)
        );
    }
    out.push_str("</table>");
    if !d.reasons.is_empty() {
        out.push_str("<h2>Why it failed</h2><ul>");
        for r in &d.reasons {
            let _ = write!(out, "<li>{}</li>", escape(r));
        }
        out.push_str("</ul>");
    }
    out.push_str("</body></html>\n");
    out
}

/// The drill's facts as (label, value) rows: when, who, what.
pub fn facts(d: &Drill) -> Vec<(&'static str, String)> {
    vec![
        ("system", d.system.clone()),
        ("started", format!("{:.0}", d.started_at)),
        ("ended", format!("{:.0}", d.ended_at)),
        ("asked by", d.by.clone()),
        ("snapshot", d.snapshot_id.clone()),
        ("snapshot taken", format!("{:.0}", d.snapshot_time)),
        ("sandbox", d.sandbox.clone()),
        ("bytes restored", d.bytes.to_string()),
    ]
}

/// (what, objective, measured) rows.
pub fn objectives(d: &Drill) -> Vec<(&'static str, String, String)> {
    let text = |o: Option<SignedDuration>| o.map_or("none".to_string(), format_duration);
    vec![
        (
            "RTO",
            text(d.objectives.rto),
            format_duration(d.measured_rto),
        ),
        (
            "MTD",
            text(d.objectives.mtd),
            format_duration(d.measured_rto),
        ),
        (
            "RPO",
            text(d.objectives.rpo),
            format_duration(d.achieved_rpo),
        ),
    ]
}

/// The steps as horizontal bars on a common time axis.
pub fn timeline_svg(d: &Drill) -> String {
    const WIDTH: f64 = 600.0;
    const ROW: f64 = 22.0;
    let start = d.steps.first().map_or(d.started_at, |s| s.started_at);
    let end = d
        .steps
        .iter()
        .map(|s| s.started_at + s.duration)
        .max()
        .unwrap_or(d.ended_at);
    let total = end.duration_since(start).as_secs_f64().max(0.001);
    let height = ROW * d.steps.len() as f64 + 10.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"step timeline\">",
        WIDTH + 220.0
    );
    for (i, s) in d.steps.iter().enumerate() {
        let x = s.started_at.duration_since(start).as_secs_f64() / total * WIDTH;
        let w = (s.duration.as_secs_f64() / total * WIDTH).max(1.0);
        let y = ROW * i as f64 + 5.0;
        let colour = if s.ok { "#2f9e44" } else { "#c92a2a" };
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{colour}\"><title>{}</title></rect>\
             <text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{} ({})</text>",
            220.0 + x,
            ROW - 6.0,
            escape(&s.name),
            5.0,
            y + ROW - 10.0,
            escape(&truncate(&s.name, 26)),
            format_duration(s.duration)
        );
    }
    svg.push_str("</svg>");
    svg
}
