//! Findings placed in their files: what `haven catalog check` prints.

use std::fmt::Write;

use haven_model::catalog::{Finding, ObjectRef, Severity};
use serde::Serialize;

use crate::source::SourceFile;

/// A finding with its file, line, column and the offending line.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnostic {
    /// Stable code (`HVN-E010`).
    pub code: &'static str,
    /// `error` or `warning`.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
    /// File path, when the finding points into a file.
    pub file: Option<String>,
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column (characters).
    pub column: Option<usize>,
    /// The line of the file the finding points at.
    pub snippet: Option<String>,
    /// Length of the marked part of the snippet (characters).
    #[serde(skip)]
    pub marked: usize,
    /// Objects involved.
    pub objects: Vec<ObjectRef>,
    /// A second place that explains this one (`first defined at
    /// catalog/a.toml:3:6`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Diagnostic {
    /// Place a finding in its file.
    pub fn from_finding(f: &Finding, files: &[SourceFile]) -> Self {
        let mut d = Diagnostic {
            code: f.code,
            severity: f.severity,
            message: f.message.clone(),
            help: f.help.clone(),
            file: None,
            line: None,
            column: None,
            snippet: None,
            marked: 0,
            objects: f.objects.clone(),
            note: f.related.and_then(|(what, at)| {
                let file = files.get(at.file)?;
                let (line, column) = file.line_col(at.start);
                Some(format!("{what} at {}:{line}:{column}", file.path.display()))
            }),
        };
        if let Some(at) = f.at
            && let Some(file) = files.get(at.file)
        {
            let (line, column) = file.line_col(at.start);
            let text = file.line(line);
            let (end_line, end_col) = file.line_col(at.end);
            let marked = if end_line == line {
                end_col.saturating_sub(column).max(1)
            } else {
                text.chars().count().saturating_sub(column - 1).max(1)
            };
            d.file = Some(file.path.display().to_string());
            d.line = Some(line);
            d.column = Some(column);
            d.snippet = Some(text.to_string());
            d.marked = marked;
        }
        d
    }
}

/// Render diagnostics the way compilers do:
///
/// ```text
/// error[HVN-E010]: service erp: RTO 8h is longer than its MTD 4h
///   --> catalog/services.toml:12:7
///    |
/// 12 | rto = "8h"
///    |       ^^^^
///    = help: …
/// ```
pub fn render(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{level}[{}]: {}", d.code, d.message);
        if let (Some(file), Some(line), Some(column), Some(snippet)) =
            (&d.file, d.line, d.column, &d.snippet)
        {
            let width = line.to_string().len();
            let pad = " ".repeat(width);
            let _ = writeln!(out, "{pad}--> {file}:{line}:{column}");
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{line} | {snippet}");
            let _ = writeln!(
                out,
                "{pad} | {}{}",
                " ".repeat(column - 1),
                "^".repeat(d.marked)
            );
            let _ = writeln!(out, "{pad} = help: {}", d.help);
            if let Some(note) = &d.note {
                let _ = writeln!(out, "{pad} = note: {note}");
            }
        } else {
            let _ = writeln!(out, "  = help: {}", d.help);
            if let Some(note) = &d.note {
                let _ = writeln!(out, "  = note: {note}");
            }
        }
        out.push('\n');
    }
    out
}
