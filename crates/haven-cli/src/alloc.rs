//! The global allocator: mimalloc, tuned to hand memory back promptly.
//!
//! Backups, restores and checks allocate and free many buffers of 1–16 MiB
//! from several threads. glibc's malloc keeps such buffers in per-thread
//! arenas once its dynamic mmap threshold has risen, which doubled peak
//! RSS; a fixed threshold fixed RSS but cost ~25 % throughput (fresh,
//! zeroed pages for every buffer). mimalloc with immediate purging and
//! lazily committed arenas keeps both: see `bench/results/engine.md`.

// The only unsafe code in Haven: two calls into mimalloc's option table.
#![allow(unsafe_code)]

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Positions in mimalloc v3's `mi_option_e` (`include/mimalloc.h`, the
/// version `libmimalloc-sys` builds by default); the
/// sys crate does not name them. The test below pins them to their
/// documented defaults, so a mimalloc upgrade that moves them fails it.
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Return freed memory to the OS at once, commit arena memory on use, and
/// use normal pages: transparent huge pages added ~10 MiB to every peak.
/// (mimalloc reads its own THP option before `main`, so the process-wide
/// kernel switch is used instead; failing to set it only costs memory.)
pub fn tune() {
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    // SAFETY: `mi_option_set` stores an integer in mimalloc's option table;
    // it has no preconditions and is safe to call at any time.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_positions_match_this_mimalloc() {
        // SAFETY: reading an option has no preconditions. Test processes do
        // not call `tune`, so the documented defaults are in place.
        let (purge, eager) = unsafe {
            (
                libmimalloc_sys::mi_option_get(PURGE_DELAY),
                libmimalloc_sys::mi_option_get(ARENA_EAGER_COMMIT),
            )
        };
        assert_eq!(purge, 1000, "v3 mi_option_purge_delay defaults to 1000 ms");
        assert_eq!(eager, 2, "v3 mi_option_arena_eager_commit defaults to 2");
    }
}
