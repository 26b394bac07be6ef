//! Failure classification: from an error to what an operator acts on
//! (class, specific cause, infrastructure layer).
//!
//! Pure: a function of the error alone. Typed causes (engine errors, I/O
//! error kinds, command failures) decide first, walking the error chain
//! from the outermost context to the root cause; the text of the chain
//! decides only when no typed cause does (e.g. a dump command's
//! "connection refused" on its stderr).

use std::io::ErrorKind;

use haven_engine::Error as EngineError;
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
    let mentions_hook = Words::new(&text).contain("hook");
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
            EngineError::Storage { source, .. } => Some(storage(source)),
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

fn storage(error: &opendal::Error) -> Failure {
    use FailureClass::*;
    use opendal::ErrorKind as K;
    match error.kind() {
        K::PermissionDenied => failure(Authentication, "credentials-refused", Layer::Identity),
        K::RateLimited => failure(Contention, "rate-limited", Layer::Storage),
        K::NotFound => failure(ConfigurationDrift, "path-missing", Layer::Storage),
        _ => {
            let text = format!("{error:#}");
            let by = by_text(&text);
            if by.class == Unknown {
                failure(Storage, "io", Layer::Storage)
            } else {
                by
            }
        }
    }
}

/// One rule of [`by_text`]: any of its phrases in the text gives the
/// failure.
struct Rule {
    class: FailureClass,
    detail: &'static str,
    layer: Layer,
    phrases: &'static [&'static str],
}

/// Rules in order: the first whose phrase occurs wins. Damage is judged
/// before anything but a full disk ("invalid page in block 42" is a
/// corrupt page, not a lock; "authentication failed (data damaged)" is
/// damage, not a password), credentials before connectivity (a refused
/// login arrives over a working connection). Phrases match whole words
/// (see [`Words`]); a trailing `*` matches any word starting so.
const RULES: &[Rule] = &[
    Rule {
        class: FailureClass::Storage,
        detail: "full",
        layer: Layer::Storage,
        phrases: &[
            "no space left",
            "disk full",
            "enospc",
            "insufficient system storage",
            "insufficient storage",
        ],
    },
    Rule {
        class: FailureClass::Storage,
        detail: "quota",
        layer: Layer::Storage,
        phrases: &["quota*", "edquot"],
    },
    Rule {
        class: FailureClass::DataIntegrity,
        detail: "corrupt",
        layer: Layer::Storage,
        phrases: &[
            "corrupt*",
            "checksum*",
            "invalid page",
            "authentication tag",
            "crc error",
            "baddigest",
            "bad digest",
            "hash mismatch",
            "checksum mismatch",
            "marked as crashed",
            "unexpected eof in archive",
            "invalid compressed data",
        ],
    },
    Rule {
        class: FailureClass::Authentication,
        detail: "expired-credentials",
        layer: Layer::Identity,
        phrases: &[
            "expiredtoken",
            "token has expired",
            "expired credentials",
            "credentials have expired",
            "requesttimetooskewed",
        ],
    },
    Rule {
        class: FailureClass::Authentication,
        detail: "credentials-refused",
        layer: Layer::Identity,
        phrases: &[
            "wrong password",
            "password authentication failed",
            "authentication failed",
            "authentication credentials invalid",
            "access denied",
            "invalidaccesskeyid",
            "signaturedoesnotmatch",
            "unauthorized",
            "forbidden",
        ],
    },
    Rule {
        class: FailureClass::ConfigurationDrift,
        detail: "repository-missing",
        layer: Layer::Storage,
        phrases: &["nosuchbucket"],
    },
    Rule {
        class: FailureClass::Connectivity,
        detail: "unreachable",
        layer: Layer::Network,
        phrases: &[
            "connection refused",
            "could not connect",
            "can t connect",
            "cannot connect",
            "connection to server",
            "lost connection",
            "network is unreachable",
            "no route to host",
            "connection reset",
            "name or service not known",
            "could not translate host name",
            "dns error",
            "error sending request",
            "service unavailable",
            "serviceunavailable",
        ],
    },
    Rule {
        class: FailureClass::Contention,
        detail: "rate-limited",
        layer: Layer::Storage,
        phrases: &[
            "slowdown",
            "reduce your request rate",
            "too many requests",
            "try again later",
        ],
    },
    Rule {
        class: FailureClass::Contention,
        detail: "lock",
        layer: Layer::Compute,
        phrases: &[
            "database is locked",
            "is locked",
            "could not obtain lock",
            "unable to lock",
            "failed to lock",
            "lock timeout",
            "lock wait timeout",
            "deadlock*",
            "locked by another",
            "resource busy",
        ],
    },
    Rule {
        class: FailureClass::Contention,
        detail: "timeout",
        layer: Layer::Network,
        phrases: &["timed out", "timeout", "deadline exceeded"],
    },
    Rule {
        class: FailureClass::ConfigurationDrift,
        detail: "version-mismatch",
        layer: Layer::Compute,
        phrases: &["version mismatch", "unsupported version"],
    },
    Rule {
        class: FailureClass::ConfigurationDrift,
        detail: "permission-denied",
        layer: Layer::Identity,
        phrases: &["permission denied", "operation not permitted"],
    },
    Rule {
        class: FailureClass::ConfigurationDrift,
        detail: "path-missing",
        layer: Layer::Compute,
        phrases: &["command not found", "no such file or directory"],
    },
];

