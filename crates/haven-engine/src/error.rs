//! The engine's error type: every variant says what failed and where.

use std::path::PathBuf;

use crate::id::Id;

/// Errors returned by the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No repository exists at the location.
    #[error("no repository at {location}: {reason} (create one with `haven repo init`)")]
    RepositoryNotFound {
        /// The repository location as given.
        location: String,
        /// Why it is not a repository.
        reason: String,
    },
    /// The bucket of an S3 location does not exist.
    #[error("bucket {bucket:?} does not exist at {endpoint} (create it first, or check the name)")]
    BucketNotFound {
        /// The bucket.
        bucket: String,
        /// The endpoint.
        endpoint: String,
    },
    /// `init` was asked to create a repository where one exists.
    #[error("a repository already exists at {location}")]
    RepositoryExists {
        /// The repository location as given.
        location: String,
    },
    /// No key of the repository opens with the given password.
    #[error("wrong password: no key in {location} can be opened with it")]
    WrongPassword {
        /// The repository location as given.
        location: String,
    },
    /// The repository was written by a newer, incompatible format version.
    #[error(
        "repository format version {found} is not supported (this haven reads version {supported})"
    )]
    UnsupportedVersion {
        /// Version found in the repository.
        found: u32,
        /// Version this build supports.
        supported: u32,
    },
    /// The repository location does not parse.
    #[error("invalid repository location {location:?}: {reason}")]
    InvalidLocation {
        /// The location as given.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing the repository's storage (a local directory or
    /// object storage) failed.
    #[error("storage error on {path}: {source}")]
    Storage {
        /// Path inside the repository.
        path: String,
        /// What kind of failure, whatever the backend.
        fault: StorageFault,
        /// The backend's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A path given to back up cannot be read (missing, not permitted).
    #[error("cannot back up {}: {}", path.display(), unreadable_because(cause))]
    SourceUnreadable {
        /// The path as given (made absolute).
        path: PathBuf,
        /// Why (said in the message; not a separate cause, so it is
        /// reported once).
        cause: std::io::Error,
    },
    /// A file that must be created fresh exists already.
    #[error("{path} exists already")]
    AlreadyExists {
        /// Path inside the repository.
        path: String,
    },
    /// A local file-system operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("read", "create", …).
        action: &'static str,
        /// The local path.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Stored data failed authentication, hashing or parsing.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// The object ("pack 1a2b…", "snapshot …").
        what: String,
        /// What check failed.
        detail: String,
    },
    /// A blob referenced by a tree is in no index nor pack.
    #[error("blob {0} is missing from the repository")]
    MissingBlob(Id),
    /// No snapshot matches the given selector.
    #[error("no snapshot matches {0:?}")]
    SnapshotNotFound(String),
    /// A snapshot id prefix matches several snapshots.
    #[error("snapshot prefix {prefix:?} is ambiguous: it matches {count} snapshots")]
    AmbiguousSnapshot {
        /// The prefix given.
        prefix: String,
        /// How many snapshots match.
        count: usize,
    },
    /// A path inside a snapshot does not exist.
    #[error("path {path:?} does not exist in snapshot {snapshot}")]
    PathNotInSnapshot {
        /// The path asked for.
        path: String,
        /// Snapshot short id.
        snapshot: String,
    },
    /// A snapshot is protected by a retention lock or legal hold.
    #[error("snapshot {snapshot} is protected and cannot be removed: {}", reasons.join("; "))]
    Protected {
        /// Snapshot short id.
        snapshot: String,
        /// The protections in force.
        reasons: Vec<String>,
    },
    /// Invalid argument (glob, option value…).
    #[error("{0}")]
    InvalidArgument(String),
    /// A byte-stream source (a command's output) failed.
    #[error("stream source failed: {0}")]
    Stream(String),
    /// A prune marked data for deletion while a backup ran, and the mark
    /// is (nearly) due: the backup may rely on that data.
    #[error(
        "a prune marked data for deletion at {delete_after} while this backup was running, and the backup may rely on it, so no snapshot was saved. Run the backup again (the data it stored is reused), and give prune a --grace longer than your longest backup"
    )]
    PruneRace {
        /// When the marked data may be deleted.
        delete_after: jiff::Timestamp,
    },
    /// A prune deleted (or is deleting) data the writer relies on while it
    /// ran.
    #[error(
        "a prune deleted {packs} packs of data this backup relies on while it ran, so no snapshot was saved. Run the backup again (it stores that data anew), and give prune a --grace longer than your longest backup"
    )]
    PruneSwept {
        /// How many of the packs it relies on are condemned or gone.
        packs: usize,
    },
    /// Prune was asked for a grace period shorter than a backup may run.
    #[error(
        "--grace {grace} is shorter than the longest backup this repository has seen ({longest}, snapshot {snapshot}) plus a {margin} margin: a backup running now could lose data it relies on. Give a longer --grace, or, when no backup can be running, pass --i-know-backups-are-stopped"
    )]
    GraceTooShort {
        /// The grace period asked for.
        grace: String,
        /// The longest backup's duration.
        longest: String,
        /// The snapshot it made.
        snapshot: String,
        /// The margin added.
        margin: String,
    },
    /// A local repository's key files or directory are readable by other
    /// users (the check found nothing else wrong).
    #[error(
        "other users can read {} of the repository's private files (key files hold the password-wrapped master key): {}",
        fixes.len(),
        fixes.join("; ")
    )]
    ExposedFiles {
        /// The command that fixes each, e.g. `chmod 600 /srv/repo/keys/…`.
        fixes: Vec<String>,
    },
    /// Another prune holds the repository's prune lock.
    #[error(
        "another prune is running: the prune lock is held by {holder}. If no prune is running there, run `haven prune --break-lock`"
    )]
    PruneLocked {
        /// Who holds it.
        holder: String,
    },
    /// The operation was cancelled.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.into(),
            detail: detail.into(),
        }
    }

    /// A failure of a local repository directory.
    pub(crate) fn local_storage(path: &str, source: std::io::Error) -> Self {
        Error::Storage {
            path: path.to_string(),
            fault: StorageFault::of_io(source.kind()),
            source: Box::new(source),
        }
    }

    /// A failure of object storage.
    pub(crate) fn object_storage(path: &str, source: opendal::Error) -> Self {
        Error::Storage {
            path: path.to_string(),
            fault: StorageFault::of_object(&source),
            source: Box::new(source),
        }
    }

    /// True when a storage operation found no such file (e.g. deleted by a
    /// prune since it was listed).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::Storage {
                fault: StorageFault::NotFound,
                ..
            }
        )
    }

    /// True when the storage is full (a local disk or a quota).
    pub fn is_storage_full(&self) -> bool {
        match self {
            Error::Storage { fault, .. } => {
                matches!(fault, StorageFault::Full | StorageFault::QuotaExceeded)
            }
            Error::Io { source, .. } => matches!(
                StorageFault::of_io(source.kind()),
                StorageFault::Full | StorageFault::QuotaExceeded
            ),
            _ => false,
        }
    }

    /// True when the error means stored data is damaged or missing (as
    /// opposed to a local I/O or usage problem).
    pub fn is_integrity(&self) -> bool {
        matches!(self, Error::Corrupt { .. } | Error::MissingBlob(_))
    }
}

