//! `haven restore SNAPSHOT[:PATH] --target DIR`.

use std::time::Instant;

use anyhow::Result;
use haven_engine::RestoreOptions;
use haven_engine::restore::FailedFile;
use serde::Serialize;

use crate::cli::{GlobalArgs, RestoreArgs};
use crate::{context, exit, output};

/// The restore summary (`--json`).
#[derive(Serialize)]
struct RestoreView<'a> {
    snapshot_id: String,
    target: String,
    files: u64,
    dirs: u64,
    symlinks: u64,
    bytes: u64,
    duration_ms: u64,
    failed: &'a [FailedFile],
}

pub fn run(global: &GlobalArgs, args: &RestoreArgs) -> Result<u8> {
    let (selector, subpath) = match args.snapshot.split_once(':') {
        Some((s, p)) => (s, Some(p.to_string())),
        None => (args.snapshot.as_str(), None),
    };
    let repo = context::open(global)?;
    let (id, _) = repo.find_snapshot(selector)?;
    let started = Instant::now();
    let options = RestoreOptions {
        subpath,
        includes: args.includes.clone(),
    };
    let bar = output::Bar::bytes(global, "restoring");
    let outcome = repo.restore(&id, &args.target, &options, &bar);
    bar.finish();
    let outcome = outcome?;
    let view = RestoreView {
        snapshot_id: id.to_hex(),
        target: args.target.display().to_string(),
        files: outcome.files,
        dirs: outcome.dirs,
        symlinks: outcome.symlinks,
        bytes: outcome.bytes,
        duration_ms: started.elapsed().as_millis() as u64,
        failed: &outcome.failed,
    };
    for f in &outcome.failed {
        eprintln!("error: cannot restore {}: {}", f.path.display(), f.error);
    }
    if global.json {
        output::print_json(&view)?;
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
