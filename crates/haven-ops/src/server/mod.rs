//! `haven server`: the core in real time. One loop owns the core
//! ([`core`]); jobs run on blocking threads and report back through a
//! channel; the API talks to the loop through a [`Handle`]. When the
//! store fails the server degrades instead of stopping ([`health`]).
//!
//! The data dir's `server.lock` ([`crate::instance::lock`]) keeps a
//! second server, or a foreground `haven run`, from working on the same
//! data dir at the same time.

pub(crate) mod core;
mod error;
mod event_loop;
mod handle;
pub(crate) mod health;
mod outage;

pub use core::{Core, INTERRUPTED};
pub use error::ServerError;
pub use event_loop::{run, run_foreground, run_job};
pub use handle::Handle;
pub(crate) use handle::{alert_detail, drills, job, notify_test, service_drills};
