//! Every user-facing runtime error's stable code, in one table: the code
//! decides the CLI's exit code and the API's HTTP status, and both say it
//! in one JSON shape ([`ErrorDocument`]). `docs/errors.md` lists the table;
//! a test keeps the two equal. Catalog findings keep their `HVN-E/W`
//! codes (`docs/catalog.md`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A stable error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The command line is wrong.
    Usage,
    /// The API token is missing or wrong.
    Unauthorized,
    /// The token is valid, its roles do not allow this.
    Forbidden,
    /// No such API route.
    NoRoute,
    /// The API route exists, not with this method.
    MethodNotAllowed,
    /// A path parameter is malformed.
    BadPath,
    /// The query string is malformed.
    BadQuery,
    /// The body is not the JSON the route takes.
    BadJson,
    /// The body is not sent as JSON.
    UnsupportedMediaType,
    /// The body is larger than the limit.
    PayloadTooLarge,
    /// The body did not arrive in time.
    RequestTimeout,
    /// No data dir where one was expected.
    NoDataDir,
    /// Another server holds the data dir.
    DataDirLocked,
    /// `haven.toml` has a mistake.
    SettingsInvalid,
    /// The catalog has errors.
    CatalogInvalid,
    /// The server of the data dir does not answer.
    ServerUnreachable,
    /// The server is shutting down.
    Stopping,
    /// The database cannot be read or written now.
    StoreUnavailable,
    /// No such job.
    NoSuchJob,
    /// No drill with that number.
    NoSuchDrill,
    /// No such alert.
    NoSuchAlert,
    /// No such system (or it has no backups).
    NoSuchSystem,
    /// No such service.
    NoSuchService,
    /// No such recovery plan.
    NoSuchPlan,
    /// No recovery run with that number (or no such step in it).
    NoSuchRecovery,
    /// The recovery request does not fit the run's state.
    RecoveryConflict,
    /// The audit log cannot be read or written (its key, its database).
    AuditUnavailable,
    /// The user or token exists already, or is revoked already.
    IdentityConflict,
    /// A login failed (wrong name, password or code).
    LoginFailed,
    /// Too many failed logins: the account waits.
    LoginLocked,
    /// A change in a console session came without its CSRF token.
    CsrfRejected,
    /// The change needs a second person: it waits as a request.
    ApprovalRequired,
    /// No four-eyes request with that number.
    NoSuchRequest,
    /// The request cannot be decided so (decided already, expired, one's
    /// own).
    RequestConflict,
    /// No such notification channel.
    NoSuchChannel,
    /// The alert is resolved already.
    AlreadyResolved,
    /// The maintenance window cannot be added or ended.
    InvalidWindow,
    /// No repository at the location.
    RepositoryNotFound,
    /// A repository exists at the location already.
    RepositoryExists,
    /// No key of the repository opens with the password.
    WrongPassword,
    /// The repository's format version is not supported.
    UnsupportedVersion,
    /// The repository location does not parse.
    InvalidLocation,
    /// An option's value is not valid.
    InvalidArgument,
    /// The storage (a disk, an object store) failed or cannot be reached.
    StorageUnavailable,
    /// The storage is full.
    StorageFull,
    /// Stored data is damaged or missing.
    Corrupt,
    /// No snapshot matches.
    NoSuchSnapshot,
    /// A restore target holds files already (and `--overwrite` was not given).
    TargetNotEmpty,
    /// A path given to back up does not exist or cannot be read.
    SourceUnreadable,
    /// A snapshot id prefix matches several snapshots.
    AmbiguousSnapshot,
    /// The path is not in the snapshot.
    NoSuchPath,
    /// The snapshot is protected by a retention lock or legal hold.
    Protected,
    /// A dump command (a stream source) failed.
    StreamFailed,
    /// A prune removed or marked data a running backup relies on.
    PruneRace,
    /// A prune's grace period is shorter than a backup may run.
    GraceTooShort,
    /// Other users can read the repository's private files.
    ExposedFiles,
    /// Another prune holds the prune lock.
    PruneLocked,
    /// The operation was interrupted.
    Interrupted,
    /// A failure without a code of its own (the message says what).
    Failed,
}

/// The command line was wrong (an exit code).
pub const EXIT_USAGE: u8 = 2;
/// The command failed (an exit code).
pub const EXIT_FAILURE: u8 = 1;
/// The change waits for a second person's approval (an exit code).
pub const EXIT_PENDING: u8 = 4;

/// One row of the table.
struct Row {
    code: ErrorCode,
    id: &'static str,
    http: u16,
    exit: u8,
}

