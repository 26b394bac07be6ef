//! One module per command. Each returns its exit code; errors are reported
//! here, once, on stderr (and as a JSON document on stdout with `--json`).

mod access;
mod alerts;
mod audit;
mod backup;
mod catalog;
mod copy;
mod demo;
mod doctor;
mod drill;
mod forget;
mod hold;
mod jobs;
mod maintenance;
mod prune;
mod recover;
mod repo_check;
mod repo_init;
mod repo_key;
mod repo_repair;
mod repo_stats;
mod request;
mod restore;
mod run;
mod server;
mod snapshots;
mod status;

use haven_model::errors::{ErrorCode, ErrorDocument};
use haven_ops::api::{InstanceError, engine_code};
use haven_ops::instance::CatalogError;
use haven_ops::instance::LockError;
use haven_ops::instance::SettingsError;
use haven_ops::server::ServerError;

use crate::cli::{Cli, Command, RepoCommand};
use crate::context::UsageError;

/// Run the parsed command and return the process exit code.
pub fn run(cli: Cli) -> u8 {
    let global = &cli.global;
    crate::instance::reach_as(global);
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
        Command::Audit(cmd) => audit::run(global, cmd),
        Command::User(cmd) => access::user(global, cmd),
        Command::Token(cmd) => access::token(global, cmd),
        Command::Doctor(args) => doctor::run(global, args),
        Command::Drill(args) => drill::run(global, args),
        Command::Drills(args) => drill::list(global, args),
        Command::Recover(args) => recover::run(global, args),
        Command::Request(cmd) => request::run(global, cmd),
    };
    match result {
        Ok(code) => code,
        Err(error) => report(&error, global.json),
    }
}

/// Say what failed, once: `error: …` (and `hint: …`) on stderr, the one
/// JSON error document on stdout with `--json`; the exit code comes from
/// the error's code in the one table (`docs/errors.md`).
fn report(error: &anyhow::Error, json: bool) -> u8 {
    let (code, hint) = code_of(error);
    let message =
        haven_ops::instance::redact(&haven_model::errors::chain_text(error.as_ref())).into_owned();
    eprintln!("error: {message}");
    if let Some(hint) = &hint {
        eprintln!("hint: {hint}");
    }
    if json {
        let mut document = ErrorDocument::new(code, message);
        document.error.hint = hint;
        let _ = crate::output::print_json(&document);
    }
    code.exit_code()
}

/// An error's code and hint.
fn code_of(error: &anyhow::Error) -> (ErrorCode, Option<String>) {
    if error.downcast_ref::<UsageError>().is_some() {
        return (ErrorCode::Usage, None);
    }
    if let Some(e) = error.downcast_ref::<InstanceError>() {
        return (e.code, e.hint.clone());
    }
    if let Some(e) = error.downcast_ref::<haven_engine::Error>() {
        return (engine_code(e), None);
    }
    if let Some(e) = error.downcast_ref::<ServerError>() {
        return (e.code(), None);
    }
    if error.downcast_ref::<SettingsError>().is_some() {
        return (ErrorCode::SettingsInvalid, None);
    }
    if error.downcast_ref::<CatalogError>().is_some() {
        return (ErrorCode::CatalogInvalid, None);
    }
    if let Some(LockError::Locked(_)) = error.downcast_ref::<LockError>() {
        return (ErrorCode::DataDirLocked, None);
    }
    (ErrorCode::Failed, None)
}
