//! Every error the API answers: one JSON shape (`{"error": {"code",
//! "message", "hint"}}`) and the one table of stable codes
//! (`haven_model::errors`, `docs/errors.md`), whatever rejected the
//! request (the token, the route, the method, the path, the query, the
//! body, the instance).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub use haven_model::errors::{ErrorCode, ErrorDocument};

/// An error answer: `code`'s HTTP status and the one JSON error shape.
pub(crate) fn error(code: ErrorCode, message: impl Into<String>) -> Response {
    document(&ErrorDocument::new(code, message))
}

/// The answer of an error document.
pub(crate) fn document(doc: &ErrorDocument) -> Response {
    let status = StatusCode::from_u16(doc.error.code.http_status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(doc)).into_response()
}

/// An error answer ready to be returned from an extractor.
pub(crate) struct Rejection(pub Response);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        self.0
    }
}
