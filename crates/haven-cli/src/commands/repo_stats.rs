//! `haven repo stats`.

use anyhow::Result;

use crate::cli::GlobalArgs;
use crate::{context, exit, output};

pub fn run(global: &GlobalArgs) -> Result<u8> {
    let repo = context::open(global)?;
    let stats = repo.stats()?;
    if global.json {
        output::print_json(&stats)?;
        return Ok(exit::SUCCESS);
    }
    println!("snapshots:          {}", stats.snapshots);
    println!(
        "packs:              {} ({})",
        stats.packs,
        output::bytes(stats.pack_bytes)
    );
    println!(
        "blobs:              {} data, {} tree",
        stats.data_blobs, stats.tree_blobs
    );
    println!(
        "snapshot contents:  {}",
        output::bytes(stats.snapshot_bytes)
    );
    println!(
        "unique data:        {} (deduplication {:.2}x)",
        output::bytes(stats.unique_bytes),
        stats.dedup_ratio
    );
    println!(
        "stored data:        {} (compression {:.2}x)",
        output::bytes(stats.stored_bytes),
        stats.compression_ratio
    );
    if stats.unindexed_packs > 0 {
        println!("unindexed packs:    {}", stats.unindexed_packs);
    }
    Ok(exit::SUCCESS)
}
