//! `haven restore SYSTEM[:SET] | SNAPSHOT[:PATH] --target DIR`: by
//! system (repository, password and snapshots from the catalog), or a
//! snapshot of the repository given by --repo.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use haven_engine::restore::FailedFile;
use haven_engine::{Id, Repository, RestoreOptions, RestoreOutcome, Snapshot};
use haven_model::catalog::{Catalog, System};
use haven_model::errors::ErrorCode;
use haven_model::tasks::RepoTarget;
use haven_ops::api::InstanceError;
use serde::Serialize;

use crate::cli::{GlobalArgs, RestoreArgs};
use crate::{context, exit, output};

/// The restore summary (`--json`).
#[derive(Serialize)]
struct RestoreView<'a> {
    snapshot_id: String,
    /// The system and set (system restores).
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup_set: Option<String>,
    target: String,
    files: u64,
    dirs: u64,
    symlinks: u64,
    bytes: u64,
    duration_ms: u64,
    failed: &'a [FailedFile],
}

/// What to restore, resolved.
struct Source {
    repo: Repository,
    id: Id,
    subpath: Option<String>,
    /// `(system, set, dump file name)` for a system restore.
    system: Option<(String, String, Option<String>)>,
}

pub fn run(global: &GlobalArgs, args: &RestoreArgs) -> Result<u8> {
    let source = match catalog_system(global, args)? {
        Some((catalog, system, set)) => by_system(&catalog, system, set.as_deref(), args)?,
        None => by_snapshot(global, args)?,
    };
    if let Some(command) = &args.to_command {
        return into_command(&source, command);
    }
    let target = args.target.clone().context("--target is required")?;
    refuse_non_empty(&target, args.overwrite)?;
    let started = Instant::now();
    let outcome = restore_into(global, &source, &target, &args.includes)?;
    let view = RestoreView {
        snapshot_id: source.id.to_hex(),
        system: source.system.as_ref().map(|s| s.0.clone()),
        backup_set: source.system.as_ref().map(|s| s.1.clone()),
        target: target.display().to_string(),
        files: outcome.files,
        dirs: outcome.dirs,
        symlinks: outcome.symlinks,
        bytes: outcome.bytes,
        duration_ms: started.elapsed().as_millis() as u64,
        failed: &outcome.failed,
    };
    report(global, &view, &source.id, &outcome)
}

/// The catalog system `args.what` names, if it names one.
fn catalog_system(
    global: &GlobalArgs,
    args: &RestoreArgs,
) -> Result<Option<(Catalog, String, Option<String>)>> {
    // The instance's catalog (the data dir's, or the one its server
    // used), else ./catalog.
    let dir = match &args.catalog {
        Some(dir) => dir.clone(),
        None if global.data_dir.is_dir() => {
            crate::instance::settings(global, None, None)?
                .with_server_catalog()
                .catalog
        }
        None => crate::cli::default_catalog(global)?,
    };
    let (name, set) = match args.what.split_once(':') {
        Some((n, s)) => (n, Some(s.to_string())),
        None => (args.what.as_str(), None),
    };
    let by_system = args.snapshot.is_some() || args.at.is_some() || args.to_command.is_some();
    if !dir.is_dir() {
        if by_system {
            anyhow::bail!(
                "--snapshot, --at and --to-command restore a catalog system, and there is no catalog at {} (pass --catalog)",
                dir.display()
            );
        }
        return Ok(None);
    }
    let loaded = haven_catalog::load_dir(&dir)?;
    if loaded.catalog.system(name).is_none() {
        if by_system {
            return Err(InstanceError::new(
                ErrorCode::NoSuchSystem,
                format!("no system {name:?} in the catalog {}", dir.display()),
            )
            .into());
        }
        return Ok(None);
    }
    Ok(Some((loaded.catalog, name.to_string(), set)))
}

