//! Engine integration tests: real repositories on disk, real files.

mod alloc;
mod concurrent;
mod crafted;
mod decoders;
mod format_rules;
mod helpers;
mod incremental;
mod keys;
mod prune;
mod race;
mod repair;
mod roundtrip;
mod stream;
