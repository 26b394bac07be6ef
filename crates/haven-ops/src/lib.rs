//! Haven's operations core: what happens around the engine when a backup
//! runs (hooks, database dump commands) and policy decisions about
//! snapshots (retention). Knows nothing of HTTP or SQL; the CLI and, later,
//! the server call it.

pub mod classify;
pub mod clock;
pub mod command;
pub mod core;
pub mod demo;
pub mod export;
pub mod health;
pub mod heartbeat;
pub mod hooks;
pub mod notify;
pub mod plan;
pub mod private;
pub mod redact;
pub mod runner;
pub mod scheduler;
pub mod server;
pub mod settings;
pub mod status;
pub mod watch;
