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
    LoadedCatalog {
        catalog,
        files,
        findings,
    }
}

/// `HVN-E005`: an id defined twice. Services, systems and vendors share
/// one namespace (dependencies name them without saying which kind).
fn duplicates(catalog: &Catalog) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut check = |space: &str, ids: Vec<(&'static str, &str, haven_model::catalog::Origin)>| {
        let mut seen: HashMap<&str, (&'static str, haven_model::catalog::Origin)> = HashMap::new();
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
    };
    check(
        "services, systems and vendors",
        catalog
            .services
            .iter()
            .map(|s| ("service", s.id.value.as_str(), s.id.at))
            .chain(
                catalog
                    .systems
                    .iter()
                    .map(|s| ("system", s.id.value.as_str(), s.id.at)),
            )
            .chain(
                catalog
                    .vendors
                    .iter()
                    .map(|v| ("vendor", v.id.value.as_str(), v.id.at)),
            )
            .collect(),
    );
    check(
        "policies",
        catalog
            .policies
            .iter()
            .map(|p| ("policy", p.id.value.as_str(), p.id.at))
            .collect(),
    );
    check(
        "repositories",
        catalog
            .repositories
            .iter()
            .map(|r| ("repository", r.id.value.as_str(), r.id.at))
            .collect(),
    );
    check(
        "teams",
        catalog
            .teams
            .iter()
            .map(|t| ("team", t.id.value.as_str(), t.id.at))
            .collect(),
    );
    check(
        "regulations",
        catalog
            .regulations
            .iter()
            .map(|r| ("regulation", r.id.value.as_str(), r.id.at))
            .collect(),
    );
    check(
        "channels",
        catalog
            .channels
            .iter()
            .map(|c| ("channel", c.id.value.as_str(), c.id.at))
            .collect(),
    );
    check(
        "calendars",
        catalog
            .calendars
            .iter()
            .map(|c| ("calendar", c.id.value.as_str(), c.id.at))
            .collect(),
    );
    check(
        "escalations",
        catalog
            .escalations
            .iter()
            .map(|e| ("escalation", e.id.value.as_str(), e.id.at))
            .collect(),
    );
    check(
        "maintenance windows",
        catalog
            .maintenance
            .iter()
            .map(|m| ("maintenance", m.id.value.as_str(), m.id.at))
            .collect(),
    );
    check(
        "recovery plans",
        catalog
            .plans
            .iter()
            .map(|p| ("plan", p.id.value.as_str(), p.id.at))
            .collect(),
    );
    check(
        "drill schedules",
        catalog
            .drills
            .iter()
            .map(|d| ("drill", d.id.value.as_str(), d.id.at))
            .collect(),
    );
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
