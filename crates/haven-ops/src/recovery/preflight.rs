//! Before anything is touched: every repository reachable with its
//! password, a snapshot for every set (and the data it loses against the
//! RPO), room at every target for what is restored there, the commands
//! the run will start present, and no other live run on the same
//! services. Blocking findings stop the run unless forced.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use haven_engine::{Id, Repository, Snapshot};
use haven_model::catalog::duration::format_duration;
use haven_model::catalog::recovery::StepAction;
use haven_model::catalog::{Catalog, Check};
use haven_model::recovery::run::{Finding, RecoveryRun, RestoreTarget, SnapshotUsed};
use haven_model::recovery::{RunPlan, StepKind, UnitKind};
use haven_model::tasks::RepoTarget;
use haven_model::units::human_bytes;
use jiff::Timestamp;

use super::RecoverRequest;
use crate::jobs::runner::{open_repository, set_tags};

/// What pre-flight found, and the snapshots it chose.
pub(super) struct Checked {
    pub findings: Vec<Finding>,
    pub snapshots: Vec<SnapshotUsed>,
}

/// Check `plan` (off the async threads: repositories are opened).
pub(super) async fn check(
    catalog: &std::sync::Arc<Catalog>,
    plan: &RunPlan,
    request: &RecoverRequest,
    data_dir: &Path,
    others: &[RecoveryRun],
    now: Timestamp,
) -> Checked {
    let mut findings = concurrent_runs(plan, others, now);
    let (catalog, plan, request, data_dir) = (
        std::sync::Arc::clone(catalog),
        plan.clone(),
        request.clone(),
        data_dir.to_path_buf(),
    );
    let checked = tokio::task::spawn_blocking(move || {
        let mut findings = Vec::new();
        let snapshots = choose_snapshots(&catalog, &plan, request.at, now, &mut findings);
        findings.extend(space(&catalog, &snapshots, &request.target, &data_dir));
        findings.extend(commands(&catalog, &plan, &request.target));
        Checked {
            findings,
            snapshots,
        }
    })
    .await
    .unwrap_or_else(|e| Checked {
        findings: vec![blocking("preflight", format!("pre-flight stopped: {e}"))],
        snapshots: Vec::new(),
    });
    findings.extend(checked.findings);
    Checked {
        findings,
        snapshots: checked.snapshots,
    }
}

fn blocking(check: &str, detail: String) -> Finding {
    Finding {
        blocking: true,
        check: check.into(),
        detail,
    }
}

fn warning(check: &str, detail: String) -> Finding {
    Finding {
        blocking: false,
        check: check.into(),
        detail,
    }
}

/// Another run, alive and not done, on any of the same services.
fn concurrent_runs(plan: &RunPlan, others: &[RecoveryRun], now: Timestamp) -> Vec<Finding> {
    let mine = plan.services();
    others
        .iter()
        .map(|r| super::seen(r.clone(), now))
        .filter(|r| !r.state.is_final())
        .filter_map(|r| {
            let shared: Vec<&str> = r
                .plan
                .services()
                .into_iter()
                .filter(|s| mine.contains(s))
                .collect();
            (!shared.is_empty()).then(|| {
                blocking(
                    "concurrent-run",
                    format!(
                        "run {} ({}) recovers {} too: {}",
                        r.id,
                        r.state.as_str(),
                        shared.join(", "),
                        if r.state == haven_model::recovery::run::RunState::Interrupted {
                            format!("resume it (`haven recover --resume {}`) instead", r.id)
                        } else {
                            "wait for it to end".to_string()
                        }
                    ),
                )
            })
        })
        .collect()
}

