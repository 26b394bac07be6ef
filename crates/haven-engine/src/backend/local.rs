//! A repository in a local directory.
//!
//! - **Private.** Files are created 0600 and directories 0700, whatever
//!   the umask: they hold encrypted data and the password-wrapped master
//!   key (an offline guessing target).
//! - **Atomic and durable.** A file is written under `tmp/`, synced,
//!   renamed into place without replacing anything
//!   (`renameat2(RENAME_NOREPLACE)`, or `link` where that is missing), and
//!   its directory synced. A killed writer never leaves a partial file
//!   under a real name, and "create if absent" is atomic (the prune lock
//!   relies on it).
//! - **Temporary files are attributable.** Each process writes under
//!   `tmp/<host>-<pid>/`, removes what it leaves when a write fails, and
//!   the directories of writers that are gone are removed by
//!   [`LocalStore::clean_stale_tmp`] (prune and backup call it), so a disk
//!   filled by a failed backup can always be reclaimed.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::FileInfo;
use crate::error::{Error, Result};

/// Mode of every file in a local repository.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory in a local repository.
pub const DIR_MODE: u32 = 0o700;
/// The staging directory (not part of the repository).
pub const TMP_DIR: &str = "tmp";
/// A writer on another host is presumed gone after this long without
/// touching its staging directory.
const FOREIGN_TMP_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// One local repository directory.
pub(super) struct LocalStore {
    root: PathBuf,
    /// This process's staging directory, `tmp/<host>-<pid>`.
    staging: PathBuf,
}

/// Names staging files uniquely within the process (several stores of
/// one process may share a staging directory).
static STAGED: AtomicU64 = AtomicU64::new(0);

/// Open stores per staging directory: the last one to close removes it.
static STAGING_USERS: std::sync::Mutex<Vec<(PathBuf, usize)>> = std::sync::Mutex::new(Vec::new());

