//! `haven snapshots`: list snapshots, oldest first.

use anyhow::Result;
use haven_engine::{Snapshot, SnapshotSummary};
use serde::Serialize;

use crate::cli::{GlobalArgs, SnapshotsArgs};
use crate::{context, exit, output};

/// One snapshot (`--json` prints an array of these).
#[derive(Serialize)]
struct SnapshotView<'a> {
    id: String,
    short_id: String,
    time: String,
    hostname: &'a str,
    username: &'a str,
    paths: &'a [String],
    tags: &'a [String],
    tree: String,
    parent: Option<String>,
    retention_lock_until: Option<String>,
    summary: &'a SnapshotSummary,
}

pub fn run(global: &GlobalArgs, args: &SnapshotsArgs) -> Result<u8> {
    let repo = context::open(global)?;
    let list = repo.snapshot_list()?;
    // One damaged file hides nothing else: it is named, the rest listed.
    for (id, error) in &list.unreadable {
        eprintln!("warning: snapshot file {id} cannot be read ({error}); run `haven repo check`");
    }
    let snapshots: Vec<(haven_engine::Id, Snapshot)> = list
        .snapshots
        .into_iter()
        .filter(|(_, s)| args.host.as_deref().is_none_or(|h| s.hostname == h))
        .filter(|(_, s)| args.tags.iter().all(|t| s.tags.contains(t)))
        .collect();
    let views: Vec<SnapshotView<'_>> = snapshots
        .iter()
        .map(|(id, s)| SnapshotView {
            id: id.to_hex(),
            short_id: id.short(),
            time: s.time.to_string(),
            hostname: &s.hostname,
            username: &s.username,
            paths: &s.paths,
            tags: &s.tags,
            tree: s.tree.to_hex(),
            parent: s.parent.map(|p| p.to_hex()),
            retention_lock_until: s.retention_lock_until.map(|t| t.to_string()),
            summary: &s.summary,
        })
        .collect();
    if global.json {
        output::print_json(&views)?;
        return Ok(exit::SUCCESS);
    }
    if views.is_empty() {
        println!("no snapshots");
        return Ok(exit::SUCCESS);
    }
    println!(
        "{:<8}  {:<20}  {:<16}  {:>10}  {:<12}  paths",
        "id", "time (UTC)", "host", "size", "tags"
    );
    for (v, (_, s)) in views.iter().zip(&snapshots) {
        let time = s.time.strftime("%Y-%m-%d %H:%M:%S").to_string();
        let size = output::bytes(s.summary.bytes_total);
        println!(
            "{:<8}  {:<20}  {:<16}  {:>10}  {:<12}  {}",
            v.short_id,
            time,
            v.hostname,
            size,
            v.tags.join(","),
            v.paths.join(" ")
        );
    }
    println!("{} snapshots", views.len());
    Ok(exit::SUCCESS)
}
