//! Haven's continuity catalog as code: a directory of TOML files holding
//! services, systems, policies, repositories, teams, vendors and
//! regulations (`docs/catalog.md`).
//!
//! [`load_dir`] reads every `*.toml` file below a directory into the pure
//! model (`haven_model::catalog`), collecting every problem instead of
//! stopping at the first; [`check`] adds the model's analyses and turns
//! all findings into [`Diagnostic`]s with `file:line:col` and a snippet.

pub mod diagnostic;
pub mod load;
pub mod schema;
pub mod source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use haven_model::catalog::{Catalog, Finding, Origin, analysis};
use toml_span::value::ValueInner;

pub use diagnostic::{Diagnostic, render};
pub use source::SourceFile;

/// A catalog read from disk, with its files and load-time findings.
#[derive(Debug)]
pub struct LoadedCatalog {
    /// The objects that could be read.
    pub catalog: Catalog,
    /// The files, in the order their indices refer to.
    pub files: Vec<SourceFile>,
    /// Problems found while reading (syntax, unknown keys, types,
    /// duplicates, inline secrets).
    pub findings: Vec<Finding>,
}

/// Why a catalog directory could not be read at all.
#[derive(Debug)]
pub enum CatalogError {
    /// The directory does not exist or cannot be listed.
    Unreadable(PathBuf, std::io::Error),
    /// It holds no `.toml` file.
    Empty(PathBuf),
}

impl std::fmt::Display for CatalogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatalogError::Unreadable(dir, e) => {
                write!(
                    f,
                    "cannot read the catalog directory {}: {e}",
                    dir.display()
                )
            }
            CatalogError::Empty(dir) => write!(
                f,
                "the catalog directory {} holds no .toml files (pass the directory with your catalog, e.g. examples/acme)",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for CatalogError {}

/// Read every `*.toml` file below `dir` (sorted by path; hidden entries
/// skipped).
pub fn load_dir(dir: &Path) -> Result<LoadedCatalog, CatalogError> {
    let mut paths = Vec::new();
    collect_toml(dir, &mut paths)?;
    if paths.is_empty() {
        return Err(CatalogError::Empty(dir.to_path_buf()));
    }
    paths.sort();
    let mut files = Vec::new();
    let mut findings = Vec::new();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push(SourceFile::new(path, text)),
            Err(e) => {
                files.push(SourceFile::new(path.clone(), String::new()));
                findings.push(
                    Finding::error(
                        "HVN-E001",
                        format!("cannot read {}: {e}", path.display()),
                        "catalog files must be readable UTF-8 text",
                    )
                    .at(Origin {
                        file: files.len() - 1,
                        start: 0,
                        end: 0,
                    }),
                );
            }
        }
    }
    Ok(load_sources(files, findings))
}

/// Load catalog files already in memory (tests, tools).
pub fn load_sources(files: Vec<SourceFile>, mut findings: Vec<Finding>) -> LoadedCatalog {
    let mut catalog = Catalog::default();
    for (index, file) in files.iter().enumerate() {
        let mut reader = load::Reader {
            file: index,
            findings: &mut findings,
        };
        let mut root = match toml_span::parse(&file.text) {
            Ok(root) => root,
            Err(e) => {
                let at = reader.origin(e.span);
                let what = match &e.kind {
                    toml_span::ErrorKind::Wanted { expected, found } => {
                        format!("expected {expected}, found {found}")
                    }
                    other => other.to_string(),
                };
                reader.findings.push(
                    Finding::error(
                        "HVN-E001",
                        format!("TOML syntax error: {what}"),
                        "fix the TOML syntax (https://toml.io)",
                    )
                    .at(at),
                );
                continue;
            }
        };
        let ValueInner::Table(table) = root.take() else {
            continue;
        };
        for (key, mut value) in table {
            let name = key.name.as_ref();
            if load::KINDS.contains(&name) {
                reader.kind(name, &mut value, &mut catalog);
            } else {
                let hint = analysis::closest(name, load::KINDS.iter().copied())
                    .map(|c| format!("did you mean `[[{c}]]`? "))
                    .unwrap_or_default();
                reader.findings.push(
                    Finding::error(
                        "HVN-E002",
                        format!("unknown table `{name}`"),
                        format!(
                            "{hint}a catalog file holds [[{}]] tables",
                            load::KINDS.join("]], [["),
                        ),
                    )
                    .at(reader.origin(key.span)),
                );
            }
        }
    }
    findings.extend(duplicates(&catalog));
    catalog.index_ids();
    LoadedCatalog {
        catalog,
        files,
        findings,
    }
}

