//! Logging, JSON output and progress bars.

use std::io::IsTerminal;
use std::time::Duration;

use haven_engine::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::cli::GlobalArgs;

/// Logs go to stderr; `RUST_LOG` overrides the level from -v/-q. A
/// server logs what it does (info, with times); other commands only
/// warnings.
pub fn init_logging(global: &GlobalArgs, server: bool) {
    let level = if global.quiet {
        "error"
    } else {
        match global.verbose {
            0 if server => "info",
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "haven={level},haven_engine={level},haven_ops={level},haven_web={level},haven_store={level}"
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactedStderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let _ = if server {
        builder.try_init()
    } else {
        builder.without_time().try_init()
    };
}

/// Log lines go to stderr with every secret masked
/// ([`haven_ops::instance::redact`]): a dump command's stderr, an error quoting a
/// command line, a delivery failure.
struct RedactedStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedLine;

    fn make_writer(&'a self) -> RedactedLine {
        RedactedLine(Vec::new())
    }
}

/// One log event, buffered whole so a secret is never split across
/// writes, written (redacted) when the formatter is done with it.
struct RedactedLine(Vec<u8>);

impl std::io::Write for RedactedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let _ = std::io::Write::write_all(
            &mut std::io::stderr().lock(),
            haven_ops::instance::redact(&text).as_bytes(),
        );
    }
}

/// Print one JSON document on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    println!("{text}");
    Ok(())
}

/// A progress bar on stderr when it is a terminal and output is for people.
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// A byte-counting bar (hidden for `--json`, `--quiet` or no terminal).
    pub fn bytes(global: &GlobalArgs, what: &str) -> Self {
        if global.json || global.quiet || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        // Until a total is known (backups), a spinner with bytes and rate.
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {msg} {bytes} {binary_bytes_per_sec} [{elapsed_precise}]",
        ) {
            bar.set_style(style);
        }
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(Some(bar))
    }

    /// A spinner with a message and the time waited (hidden like `bytes`).
    pub fn spinner(global: &GlobalArgs, what: &str) -> Self {
        if global.json || global.quiet || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]") {
            bar.set_style(style);
        }
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(Some(bar))
    }

    /// Remove the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn set_total(&self, bytes: u64) {
        if let Some(bar) = &self.0 {
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} [{elapsed_precise}]",
            ) {
                bar.set_style(style);
            }
            bar.set_length(bytes);
        }
    }
    fn add_bytes(&self, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(bytes);
        }
    }
    fn set_message(&self, message: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(message.to_string());
        }
    }
}

/// Human-readable byte count (binary units).
pub fn bytes(n: u64) -> String {
    haven_model::units::human_bytes(n as f64)
}
