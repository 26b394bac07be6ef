//! `haven` command tests: the real binary against real repositories on
//! disk, real killed processes, really corrupted files and a really full
//! file system.

mod access;
mod basics;
mod catalog;
mod console;
mod copy;
mod corruption;
mod degraded;
mod doctor;
mod drill;
mod faults;
mod forget;
mod helpers;
mod holds;
mod keys;
mod kill;
mod prune;
mod recover;
mod restore;
mod s3;
mod secrets;
mod server;
mod streams;