/// `HVN-E005`: an id defined twice. Services, systems and vendors share
/// one namespace (dependencies name them without saying which kind).
fn duplicates(catalog: &Catalog) -> Vec<Finding> {
    use haven_model::catalog::Located;
    fn ids<'a, T: AsRef<str> + 'a>(
        kind: &'static str,
        located: impl Iterator<Item = &'a Located<T>>,
    ) -> Vec<(&'static str, &'a str, Origin)> {
        located.map(|l| (kind, l.value.as_ref(), l.at)).collect()
    }
    let c = catalog;
    let spaces = [
        (
            "services, systems and vendors",
            [
                ids("service", c.services.iter().map(|s| &s.id)),
                ids("system", c.systems.iter().map(|s| &s.id)),
                ids("vendor", c.vendors.iter().map(|v| &v.id)),
            ]
            .concat(),
        ),
        ("policies", ids("policy", c.policies.iter().map(|p| &p.id))),
        (
            "repositories",
            ids("repository", c.repositories.iter().map(|r| &r.id)),
        ),
        ("teams", ids("team", c.teams.iter().map(|t| &t.id))),
        (
            "regulations",
            ids("regulation", c.regulations.iter().map(|r| &r.id)),
        ),
        (
            "channels",
            ids("channel", c.channels.iter().map(|ch| &ch.id)),
        ),
        (
            "calendars",
            ids("calendar", c.calendars.iter().map(|ca| &ca.id)),
        ),
        (
            "escalations",
            ids("escalation", c.escalations.iter().map(|e| &e.id)),
        ),
        (
            "maintenance windows",
            ids("maintenance", c.maintenance.iter().map(|m| &m.id)),
        ),
        ("recovery plans", ids("plan", c.plans.iter().map(|p| &p.id))),
        (
            "drill schedules",
            ids("drill", c.drills.iter().map(|d| &d.id)),
        ),
    ];
    spaces
        .into_iter()
        .flat_map(|(space, ids)| duplicates_in(space, ids))
        .collect()
}

/// `HVN-E005` for each id of one name space used a second time.
fn duplicates_in(space: &str, ids: Vec<(&'static str, &str, Origin)>) -> Vec<Finding> {
    let mut seen: HashMap<&str, (&'static str, Origin)> = HashMap::new();
    let mut out = Vec::new();
    for (kind, id, at) in ids {
        match seen.get(id) {
            Some((first, first_at)) => out.push(
                Finding::error(
                    "HVN-E005",
                    format!("{kind} id `{id}` is already used by a {first}"),
                    format!("ids of {space} must be unique: rename one of them"),
                )
                .object(kind, id)
                .at(at)
                .related("first defined", *first_at),
            ),
            None => {
                seen.insert(id, (kind, at));
            }
        }
    }
    out
}

fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CatalogError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| CatalogError::Unreadable(dir.to_path_buf(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CatalogError::Unreadable(dir.to_path_buf(), e))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_toml(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Everything `haven catalog check` reports: load findings and analysis
/// findings, errors first, then by file and position. `now` starts the
/// year over which schedules are evaluated.
pub fn check(loaded: &LoadedCatalog, now: jiff::Timestamp) -> Vec<Diagnostic> {
    let mut findings = loaded.findings.clone();
    findings.extend(analysis::analyse(&loaded.catalog, now));
    let mut diagnostics: Vec<Diagnostic> = findings
        .iter()
        .map(|f| Diagnostic::from_finding(f, &loaded.files))
        .collect();
    diagnostics.sort_by(|a, b| {
        (a.severity, &a.file, a.line, a.column, a.code)
            .cmp(&(b.severity, &b.file, b.line, b.column, b.code))
    });
    diagnostics
}
