//! haven-catalog's integration tests, one binary: every finding's fixture
//! (snapshot-tested), the JSON Schema, recovery order, the watch tables.

mod analysis;
mod drills;
mod fixtures;
mod plan;
mod recovery;
mod schema;
mod watch;
