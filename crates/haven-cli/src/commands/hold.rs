//! `haven hold add|remove|list`: legal holds on snapshots.

use anyhow::{Result, bail};
use serde::Serialize;

use crate::cli::{GlobalArgs, HoldCommand};
use crate::context::UsageError;
use crate::{context, exit, output};

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
    let repo = context::open(global)?;
    match command {
        HoldCommand::Add { snapshot, reason } => {
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
        } => {
            if reason.trim().is_empty() {
                bail!(UsageError(
                    "say why the hold is lifted with --reason".into()
                ));
            }
            let (id, _) = repo.find_snapshot(snapshot)?;
            let on_snapshot: Vec<_> = repo
                .holds()?
                .into_iter()
                .filter(|(_, h)| h.snapshot == id)
                .collect();
            let chosen = match (hold, on_snapshot.as_slice()) {
                (_, []) => bail!("snapshot {} has no legal hold", id.short()),
                (None, [only]) => only.0,
                (None, many) => bail!(UsageError(format!(
                    "snapshot {} has {} holds; pick one with --hold ({})",
                    id.short(),
                    many.len(),
                    many.iter()
                        .map(|(h, x)| format!("{}: {}", h.short(), x.reason))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
                (Some(prefix), all) => match all
                    .iter()
                    .filter(|(h, _)| h.to_hex().starts_with(&prefix.to_ascii_lowercase()))
                    .collect::<Vec<_>>()
                    .as_slice()
                {
                    [one] => one.0,
                    _ => bail!(UsageError(format!(
                        "--hold {prefix:?} matches no single hold of snapshot {}",
                        id.short()
                    ))),
                },
            };
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
        HoldCommand::List { snapshot } => {
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