/// Each restored set's snapshot: the newest (at or before `at`).
fn choose_snapshots(
    catalog: &Catalog,
    plan: &RunPlan,
    at: Option<Timestamp>,
    now: Timestamp,
    findings: &mut Vec<Finding>,
) -> Vec<SnapshotUsed> {
    let mut listed: HashMap<String, Result<Vec<(Id, Snapshot)>, String>> = HashMap::new();
    let mut chosen = Vec::new();
    for unit in plan.units.iter().filter(|u| u.kind == UnitKind::System) {
        let Some(system) = catalog.system(&unit.id) else {
            continue;
        };
        let sets: Vec<&str> = unit
            .steps
            .iter()
            .filter_map(|s| match &s.kind {
                StepKind::Restore { set } => Some(set.as_str()),
                _ => None,
            })
            .collect();
        if sets.is_empty() {
            continue;
        }
        let Some(repo_id) = catalog
            .policy_of(system)
            .map(|p| p.repository.value.to_string())
        else {
            continue;
        };
        let snapshots = listed
            .entry(repo_id.clone())
            .or_insert_with(|| list_snapshots(catalog, &repo_id));
        let snapshots = match snapshots {
            Ok(s) => s,
            Err(e) => {
                findings.push(blocking(
                    "repository",
                    format!("system {}: repository {repo_id}: {e}", unit.id),
                ));
                continue;
            }
        };
        let rpo = haven_model::drills::objectives_of(catalog, &unit.id).rpo;
        for set in sets {
            let tags = set_tags(&unit.id, set);
            let pick = snapshots
                .iter()
                .filter(|(_, s)| tags.iter().all(|t| s.tags.contains(t)))
                .filter(|(_, s)| at.is_none_or(|at| s.time <= at))
                .max_by_key(|(_, s)| s.time);
            let Some((id, snapshot)) = pick else {
                findings.push(blocking(
                    "snapshot",
                    format!(
                        "system {} set {set}: no snapshot in repository {repo_id}{}",
                        unit.id,
                        at.map(|t| format!(" taken at or before {t}"))
                            .unwrap_or_default()
                    ),
                ));
                continue;
            };
            let used = SnapshotUsed {
                system: unit.id.clone(),
                set: set.to_string(),
                snapshot: id.to_hex(),
                time: snapshot.time,
                bytes: snapshot.summary.bytes_total,
                data_lost: now.duration_since(snapshot.time),
            };
            if let Some(rpo) = rpo.filter(|r| used.data_lost > *r) {
                findings.push(warning(
                    "data-loss",
                    format!(
                        "system {} set {set}: snapshot {} of {} loses {} of data, more than its RPO of {}",
                        unit.id,
                        id.short(),
                        snapshot.time,
                        format_duration(used.data_lost),
                        format_duration(rpo)
                    ),
                ));
            }
            chosen.push(used);
        }
    }
    chosen
}

fn list_snapshots(catalog: &Catalog, repo_id: &str) -> Result<Vec<(Id, Snapshot)>, String> {
    let repo = open(catalog, repo_id)?;
    repo.snapshots()
        .map_err(|e| haven_model::errors::chain_text(&e))
}

/// A repository of the catalog, opened (its password resolved).
pub(super) fn open(catalog: &Catalog, repo_id: &str) -> Result<Repository, String> {
    let repository = catalog
        .repository(repo_id)
        .ok_or_else(|| format!("no repository {repo_id} in the catalog"))?;
    open_repository(&RepoTarget::of(repository)).map_err(|e| format!("{e:#}"))
}

/// Where each set's data lands: file sets at their paths (under the
/// alternate directory if any), dumps in the run's staging directory
/// under the data dir (or the alternate directory).
fn landing(
    catalog: &Catalog,
    used: &SnapshotUsed,
    target: &RestoreTarget,
    data_dir: &Path,
) -> PathBuf {
    let set = catalog
        .system(&used.system)
        .and_then(|s| s.backup_sets.iter().find(|b| b.name.as_str() == used.set));
    let dump = set.is_some_and(|s| s.command.is_some());
    match (target, dump) {
        (RestoreTarget::Alternate(dir), _) => PathBuf::from(dir),
        (RestoreTarget::Original, true) => data_dir.to_path_buf(),
        (RestoreTarget::Original, false) => set
            .and_then(|s| s.paths.first())
            .map_or_else(|| PathBuf::from("/"), PathBuf::from),
    }
}