/// Classify by what the error says, for causes without a type (the
/// output of a dump command, an HTTP body).
fn by_text(text: &str) -> Failure {
    let words = Words::new(text);
    RULES
        .iter()
        .find(|rule| rule.phrases.iter().any(|p| words.contain(p)))
        .map(|rule| failure(rule.class, rule.detail, rule.layer))
        .unwrap_or_else(|| failure(FailureClass::Unknown, "unknown", Layer::Compute))
}

/// A text as lowercase words (runs of letters and digits), so that a
/// phrase matches whole words: "lock" is not in "block", "hook" not in
/// "webhooks".
struct Words(Vec<String>);

impl Words {
    fn new(text: &str) -> Self {
        Words(
            text.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect(),
        )
    }

    /// Does the phrase (words separated by spaces; a last character `*`
    /// on a word matches any word it starts) occur?
    fn contain(&self, phrase: &str) -> bool {
        let wanted: Vec<&str> = phrase.split(' ').collect();
        self.0.windows(wanted.len()).any(|window| {
            window
                .iter()
                .zip(&wanted)
                .all(|(word, want)| match want.strip_suffix('*') {
                    Some(prefix) => word.starts_with(prefix),
                    None => word == want,
                })
        })
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

    /// What real tools print, classified by what it says. Regressions:
    /// "invalid page in block 42" was lock contention (retried) because
    /// "block" contains "lock"; "webhooks" counted as a hook.
    #[test]
    fn real_messages_are_classified_by_words_not_substrings() {
        let cases: &[(&str, FailureClass, &str)] = &[
            // pg_dump
            (
                "pg_dump: error: connection to server at \"db1\" (10.0.0.5), port 5432 failed: Connection refused",
                Connectivity,
                "unreachable",
            ),
            (
                "pg_dump: error: connection to server on socket \"/var/run/postgresql/.s.PGSQL.5432\" failed: No such file or directory",
                Connectivity,
                "unreachable",
            ),
            (
                "pg_dump: error: connection to server at \"db1\", port 5432 failed: FATAL:  password authentication failed for user \"backup\"",
                Authentication,
                "credentials-refused",
            ),
            (
                "pg_dump: error: query failed: ERROR:  invalid page in block 42 of relation base/16384/16385",
                DataIntegrity,
                "corrupt",
            ),
            (
                "pg_dump: error: query failed: ERROR:  could not obtain lock on relation \"orders\"",
                Contention,
                "lock",
            ),
            (
                "pg_dump: error: query failed: ERROR:  canceling statement due to lock timeout",
                Contention,
                "lock",
            ),
            (
                "pg_dump: error: query failed: ERROR:  deadlock detected",
                Contention,
                "lock",
            ),
            (
                "pg_dump: error: could not write to output file: No space left on device",
                Storage,
                "full",
            ),
            (
                "pg_dump: error: connection to server at \"db1.example\" failed: could not translate host name \"db1.example\" to address: Name or service not known",
                Connectivity,
                "unreachable",
            ),
            (
                "pg_dump: error: query failed: ERROR:  permission denied for table payroll",
                ConfigurationDrift,
                "permission-denied",
            ),
            (
                "pg_dump: error: aborting because of server version mismatch",
                ConfigurationDrift,
                "version-mismatch",
            ),
            (
                "pg_dump: error: query failed: ERROR:  could not read block 7 in file \"base/16384/2619\": read only 0 of 8192 bytes",
                Unknown,
                "unknown",
            ),
            (
                "pg_dump: error: Dumping the contents of table \"blocks\" failed: PQgetResult() failed.",
                Unknown,
                "unknown",
            ),
            // mysqldump
            (
                "mysqldump: Got error: 2002: Can't connect to local MySQL server through socket '/var/run/mysqld/mysqld.sock' (2) when trying to connect",
                Connectivity,
                "unreachable",
            ),
            (
                "mysqldump: Got error: 1045: Access denied for user 'backup'@'localhost' (using password: YES) when trying to connect",
                Authentication,
                "credentials-refused",
            ),
            (
                "mysqldump: Error 2013: Lost connection to MySQL server during query when dumping table `orders` at row: 1234",
                Connectivity,
                "unreachable",
            ),
            (
                "mysqldump: Got error: 145: Table './shop/orders' is marked as crashed and should be repaired when using LOCK TABLES",
                DataIntegrity,
                "corrupt",
            ),
            (
                "mysqldump: Error 1205: Lock wait timeout exceeded; try restarting transaction",
                Contention,
                "lock",
            ),
            (
                "mysqldump: Got error: 1044: Access denied for user 'backup'@'%' to database 'shop' when using LOCK TABLES",
                Authentication,
                "credentials-refused",
            ),
            (
                "mysqldump: Couldn't execute 'FLUSH TABLES WITH READ LOCK': Lock wait timeout exceeded",
                Contention,
                "lock",
            ),
            // tar, gzip
            (
                "tar: /srv/data: Cannot open: Permission denied",
                ConfigurationDrift,
                "permission-denied",
            ),
            (
                "tar: /srv/missing: Cannot stat: No such file or directory",
                ConfigurationDrift,
                "path-missing",
            ),
            ("tar: Unexpected EOF in archive", DataIntegrity, "corrupt"),
            (
                "gzip: stdin: invalid compressed data--crc error",
                DataIntegrity,
                "corrupt",
            ),
            (
                "tar: /backup/x.tar: Wrote only 4096 of 10240 bytes: No space left on device",
                Storage,
                "full",
            ),
            (
                "sh: 1: xtrabackup: command not found",
                ConfigurationDrift,
                "path-missing",
            ),
            // S3
            (
                "S3 said: ExpiredToken: The provided token has expired",
                Authentication,
                "expired-credentials",
            ),
            (
                "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records.",
                Authentication,
                "credentials-refused",
            ),
            (
                "SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided",
                Authentication,
                "credentials-refused",
            ),
            (
                "SlowDown: Please reduce your request rate.",
                Contention,
                "rate-limited",
            ),
            (
                "RequestTimeTooSkewed: The difference between the request time and the current time is too large.",
                Authentication,
                "expired-credentials",
            ),
            (
                "NoSuchBucket: The specified bucket does not exist",
                ConfigurationDrift,
                "repository-missing",
            ),
            (
                "error sending request for url (https://s3.example:9000/backups/config): client error (Connect)",
                Connectivity,
                "unreachable",
            ),
            (
                "ServiceUnavailable: Service is unable to handle request",
                Connectivity,
                "unreachable",
            ),
            (
                "QuotaExceeded: The bucket quota has been exceeded",
                Storage,
                "quota",
            ),
            (
                "BadDigest: The Content-MD5 you specified did not match what we received.",
                DataIntegrity,
                "corrupt",
            ),
            (
                "InternalError: We encountered an internal error. Please try again.",
                Unknown,
                "unknown",
            ),
            // SMTP
            (
                "SMTP error: 535 5.7.8 Authentication credentials invalid",
                Authentication,
                "credentials-refused",
            ),
            (
                "SMTP error: 421 4.7.0 Try again later, closing connection",
                Contention,
                "rate-limited",
            ),
            (
                "Connection error: Connection refused (os error 111)",
                Connectivity,
                "unreachable",
            ),
            (
                "SMTP error: 452 4.3.1 Insufficient system storage",
                Storage,
                "full",
            ),
            (
                "SMTP error: 550 5.1.1 <ops@example.com>: Recipient address rejected: User unknown in blocklist",
                Unknown,
                "unknown",
            ),
            // SQLite, the engine's text, webhooks
            (
                "error returned from database: (code: 5) database is locked",
                Contention,
                "lock",
            ),
            (
                "corrupt blob 1a2b3c4d in pack: authentication failed (data damaged or wrong key)",
                DataIntegrity,
                "corrupt",
            ),
            (
                "the webhook https://hooks.example/notify answered 503 Service Unavailable",
                Connectivity,
                "unreachable",
            ),
            (
                "operation timed out after 30s waiting for the blocklist",
                Contention,
                "timeout",
            ),
        ];
        assert!(cases.len() >= 40);
        for (message, class, detail) in cases {
            let got = classify(&anyhow!("{message}"));
            assert_eq!(
                (got.class, got.detail.as_str()),
                (*class, *detail),
                "{message}"
            );
        }
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
