//! The instance interface's error: a stable code from the one table
//! ([`haven_model::errors`]), a message and a hint, the same whether the
//! instance ran in this process or answered over HTTP.

use haven_model::errors::{ErrorBody, ErrorCode, ErrorDocument};
use haven_store::StoreError;

use crate::instance::catalog::CatalogError;
use crate::instance::lock::LockError;
use crate::instance::settings::SettingsError;

/// Why an instance refused or failed a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InstanceError {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, for a person.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl InstanceError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        InstanceError {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// With a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The JSON document of the error.
    pub fn document(&self) -> ErrorDocument {
        ErrorDocument {
            error: ErrorBody {
                code: self.code,
                message: self.message.clone(),
                hint: self.hint.clone(),
            },
        }
    }

    /// The error a document describes.
    pub fn from_document(document: ErrorDocument) -> Self {
        InstanceError {
            code: document.error.code,
            message: document.error.message,
            hint: document.error.hint,
        }
    }

    /// The server is shutting down.
    pub fn stopping() -> Self {
        InstanceError::new(ErrorCode::Stopping, "the server is shutting down")
    }

    /// No such service in the catalog.
    pub fn no_such_service(service: &str) -> Self {
        InstanceError::new(
            ErrorCode::NoSuchService,
            format!("no service {service:?} in the catalog"),
        )
        .hint("`haven status` lists the services")
    }

    /// No such system with backups.
    pub fn no_such_system(system: &str) -> Self {
        InstanceError::new(
            ErrorCode::NoSuchSystem,
            format!(
                "system {system:?} has no backups in the catalog (no policy or no backup sets)"
            ),
        )
        .hint("`haven catalog check` lists the systems and what protects them")
    }
}

impl From<StoreError> for InstanceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchJob(id) => {
                InstanceError::new(ErrorCode::NoSuchJob, format!("no job {id}"))
            }
            StoreError::NoSuchAlert(id) => {
                InstanceError::new(ErrorCode::NoSuchAlert, format!("no alert {id}"))
            }
            other => InstanceError::new(ErrorCode::StoreUnavailable, other.to_string())
                .hint("the server retries by itself; `/healthz` says why the database fails"),
        }
    }
}

impl From<CatalogError> for InstanceError {
    fn from(e: CatalogError) -> Self {
        InstanceError::new(ErrorCode::CatalogInvalid, e.to_string())
            .hint("`haven catalog check` shows every finding with its place")
    }
}

impl From<SettingsError> for InstanceError {
    fn from(e: SettingsError) -> Self {
        InstanceError::new(ErrorCode::SettingsInvalid, e.to_string())
    }
}

impl From<LockError> for InstanceError {
    fn from(e: LockError) -> Self {
        match e {
            LockError::Locked(_) => InstanceError::new(ErrorCode::DataDirLocked, e.to_string()),
            LockError::Io { .. } => InstanceError::new(ErrorCode::Failed, e.to_string()),
        }
    }
}

/// The code of an engine error (for the CLI's repository commands and
/// for jobs' errors).
pub fn engine_code(error: &haven_engine::Error) -> ErrorCode {
    use haven_engine::Error as E;
    match error {
        E::RepositoryNotFound { .. } | E::BucketNotFound { .. } => ErrorCode::RepositoryNotFound,
        E::RepositoryExists { .. } => ErrorCode::RepositoryExists,
        E::WrongPassword { .. } => ErrorCode::WrongPassword,
        E::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
        E::InvalidLocation { .. } => ErrorCode::InvalidLocation,
        E::InvalidArgument(_) => ErrorCode::InvalidArgument,
        e if e.is_storage_full() => ErrorCode::StorageFull,
        E::Storage { .. } | E::Io { .. } | E::AlreadyExists { .. } => ErrorCode::StorageUnavailable,
        E::Corrupt { .. } | E::MissingBlob(_) => ErrorCode::Corrupt,
        E::SourceUnreadable { .. } => ErrorCode::SourceUnreadable,
        E::SnapshotNotFound(_) => ErrorCode::NoSuchSnapshot,
        E::AmbiguousSnapshot { .. } => ErrorCode::AmbiguousSnapshot,
        E::PathNotInSnapshot { .. } => ErrorCode::NoSuchPath,
        E::Protected { .. } => ErrorCode::Protected,
        E::Stream(_) => ErrorCode::StreamFailed,
        E::PruneRace { .. } | E::PruneSwept { .. } => ErrorCode::PruneRace,
        E::GraceTooShort { .. } => ErrorCode::GraceTooShort,
        E::ExposedFiles { .. } => ErrorCode::ExposedFiles,
        E::PruneLocked { .. } => ErrorCode::PruneLocked,
        E::Interrupted => ErrorCode::Interrupted,
    }
}

impl From<crate::recovery::RecoveryError> for InstanceError {
    fn from(e: crate::recovery::RecoveryError) -> Self {
        use crate::recovery::RecoveryError as R;
        use haven_model::recovery::PlanError as P;
        let code = match &e {
            R::Plan(P::NoPlan(_)) => ErrorCode::NoSuchPlan,
            R::Plan(P::NoService(_)) => ErrorCode::NoSuchService,
            R::Plan(P::Unplannable(_)) => ErrorCode::InvalidArgument,
            R::Store(_) => ErrorCode::StoreUnavailable,
            R::NoRun(_) => ErrorCode::NoSuchRecovery,
            R::Conflict(_) => ErrorCode::RecoveryConflict,
        };
        InstanceError::new(code, e.to_string())
    }
}

impl From<crate::drills::DrillError> for InstanceError {
    fn from(e: crate::drills::DrillError) -> Self {
        use crate::drills::DrillError as D;
        let code = match &e {
            D::Unknown(_) => ErrorCode::NoSuchSystem,
            D::NoService(_) => ErrorCode::NoSuchService,
            D::NoSnapshot(_) => ErrorCode::NoSuchSnapshot,
            D::Sandbox(_) | D::Stopped(_) => ErrorCode::Failed,
            D::Repository(_) => ErrorCode::StorageUnavailable,
            D::Unrecorded(_) => ErrorCode::StoreUnavailable,
        };
        InstanceError::new(code, e.to_string())
    }
}

impl From<crate::audit::AuditError> for InstanceError {
    fn from(e: crate::audit::AuditError) -> Self {
        InstanceError::new(ErrorCode::AuditUnavailable, e.to_string())
    }
}

impl From<crate::access::AccessError> for InstanceError {
    fn from(e: crate::access::AccessError) -> Self {
        use crate::access::AccessError as A;
        let code = match &e {
            A::Invalid(_) => ErrorCode::InvalidArgument,
            A::Conflict(_) => ErrorCode::IdentityConflict,
            A::NoSuchRequest(_) => ErrorCode::NoSuchRequest,
            A::LoginFailed(_) => ErrorCode::LoginFailed,
            A::LoginLocked(_) => ErrorCode::LoginLocked,
            A::RequestConflict(_) => ErrorCode::RequestConflict,
            A::Store(_) => ErrorCode::StoreUnavailable,
        };
        InstanceError::new(code, e.to_string())
    }
}

impl From<crate::holds::HoldError> for InstanceError {
    fn from(e: crate::holds::HoldError) -> Self {
        use crate::holds::HoldError as H;
        match e {
            H::Repository(why) => InstanceError::new(ErrorCode::RepositoryNotFound, why),
            H::Engine(e) => InstanceError::new(engine_code(&e), e.to_string()),
            H::Stopped(why) => InstanceError::new(ErrorCode::Failed, why),
        }
    }
}