/// Room for every set at its landing place, summed per file system.
fn space(
    catalog: &Catalog,
    snapshots: &[SnapshotUsed],
    target: &RestoreTarget,
    data_dir: &Path,
) -> Vec<Finding> {
    let mut per_fs: BTreeMap<u64, (PathBuf, u64, u64)> = BTreeMap::new();
    let mut findings = Vec::new();
    for used in snapshots {
        let place = landing(catalog, used, target, data_dir);
        let existing = place
            .ancestors()
            .find(|p| p.exists())
            .unwrap_or(Path::new("/"))
            .to_path_buf();
        let stat = rustix::fs::statvfs(&existing);
        let meta = std::fs::metadata(&existing);
        match (stat, meta) {
            (Ok(st), Ok(meta)) => {
                use std::os::unix::fs::MetadataExt as _;
                let free = st.f_bavail.saturating_mul(st.f_frsize);
                let entry = per_fs.entry(meta.dev()).or_insert((existing, free, 0));
                entry.2 += used.bytes;
            }
            (Err(e), _) => findings.push(blocking(
                "space",
                format!("cannot read the free space at {}: {e}", existing.display()),
            )),
            (_, Err(e)) => findings.push(blocking(
                "space",
                format!("cannot read {}: {e}", existing.display()),
            )),
        }
    }
    for (place, free, needed) in per_fs.into_values() {
        if needed > free {
            findings.push(blocking(
                "space",
                format!(
                    "{} has {} free; the restore needs {} there",
                    place.display(),
                    human_bytes(free as f64),
                    human_bytes(needed as f64)
                ),
            ));
        }
    }
    findings
}

/// The programs the run will start, found on the PATH.
fn commands(catalog: &Catalog, plan: &RunPlan, target: &RestoreTarget) -> Vec<Finding> {
    let mut wanted: Vec<(String, String)> = Vec::new();
    for unit in &plan.units {
        if let Some(system) = catalog.system(&unit.id) {
            for set in &system.backup_sets {
                if let (Some(run), RestoreTarget::Original) = (&set.recover_command, target) {
                    wanted.push((
                        first_word(run),
                        format!("recover_command of {}/{}", unit.id, set.name),
                    ));
                }
            }
            for check in &system.checks {
                if let Check::Sql { .. } = check {
                    wanted.push(("psql".into(), format!("sql check of {}", unit.id)));
                }
            }
        }
        if let Some(service) = catalog.service(&unit.id) {
            for step in &service.recovery {
                match &step.action {
                    StepAction::Command { run, .. } => wanted.push((
                        first_word(run),
                        format!("recovery step `{}` of {}", step.display_name(), unit.id),
                    )),
                    StepAction::Sql { .. } => wanted.push((
                        "psql".into(),
                        format!("recovery step `{}` of {}", step.display_name(), unit.id),
                    )),
                    _ => {}
                }
            }
        }
    }
    wanted
        .into_iter()
        .filter(|(program, _)| !program.is_empty() && !on_path(program))
        .map(|(program, what)| {
            blocking(
                "command",
                format!("{what}: `{program}` is not found (not on the PATH, or not executable)"),
            )
        })
        .collect()
}

/// The program a shell command line starts (after `VAR=value` words).
fn first_word(line: &str) -> String {
    line.split_whitespace()
        .find(|w| !w.contains('='))
        .unwrap_or_default()
        .to_string()
}

/// A shell builtin, an executable path, or a program on the PATH.
fn on_path(program: &str) -> bool {
    const BUILTINS: &[&str] = &[
        ":", ".", "cd", "test", "[", "true", "false", "echo", "exit", "printf", "set", "export",
        "exec", "{", "if", "for", "while",
    ];
    if BUILTINS.contains(&program) {
        return true;
    }
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt as _;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| executable(&dir.join(program))))
}
