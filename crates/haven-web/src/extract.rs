//! Axum's extractors with the API's rejections: a malformed path, query or
//! body is answered with the JSON error shape and a stable code, never
//! with axum's plain-text default. Reading a body is bounded in size (the
//! router's limit) and in time.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ErrorCode, Rejection, error};

/// How long a client may take to send a body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// A path parameter.
pub(crate) struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| Rejection(error(ErrorCode::BadPath, e.body_text())))
    }
}

/// The query string.
pub(crate) struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| Rejection(error(ErrorCode::BadQuery, e.body_text())))
    }
}

/// A JSON body.
pub(crate) struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_json(request, state).await.map(ApiJson)
    }
}

/// A JSON body that may be left out (empty means `T::default()`).
pub(crate) struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let empty = request
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|length| length == "0")
            || (!request
                .headers()
                .contains_key(axum::http::header::CONTENT_TYPE)
                && !request
                    .headers()
                    .contains_key(axum::http::header::TRANSFER_ENCODING)
                && !request
                    .headers()
                    .contains_key(axum::http::header::CONTENT_LENGTH));
        if empty {
            return Ok(OptionalJson(T::default()));
        }
        read_json(request, state).await.map(OptionalJson)
    }
}

async fn read_json<T: DeserializeOwned, S: Send + Sync>(
    request: Request,
    state: &S,
) -> Result<T, Rejection> {
    let read = tokio::time::timeout(BODY_TIMEOUT, axum::Json::<T>::from_request(request, state));
    match read.await {
        Ok(Ok(axum::Json(value))) => Ok(value),
        Ok(Err(rejection)) => Err(Rejection(json_rejection(&rejection))),
        Err(_) => Err(Rejection(error(
            ErrorCode::RequestTimeout,
            format!(
                "the body did not arrive within {} seconds",
                BODY_TIMEOUT.as_secs()
            ),
        ))),
    }
}

fn json_rejection(rejection: &JsonRejection) -> axum::response::Response {
    let text = rejection.body_text();
    match rejection {
        JsonRejection::MissingJsonContentType(_) => error(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            error(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the body is larger than the API takes ({} bytes)",
                    crate::BODY_LIMIT
                ),
            )
        }
        _ => error(ErrorCode::BadJson, text),
    }
}
