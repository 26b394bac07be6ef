//! Writing file contents: one pack at a time per worker, every chunk
//! verified before it is written, files finished by whoever writes their
//! last chunk.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::plan::{Plan, PlannedBlob, PlannedFile};
use super::target::{self, DirCache, Target};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::progress::Progress;
use crate::repo::{Repository, pack_path};

/// Block size for hole detection in sparse files.
const HOLE_BLOCK: usize = 4096;

/// Write every planned chunk. Damaged chunks and local write errors fail
/// their files; a storage error (the repository unreachable) stops all.
pub(super) fn write_files(
    repo: &Repository,
    index: &Index,
    target: &Target,
    plan: &Plan,
    progress: &dyn Progress,
) -> Result<()> {
    let mut packs: Vec<(&u32, &Vec<PlannedBlob>)> = plan.packs.iter().collect();
    packs.sort_by_key(|(p, _)| **p);
    let (tx, rx) = crossbeam_channel::unbounded();
    for p in packs {
        let _ = tx.send(p);
    }
    drop(tx);
    let abort = AtomicBool::new(false);
    let fatal: Mutex<Option<Error>> = Mutex::new(None);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let rx = rx.clone();
            let (abort, fatal) = (&abort, &fatal);
            scope.spawn(move || {
                let mut worker = Worker {
                    repo,
                    index,
                    plan,
                    progress,
                    dirs: DirCache::new(target),
                    // One pack-sized buffer per worker, reused for every pack.
                    buffer: Vec::new(),
                };
                for (pack, blobs) in rx {
                    if abort.load(Ordering::Relaxed) {
                        return;
                    }
                    if let Err(e) = worker.restore_pack(*pack, blobs) {
                        abort.store(true, Ordering::Relaxed);
                        fatal
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    match fatal.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct Worker<'a> {
    repo: &'a Repository,
    index: &'a Index,
    plan: &'a Plan,
    progress: &'a dyn Progress,
    dirs: DirCache<'a>,
    buffer: Vec<u8>,
}

impl Worker<'_> {
    /// Restore the chunks of one pack. Damaged chunks fail their files;
    /// storage errors are returned (they stop the restore).
    fn restore_pack(&mut self, pack: u32, blobs: &[PlannedBlob]) -> Result<()> {
        let pack_id = self.index.pack(pack).id;
        let path = pack_path(&pack_id);
        let start = blobs
            .iter()
            .map(|b| u64::from(b.loc.offset))
            .min()
            .unwrap_or(0);
        let end = blobs
            .iter()
            .map(|b| u64::from(b.loc.offset) + u64::from(b.loc.length))
            .max()
            .unwrap_or(0);
        let needed: u64 = blobs.iter().map(|b| u64::from(b.loc.length)).sum();
        // One read of the span when it is mostly wanted, else chunk by chunk.
        let mut buffer = std::mem::take(&mut self.buffer);
        let mut span = needed * 2 >= end - start;
        if span {
            match self
                .repo
                .backend
                .read_range_into(&path, start, end - start, &mut buffer)
            {
                Ok(()) => {}
                Err(e) if is_integrity_or_missing(&e) => span = false,
                Err(e) => return Err(e),
            }
        }
        let fail_uses = |blob: &PlannedBlob, e: &Error| {
            let message = format!("{e} (pack {})", pack_id.short());
            for u in &blob.uses {
                fail(&self.plan.files[u.file], message.clone());
            }
        };
        for blob in blobs {
            let offset = u64::from(blob.loc.offset);
            let length = blob.loc.length as usize;
            let mut fetched: Vec<u8>;
            // Chunks are decrypted in place, in the span or in their own read.
            let envelope: &mut [u8] = if span {
                let from = (offset - start) as usize;
                &mut buffer[from..from + length]
            } else {
                match self.repo.backend.read_range(&path, offset, length as u64) {
                    Ok(bytes) => {
                        fetched = bytes;
                        &mut fetched
                    }
                    Err(e) if is_integrity_or_missing(&e) => {
                        fail_uses(blob, &e);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            };
            let data = match self.repo.open_blob_in_place(&blob.id, &blob.loc, envelope) {
                Ok(d) => d,
                Err(e) if is_integrity_or_missing(&e) => {
                    fail_uses(blob, &e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            for u in &blob.uses {
                self.write_use(&self.plan.files[u.file], &data, u.offset);
            }
        }
        self.buffer = buffer;
        Ok(())
    }

    /// Write one chunk into one file; finish the file after its last.
    /// Local errors fail the file (a full disk fails each file it hits).
    fn write_use(&mut self, file: &PlannedFile, data: &[u8], offset: u64) {
        if is_failed(file) {
            return;
        }
        let dir = self.dirs.get(file.dir, self.plan.relative(file.dir));
        if file.node.content.len() == 1 {
            // Its only chunk: created, written and finished in one go.
            match dir.and_then(|dir| write_whole(dir, file, data)) {
                Ok(()) => {
                    self.progress.add_bytes(data.len() as u64);
                    self.progress.add_items(1);
                }
                Err(e) => fail(file, format!("cannot write: {e}")),
            }
            return;
        }
        let written = dir.and_then(|dir| {
            let handle = target::open_file(dir, &file.partial)?;
            write_data(&handle, file, data, offset)?;
            Ok(handle)
        });
        let handle = match written {
            Ok(handle) => handle,
            Err(e) => return fail(file, format!("cannot write: {e}")),
        };
        self.progress.add_bytes(data.len() as u64);
        if file.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let finished = self
                .dirs
                .get(file.dir, self.plan.relative(file.dir))
                .and_then(|dir| finish_file(dir, file, handle, &file.partial));
            match finished {
                Ok(()) => self.progress.add_items(1),
                Err(e) => fail(file, format!("cannot finish the file: {e}")),
            }
        }
    }
}

/// Record why a file cannot be restored (the first reason wins).
pub(super) fn fail(file: &PlannedFile, why: String) {
    file.failed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert(why);
}

fn is_failed(file: &PlannedFile) -> bool {
    file.failed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_some()
}

/// Create a file of at most one chunk under a private name, write it and
/// finish it (one open instead of two). Nothing stays behind on failure.
pub(super) fn write_whole(
    dir: BorrowedFd<'_>,
    file: &PlannedFile,
    data: &[u8],
) -> std::io::Result<()> {
    let (partial, handle) = target::create_file(dir, &super::partial_name(&file.name))?;
    let done =
        write_data(&handle, file, data, 0).and_then(|()| finish_file(dir, file, handle, &partial));
    if done.is_err() {
        let _ = target::unlink(dir, &partial);
    }
    done
}

/// Write `data` at `offset` of an open file. For sparse files, aligned
/// all-zero blocks are skipped so they stay holes.
fn write_data(handle: &File, file: &PlannedFile, data: &[u8], offset: u64) -> std::io::Result<()> {
    let write = |bytes: &[u8], at: u64| -> std::io::Result<()> {
        handle.write_all_at(bytes, at)?;
        file.written_end
            .fetch_max(at + bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    };
    if !file.node.sparse {
        return if data.is_empty() {
            Ok(())
        } else {
            write(data, offset)
        };
    }
    // Split at file-offset-aligned block boundaries; write runs of non-zero blocks.
    let mut pos = 0usize;
    let mut run_start: Option<usize> = None;
    while pos < data.len() {
        let abs = offset + pos as u64;
        let block_end = (pos + HOLE_BLOCK - (abs % HOLE_BLOCK as u64) as usize).min(data.len());
        let zero = data[pos..block_end].iter().all(|&b| b == 0);
        match (zero, run_start) {
            (false, None) => run_start = Some(pos),
            (true, Some(start)) => {
                write(&data[start..pos], offset + start as u64)?;
                run_start = None;
            }
            _ => {}
        }
        pos = block_end;
    }
    if let Some(start) = run_start {
        write(&data[start..], offset + start as u64)?;
    }
    Ok(())
}

/// Size (trailing holes included), owner, mode and times of a complete
/// file, set on the open file; then it takes its real name.
fn finish_file(
    dir: BorrowedFd<'_>,
    file: &PlannedFile,
    handle: File,
    partial: &[u8],
) -> std::io::Result<()> {
    // The chunks add up to the size (checked when planning); only the
    // holes of a sparse file's end are not written.
    if file.written_end.load(Ordering::Relaxed) < file.node.size {
        handle.set_len(file.node.size)?;
    }
    target::apply_metadata(handle.as_fd(), &file.node)?;
    drop(handle);
    target::rename(dir, partial, &file.name)
}

fn is_integrity_or_missing(e: &Error) -> bool {
    e.is_not_found() || e.is_integrity()
}
