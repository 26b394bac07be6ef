//! The `haven` binary: parses arguments and hands each command to its module.

mod alloc;
mod cli;
mod commands;
mod context;
mod exit;
mod instance;
mod output;

use clap::Parser;

/// `haven jobs | head` closes stdout early. Rust ignores SIGPIPE, so
/// the next `println!` panics; end quietly instead, with the status a
/// shell expects of a command stopped by SIGPIPE (128 + 13).
fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> std::process::ExitCode {
    alloc::tune();
    exit_quietly_on_broken_pipe();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version on stdout (exit 0) and usage errors on
            // stderr (exit 2), matching the documented codes.
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            });
        }
    };
    let server = matches!(cli.command, cli::Command::Server(_) | cli::Command::Demo(_));
    output::init_logging(&cli.global, server);
    let code = commands::run(cli);
    std::process::ExitCode::from(code)
}