/// A system's snapshot: its policy's repository and password, its set's
/// tags, then --snapshot, --at or the newest.
fn by_system(
    catalog: &Catalog,
    system_id: String,
    set: Option<&str>,
    args: &RestoreArgs,
) -> Result<Source> {
    let system = catalog.system(&system_id).expect("checked");
    let set = pick_set(system, set)?;
    let policy = catalog.policy_of(system).with_context(|| {
        format!("system {system_id} has no policy, so no repository holds its backups")
    })?;
    let repository = catalog
        .repository(&policy.repository.value)
        .with_context(|| format!("repository {} does not exist", policy.repository.value))?;
    let repo = haven_ops::jobs::open_repository(&RepoTarget {
        id: repository.id.value.to_string(),
        url: repository.url.value.clone(),
        password: repository.password.as_ref().map(|p| p.value.clone()),
    })?;
    let tags = haven_ops::jobs::set_tags(&system_id, set.name.as_str());
    let mut mine: Vec<(Id, Snapshot)> = repo
        .snapshots()?
        .into_iter()
        .filter(|(_, s)| tags.iter().all(|t| s.tags.contains(t)))
        .collect();
    mine.sort_by_key(|(_, s)| s.time);
    let chosen = match (&args.snapshot, args.at) {
        (Some(prefix), _) => mine
            .iter()
            .find(|(id, _)| id.to_hex().starts_with(&prefix.to_ascii_lowercase())),
        (None, Some(at)) => mine.iter().rev().find(|(_, s)| s.time <= at),
        (None, None) => mine.last(),
    };
    let Some((id, _)) = chosen else {
        let which = match (&args.snapshot, args.at) {
            (Some(p), _) => format!("snapshot {p} of"),
            (None, Some(at)) => format!("snapshot at or before {at} of"),
            (None, None) => "snapshot of".into(),
        };
        return Err(InstanceError::new(
            ErrorCode::NoSuchSnapshot,
            format!(
                "no {which} system {system_id} set {} in repository {} ({} of its snapshots there)",
                set.name,
                repository.id.value,
                mine.len()
            ),
        )
        .hint(format!(
            "list them with `haven snapshots --tag system:{system_id}`"
        ))
        .into());
    };
    let dump = set.command.as_ref().map(|_| format!("{}.dump", set.name));
    Ok(Source {
        repo,
        id: *id,
        subpath: dump.clone(),
        system: Some((system_id, set.name.to_string(), dump)),
    })
}

fn pick_set<'a>(
    system: &'a System,
    set: Option<&str>,
) -> Result<&'a haven_model::catalog::BackupSet> {
    let names: Vec<&str> = system.backup_sets.iter().map(|s| s.name.as_str()).collect();
    match set {
        Some(name) => system
            .backup_sets
            .iter()
            .find(|s| s.name == name)
            .with_context(|| {
                format!(
                    "system {} has no backup set {name:?} (its sets: {})",
                    system.id.value,
                    names.join(", ")
                )
            }),
        None => match system.backup_sets.as_slice() {
            [one] => Ok(one),
            [] => anyhow::bail!("system {} has no backup set", system.id.value),
            _ => Err(crate::context::UsageError(format!(
                "system {} has several backup sets: say which, e.g. {}:{}",
                system.id.value, system.id.value, names[0]
            ))
            .into()),
        },
    }
}

fn by_snapshot(global: &GlobalArgs, args: &RestoreArgs) -> Result<Source> {
    let (selector, subpath) = match args.what.split_once(':') {
        Some((s, p)) => (s, Some(p.to_string())),
        None => (args.what.as_str(), None),
    };
    let repo = context::open(global)?;
    let (id, _) = repo.find_snapshot(selector)?;
    Ok(Source {
        repo,
        id,
        subpath,
        system: None,
    })
}

/// A target that holds files is refused unless `overwrite`.
fn refuse_non_empty(target: &Path, overwrite: bool) -> Result<()> {
    let holds_files = std::fs::read_dir(target).is_ok_and(|mut entries| entries.next().is_some());
    if holds_files && !overwrite {
        return Err(InstanceError::new(
            ErrorCode::TargetNotEmpty,
            format!(
                "the restore target {} holds files already",
                target.display()
            ),
        )
        .hint("choose an empty directory, or pass --overwrite to replace what is there")
        .into());
    }
    Ok(())
}

