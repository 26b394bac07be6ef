//! haven-ops' integration tests, one binary: the runner on real
//! repositories, the server's core and the watch over simulated weeks,
//! and the crate's layout (no import cycles).

mod access;
mod audit;
mod drills;
mod layout;
mod runner;
mod server;
mod sim;
mod watch;
