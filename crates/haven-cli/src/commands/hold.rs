//! `haven hold add|remove|list`: legal holds on snapshots.

use anyhow::{Result, bail};
use serde::Serialize;

use crate::cli::{GlobalArgs, HoldCommand};
use crate::context::UsageError;
use crate::{context, exit, instance, output};

/// One hold (`--json`).
#[derive(Serialize)]
struct HoldView {
    id: String,
    snapshot: String,
    reason: String,
    created: String,
    hostname: String,
    username: String,
}

pub fn run(global: &GlobalArgs, command: &HoldCommand) -> Result<u8> {
    if let Some(done) = through_instance(global, command) {
        return done;
    }
    let repo = context::open(global)?;
    match command {
        HoldCommand::Add {
            snapshot, reason, ..
        } => {
            let (id, _) = repo.find_snapshot(snapshot)?;
            let hold = repo.add_hold(&id, reason)?;
            if global.json {
                output::print_json(
                    &serde_json::json!({ "hold": hold.to_hex(), "snapshot": id.to_hex() }),
                )?;
            } else {
                println!(
                    "snapshot {} is on legal hold ({}): it cannot be removed until the hold is lifted",
                    id.short(),
                    hold.short()
                );
            }
        }
        HoldCommand::Remove {
            snapshot,
            reason,
            hold,
            ..
        } => {
            if reason.trim().is_empty() {
                bail!(UsageError(
                    "say why the hold is lifted with --reason".into()
                ));
            }
            let (id, _) = repo.find_snapshot(snapshot)?;
            let (chosen, _) = repo.find_hold(&id, hold.as_deref())?;
            repo.remove_hold(&chosen)?;
            tracing::warn!(snapshot = %id.short(), hold = %chosen.short(), reason = %reason, "legal hold lifted");
            if global.json {
                output::print_json(
                    &serde_json::json!({ "removed": chosen.to_hex(), "snapshot": id.to_hex(), "reason": reason }),
                )?;
            } else {
                println!(
                    "lifted hold {} on snapshot {} ({reason})",
                    chosen.short(),
                    id.short()
                );
            }
        }
        HoldCommand::List { snapshot, .. } => {
            let only = match snapshot {
                Some(s) => Some(repo.find_snapshot(s)?.0),
                None => None,
            };
            let views: Vec<HoldView> = repo
                .holds()?
                .into_iter()
                .filter(|(_, h)| only.is_none_or(|id| h.snapshot == id))
                .map(|(id, h)| HoldView {
                    id: id.to_hex(),
                    snapshot: h.snapshot.to_hex(),
                    reason: h.reason,
                    created: h.created.to_string(),
                    hostname: h.hostname,
                    username: h.username,
                })
                .collect();
            if global.json {
                output::print_json(&views)?;
            } else if views.is_empty() {
                println!("no legal holds");
            } else {
                for v in &views {
                    println!(
                        "{}  snapshot {}  {}  by {}@{}: {}",
                        &v.id[..8],
                        &v.snapshot[..8],
                        v.created,
                        v.username,
                        v.hostname,
                        v.reason
                    );
                }
            }
        }
    }
    Ok(exit::SUCCESS)
}

/// With `--repository ID`, the command acts through the instance (none:
/// it works on `--repo` directly).
fn through_instance(global: &GlobalArgs, command: &HoldCommand) -> Option<Result<u8>> {
    let (repository, instance_args) = match command {
        HoldCommand::Add {
            repository,
            instance,
            ..
        }
        | HoldCommand::Remove {
            repository,
            instance,
            ..
        }
        | HoldCommand::List {
            repository,
            instance,
            ..
        } => (repository.clone()?, instance),
    };
    Some(held(global, command, repository, instance_args))
}

fn held(
    global: &GlobalArgs,
    command: &HoldCommand,
    repository: String,
    instance_args: &crate::cli::InstanceArgs,
) -> Result<u8> {
    use haven_ops::api::{HoldRequest, HoldsQuery};
    let settings = instance::settings(global, Some(instance_args), None)?;
    let by = instance::actor(None).to_string();
    let rt = instance::runtime()?;
    rt.block_on(async {
        let instance = instance::connect(&settings).await?;
        let request = |snapshot: &str, reason: &str, hold: Option<String>| HoldRequest {
            repository: repository.clone(),
            snapshot: snapshot.to_string(),
            reason: reason.to_string(),
            hold,
            by: by.clone(),
        };
        let shown = match command {
            HoldCommand::Add {
                snapshot, reason, ..
            } => vec![instance.hold_add(&request(snapshot, reason, None)).await?],
            HoldCommand::Remove {
                snapshot,
                reason,
                hold,
                ..
            } => vec![
                instance
                    .hold_lift(&request(snapshot, reason, hold.clone()))
                    .await?,
            ],
            HoldCommand::List { snapshot, .. } => {
                let all = instance
                    .holds(&HoldsQuery {
                        repository: repository.clone(),
                    })
                    .await?;
                all.into_iter()
                    .filter(|h| {
                        snapshot
                            .as_ref()
                            .is_none_or(|s| h.snapshot.starts_with(s.as_str()))
                    })
                    .collect()
            }
        };
        if global.json {
            output::print_json(&shown)?;
        } else if shown.is_empty() {
            println!("no legal holds");
        } else {
            for h in &shown {
                println!(
                    "{}  snapshot {}  {}  by {}@{}: {}",
                    &h.id[..8.min(h.id.len())],
                    &h.snapshot[..8.min(h.snapshot.len())],
                    h.created,
                    h.username,
                    h.hostname,
                    h.reason
                );
            }
        }
        Ok(exit::SUCCESS)
    })
}
