//! Engine integration tests: real repositories on disk, real files.

mod concurrent;
mod helpers;
mod incremental;
mod keys;
mod roundtrip;
mod stream;
