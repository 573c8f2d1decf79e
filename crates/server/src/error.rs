//! One error type for every handler, rendered as RFC 9457 `application/problem+json`.
//! Client errors say which field is wrong and what to fix; server errors carry only an opaque
//! request id (the cause goes to the log).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use slipway_core::{FieldError, ValidationErrors};
use slipway_store::StoreError;

/// The problem document (RFC 9457) with Slipway's `errors` extension for field errors.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Field-level errors, when the request body or query was invalid.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Present on server errors: quote it when reporting the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Debug)]
pub enum ApiError {
    /// 400/422: the request is wrong; each entry names a field.
    Invalid {
        status: StatusCode,
        detail: String,
        errors: Vec<FieldError>,
    },
    NotFound(String),
    MethodNotAllowed(String),
    Conflict(String),
    /// 409 for a state that forbids the change (e.g. deleting `dev`).
    Refused(String),
    PayloadTooLarge(String),
    UnsupportedMediaType(String),
    /// 500: logged with its cause, shown with a request id only.
    Internal(anyhow::Error),
    /// 500 after the database committed: the change is saved, its projection into the platform
    /// repository failed and is repaired at the next start.
    SavedNotProjected(anyhow::Error),
    Unavailable(String),
    /// 429; the caller adds `Retry-After`.
    TooManyRequests(String),
    /// 401: no credential, or one that is not valid.
    Unauthorized(String),
    /// 403: valid credential, missing permission (the message names it).
    Forbidden(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn invalid(errors: ValidationErrors) -> Self {
        let detail = errors.to_string();
        ApiError::Invalid {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail,
            errors: errors.0,
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid(ValidationErrors(vec![FieldError::new(field, message)]))
    }

    pub fn bad_request(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        ApiError::Invalid {
            status: StatusCode::BAD_REQUEST,
            detail: detail.into(),
            errors,
        }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Invalid { status, .. } if *status == StatusCode::BAD_REQUEST => {
                (*status, "bad-request", "The request could not be read")
            }
            ApiError::Invalid { status, .. } => {
                (*status, "invalid-request", "The request has invalid fields")
            }
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Already exists"),
            ApiError::Refused(_) => (
                StatusCode::CONFLICT,
                "refused",
                "Not allowed in the current state",
            ),
            ApiError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
            ),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::SavedNotProjected(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "saved-not-projected",
                "Saved, but the platform repository was not updated",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
            ApiError::Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Permission missing"),
            ApiError::TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too many requests",
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
        }
    }

    pub fn to_problem(&self) -> Problem {
        let (status, kind, title) = self.parts();
        let mut request_id = None;
        let (detail, errors) = match self {
            ApiError::Invalid { detail, errors, .. } => (detail.clone(), errors.clone()),
            ApiError::NotFound(d)
            | ApiError::MethodNotAllowed(d)
            | ApiError::Conflict(d)
            | ApiError::Refused(d)
            | ApiError::PayloadTooLarge(d)
            | ApiError::UnsupportedMediaType(d)
            | ApiError::Unavailable(d)
            | ApiError::TooManyRequests(d)
            | ApiError::Unauthorized(d)
            | ApiError::Forbidden(d) => (d.clone(), vec![]),
            ApiError::Internal(e) | ApiError::SavedNotProjected(e) => {
                // The cause goes to the log under an id the client can quote; the client sees no internals.
                let id = uuid::Uuid::now_v7().to_string();
                request_id = Some(id.clone());
                let detail = if matches!(self, ApiError::Internal(_)) {
                    tracing::error!(request_id = %id, error = ?e, "internal error");
                    format!("Something went wrong on the server; quote request id {id} when reporting it.")
                } else {
                    tracing::error!(request_id = %id, error = ?e, "platform repository commit failed after the database commit");
                    format!("The change is saved, but the platform repository could not be updated; it is repaired from the database at the next start. Do not retry the request. Request id {id}.")
                };
                (detail, vec![])
            }
        };
        Problem {
            kind: format!("https://slipway.dev/problems/{kind}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail,
            errors,
            request_id,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.to_problem();
        problem_response(problem)
    }
}

pub fn problem_response(problem: Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { kind, name } => {
                let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                ApiError::Conflict(format!(
                    "{article} {kind} named {name:?} already exists; choose another name"
                ))
            }
            StoreError::NotFound { kind, name } => {
                ApiError::NotFound(format!("no {kind} named {name:?}"))
            }
            StoreError::Refused(msg) => ApiError::Refused(msg),
            e @ StoreError::IdempotencyMismatch(_) => ApiError::Invalid {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                detail: e.to_string(),
                errors: vec![FieldError::new("Idempotency-Key", e.to_string())],
            },
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(e: ValidationErrors) -> Self {
        ApiError::invalid(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_show_a_request_id_and_no_cause() {
        for (err, kind) in [
            (
                ApiError::internal(anyhow::anyhow!("secret cause /etc/x")),
                "internal",
            ),
            (
                ApiError::SavedNotProjected(anyhow::anyhow!("secret cause /etc/x")),
                "saved-not-projected",
            ),
        ] {
            let p = err.to_problem();
            assert_eq!(p.status, 500);
            assert!(p.kind.ends_with(kind), "{}", p.kind);
            let id = p.request_id.expect("request id");
            assert!(p.detail.contains(&id));
            assert!(!p.detail.contains("secret"), "{}", p.detail);
        }
    }
}
