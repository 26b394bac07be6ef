//! The names of a repository's files and directories (`docs/format.md`,
//! "Layout"): what every part of the engine agrees on, the backends
//! included.

use crate::id::Id;

/// Directory of pack files.
pub const DATA_DIR: &str = "data";
/// Directory of index files.
pub const INDEX_DIR: &str = "index";
/// Directory of snapshots.
pub const SNAPSHOT_DIR: &str = "snapshots";
/// Directory of key files.
pub const KEY_DIR: &str = "keys";
/// The config file.
pub const CONFIG_FILE: &str = "config";

/// Path of a pack file: `data/<first two hex digits>/<id>`.
pub fn pack_path(id: &Id) -> String {
    let hex = id.to_hex();
    format!("{DATA_DIR}/{}/{hex}", &hex[..2])
}
