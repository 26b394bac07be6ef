//! Engine integration tests: real repositories on disk, real files.

mod helpers;
mod incremental;
mod keys;
mod roundtrip;
mod stream;
