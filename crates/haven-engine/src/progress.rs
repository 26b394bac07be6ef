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
    /// A writer (backup, copy) reached one of its phases. Called on the
    /// writer's thread, which waits for the call to return: tests pause a
    /// writer there to run a prune at each point.
    fn phase(&self, _phase: WritePhase) {}
}

/// The phases of a writer that matter to a prune running alongside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WritePhase {
    /// It has read the index and prune's marks and records; nothing stored.
    Started,
    /// Its data and index files are stored; no snapshot yet.
    DataStored,
    /// It found no prune endangering its data, and is about to save its
    /// snapshot.
    Checked,
    /// Its snapshot is saved; the last look at prune's records follows.
    SnapshotSaved,
}

/// Progress that is not shown.
pub struct NoProgress;

impl Progress for NoProgress {}
