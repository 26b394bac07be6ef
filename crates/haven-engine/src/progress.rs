//! One progress interface for long operations: the CLI draws bars from it,
//! the server turns it into events, `--json` ignores it.

/// Receives progress of a long operation. All methods default to no-ops.
pub trait Progress: Send + Sync {
    /// Total bytes expected, when known.
    fn set_total(&self, _bytes: u64) {}
    /// Bytes processed since the last call.
    fn add_bytes(&self, _bytes: u64) {}
    /// Items (files, packs) finished since the last call.
    fn add_items(&self, _items: u64) {}
    /// What is being worked on.
    fn set_message(&self, _message: &str) {}
}

/// Progress that is not shown.
pub struct NoProgress;

impl Progress for NoProgress {}