macro_rules! rows {
    ($(($code:ident, $id:literal, $http:literal, $exit:ident)),* $(,)?) => {
        const TABLE: &[Row] = &[$(Row { code: ErrorCode::$code, id: $id, http: $http, exit: $exit }),*];
        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$code),*];
        }
    };
}

rows![
    (Usage, "usage", 400, EXIT_USAGE),
    (Unauthorized, "unauthorized", 401, EXIT_FAILURE),
    (Forbidden, "forbidden", 403, EXIT_FAILURE),
    (NoRoute, "no-route", 404, EXIT_USAGE),
    (MethodNotAllowed, "method-not-allowed", 405, EXIT_USAGE),
    (BadPath, "bad-path", 400, EXIT_USAGE),
    (BadQuery, "bad-query", 400, EXIT_USAGE),
    (BadJson, "bad-json", 400, EXIT_USAGE),
    (
        UnsupportedMediaType,
        "unsupported-media-type",
        415,
        EXIT_USAGE
    ),
    (PayloadTooLarge, "payload-too-large", 413, EXIT_USAGE),
    (RequestTimeout, "request-timeout", 408, EXIT_FAILURE),
    (NoDataDir, "no-data-dir", 404, EXIT_USAGE),
    (DataDirLocked, "data-dir-locked", 409, EXIT_FAILURE),
    (SettingsInvalid, "settings-invalid", 500, EXIT_FAILURE),
    (CatalogInvalid, "catalog-invalid", 422, EXIT_FAILURE),
    (ServerUnreachable, "server-unreachable", 502, EXIT_FAILURE),
    (Stopping, "stopping", 503, EXIT_FAILURE),
    (StoreUnavailable, "store-unavailable", 503, EXIT_FAILURE),
    (NoSuchJob, "no-such-job", 404, EXIT_FAILURE),
    (NoSuchDrill, "no-such-drill", 404, EXIT_FAILURE),
    (NoSuchAlert, "no-such-alert", 404, EXIT_FAILURE),
    (NoSuchSystem, "no-such-system", 404, EXIT_FAILURE),
    (NoSuchService, "no-such-service", 404, EXIT_FAILURE),
    (NoSuchPlan, "no-such-plan", 404, EXIT_FAILURE),
    (NoSuchRecovery, "no-such-recovery", 404, EXIT_FAILURE),
    (RecoveryConflict, "recovery-conflict", 409, EXIT_FAILURE),
    (AuditUnavailable, "audit-unavailable", 503, EXIT_FAILURE),
    (IdentityConflict, "identity-conflict", 409, EXIT_FAILURE),
    (LoginFailed, "login-failed", 401, EXIT_FAILURE),
    (LoginLocked, "login-locked", 429, EXIT_FAILURE),
    (CsrfRejected, "csrf-rejected", 403, EXIT_FAILURE),
    (ApprovalRequired, "approval-required", 202, EXIT_PENDING),
    (NoSuchRequest, "no-such-request", 404, EXIT_FAILURE),
    (RequestConflict, "request-conflict", 409, EXIT_FAILURE),
    (NoSuchChannel, "no-such-channel", 404, EXIT_FAILURE),
    (AlreadyResolved, "already-resolved", 409, EXIT_FAILURE),
    (InvalidWindow, "invalid-window", 422, EXIT_USAGE),
    (
        RepositoryNotFound,
        "repository-not-found",
        404,
        EXIT_FAILURE
    ),
    (RepositoryExists, "repository-exists", 409, EXIT_FAILURE),
    (WrongPassword, "wrong-password", 401, EXIT_FAILURE),
    (UnsupportedVersion, "unsupported-version", 422, EXIT_FAILURE),
    (InvalidLocation, "invalid-location", 400, EXIT_USAGE),
    (InvalidArgument, "invalid-argument", 400, EXIT_USAGE),
    (StorageUnavailable, "storage-unavailable", 503, EXIT_FAILURE),
    (StorageFull, "storage-full", 507, EXIT_FAILURE),
    (Corrupt, "corrupt", 500, EXIT_FAILURE),
    (NoSuchSnapshot, "no-such-snapshot", 404, EXIT_FAILURE),
    (TargetNotEmpty, "target-not-empty", 409, EXIT_FAILURE),
    (SourceUnreadable, "source-unreadable", 422, EXIT_FAILURE),
    (AmbiguousSnapshot, "ambiguous-snapshot", 409, EXIT_FAILURE),
    (NoSuchPath, "no-such-path", 404, EXIT_FAILURE),
    (Protected, "protected", 409, EXIT_FAILURE),
    (StreamFailed, "stream-failed", 502, EXIT_FAILURE),
    (PruneRace, "prune-race", 409, EXIT_FAILURE),
    (GraceTooShort, "grace-too-short", 409, EXIT_FAILURE),
    (ExposedFiles, "exposed-files", 409, EXIT_FAILURE),
    (PruneLocked, "prune-locked", 409, EXIT_FAILURE),
    (Interrupted, "interrupted", 503, EXIT_FAILURE),
    (Failed, "failed", 500, EXIT_FAILURE),
];

