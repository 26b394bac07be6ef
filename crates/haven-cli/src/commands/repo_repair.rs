//! `haven repo repair [--forget-damaged]`.

use anyhow::Result;
use haven_engine::RepairOptions;

use crate::cli::{GlobalArgs, RepairArgs};
use crate::{context, exit, output};

pub fn run(global: &GlobalArgs, args: &RepairArgs) -> Result<u8> {
    let repo = context::open(global)?;
    let bar = output::Bar::bytes(global, "repairing");
    let report = repo.repair(
        RepairOptions {
            forget_damaged: args.forget_damaged,
        },
        &bar,
    );
    bar.finish();
    let report = report?;
    if global.json {
        output::print_json(&report)?;
    } else {
        println!(
            "index rebuilt from {} packs ({} index files replaced, {} packs that are gone dropped)",
            report.packs, report.index_files_replaced, report.packs_gone
        );
        if report.tmp_bytes_freed > 0 {
            println!(
                "removed {} of temporary files left by writers that are gone",
                output::bytes(report.tmp_bytes_freed)
            );
        }
        for pack in &report.unreadable_packs {
            println!(
                "warning: pack header unreadable (its index entries kept where known): {pack}"
            );
        }
        for d in &report.damaged {
            let state = match (d.forgotten, &d.kept_because) {
                (true, _) => "removed".to_string(),
                (false, Some(why)) => format!("kept ({why})"),
                (false, None) => "damaged".to_string(),
            };
            println!(
                "snapshot {} {state}: {} damaged paths, e.g. {}: {}",
                &d.id[..8],
                d.paths.len(),
                d.paths.first().map(String::as_str).unwrap_or("/"),
                d.problem
            );
        }
        if report.damaged.is_empty() {
            println!("every snapshot has all its data");
        }
    }
    if report.is_clean() {
        return Ok(exit::SUCCESS);
    }
    if !args.forget_damaged {
        eprintln!(
            "error: {} snapshots have lost data; new backups store that data again. Remove them with `haven repo repair --forget-damaged`, or keep them for what they still hold",
            report.damaged.len()
        );
    } else {
        eprintln!("error: damaged snapshots protected by a retention lock or legal hold were kept");
    }
    Ok(exit::FAILURE)
}
