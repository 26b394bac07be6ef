//! `haven repo check [--read-data | --read-data-subset PCT]`.

use anyhow::Result;
use haven_engine::ReadData;

use crate::cli::{CheckArgs, GlobalArgs};
use crate::{context, exit, output};

pub fn run(global: &GlobalArgs, args: &CheckArgs) -> Result<u8> {
    let repo = context::open(global)?;
    let read_data = match (args.read_data, args.read_data_subset) {
        (true, _) => ReadData::All,
        (false, Some(pct)) => ReadData::Subset(pct),
        (false, None) => ReadData::None,
    };
    let bar = output::Bar::bytes(global, "reading data");
    let report = repo.check(read_data, &bar);
    bar.finish();
    let report = report?;
    if global.json {
        output::print_json(&report)?;
    } else {
        println!(
            "checked {} snapshots, {} trees, {} packs, {} blobs",
            report.snapshots, report.trees, report.packs, report.blobs
        );
        if read_data != ReadData::None {
            println!(
                "read {} packs ({})",
                report.packs_read,
                output::bytes(report.bytes_read)
            );
        }
        if report.stale_index_entries > 0 {
            println!(
                "note: index files list {} packs that are gone and that no snapshot needs (left by an interrupted prune; the next prune or `haven repo repair` drops them)",
                report.stale_index_entries
            );
        }
        if report.unindexed_packs > 0 {
            println!(
                "note: {} packs are not in any index (left by interrupted backups; their data is reused by later backups)",
                report.unindexed_packs
            );
        }
        for p in &report.problems {
            println!("error: {} {}: {}", p.kind, p.object, p.detail);
        }
        if !report.damaged.is_empty() {
            println!("affected snapshot paths:");
            for d in &report.damaged {
                println!("  {} {}: {}", &d.snapshot[..8], d.path, d.problem);
            }
        }
        if report.is_ok() {
            println!("no errors were found");
        }
    }
    if report.is_ok() {
        Ok(exit::SUCCESS)
    } else {
        eprintln!(
            "error: the repository has {} problems",
            report.problems.len()
        );
        Ok(exit::FAILURE)
    }
}
