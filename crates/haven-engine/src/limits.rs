//! The format's limits (`docs/format.md`, "Limits"): what a reader
//! accepts, and so what a writer may produce. The decoders
//! (`format::rules`) and the envelope (`crypto`) both check against them.

/// Largest data blob: FastCDC's largest `max_size` (16 MiB).
pub const MAX_DATA_BLOB: u32 = 16 << 20;
/// Largest tree blob: a directory of roughly a million entries.
pub const MAX_TREE_BLOB: u32 = 256 << 20;
/// Largest pack file: offsets and lengths inside a pack are u32.
pub const MAX_PACK_SIZE: u64 = u32::MAX as u64;
/// Largest pack header envelope.
pub const MAX_PACK_HEADER: u64 = 64 << 20;
/// Longest entry name in bytes.
pub const MAX_NAME: usize = 1024;
/// Longest symlink target in bytes.
pub const MAX_LINK_TARGET: usize = 4096;
/// Deepest nesting of directories below a snapshot's root tree.
pub const MAX_DEPTH: usize = 1024;
/// Most entries (files, directories and symlinks) in one snapshot.
pub const MAX_ENTRIES: u64 = 1 << 32;
/// Largest Argon2id memory cost a key file may ask for, in KiB (2 GiB,
/// RFC 9106's first recommendation).
pub const MAX_KDF_MEMORY_KIB: u32 = 2 << 20;
/// Smallest and largest pack size a config may set.
pub const PACK_SIZE_RANGE: std::ops::RangeInclusive<u64> = (64 << 10)..=(1 << 30);
