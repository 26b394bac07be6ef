//! The data dir holds job logs, alert text, the event export and the API
//! token: it and every file Haven writes in it are private to their owner
//! (directories 0700, files 0600), whatever the umask. An existing file
//! or directory with wider modes is narrowed (and said so), except the API
//! token: one other users could read is refused (it may have leaked).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the data dir and the directories Haven makes in it.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file Haven writes in the data dir.
pub const FILE_MODE: u32 = 0o600;

/// Create `dir` (and missing parents) private, or make an existing one
/// private.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)?;
    }
    narrow(dir, DIR_MODE)
}

/// Write `bytes` to `path` (replacing it) as a private file.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Open `path` for appending, created private (or made private).
pub fn append_private(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)?;
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(file)
}

/// Make `path` no more than `mode` (for files and directories that exist
/// already, e.g. made by an older version).
pub fn narrow(path: &Path, mode: u32) -> io::Result<()> {
    let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if current & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        tracing::warn!(
            "{} was readable by other users (mode {current:o}); it is now {mode:o}",
            path.display()
        );
    }
    Ok(())
}

/// Refuse a secret file other users can read, with the fix.
pub fn refuse_exposed(path: &Path) -> io::Result<()> {
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{} is readable by other users (mode {mode:o}): the token in it may have leaked. Run `chmod 600 {}` (and consider a new token: delete the file and restart the server)",
            path.display(),
            path.display()
        ),
    ))
}
