//! Every error the API answers: one JSON shape, one table of stable codes
//! (`docs/server.md`, "Errors"), whatever rejected the request (the
//! token, the route, the method, the path, the query, the body).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The body of every error answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong, for a person.
    pub error: String,
    /// Stable code, for a program (see [`ErrorCode`]).
    #[serde(default)]
    pub code: String,
}

/// Stable error codes and their HTTP statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// No token, or not the right one.
    Unauthorized,
    /// No such route.
    NoRoute,
    /// The route exists, not with this method.
    MethodNotAllowed,
    /// A path parameter is malformed (`/api/v1/jobs/abc`).
    BadPath,
    /// The query string is malformed (`?limit=many`).
    BadQuery,
    /// The body is not the JSON the route takes.
    BadJson,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// The body is larger than the limit (1 MiB).
    PayloadTooLarge,
    /// The body did not arrive in time.
    RequestTimeout,
    /// No such job.
    NoSuchJob,
    /// No such alert.
    NoSuchAlert,
    /// No such system (or it has no backups).
    NoSuchSystem,
    /// No such notification channel.
    NoSuchChannel,
    /// The alert is resolved already.
    AlreadyResolved,
    /// The maintenance window is not valid.
    InvalidWindow,
    /// The server is shutting down.
    Stopping,
    /// The store cannot be read or written now.
    StoreUnavailable,
}

impl ErrorCode {
    /// The code as answered.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NoRoute => "no-route",
            ErrorCode::MethodNotAllowed => "method-not-allowed",
            ErrorCode::BadPath => "bad-path",
            ErrorCode::BadQuery => "bad-query",
            ErrorCode::BadJson => "bad-json",
            ErrorCode::UnsupportedMediaType => "unsupported-media-type",
            ErrorCode::PayloadTooLarge => "payload-too-large",
            ErrorCode::RequestTimeout => "request-timeout",
            ErrorCode::NoSuchJob => "no-such-job",
            ErrorCode::NoSuchAlert => "no-such-alert",
            ErrorCode::NoSuchSystem => "no-such-system",
            ErrorCode::NoSuchChannel => "no-such-channel",
            ErrorCode::AlreadyResolved => "already-resolved",
            ErrorCode::InvalidWindow => "invalid-window",
            ErrorCode::Stopping => "stopping",
            ErrorCode::StoreUnavailable => "store-unavailable",
        }
    }

    /// The HTTP status it is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::NoRoute
            | ErrorCode::NoSuchJob
            | ErrorCode::NoSuchAlert
            | ErrorCode::NoSuchSystem
            | ErrorCode::NoSuchChannel => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::BadPath | ErrorCode::BadQuery | ErrorCode::BadJson => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::AlreadyResolved => StatusCode::CONFLICT,
            ErrorCode::InvalidWindow => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Stopping | ErrorCode::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Every code, for the documentation test.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::Unauthorized,
        ErrorCode::NoRoute,
        ErrorCode::MethodNotAllowed,
        ErrorCode::BadPath,
        ErrorCode::BadQuery,
        ErrorCode::BadJson,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RequestTimeout,
        ErrorCode::NoSuchJob,
        ErrorCode::NoSuchAlert,
        ErrorCode::NoSuchSystem,
        ErrorCode::NoSuchChannel,
        ErrorCode::AlreadyResolved,
        ErrorCode::InvalidWindow,
        ErrorCode::Stopping,
        ErrorCode::StoreUnavailable,
    ];
}

/// An error answer: `code`'s status and the JSON body.
pub(crate) fn error(code: ErrorCode, message: impl Into<String>) -> Response {
    (
        code.status(),
        axum::Json(ApiError {
            error: message.into(),
            code: code.as_str().into(),
        }),
    )
        .into_response()
}

/// An error answer ready to be returned from an extractor.
pub(crate) struct Rejection(pub Response);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        self.0
    }
}