impl LocalStore {
    /// Open `root` (creating it, private, when `create` is set).
    pub(super) fn open(root: &Path, create: bool) -> Result<Self> {
        if create {
            make_dirs(root).map_err(|e| Error::io("create", root, e))?;
            // The repository's own directory is private, whatever it was.
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(DIR_MODE))
                .map_err(|e| Error::io("make private", root, e))?;
        }
        let root = root
            .canonicalize()
            .map_err(|e| Error::io("resolve", root, e))?;
        let staging = root
            .join(TMP_DIR)
            .join(writer_name(&crate::host::hostname(), std::process::id()));
        let mut users = STAGING_USERS.lock().unwrap_or_else(|p| p.into_inner());
        match users.iter_mut().find(|(dir, _)| *dir == staging) {
            Some((_, count)) => *count += 1,
            None => users.push((staging.clone(), 1)),
        }
        Ok(LocalStore { root, staging })
    }

    fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    pub(super) fn size(&self, path: &str) -> Result<u64> {
        let full = self.path(path);
        std::fs::metadata(&full)
            .map(|m| m.len())
            .map_err(|e| storage_error(path, e))
    }

    /// Append `length` bytes at `offset` to `buf` (fewer at the end of the
    /// file; the caller checks). The buffer grows a step at a time, so a
    /// length claimed by an untrusted index entry is never allocated
    /// beyond what the file holds.
    pub(super) fn read_into(
        &self,
        path: &str,
        offset: u64,
        length: u64,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        const STEP: u64 = 16 << 20;
        let file = File::open(self.path(path)).map_err(|e| storage_error(path, e))?;
        let mut done = 0u64;
        while done < length {
            let want = (length - done).min(STEP) as usize;
            let at = buf.len();
            buf.resize(at + want, 0);
            let got = read_full_at(&file, &mut buf[at..], offset + done)
                .map_err(|e| storage_error(path, e))?;
            buf.truncate(at + got);
            done += got as u64;
            if got < want {
                break; // the end of the file
            }
        }
        Ok(())
    }

    /// Write `path` unless it exists: `Ok(false)` when it did.
    pub(super) fn write_if_absent(&self, path: &str, bytes: &[u8]) -> Result<bool> {
        let target = self.path(path);
        let staged = self.stage(bytes).map_err(|e| storage_error(path, e))?;
        let placed = (|| {
            if let Some(parent) = target.parent() {
                make_dirs(parent)?;
            }
            let placed = rename_no_replace(&staged, &target)?;
            if placed && let Some(parent) = target.parent() {
                sync_dir(parent)?;
            }
            Ok(placed)
        })();
        // Gone when placed; when not, it must not stay behind.
        let _ = std::fs::remove_file(&staged);
        placed.map_err(|e| storage_error(path, e))
    }

    /// A synced private copy of `bytes` under this process's staging
    /// directory. Removed again if anything fails (a full disk).
    fn stage(&self, bytes: &[u8]) -> io::Result<PathBuf> {
        make_dirs(&self.staging)?;
        let n = STAGED.fetch_add(1, Ordering::Relaxed);
        let staged = self.staging.join(n.to_string());
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&staged)?;
            // The umask may have taken bits the owner needs.
            file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
            file.write_all(bytes)?;
            file.sync_all()
        })();
        match written {
            Ok(()) => Ok(staged),
            Err(e) => {
                let _ = std::fs::remove_file(&staged);
                Err(e)
            }
        }
    }

    pub(super) fn exists(&self, path: &str) -> Result<bool> {
        match std::fs::symlink_metadata(self.path(path)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(storage_error(path, e)),
        }
    }

    /// Files under `dir`, recursively, as repository paths (a missing
    /// directory is empty). Sizes need a stat per file.
    pub(super) fn list(&self, dir: &str, sizes: bool) -> Result<Vec<FileInfo>> {
        let mut files = Vec::new();
        let mut pending = vec![dir.trim_matches('/').to_string()];
        while let Some(relative) = pending.pop() {
            let entries = match std::fs::read_dir(self.path(&relative)) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(storage_error(&relative, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| storage_error(&relative, e))?;
                // Repository names are ASCII; anything else is not ours.
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                let path = format!("{relative}/{name}");
                let kind = entry.file_type().map_err(|e| storage_error(&path, e))?;
                if kind.is_dir() {
                    pending.push(path);
                } else if kind.is_file() {
                    let size = if sizes {
                        entry.metadata().map_err(|e| storage_error(&path, e))?.len()
                    } else {
                        0
                    };
                    files.push(FileInfo { path, size });
                }
            }
        }
        Ok(files)
    }

    /// Delete a file (a missing one is not an error).
    pub(super) fn delete(&self, path: &str) -> Result<()> {
        match std::fs::remove_file(self.path(path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(storage_error(path, e)),
        }
    }

    /// Remove the staging directories of writers that are gone: on this
    /// host, those whose process no longer runs; from other hosts, those
    /// untouched for a day; and loose files older writers left. Returns
    /// the bytes freed.
    pub(super) fn clean_stale_tmp(&self) -> Result<u64> {
        let tmp = self.root.join(TMP_DIR);
        let entries = match std::fs::read_dir(&tmp) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io("list", &tmp, e)),
        };
        let me = crate::host::hostname();
        let mut freed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &tmp, e))?;
            let path = entry.path();
            if path == self.staging {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = match parse_writer_name(&name) {
                Some((host, pid)) if host == sanitize(&me) => !crate::host::process_alive(pid),
                _ => older_than(&path, FOREIGN_TMP_AGE),
            };
            if stale {
                freed += remove_all(&path).map_err(|e| Error::io("remove", &path, e))?;
                tracing::info!(path = %path.display(), "removed the temporary files of a writer that is gone");
            }
        }
        Ok(freed)
    }

    /// The repository directory.
    pub(super) fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for LocalStore {
    fn drop(&mut self) {
        let mut users = STAGING_USERS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(position) = users.iter().position(|(dir, _)| *dir == self.staging) {
            users[position].1 -= 1;
            if users[position].1 == 0 {
                users.swap_remove(position);
                // Empty: every write removes what it staged.
                let _ = std::fs::remove_dir(&self.staging);
            }
        }
    }
}

/// Fill `buf` from `offset`, stopping early only at the end of the file.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// `<host>-<pid>`, the host made safe as a file name.
fn writer_name(host: &str, pid: u32) -> String {
    format!("{}-{pid}", sanitize(host))
}

fn sanitize(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn parse_writer_name(name: &str) -> Option<(&str, u32)> {
    let (host, pid) = name.rsplit_once('-')?;
    Some((host, pid.parse().ok()?))
}

fn older_than(path: &Path, age: std::time::Duration) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|elapsed| elapsed > age)
}

/// Remove a file or a directory tree (never following symlinks); returns
/// the bytes of the files removed.
fn remove_all(path: &Path) -> io::Result<u64> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        std::fs::remove_file(path)?;
        return Ok(meta.len());
    }
    let mut freed = 0;
    for entry in std::fs::read_dir(path)? {
        freed += remove_all(&entry?.path())?;
    }
    std::fs::remove_dir(path)?;
    Ok(freed)
}

/// Create `dir` and missing parents, private (the umask notwithstanding).
fn make_dirs(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        make_dirs(parent)?;
    }
    match std::fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        }
        // Created meanwhile by another writer.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Rename without replacing: `Ok(false)` when `to` exists.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<bool> {
    use rustix::fs::{CWD, RenameFlags};
    match rustix::fs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(true),
        Err(rustix::io::Errno::EXIST) => return Ok(false),
        // The file system cannot do it: a hard link fails on an existing
        // name just the same.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Make a directory's entries (a rename, a new file) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn storage_error(path: &str, source: io::Error) -> Error {
    Error::local_storage(path, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_names_round_trip() {
        let name = writer_name("backup-01.example", 4242);
        assert_eq!(parse_writer_name(&name), Some(("backup_01.example", 4242)));
        assert_eq!(parse_writer_name("leftover.tmp"), None);
    }
}
