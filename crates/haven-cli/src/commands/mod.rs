//! One module per command. Each returns its exit code; errors are reported
//! here, once, on stderr (and as a JSON document on stdout with `--json`).

mod alerts;
mod backup;
mod catalog;
mod copy;
mod demo;
mod forget;
mod hold;
mod jobs;
mod maintenance;
mod prune;
mod repo_check;
mod repo_init;
mod repo_key;
mod repo_repair;
mod repo_stats;
mod restore;
mod run;
mod server;
mod snapshots;
mod status;

use serde::Serialize;

use crate::cli::{Cli, Command, RepoCommand};
use crate::context::UsageError;
use crate::exit;

/// Run the parsed command and return the process exit code.
pub fn run(cli: Cli) -> u8 {
    let global = &cli.global;
    let result = match &cli.command {
        Command::Repo(RepoCommand::Init(args)) => repo_init::run(global, args),
        Command::Repo(RepoCommand::Check(args)) => repo_check::run(global, args),
        Command::Repo(RepoCommand::Stats) => repo_stats::run(global),
        Command::Repo(RepoCommand::Repair(args)) => repo_repair::run(global, args),
        Command::Repo(RepoCommand::Key(cmd)) => repo_key::run(global, cmd),
        Command::Backup(args) => backup::run(global, args),
        Command::Snapshots(args) => snapshots::run(global, args),
        Command::Restore(args) => restore::run(global, args),
        Command::Forget(args) => forget::run(global, args),
        Command::Prune(args) => prune::run(global, args),
        Command::Copy(args) => copy::run(global, args),
        Command::Hold(cmd) => hold::run(global, cmd),
        Command::Catalog(cmd) => catalog::run(global, cmd),
        Command::Plan(cmd) => catalog::plan(global, cmd),
        Command::Bia(args) => catalog::bia(global, args),
        Command::Server(args) => server::run(global, args),
        Command::Status(args) => status::run(global, args),
        Command::Jobs(args) => jobs::list(global, args),
        Command::Job(cmd) => jobs::show(global, cmd),
        Command::Run(args) => run::run(global, args),
        Command::Demo(args) => demo::run(global, args),
        Command::Alerts(args) => alerts::list(global, args),
        Command::Alert(cmd) => alerts::alert(global, cmd),
        Command::Maintenance(cmd) => maintenance::run(global, cmd),
        Command::Notify(cmd) => alerts::notify(global, cmd),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            let code = exit_code_for(&error);
            let message = haven_ops::instance::redact::redact(&format!("{error:#}")).into_owned();
            eprintln!("error: {message}");
            if global.json {
                let _ = crate::output::print_json(&ErrorView {
                    error: ErrorBody {
                        message,
                        exit_code: code,
                    },
                });
            }
            code
        }
    }
}

#[derive(Serialize)]
struct ErrorView {
    error: ErrorBody,
}

#[derive(Serialize)]
struct ErrorBody {
    message: String,
    exit_code: u8,
}

fn exit_code_for(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<UsageError>().is_some() {
        return exit::USAGE;
    }
    // What the server refuses as invalid input is a usage error here too,
    // so both ways of reaching an instance exit alike. (Something that
    // does not exist, 404, is a failure: exit 1, as on the data dir.)
    if let Some(haven_web::client::ClientError::Refused { status, .. }) = error.downcast_ref()
        && matches!(status, 400 | 422)
    {
        return exit::USAGE;
    }
    match error.downcast_ref::<haven_engine::Error>() {
        Some(
            haven_engine::Error::InvalidArgument(_) | haven_engine::Error::InvalidLocation { .. },
        ) => exit::USAGE,
        _ => exit::FAILURE,
    }
}