/// Restore; a dump lands as `<system>-<set>.dump` in the target.
fn restore_into(
    global: &GlobalArgs,
    source: &Source,
    target: &Path,
    includes: &[String],
) -> Result<RestoreOutcome> {
    let options = RestoreOptions {
        subpath: source.subpath.clone(),
        includes: includes.to_vec(),
    };
    let bar = output::Bar::bytes(global, "restoring");
    let dump = source.system.as_ref().and_then(|(system, set, dump)| {
        dump.as_ref()
            .map(|d| (d.clone(), format!("{system}-{set}.dump")))
    });
    let outcome = match &dump {
        None => source.repo.restore(&source.id, target, &options, &bar),
        Some((stored, named)) => {
            // Into a fresh directory inside the target, then renamed: the
            // file gets its system's name without touching anything else.
            std::fs::create_dir_all(target)?;
            let staging = target.join(format!(".haven-restore-{}", std::process::id()));
            let outcome = source.repo.restore(&source.id, &staging, &options, &bar);
            let moved = std::fs::rename(staging.join(stored), target.join(named));
            let _ = std::fs::remove_dir_all(&staging);
            let outcome = outcome?;
            if outcome.failed.is_empty() {
                moved.with_context(|| format!("cannot name the dump {named}"))?;
            }
            Ok(outcome)
        }
    };
    bar.finish();
    Ok(outcome?)
}

/// A system's dump piped into `command` (restored into a private
/// temporary directory first, removed afterwards).
fn into_command(source: &Source, command: &str) -> Result<u8> {
    let Some((system, set, Some(dump))) = &source.system else {
        anyhow::bail!("--to-command restores a dump set (one whose backup set has a `command`)");
    };
    let staging = tempfile::Builder::new()
        .prefix("haven-restore-")
        .tempdir()
        .context("cannot create a private temporary directory")?;
    let options = RestoreOptions {
        subpath: Some(dump.clone()),
        includes: Vec::new(),
    };
    let outcome = source.repo.restore(
        &source.id,
        staging.path(),
        &options,
        &haven_engine::NoProgress,
    )?;
    if !outcome.failed.is_empty() {
        anyhow::bail!(
            "the dump of {system}:{set} in snapshot {} is damaged (run `haven repo check --read-data`); nothing was piped",
            source.id.short()
        );
    }
    let file = std::fs::File::open(staging.path().join(dump))?;
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(file)
        .status()
        .with_context(|| format!("cannot start `{command}`"))?;
    if !status.success() {
        anyhow::bail!("`{command}` failed ({status}) reading the dump of {system}:{set}");
    }
    eprintln!(
        "restored the dump of {system}:{set} from snapshot {} into `{command}`",
        source.id.short()
    );
    Ok(exit::SUCCESS)
}

fn report(
    global: &GlobalArgs,
    view: &RestoreView<'_>,
    id: &Id,
    outcome: &RestoreOutcome,
) -> Result<u8> {
    for f in &outcome.failed {
        eprintln!("error: cannot restore {}: {}", f.path.display(), f.error);
    }
    if global.json {
        output::print_json(view)?;
    } else {
        println!(
            "restored {} files, {} directories, {} symlinks ({}) from {} into {} in {:.2} s",
            view.files,
            view.dirs,
            view.symlinks,
            output::bytes(view.bytes),
            id.short(),
            view.target,
            view.duration_ms as f64 / 1000.0
        );
    }
    if outcome.failed.is_empty() {
        Ok(exit::SUCCESS)
    } else {
        eprintln!(
            "error: {} files could not be restored because their data is damaged or missing (run `haven repo check --read-data`)",
            outcome.failed.len()
        );
        Ok(exit::FAILURE)
    }
}
