//! `haven prune`: reclaim space in two phases (see `haven_engine::prune`).

use anyhow::Result;
use haven_engine::prune::Space;
use haven_engine::{PruneOptions, PruneReport, Repository};

use crate::cli::{GlobalArgs, PruneArgs, PruneTuning};
use crate::{context, exit, output};

pub fn run(global: &GlobalArgs, args: &PruneArgs) -> Result<u8> {
    let repo = context::open(global)?;
    let report = prune(global, &repo, &args.tuning, args.dry_run)?;
    if global.json {
        output::print_json(&report)?;
    } else {
        print_report(&report);
    }
    Ok(exit::SUCCESS)
}

/// Run prune with the command line's settings (also used by `forget --prune`).
pub fn prune(
    global: &GlobalArgs,
    repo: &Repository,
    tuning: &PruneTuning,
    dry_run: bool,
) -> Result<PruneReport> {
    let options = PruneOptions {
        now: jiff::Timestamp::now(),
        grace: tuning.grace,
        max_unused_percent: tuning.max_unused,
        dry_run,
        break_lock: tuning.break_lock,
        backups_stopped: tuning.i_know_backups_are_stopped,
    };
    let bar = output::Bar::bytes(global, "pruning");
    let report = repo.prune(&options, &bar);
    bar.finish();
    Ok(report?)
}

fn space(s: &Space) -> String {
    format!("{} packs, {}", s.packs, output::bytes(s.bytes))
}

/// The human-readable prune report.
pub fn print_report(r: &PruneReport) {
    let would = |done: &'static str, planned: &'static str| if r.dry_run { planned } else { done };
    println!(
        "repository: {} ({} snapshots); in use {}, unused {} in unmarked packs",
        space(&r.before),
        r.snapshots,
        output::bytes(r.used_bytes),
        output::bytes(r.unused_bytes)
    );
    let m = &r.mark;
    if m.unused.packs + m.repacked.packs == 0 {
        println!("nothing new to mark");
    } else {
        let mut parts = Vec::new();
        if m.unused.packs > 0 {
            parts.push(format!("{} unused", space(&m.unused)));
        }
        if m.repacked.packs > 0 {
            parts.push(format!(
                "{} partly used ({} blobs repacked, {} written)",
                space(&m.repacked),
                m.blobs_repacked,
                output::bytes(m.repack_bytes_written)
            ));
        }
        println!(
            "{} {}{}",
            would("marked", "would mark"),
            parts.join(" and "),
            m.delete_after
                .map(|t| format!("; deletable after {}", t.strftime("%Y-%m-%d %H:%M:%S UTC")))
                .unwrap_or_default()
        );
    }
    for s in &r.swept {
        let kept = if s.kept.packs > 0 {
            format!("; kept {} needed again", space(&s.kept))
        } else {
            String::new()
        };
        println!(
            "{} {} marked at {}{kept}",
            would("deleted", "would delete"),
            space(&s.deleted),
            s.created.strftime("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    for p in &r.pending {
        println!(
            "pending: {} marked at {}, deletable after {}",
            space(&p.packs),
            p.created.strftime("%Y-%m-%d %H:%M:%S UTC"),
            p.delete_after.strftime("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    let freed = r.before.bytes.saturating_sub(r.after.bytes);
    println!(
        "{}: {} (freed {})",
        would("after", "after (estimate)"),
        space(&r.after),
        output::bytes(freed)
    );
}
