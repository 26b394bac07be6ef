//! Why the server (or a foreground run) cannot go on.

use haven_store::StoreError;

/// Why the server (or a foreground run) cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The catalog has errors.
    #[error(transparent)]
    Catalog(#[from] crate::instance::catalog::CatalogError),
    /// Another server holds the data dir.
    #[error(transparent)]
    Lock(#[from] crate::instance::lock::LockError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Files, signals, sockets.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

pub(super) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let context = context.into();
    move |source| ServerError::Io { context, source }
}
