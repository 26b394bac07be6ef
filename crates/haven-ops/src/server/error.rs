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

impl ServerError {
    /// The error's code in the one table.
    pub fn code(&self) -> haven_model::errors::ErrorCode {
        use haven_model::errors::ErrorCode;
        match self {
            ServerError::Catalog(_) => ErrorCode::CatalogInvalid,
            ServerError::Lock(crate::instance::lock::LockError::Locked(_)) => {
                ErrorCode::DataDirLocked
            }
            ServerError::Store(StoreError::NoSuchJob(_)) => ErrorCode::NoSuchJob,
            ServerError::Store(_) => ErrorCode::StoreUnavailable,
            ServerError::Lock(_) | ServerError::Io { .. } => ErrorCode::Failed,
        }
    }
}

impl From<ServerError> for crate::api::InstanceError {
    fn from(e: ServerError) -> Self {
        crate::api::InstanceError::new(e.code(), e.to_string())
    }
}