impl ErrorCode {
    fn row(self) -> &'static Row {
        TABLE
            .iter()
            .find(|r| r.code == self)
            .unwrap_or(&TABLE[TABLE.len() - 1])
    }

    /// The code as said (kebab-case).
    pub fn as_str(self) -> &'static str {
        self.row().id
    }

    /// The HTTP status an API answers it with.
    pub fn http_status(self) -> u16 {
        self.row().http
    }

    /// The exit code of a command that fails with it.
    pub fn exit_code(self) -> u8 {
        self.row().exit
    }

    /// The code of a text (`None` for one this build does not know).
    pub fn parse(text: &str) -> Option<ErrorCode> {
        TABLE.iter().find(|r| r.id == text).map(|r| r.code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        // A code a newer server sends is still a failure here.
        Ok(ErrorCode::parse(&text).unwrap_or(ErrorCode::Failed))
    }
}

/// An error as people and programs see it: `{"code", "message",
/// "hint"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, for a person.
    pub message: String,
    /// How to fix it, when there is more to say than the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The one JSON shape of every error: `{"error": {"code", "message",
/// "hint"}}` (the API's answers, the CLI's `--json` failures).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDocument {
    /// The error.
    pub error: ErrorBody,
}

impl ErrorDocument {
    /// A document for `code` with `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorDocument {
            error: ErrorBody {
                code,
                message: message.into(),
                hint: None,
            },
        }
    }

    /// With a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.error.hint = Some(hint.into());
        self
    }
}

/// An error and its causes as one line, without repeating a cause the
/// message before it already says (`back up /x: No such file: No such
/// file` becomes `back up /x: No such file`).
pub fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause = Some(error);
    while let Some(e) = cause {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    /// A cause the message already says is not said again.
    #[test]
    fn a_cause_is_said_once() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "back up /x: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "No such file",
        ));
        assert_eq!(super::chain_text(&e), "back up /x: No such file");
        let plain = std::io::Error::other("disk on fire");
        assert_eq!(super::chain_text(&plain), "disk on fire");
    }

    use super::*;

    #[test]
    fn every_code_has_one_row_and_round_trips() {
        assert_eq!(ErrorCode::ALL.len(), TABLE.len());
        let mut ids: Vec<&str> = TABLE.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), TABLE.len(), "codes are unique");
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            // A deferred change is accepted (202), not refused.
            let deferred = *code == ErrorCode::ApprovalRequired;
            assert!((400..600).contains(&code.http_status()) || deferred);
            assert!(matches!(code.exit_code(), EXIT_FAILURE | EXIT_USAGE) || deferred);
        }
        assert_eq!(ErrorCode::ApprovalRequired.http_status(), 202);
        assert_eq!(ErrorCode::ApprovalRequired.exit_code(), EXIT_PENDING);
        let doc =
            ErrorDocument::new(ErrorCode::NoSuchAlert, "no alert 7").hint("see `haven alerts`");
        let json = serde_json::to_string(&doc).expect("json");
        assert_eq!(
            json,
            r#"{"error":{"code":"no-such-alert","message":"no alert 7","hint":"see `haven alerts`"}}"#
        );
        let back: ErrorDocument = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, doc);
    }

    /// `docs/errors.md` lists exactly the table: every code with its HTTP
    /// status and exit code, and nothing else.
    #[test]
    fn the_documentation_lists_exactly_the_table() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/errors.md"),
        )
        .expect("docs/errors.md");
        let documented: Vec<(String, u16, u8)> = doc
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                Some((
                    code.to_string(),
                    cells.get(2)?.parse().ok()?,
                    cells.get(3)?.parse().ok()?,
                ))
            })
            .collect();
        let table: Vec<(String, u16, u8)> = ErrorCode::ALL
            .iter()
            .map(|c| (c.as_str().to_string(), c.http_status(), c.exit_code()))
            .collect();
        assert_eq!(documented, table);
    }
}
