//! Failure classification: from an error to what an operator acts on
//! (class, specific cause, infrastructure layer).
//!
//! Pure: a function of the error alone. Typed causes (engine errors, I/O
//! error kinds, command failures) decide first, walking the error chain
//! from the outermost context to the root cause; the text of the chain
//! decides only when no typed cause does (e.g. a dump command's
//! "connection refused" on its stderr).

use std::io::ErrorKind;

use haven_engine::{Error as EngineError, StorageFault};
use haven_model::classify::{by_text, mentions};
use haven_model::jobs::{Failure, FailureClass, Layer};

use super::command::CommandError;

fn failure(class: FailureClass, detail: &str, layer: Layer) -> Failure {
    Failure {
        class,
        detail: detail.into(),
        layer,
    }
}

/// Classify an error.
pub fn classify(error: &anyhow::Error) -> Failure {
    let text = format!("{error:#}");
    // "pre-hook failed", not "webhooks".
    let mentions_hook = mentions(&text, "hook");
    for cause in error.chain() {
        if let Some(found) = typed(cause, mentions_hook) {
            return found;
        }
    }
    by_text(&text)
}

fn typed(cause: &(dyn std::error::Error + 'static), hook: bool) -> Option<Failure> {
    use FailureClass::*;
    if let Some(e) = cause.downcast_ref::<EngineError>() {
        return match e {
            EngineError::WrongPassword { .. } => {
                Some(failure(Authentication, "wrong-password", Layer::Identity))
            }
            EngineError::RepositoryNotFound { .. }
            | EngineError::BucketNotFound { .. }
            | EngineError::InvalidLocation { .. } => Some(failure(
                ConfigurationDrift,
                "repository-missing",
                Layer::Storage,
            )),
            EngineError::UnsupportedVersion { .. } => Some(failure(
                ConfigurationDrift,
                "repository-version",
                Layer::Storage,
            )),
            EngineError::PruneLocked { .. } => Some(failure(Contention, "lock", Layer::Storage)),
            EngineError::PruneRace { .. } | EngineError::PruneSwept { .. } => {
                Some(failure(Contention, "prune-race", Layer::Storage))
            }
            EngineError::GraceTooShort { .. } => {
                Some(failure(ConfigurationDrift, "prune-grace", Layer::Storage))
            }
            EngineError::ExposedFiles { .. } => {
                Some(failure(ConfigurationDrift, "exposed-keys", Layer::Identity))
            }
            EngineError::Corrupt { .. } | EngineError::MissingBlob(_) => {
                Some(failure(DataIntegrity, "corrupt", Layer::Storage))
            }
            EngineError::Storage { fault, source, .. } => Some(storage(*fault, source.as_ref())),
            EngineError::SourceUnreadable { cause, .. } => io(cause.kind()),
            // For `Io`, the I/O error itself is further down the chain.
            _ => None,
        };
    }
    if cause
        .downcast_ref::<crate::instance::secrets::SecretError>()
        .is_some()
    {
        return Some(failure(
            Authentication,
            "credentials-missing",
            Layer::Identity,
        ));
    }
    if let Some(e) = cause.downcast_ref::<CommandError>() {
        let missing = if hook {
            "hook-missing"
        } else {
            "command-missing"
        };
        return match e {
            CommandError::Spawn { .. } => {
                Some(failure(ConfigurationDrift, missing, Layer::Compute))
            }
            // 126: found but not executable; 127: not found (sh -c).
            CommandError::Failed { status, .. } if matches!(status.code(), Some(126 | 127)) => {
                Some(failure(ConfigurationDrift, missing, Layer::Compute))
            }
            CommandError::TimedOut { .. } => Some(failure(Contention, "timeout", Layer::Compute)),
            // What the command printed says more than its exit code.
            CommandError::Failed { .. } | CommandError::Wait { .. } => None,
        };
    }
    if let Some(e) = cause.downcast_ref::<std::io::Error>() {
        return io(e.kind());
    }
    None
}

fn io(kind: ErrorKind) -> Option<Failure> {
    use FailureClass::*;
    Some(match kind {
        ErrorKind::StorageFull => failure(Storage, "full", Layer::Storage),
        ErrorKind::QuotaExceeded => failure(Storage, "quota", Layer::Storage),
        ErrorKind::NotFound => failure(ConfigurationDrift, "path-missing", Layer::Storage),
        ErrorKind::PermissionDenied => {
            failure(ConfigurationDrift, "permission-denied", Layer::Identity)
        }
        ErrorKind::TimedOut => failure(Contention, "timeout", Layer::Network),
        ErrorKind::ConnectionRefused
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::NotConnected
        | ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable
        | ErrorKind::AddrNotAvailable
        | ErrorKind::BrokenPipe => failure(Connectivity, "unreachable", Layer::Network),
        ErrorKind::ReadOnlyFilesystem => failure(Storage, "read-only", Layer::Storage),
        ErrorKind::InvalidData | ErrorKind::UnexpectedEof => {
            failure(DataIntegrity, "corrupt", Layer::Storage)
        }
        ErrorKind::Interrupted | ErrorKind::WouldBlock => return None,
        _ => failure(Storage, "io", Layer::Storage),
    })
}

fn storage(fault: StorageFault, source: &dyn std::error::Error) -> Failure {
    use FailureClass::*;
    use StorageFault as F;
    match fault {
        F::NotFound => failure(ConfigurationDrift, "path-missing", Layer::Storage),
        F::PermissionDenied => failure(ConfigurationDrift, "permission-denied", Layer::Identity),
        F::CredentialsRefused => failure(Authentication, "credentials-refused", Layer::Identity),
        F::RateLimited => failure(Contention, "rate-limited", Layer::Storage),
        F::Unavailable => failure(Connectivity, "unreachable", Layer::Network),
        F::TimedOut => failure(Contention, "timeout", Layer::Network),
        F::Full => failure(Storage, "full", Layer::Storage),
        F::QuotaExceeded => failure(Storage, "quota", Layer::Storage),
        F::ReadOnly => failure(Storage, "read-only", Layer::Storage),
        F::Corrupt => failure(DataIntegrity, "corrupt", Layer::Storage),
        // What the service said may be more specific (an expired token).
        F::AlreadyExists | F::Other => {
            let by = by_text(&source.to_string());
            if by.class == Unknown {
                failure(Storage, "io", Layer::Storage)
            } else {
                by
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;
    use std::time::Duration;

    use anyhow::anyhow;
    use haven_model::jobs::FailureClass::*;

    use super::*;

    fn io_err(kind: ErrorKind, msg: &str) -> anyhow::Error {
        anyhow::Error::new(EngineError::Io {
            action: "reading",
            path: "/srv/data/file".into(),
            source: io::Error::new(kind, msg),
        })
    }

    fn storage_err(fault: StorageFault, msg: &str) -> anyhow::Error {
        anyhow::Error::new(EngineError::Storage {
            path: "data/1a/1a2b".into(),
            fault,
            source: msg.into(),
        })
    }

    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn errors_map_to_class_detail_and_layer() {
        let cases: Vec<(anyhow::Error, FailureClass, &str, Layer)> = vec![
            (
                EngineError::WrongPassword {
                    location: "/r".into(),
                }
                .into(),
                Authentication,
                "wrong-password",
                Layer::Identity,
            ),
            (
                EngineError::RepositoryNotFound {
                    location: "/r".into(),
                    reason: "no config".into(),
                }
                .into(),
                ConfigurationDrift,
                "repository-missing",
                Layer::Storage,
            ),
            (
                EngineError::PruneLocked {
                    holder: "host 1".into(),
                }
                .into(),
                Contention,
                "lock",
                Layer::Storage,
            ),
            (
                EngineError::Corrupt {
                    what: "pack".into(),
                    detail: "bad".into(),
                }
                .into(),
                DataIntegrity,
                "corrupt",
                Layer::Storage,
            ),
            (
                EngineError::PruneSwept { packs: 2 }.into(),
                Contention,
                "prune-race",
                Layer::Storage,
            ),
            (
                EngineError::ExposedFiles {
                    fixes: vec!["chmod 600 /r/keys/k".into()],
                }
                .into(),
                ConfigurationDrift,
                "exposed-keys",
                Layer::Identity,
            ),
            (
                storage_err(StorageFault::CredentialsRefused, "403 AccessDenied"),
                Authentication,
                "credentials-refused",
                Layer::Identity,
            ),
            (
                storage_err(StorageFault::PermissionDenied, "Permission denied"),
                ConfigurationDrift,
                "permission-denied",
                Layer::Identity,
            ),
            (
                storage_err(StorageFault::RateLimited, "503 SlowDown"),
                Contention,
                "rate-limited",
                Layer::Storage,
            ),
            (
                storage_err(StorageFault::Other, "ExpiredToken: the token has expired"),
                Authentication,
                "expired-credentials",
                Layer::Identity,
            ),
            (
                storage_err(StorageFault::Other, "500 InternalError"),
                Storage,
                "io",
                Layer::Storage,
            ),
            (
                io_err(ErrorKind::StorageFull, "No space left on device"),
                Storage,
                "full",
                Layer::Storage,
            ),
            (
                io_err(ErrorKind::QuotaExceeded, "Disk quota exceeded"),
                Storage,
                "quota",
                Layer::Storage,
            ),
            (
                io_err(ErrorKind::Other, "Input/output error"),
                Storage,
                "io",
                Layer::Storage,
            ),
            (
                io_err(ErrorKind::NotFound, "No such file or directory"),
                ConfigurationDrift,
                "path-missing",
                Layer::Storage,
            ),
            (
                io_err(ErrorKind::ConnectionRefused, "refused"),
                Connectivity,
                "unreachable",
                Layer::Network,
            ),
            (
                io_err(ErrorKind::TimedOut, "timed out"),
                Contention,
                "timeout",
                Layer::Network,
            ),
            (
                anyhow::Error::new(CommandError::Failed {
                    command: "quiesce-db".into(),
                    status: exited(127),
                    output: vec!["sh: 1: quiesce-db: not found".into()],
                })
                .context("pre-hook failed; nothing was backed up"),
                ConfigurationDrift,
                "hook-missing",
                Layer::Compute,
            ),
            (
                anyhow::Error::new(CommandError::TimedOut {
                    command: "sleep 100".into(),
                    timeout: Duration::from_secs(1),
                }),
                Contention,
                "timeout",
                Layer::Compute,
            ),
            (
                anyhow::Error::new(CommandError::Failed {
                    command: "pg_dump erp".into(),
                    status: exited(1),
                    output: vec![
                        "pg_dump: error: connection to server on socket \"/run/pg/.s.PGSQL.5432\" failed: Connection refused".into(),
                    ],
                }),
                Connectivity,
                "unreachable",
                Layer::Network,
            ),
            (
                anyhow!(
                    "pg_dump: error: FATAL: password authentication failed for user \"backup\""
                ),
                Authentication,
                "credentials-refused",
                Layer::Identity,
            ),
            (
                anyhow!("S3 said: ExpiredToken: The provided token has expired"),
                Authentication,
                "expired-credentials",
                Layer::Identity,
            ),
            (
                EngineError::Stream("`mysqldump shop` failed with exit status: 2".into()).into(),
                Unknown,
                "unknown",
                Layer::Compute,
            ),
        ];
        for (error, class, detail, layer) in cases {
            let got = classify(&error);
            assert_eq!(
                (got.class, got.detail.as_str(), got.layer),
                (class, detail, layer),
                "{error:#}"
            );
        }
    }

    /// A dump command's output is classified by what it says (the table
    /// of real messages is `haven_model::classify`'s).
    #[test]
    fn a_dump_commands_output_is_classified_by_its_words() {
        // Through a dump command's output, as the runner sees it.
        let failed = anyhow::Error::new(CommandError::Failed {
            command: "pg_dump erp".into(),
            status: exited(1),
            output: vec!["pg_dump: error: query failed: ERROR:  invalid page in block 42 of relation base/16384/16385".into()],
        });
        assert_eq!(classify(&failed).detail, "corrupt");
    }

    /// Regression: "webhooks" made a command that could not start count
    /// as a hook.
    #[test]
    fn webhooks_are_not_hooks() {
        let error = anyhow::Error::new(CommandError::Spawn {
            command: "notify-send".into(),
            source: io::Error::new(ErrorKind::NotFound, "not found"),
        })
        .context("delivering to the webhooks channel");
        assert_eq!(classify(&error).detail, "command-missing");
    }

    #[test]
    fn a_hook_that_cannot_start_is_configuration_drift() {
        let error = anyhow::Error::new(CommandError::Spawn {
            command: "x".into(),
            source: io::Error::new(ErrorKind::NotFound, "sh not found"),
        })
        .context("post-hook failed");
        let got = classify(&error);
        assert_eq!(
            (got.class, got.detail.as_str()),
            (ConfigurationDrift, "hook-missing")
        );
        let plain = anyhow::Error::new(CommandError::Spawn {
            command: "pg_dump".into(),
            source: io::Error::new(ErrorKind::NotFound, "not found"),
        });
        assert_eq!(classify(&plain).detail, "command-missing");
    }

    #[test]
    fn transient_classes_are_retried_and_the_rest_are_not() {
        assert!(Connectivity.is_transient());
        assert!(Contention.is_transient());
        assert!(Storage.is_transient());
        assert!(!Authentication.is_transient());
        assert!(!ConfigurationDrift.is_transient());
        assert!(!DataIntegrity.is_transient());
    }
}
