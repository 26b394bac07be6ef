//! Haven's operations core: what happens around the engine when a backup
//! runs (hooks, database dump commands) and policy decisions about
//! snapshots (retention). Knows nothing of HTTP or SQL; the CLI and, later,
//! the server call it.

pub mod command;
pub mod hooks;
