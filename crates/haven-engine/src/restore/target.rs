//! The restore target: every entry is created, opened and changed
//! relative to an opened directory, and never through a symlink.
//!
//! A snapshot is untrusted input: it may list a symlink where a directory
//! of the same name is about to be filled, or `..` as a name. Names are
//! checked before they get here (one path component each), and here every
//! lookup is done with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`
//! from the target's root, or, where the kernel lacks it, one component at
//! a time with `O_NOFOLLOW`; metadata is set on open descriptors or with
//! `AT_SYMLINK_NOFOLLOW`. Nothing outside the target is ever touched.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid};

use crate::format::Node;

/// Entries are created private and get their recorded modes only once
/// complete: a failed or killed restore exposes nothing.
pub(super) const PRIVATE_FILE: u32 = 0o600;
/// See [`PRIVATE_FILE`].
pub(super) const PRIVATE_DIR: u32 = 0o700;

/// The opened target directory.
pub(super) struct Target {
    root: OwnedFd,
    /// Cleared when the kernel refuses `openat2` (before Linux 5.6, or
    /// under a seccomp filter); lookups then go one component at a time.
    openat2: AtomicBool,
    created: bool,
}

impl Target {
    /// Open (creating it private if missing) the directory given by the
    /// user. The user's own path may pass through symlinks; nothing below
    /// it may.
    pub(super) fn open(path: &Path) -> io::Result<Self> {
        let created = std::fs::symlink_metadata(path).is_err();
        if created {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(PRIVATE_DIR)
                .create(path)?;
        }
        let root = rustix::fs::open(path, dir_flags(), Mode::empty())?;
        Ok(Target {
            root,
            openat2: AtomicBool::new(true),
            created,
        })
    }

    /// Did this restore create the target (so nothing is in the way in it)?
    pub(super) fn created(&self) -> bool {
        self.created
    }

    /// The target directory itself.
    pub(super) fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Open the directory at `relative` (names joined by `/`, each checked
    /// to be one component) without following any symlink.
    pub(super) fn open_dir(&self, relative: &[u8]) -> io::Result<OwnedFd> {
        if self.openat2.load(Ordering::Relaxed) {
            let resolve =
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(&self.root, relative, dir_flags(), Mode::empty(), resolve) {
                Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {
                    self.openat2.store(false, Ordering::Relaxed);
                }
                // Too long for one call: deep trees go one step at a time.
                Err(rustix::io::Errno::NAMETOOLONG) => {}
                result => return result.map_err(io::Error::from),
            }
        }
        let mut dir = rustix::fs::openat(&self.root, ".", dir_flags(), Mode::empty())?;
        for name in relative.split(|&b| b == b'/').filter(|n| !n.is_empty()) {
            dir = rustix::fs::openat(&dir, name, dir_flags(), Mode::empty())?;
        }
        Ok(dir)
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Create directory `name` in `parent` (private), or reuse a directory
/// already there. Anything else in the way (a file, a symlink) is removed,
/// never followed. Returns whether the directory is new (then nothing of
/// this restore can be in the way in it).
pub(super) fn make_dir(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<bool> {
    match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(PRIVATE_DIR)) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::EXIST) => {
            if kind_of(parent, name)? == Some(FileType::Directory) {
                return Ok(false);
            }
            remove(parent, name)?;
            rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(PRIVATE_DIR))?;
            Ok(true)
        }
        Err(e) => Err(e.into()),
    }
}