/// What went wrong with the repository's storage, the same for a local
/// directory and for object storage, so callers decide (retry, alert,
/// fix credentials) without knowing the backend's error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// No such file or object.
    NotFound,
    /// The file or object exists already.
    AlreadyExists,
    /// The file system refused access (permissions of a local directory).
    PermissionDenied,
    /// The storage service refused the credentials.
    CredentialsRefused,
    /// The storage service asked to slow down.
    RateLimited,
    /// The storage could not be reached (connection refused or reset,
    /// network down, a transient service error).
    Unavailable,
    /// The storage did not answer in time.
    TimedOut,
    /// The disk is full.
    Full,
    /// A quota is exhausted.
    QuotaExceeded,
    /// The storage is mounted or configured read-only.
    ReadOnly,
    /// The storage returned data that cannot be what was stored.
    Corrupt,
    /// Anything else.
    Other,
}

impl StorageFault {
    /// The fault of a local file-system error.
    pub(crate) fn of_io(kind: std::io::ErrorKind) -> Self {
        use std::io::ErrorKind as K;
        match kind {
            K::NotFound => StorageFault::NotFound,
            K::AlreadyExists => StorageFault::AlreadyExists,
            K::PermissionDenied => StorageFault::PermissionDenied,
            K::StorageFull => StorageFault::Full,
            K::QuotaExceeded => StorageFault::QuotaExceeded,
            K::ReadOnlyFilesystem => StorageFault::ReadOnly,
            K::TimedOut => StorageFault::TimedOut,
            K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::AddrNotAvailable
            | K::BrokenPipe => StorageFault::Unavailable,
            K::InvalidData | K::UnexpectedEof => StorageFault::Corrupt,
            _ => StorageFault::Other,
        }
    }

    /// The fault of an object-storage error.
    fn of_object(error: &opendal::Error) -> Self {
        use opendal::ErrorKind as K;
        match error.kind() {
            K::NotFound => StorageFault::NotFound,
            K::AlreadyExists => StorageFault::AlreadyExists,
            K::PermissionDenied => StorageFault::CredentialsRefused,
            K::RateLimited => StorageFault::RateLimited,
            _ if error.is_temporary() => StorageFault::Unavailable,
            _ => StorageFault::Other,
        }
    }
}

/// Why a source path cannot be backed up, in words.
fn unreadable_because(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".into(),
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (run as a user who may read it)".into()
        }
        _ => e.to_string(),
    }
}

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;
