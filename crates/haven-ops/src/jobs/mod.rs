//! Jobs: what the catalog asks for (the plan), when it runs (the
//! scheduler's decisions), how it runs (the runner, dump commands and
//! hooks) and why it failed (classification).

pub(crate) mod classify;
pub(crate) mod command;
pub(crate) mod hooks;
pub(crate) mod plan;
pub(crate) mod runner;
pub(crate) mod scheduler;

pub use command::CommandStream;
pub use hooks::Hooks;
pub use plan::{Plan, plan};
pub use runner::{EngineRunner, JobSpec, RepoTarget, Runner, Work, snapshot_refs};
pub use scheduler::{Limits, Scheduler};
