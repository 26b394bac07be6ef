//! The data dir's lock: one server (or foreground `haven run`) works on
//! a data dir at a time.

use std::fs::File;
use std::path::{Path, PathBuf};

/// Another server holds the data dir, or its lock cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another server holds the data dir.
    #[error(
        "another Haven server is using the data dir {0} (its server.lock is held); stop it first, or use a different --data-dir"
    )]
    Locked(PathBuf),
    /// The data dir or its lock file could not be opened.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The data dir's server lock, held while the value lives.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Take the data dir's lock, or say who has it.
pub fn lock_data_dir(data_dir: &Path) -> Result<DataDirLock, LockError> {
    let io = |context: String| move |source| LockError::Io { context, source };
    super::files::private_dir(data_dir).map_err(io(format!(
        "cannot create the data dir {} (private)",
        data_dir.display()
    )))?;
    let path = data_dir.join("server.lock");
    let file = super::files::append_private(&path)
        .map_err(io(format!("cannot open {}", path.display())))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(DataDirLock { _file: file }),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(LockError::Locked(data_dir.to_path_buf())),
        Err(e) => Err(LockError::Io {
            context: format!("cannot lock {}", path.display()),
            source: e.into(),
        }),
    }
}

/// Is a server (or a foreground run) holding the data dir now?
pub fn data_dir_in_use(data_dir: &Path) -> bool {
    let Ok(file) = File::open(data_dir.join("server.lock")) else {
        return false;
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
        Ok(()) => false,
        Err(e) => e == rustix::io::Errno::WOULDBLOCK,
    }
}
