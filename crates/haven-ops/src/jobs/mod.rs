//! Jobs: how they run (the runner, dump commands and hooks) and why they
//! failed (classification). What runs and when is decided without I/O in
//! `haven_model::tasks` (the plan and the scheduler).

pub(crate) mod classify;
pub(crate) mod command;
pub(crate) mod hooks;
pub(crate) mod runner;

pub use command::{Background, CommandStream};
pub use hooks::Hooks;
pub use runner::{EngineRunner, Runner, open_repository, set_tags, snapshot_refs};
