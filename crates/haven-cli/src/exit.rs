//! Exit codes (documented in the README).

/// Everything worked.
pub const SUCCESS: u8 = 0;
/// The command failed.
pub const FAILURE: u8 = 1;
/// The command line was wrong.
pub const USAGE: u8 = 2;
/// The command finished but some items failed (e.g. unreadable source files).
pub const PARTIAL: u8 = 3;
