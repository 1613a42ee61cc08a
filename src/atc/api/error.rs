//! The one error type of the API. 4xx bodies speak to the user in upstream's wording;
//! 5xx bodies are generic and the detail goes to the log.

use crate::db::StoreError;
use crate::proto::api::SaveConfigResponse;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub enum ApiError {
    /// A bare status with a plain-text body (possibly empty), like most upstream errors.
    Status(StatusCode, String),
    /// Config/rename validation failures: `{"errors": [...], "warnings": [...]}`.
    Config(StatusCode, SaveConfigResponse),
    /// Anything unexpected: logged, answered with a generic 500.
    Internal(String),
}

impl ApiError {
    pub fn not_found() -> Self {
        ApiError::Status(StatusCode::NOT_FOUND, String::new())
    }
    pub fn unauthorized() -> Self {
        ApiError::Status(StatusCode::UNAUTHORIZED, "not authorized".into())
    }
    pub fn forbidden() -> Self {
        ApiError::Status(StatusCode::FORBIDDEN, "forbidden".into())
    }
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::Status(StatusCode::BAD_REQUEST, msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        ApiError::Status(StatusCode::CONFLICT, msg.into())
    }
    /// The database cannot be reached: a 503 the client may retry, never a 401 or 404.
    pub fn unavailable() -> Self {
        ApiError::Status(
            StatusCode::SERVICE_UNAVAILABLE,
            "database unavailable; try again shortly".into(),
        )
    }
    pub fn too_many_requests(msg: impl Into<String>) -> Self {
        ApiError::Status(StatusCode::TOO_MANY_REQUESTS, msg.into())
    }
    pub fn archived() -> Self {
        ApiError::conflict("action not allowed for an archived pipeline")
    }
    pub fn config_errors(
        errors: Vec<String>,
        warnings: Vec<crate::proto::api::ConfigWarning>,
    ) -> Self {
        ApiError::Config(
            StatusCode::BAD_REQUEST,
            SaveConfigResponse { errors, warnings },
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => ApiError::not_found(),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Invalid(m) => ApiError::bad_request(m),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "database unavailable");
                ApiError::unavailable()
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Status(status, body) => (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                body,
            )
                .into_response(),
            ApiError::Config(status, body) => (status, super::json(&body)).into_response(),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response()
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
