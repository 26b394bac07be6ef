//! The instance: a data dir and what it holds. Its files (private
//! whatever the umask), the lock that keeps a second server out, the
//! settings (`haven.toml` read into typed values), the API token, the
//! secrets the catalog refers to and their redaction.

pub mod catalog;
pub mod files;
pub mod lock;
pub mod redact;
pub mod secrets;
pub mod settings;
