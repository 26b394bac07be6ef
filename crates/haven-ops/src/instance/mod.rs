//! The instance: a data dir and what it holds. Its files (private
//! whatever the umask), the lock that keeps a second server out, the
//! settings (`haven.toml` read into typed values), the API token, the
//! secrets the catalog refers to and their redaction.

pub(crate) mod catalog;
pub(crate) mod files;
pub(crate) mod lock;
pub(crate) mod redact;
pub(crate) mod secrets;
pub(crate) mod settings;

pub use catalog::{CatalogError, load_catalog};
pub use files::{private_dir, write_private};
pub use lock::{LockError, data_dir_in_use, lock_data_dir};
pub use redact::{redact, remember};
pub use secrets::{SecretError, repository_password};
pub use settings::{
    AccessSettings, ExportSettings, OidcSettings, Overrides, Settings, SettingsError, SyslogTarget,
    TlsSettings, configured_catalog, ensure_token, read_token, server_address_file,
    server_catalog_file, token_file,
};
