//! `haven forget`: remove the snapshots a retention policy does not keep.

use anyhow::{Result, bail};
use haven_engine::PruneReport;
use haven_model::retention::{self, GroupDecision, KeepPolicy};
use serde::Serialize;

use crate::cli::{ForgetArgs, GlobalArgs};
use crate::context::UsageError;
use crate::{context, exit, output};

/// The forget report (`--json`).
#[derive(Serialize)]
struct ForgetView<'a> {
    dry_run: bool,
    groups: &'a [GroupDecision],
    removed: Vec<&'a str>,
    /// The prune report with `--prune`.
    #[serde(skip_serializing_if = "Option::is_none")]
    prune: Option<PruneReport>,
}

pub fn run(global: &GlobalArgs, args: &ForgetArgs) -> Result<u8> {
    if !args.snapshots.is_empty() {
        return forget_named(global, args);
    }
    let policy = KeepPolicy {
        last: args.keep_last,
        hourly: args.keep_hourly,
        daily: args.keep_daily,
        weekly: args.keep_weekly,
        monthly: args.keep_monthly,
        yearly: args.keep_yearly,
        within: args.keep_within,
    };
    if policy.is_empty() {
        bail!(UsageError(
            "no retention rule given, which would remove every snapshot: pass at least one --keep-* option"
                .into()
        ));
    }
    let repo = context::open(global)?;
    let snapshots = repo.snapshots()?;
    let now = jiff::Timestamp::now();
    let refs = haven_ops::jobs::snapshot_refs(&repo, &snapshots, now)?;
    let groups = retention::apply(
        &policy,
        &refs,
        args.group_by,
        now,
        &jiff::tz::TimeZone::system(),
    );
    let removed: Vec<&str> = groups
        .iter()
        .flat_map(|g| {
            g.decisions
                .iter()
                .filter(|d| !d.keep)
                .map(|d| d.id.as_str())
        })
        .collect();
    if !args.dry_run && !removed.is_empty() {
        let ids = removed
            .iter()
            .map(|id| id.parse())
            .collect::<Result<Vec<haven_engine::Id>, _>>()?;
        repo.remove_snapshots(&ids)?;
    }
    let pruned = prune_after(global, &repo, args)?;
    if global.json {
        output::print_json(&ForgetView {
            dry_run: args.dry_run,
            groups: &groups,
            removed,
            prune: pruned,
        })?;
        return Ok(exit::SUCCESS);
    }
    for group in &groups {
        let mut label = Vec::new();
        if let Some(h) = &group.key.host {
            label.push(format!("host {h}"));
        }
        if let Some(p) = &group.key.paths {
            label.push(format!("paths {}", p.join(" ")));
        }
        if let Some(t) = &group.key.tags {
            label.push(format!("tags [{}]", t.join(",")));
        }
        println!(
            "{}",
            if label.is_empty() {
                "all snapshots".into()
            } else {
                label.join(", ")
            }
        );
        for d in &group.decisions {
            let verdict = if d.keep { "keep  " } else { "remove" };
            println!(
                "  {verdict} {}  {}  {}",
                &d.id[..8],
                d.time.strftime("%Y-%m-%d %H:%M:%S"),
                d.reasons.join("; ")
            );
        }
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    match &pruned {
        Some(report) => {
            println!("{verb} {} snapshots", removed.len());
            super::prune::print_report(report);
        }
        None => println!(
            "{verb} {} snapshots (their data stays in the repository until pruned)",
            removed.len()
        ),
    }
    Ok(exit::SUCCESS)
}

/// `haven forget SNAPSHOT...`: remove exactly these (all or nothing).
fn forget_named(global: &GlobalArgs, args: &ForgetArgs) -> Result<u8> {
    let repo = context::open(global)?;
    let mut ids = Vec::new();
    for selector in &args.snapshots {
        ids.push(repo.find_snapshot(selector)?.0);
    }
    let hex: Vec<String> = ids.iter().map(|id| id.to_hex()).collect();
    if !args.dry_run {
        repo.remove_snapshots(&ids)?;
    }
    let pruned = prune_after(global, &repo, args)?;
    if global.json {
        output::print_json(&ForgetView {
            dry_run: args.dry_run,
            groups: &[],
            removed: hex.iter().map(String::as_str).collect(),
            prune: pruned,
        })?;
    } else {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        for id in &ids {
            println!("{verb} snapshot {}", id.short());
        }
        if let Some(report) = &pruned {
            super::prune::print_report(report);
        }
    }
    Ok(exit::SUCCESS)
}

/// `--prune`: prune after removing snapshots.
fn prune_after(
    global: &GlobalArgs,
    repo: &haven_engine::Repository,
    args: &ForgetArgs,
) -> Result<Option<PruneReport>> {
    if !args.prune {
        return Ok(None);
    }
    super::prune::prune(global, repo, &args.tuning, args.dry_run).map(Some)
}
