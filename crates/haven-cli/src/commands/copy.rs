//! `haven copy --to REPO2 [SNAPSHOT...]`: copies to a second repository.

use anyhow::{Context, Result};
use haven_engine::{CopiedSnapshot, CopyStatus, Location, Repository};
use serde::Serialize;

use crate::cli::{CopyArgs, GlobalArgs};
use crate::{context, exit, output};

/// The copy report (`--json`).
#[derive(Serialize)]
struct CopyView<'a> {
    target: String,
    snapshots: &'a [CopiedSnapshot],
    copied: usize,
    present: usize,
    bytes_added: u64,
}

pub fn run(global: &GlobalArgs, args: &CopyArgs) -> Result<u8> {
    let source = context::open(global)?;
    let location = Location::parse(&args.to)?;
    let password = context::password2(args.password_file2.as_deref())?;
    let target = Repository::open(&location, &password)
        .with_context(|| format!("cannot open the target repository {location}"))?;

    let ids = if args.snapshots.is_empty() {
        source
            .snapshots()?
            .into_iter()
            .filter(|(_, s)| args.host.as_deref().is_none_or(|h| s.hostname == h))
            .filter(|(_, s)| args.tags.iter().all(|t| s.tags.contains(t)))
            .map(|(id, _)| id)
            .collect()
    } else {
        let mut ids = Vec::new();
        for selector in &args.snapshots {
            ids.push(source.find_snapshot(selector)?.0);
        }
        ids
    };
    let bar = output::Bar::bytes(global, "copying");
    let result = source.copy_to(&target, &ids, args.verify, &bar);
    bar.finish();
    let copies = result?;

    let copied = copies
        .iter()
        .filter(|c| c.status == CopyStatus::Copied)
        .count();
    let view = CopyView {
        target: location.to_string(),
        snapshots: &copies,
        copied,
        present: copies.len() - copied,
        bytes_added: copies.iter().map(|c| c.bytes_added).sum(),
    };
    if global.json {
        output::print_json(&view)?;
        return Ok(exit::SUCCESS);
    }
    for c in &copies {
        let what = match c.status {
            CopyStatus::Copied => format!(
                "copied  {} → {} ({} read, {} added)",
                c.source.short(),
                c.target.short(),
                output::bytes(c.bytes_read),
                output::bytes(c.bytes_added)
            ),
            CopyStatus::Present => format!(
                "present {} → {} (already in the target)",
                c.source.short(),
                c.target.short()
            ),
        };
        let verified = if c.verified { ", verified" } else { "" };
        println!("{what}{verified}");
    }
    println!(
        "{} snapshots copied, {} already present, {} added to {}",
        view.copied,
        view.present,
        output::bytes(view.bytes_added),
        view.target
    );
    Ok(exit::SUCCESS)
}
