//! The `haven` binary: parses arguments and hands each command to its module.

mod alloc;
mod cli;
mod commands;
mod context;
mod exit;
mod instance;
mod output;

use clap::Parser;

fn main() -> std::process::ExitCode {
    alloc::tune();
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
