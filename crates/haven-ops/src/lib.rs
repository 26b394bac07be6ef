//! Haven's operations core: everything that happens around the engine,
//! arranged by capability. Knows nothing of HTTP or SQL (the store is a
//! trait, the API another crate).
//!
//! - [`api`]: the instance interface every command and route calls, with
//!   its implementations in [`server`] (a running server) and
//!   [`datadir`] (a data dir without one);
//! - [`instance`]: the data dir, its lock, settings, secrets, redaction;
//! - [`jobs`]: plan, scheduling decisions, the runner, commands, hooks,
//!   failure classification;
//! - [`watch`]: alert rules, the alert lifecycle, maintenance windows;
//! - [`delivery`]: notifications, SIEM export, heartbeat;
//! - [`status`]: the status report;
//! - [`preflight`]: what would make the first jobs fail (`haven doctor`);
//! - [`server`]: the core and the loop that runs it in real time.
//!
//! Each capability's files are private to the crate (`pub(crate)`); its
//! `mod.rs` re-exports what other crates use, so a path outside is
//! always `haven_ops::<capability>::<Item>`.
//!
//! Dependencies go one way, from a layer to those below it
//! (ARCHITECTURE.md; `tests/ops/layout.rs` checks): `clock` ← `instance`
//! ← (`jobs`, `delivery`) ← `status` ← `api` ← `watch` ← `server` ←
//! `datadir`.

pub mod access;
pub mod api;
pub mod audit;
pub mod clock;
pub mod datadir;
pub mod delivery;
pub mod drills;
pub mod holds;
pub mod instance;
pub mod jobs;
pub mod metrics;
pub mod preflight;
pub mod recovery;
pub mod server;
pub mod status;
pub mod watch;
