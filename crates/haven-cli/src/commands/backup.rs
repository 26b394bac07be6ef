//! `haven backup`: back up paths, or a command's output, into a new
//! snapshot, with optional pre/post hooks.

use anyhow::Result;
use haven_engine::{BackupOptions, ParentChoice, SkippedEntry};
use haven_ops::jobs::CommandStream;
use haven_ops::jobs::Hooks;
use serde::Serialize;

use crate::cli::{BackupArgs, GlobalArgs};
use crate::{context, exit, output};

/// The backup summary (`--json`); field names are a stable interface.
#[derive(Serialize)]
struct BackupView<'a> {
    snapshot_id: String,
    short_id: String,
    time: String,
    hostname: &'a str,
    paths: &'a [String],
    tags: &'a [String],
    parent: Option<String>,
    files_new: u64,
    files_changed: u64,
    files_unmodified: u64,
    dirs: u64,
    bytes_read: u64,
    bytes_total: u64,
    bytes_added: u64,
    duration_ms: u64,
    skipped: &'a [SkippedEntry],
    /// Present when the snapshot has a retention lock and the storage
    /// has Object Lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    object_lock: Option<&'a haven_engine::object_lock::ObjectLockOutcome>,
}

pub fn run(global: &GlobalArgs, args: &BackupArgs) -> Result<u8> {
    // Open first: a wrong password must not quiesce a database for nothing.
    let repo = context::open(global)?;
    let options = BackupOptions {
        tags: args.tags.clone(),
        hostname: args.host.clone(),
        excludes: args.excludes.clone(),
        lock_until: args.lock_until,
        object_lock_mode: args.object_lock_mode,
        parent: if args.force {
            ParentChoice::None
        } else {
            ParentChoice::Auto
        },
        ..BackupOptions::default()
    };
    let hooks = Hooks {
        pre: args.pre_hook.clone(),
        post: args.post_hook.clone(),
        timeout: Some(args.hook_timeout),
        env: Vec::new(),
    };
    let around = hooks.around(
        || {
            let bar = output::Bar::bytes(global, "backing up");
            let outcome = match &args.stdin_from {
                Some(command) => CommandStream::spawn(command, &[])
                    .map_err(anyhow::Error::from)
                    .and_then(|mut stream| {
                        Ok(repo.backup_stream(&mut stream, &args.stdin_name, &options, &bar)?)
                    }),
                None => Ok(repo.backup(&args.paths, &options, &bar)?),
            };
            bar.finish();
            outcome
        },
        |o| o.snapshot_id.to_hex(),
    )?;
    let outcome = around.value;
    let post_failed = match &around.post_error {
        Some(post_error) => {
            eprintln!("warning: the snapshot was saved, but the post-hook failed: {post_error}");
            true
        }
        None => false,
    };
    let s = outcome.summary();
    let snap = &outcome.snapshot;
    let view = BackupView {
        snapshot_id: outcome.snapshot_id.to_hex(),
        short_id: outcome.snapshot_id.short(),
        time: snap.time.to_string(),
        hostname: &snap.hostname,
        paths: &snap.paths,
        tags: &snap.tags,
        parent: snap.parent.map(|p| p.to_hex()),
        files_new: s.files_new,
        files_changed: s.files_changed,
        files_unmodified: s.files_unmodified,
        dirs: s.dirs,
        bytes_read: s.bytes_read,
        bytes_total: s.bytes_total,
        bytes_added: s.bytes_added,
        duration_ms: s.duration_ms,
        skipped: &outcome.skipped,
        object_lock: outcome.object_lock.as_ref(),
    };
    let lock_error = outcome.object_lock.as_ref().and_then(|l| l.error.as_ref());
    if let Some(error) = lock_error {
        eprintln!(
            "warning: the snapshot was saved and Haven keeps it until its lock ends, but Object Lock retention could not be set on every object: {error}"
        );
    }
    if !outcome.skipped.is_empty() {
        eprintln!(
            "warning: {} entries could not be backed up and are not in the snapshot:",
            outcome.skipped.len()
        );
        for entry in &outcome.skipped {
            eprintln!("  {}: {}", entry.path.display(), entry.error);
        }
    }
    if global.json {
        output::print_json(&view)?;
    } else {
        println!("snapshot {} saved", view.short_id);
        println!(
            "  files: {} new, {} changed, {} unmodified; {} directories",
            s.files_new, s.files_changed, s.files_unmodified, s.dirs
        );
        println!(
            "  read {} of {}, added {} to the repository in {:.2} s",
            output::bytes(s.bytes_read),
            output::bytes(s.bytes_total),
            output::bytes(s.bytes_added),
            s.duration_ms as f64 / 1000.0
        );
        if let Some(lock) = &outcome.object_lock {
            println!(
                "  Object Lock: {} objects retained until {} ({:?} mode; {} extended now)",
                lock.objects, lock.until, lock.mode, lock.extended
            );
        }
    }
    // A failed post-hook is a partial success: the data is safe, but what
    // the hook should have done (e.g. resume a database) needs attention.
    Ok(
        if outcome.skipped.is_empty() && !post_failed && lock_error.is_none() {
            exit::SUCCESS
        } else {
            exit::PARTIAL
        },
    )
}
