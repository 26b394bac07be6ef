//! Haven's repository format and backup engine.
//!
//! A repository is a directory (or bucket prefix) of immutable, encrypted,
//! content-addressed files, specified in `docs/format.md`:
//!
//! - **chunking**: files are split with FastCDC using a secret gear seed,
//!   so chunk boundaries leak nothing; chunks are identified by keyed BLAKE3
//!   and stored once per repository (deduplication across all snapshots);
//! - **packs**: chunks (blobs) are compressed with zstd, encrypted with
//!   AES-256-GCM and gathered into pack files of tens of MB, described by
//!   index files; every file is written once and never modified;
//! - **snapshots** reference a root tree; a snapshot file is written last,
//!   so a backup becomes visible atomically and an interrupted one leaves
//!   only unreferenced packs, which the next backup adopts.
//!
//! The entry point is [`Repository`]: [`Repository::init`] /
//! [`Repository::open`], then [`Repository::backup`],
//! [`Repository::backup_stream`], [`Repository::restore`],
//! [`Repository::check`] and [`Repository::stats`].

pub mod anchor;
mod backend;
pub mod backup;
pub mod check;
mod chunker;
pub mod copy;
mod crypto;
mod deep;
pub mod error;
mod format;
pub mod host;
pub mod id;
mod index;
pub mod keys;
mod layout;
mod limits;
pub mod object_lock;
pub mod progress;
pub mod protection;
pub mod prune;
pub mod repair;
pub mod repo;
pub mod restore;
mod saver;
pub mod stats;
#[cfg(feature = "testing")]
pub mod testing;

pub use backend::Location;
pub use backup::{BackupOptions, BackupOutcome, ParentChoice, SkippedEntry};
pub use check::{CheckReport, ReadData};
pub use copy::{CopiedSnapshot, CopyStatus};
pub use crypto::KdfParams;
pub use error::{Error, Result, StorageFault};
pub use format::{ChunkerParams, Hold, Snapshot, SnapshotSummary};
pub use id::Id;
pub use keys::KeyInfo;
pub use progress::{NoProgress, Progress, WritePhase};
pub use prune::{PruneOptions, PruneReport};
pub use repair::{RepairOptions, RepairReport};
pub use repo::{InitOptions, Repository};
pub use restore::{RestoreOptions, RestoreOutcome};
pub use stats::RepoStats;