/// Create a new, private, empty file, open for writing: `name`, or, when
/// something not of this restore already has that name, `name.1`,
/// `name.2`… Returns the name used. Nothing that is there is removed.
pub(super) fn create_file(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<(Vec<u8>, File)> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut candidate = name.to_vec();
    for attempt in 1..=100u32 {
        match rustix::fs::openat(
            parent,
            &candidate[..],
            flags,
            Mode::from_raw_mode(PRIVATE_FILE),
        ) {
            Ok(fd) => return Ok((candidate, File::from(fd))),
            Err(rustix::io::Errno::EXIST) => {
                candidate = name.to_vec();
                candidate.extend_from_slice(format!(".{attempt}").as_bytes());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "a hundred files with this name and numbered suffixes are already there",
    ))
}

/// Open an existing file of this restore for writing, without following
/// a symlink.
pub(super) fn open_file(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<File> {
    let flags = OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(parent, name, flags, Mode::empty())?;
    Ok(File::from(fd))
}

/// Make way for a file or symlink called `name`: a directory there is
/// removed (with its contents); a file or symlink is left for the
/// rename or the link creation to replace.
pub(super) fn clear_for_leaf(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match kind_of(parent, name)? {
        Some(FileType::Directory) => remove(parent, name),
        _ => Ok(()),
    }
}

/// The type of `name` in `parent` (not following a symlink), if present.
fn kind_of(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<FileType>> {
    match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(FileType::from_raw_mode(stat.st_mode))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Remove `name` from `parent`: a directory with everything in it (each
/// level opened with `O_NOFOLLOW`), anything else by unlinking it.
pub(super) fn remove(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(rustix::io::Errno::ISDIR | rustix::io::Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let dir = rustix::fs::openat(parent, name, dir_flags(), Mode::empty())?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&dir)? {
        let entry = entry?;
        let child = entry.file_name().to_bytes();
        if child != b"." && child != b".." {
            names.push(child.to_vec());
        }
    }
    for child in names {
        remove(dir.as_fd(), &child)?;
    }
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR).map_err(io::Error::from)
}

/// Rename a completed file into place (replacing a file or symlink there).
pub(super) fn rename(parent: BorrowedFd<'_>, from: &[u8], to: &[u8]) -> io::Result<()> {
    rustix::fs::renameat(parent, from, parent, to).map_err(io::Error::from)
}

/// Remove a file this restore created.
pub(super) fn unlink(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Owner (where permitted), mode and times of an open file or directory:
/// on the descriptor, so nothing can redirect them.
pub(super) fn apply_metadata(fd: BorrowedFd<'_>, node: &Node) -> io::Result<()> {
    // Ownership first: changing it clears setuid and setgid bits.
    permitted(rustix::fs::fchown(fd, owner(node.uid), group(node.gid)))?;
    rustix::fs::fchmod(fd, Mode::from_raw_mode(node.mode & 0o7777))?;
    rustix::fs::futimens(fd, &times(node.mtime_ns))?;
    Ok(())
}

/// Create symlink `name` in `parent` (replacing a file or symlink there)
/// and set its owner and times without following it.
pub(super) fn make_symlink(parent: BorrowedFd<'_>, name: &[u8], node: &Node) -> io::Result<()> {
    let target = node
        .target
        .as_ref()
        .map(|t| t.0.as_slice())
        .unwrap_or_default();
    match rustix::fs::symlinkat(target, parent, name) {
        Err(rustix::io::Errno::EXIST) => {
            remove(parent, name)?;
            rustix::fs::symlinkat(target, parent, name)?;
        }
        other => other?,
    }
    let nofollow = AtFlags::SYMLINK_NOFOLLOW;
    permitted(rustix::fs::chownat(
        parent,
        name,
        owner(node.uid),
        group(node.gid),
        nofollow,
    ))?;
    rustix::fs::utimensat(parent, name, &times(node.mtime_ns), nofollow)?;
    Ok(())
}

/// Ownership is restored where the OS permits (as root); otherwise the
/// restoring user keeps ownership, as every backup tool does.
fn permitted(result: rustix::io::Result<()>) -> io::Result<()> {
    match result {
        Ok(()) | Err(rustix::io::Errno::PERM) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `-1` means "unchanged" to chown: never a real owner.
fn owner(uid: u32) -> Option<Uid> {
    (uid != u32::MAX).then(|| Uid::from_raw(uid))
}

fn group(gid: u32) -> Option<Gid> {
    (gid != u32::MAX).then(|| Gid::from_raw(gid))
}

fn times(mtime_ns: i64) -> Timestamps {
    let at = Timespec {
        tv_sec: mtime_ns.div_euclid(1_000_000_000),
        tv_nsec: mtime_ns.rem_euclid(1_000_000_000) as _,
    };
    Timestamps {
        last_access: at,
        last_modification: at,
    }
}

/// Directory descriptors a restore thread keeps open, so files of one
/// directory do not each look it up again. Bounded: it starts afresh
/// once full.
pub(super) struct DirCache<'t> {
    target: &'t Target,
    open: HashMap<usize, OwnedFd>,
}

const DIR_CACHE_SIZE: usize = 64;

impl<'t> DirCache<'t> {
    pub(super) fn new(target: &'t Target) -> Self {
        DirCache {
            target,
            open: HashMap::new(),
        }
    }

    /// The directory `dir` of the plan (`None`: the target itself), whose
    /// path below the target is `relative`.
    pub(super) fn get(
        &mut self,
        dir: Option<usize>,
        relative: &[u8],
    ) -> io::Result<BorrowedFd<'_>> {
        let Some(dir) = dir else {
            return Ok(self.target.root());
        };
        if !self.open.contains_key(&dir) {
            if self.open.len() >= DIR_CACHE_SIZE {
                self.open.clear();
            }
            let fd = self.target.open_dir(relative)?;
            self.open.insert(dir, fd);
        }
        Ok(self.open[&dir].as_fd())
    }
}
