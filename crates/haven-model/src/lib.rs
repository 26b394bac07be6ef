//! Haven's pure domain model.
//!
//! No I/O, no async, no SQL, no HTTP: every evaluation is a function of
//! data and of `now`, so it is tested without a clock or a disk. This crate
//! depends on nothing else of Haven's.

pub mod access;
pub mod actor;
pub mod alert_rules;
pub mod alerts;
pub mod anomaly;
pub mod approval;
pub mod audit;
pub mod catalog;
pub mod classify;
pub mod compliance;
pub mod drills;
pub mod errors;
pub mod escalation;
pub mod jobs;
pub mod maintenance;
pub mod markup;
pub mod recovery;
pub mod redact;
pub mod retention;
pub mod tasks;
pub mod units;
