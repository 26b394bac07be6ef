//! Jobs: what the catalog asks for (the plan), when it runs (the
//! scheduler's decisions), how it runs (the runner, dump commands and
//! hooks) and why it failed (classification).

pub mod classify;
pub mod command;
pub mod hooks;
pub mod plan;
pub mod runner;
pub mod scheduler;
