//! The one error type of the API. Every failure a handler can meet is an `ApiError`;
//! `http::problem` is the one place that turns it into an HTTP answer, and `http` also holds
//! the one conversion of the store's errors into it (`impl From<StoreError> for ApiError`:
//! here it would make `error → store → model → error` a cycle).

use std::fmt;

/// The media type of every error answer (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem's `title`: one per status, the same for every problem of that status (RFC 9457:
/// the title summarises the type, and ours is `about:blank`), the gateway's own answers in
/// `template.yaml` included (`tests/api/docs.rs` holds them to it).
pub fn title(status: lambda_http::http::StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "Bad request.",
        401 => "Unauthorized.",
        403 => "Forbidden.",
        404 => "Not found.",
        409 => "Conflict.",
        412 => "Precondition failed.",
        413 => "Payload too large.",
        415 => "Unsupported media type.",
        422 => "Unprocessable content.",
        429 => "Too many requests.",
        500 => "Internal server error.",
        502 => "Bad gateway.",
        503 => "Service unavailable.",
        504 => "Gateway timeout.",
        _ => "Error.",
    }
}

/// One bad field of a request: a JSON path (`social_links[2].url`) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Collects every bad field of a request, so one answer can report them all.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// The fields reported so far, in order (for tests).
    #[cfg(test)]
    pub fn fields(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.field.as_str()).collect()
    }

    /// The messages reported so far, in order (for tests).
    #[cfg(test)]
    pub fn messages(&self) -> Vec<String> {
        self.0.iter().map(|e| e.message.clone()).collect()
    }

    /// `Ok(value)` when nothing was reported, otherwise the whole list as a 400.
    pub fn into_result<T>(self, value: T) -> Result<T, ApiError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

#[derive(Debug)]
pub enum ApiError {
    /// 400: one or more fields failed validation.
    Validation(Vec<FieldError>),
    /// 400: the request as a whole is wrong (malformed JSON, a bad query parameter, ...).
    BadRequest {
        code: &'static str,
        detail: String,
        field: Option<String>,
    },
    /// 401: no caller: the request reached the function without the authorizer's context.
    Unauthorized,
    /// 403: the caller lacks the route's scope, or may not do this to this resource.
    Forbidden { code: &'static str, detail: String },
    /// 404: no such resource in the caller's tenant.
    NotFound(&'static str),
    /// 409: a unique value is taken, or a concurrent write won.
    Conflict {
        code: &'static str,
        detail: String,
        field: Option<String>,
    },
    /// 412: `If-Match` named a version that is no longer current.
    PreconditionFailed,
    /// 413: the body, or the record it would make, is too large.
    PayloadTooLarge(String),
    /// 415: a body that is not JSON.
    UnsupportedMediaType(String),
    /// 422: an `Idempotency-Key` already used for another request (its method, path or body
    /// differ).
    IdempotencyKeyReused,
    /// 429: the caller is over its own rate limit (the authorizer said so); the next request
    /// fits in `retry_after` seconds.
    RateLimited { retry_after: u32 },
    /// 503: a dependency is down, slow or throttling; the caller may retry after
    /// `retry_after` seconds. The log line gets `cause`.
    Unavailable { retry_after: u32, cause: String },
    /// 500: the caller is told nothing; the log line gets this text.
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            detail: detail.into(),
            field: None,
        }
    }

    /// A 400 about one named field (a query parameter, a header).
    pub fn bad_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let field = field.into();
        let detail = detail.into();
        Self::Validation(vec![FieldError {
            field,
            message: detail,
        }])
    }

    pub fn internal(context: &str, err: impl fmt::Display) -> Self {
        Self::Internal(format!("{context}: {err}"))
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Validation(_) | Self::BadRequest { .. } => 400,
            Self::Unauthorized => 401,
            Self::Forbidden { .. } => 403,
            Self::NotFound(_) => 404,
            Self::Conflict { .. } => 409,
            Self::PreconditionFailed => 412,
            Self::PayloadTooLarge(_) => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::IdempotencyKeyReused => 422,
            Self::RateLimited { .. } => 429,
            Self::Unavailable { .. } => 503,
            Self::Internal(_) => 500,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Validation(errors) => {
                let parts: Vec<String> = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect();
                f.write_str(&parts.join("; "))
            }
            Self::BadRequest { detail, .. } | Self::Conflict { detail, .. } => f.write_str(detail),
            Self::Unauthorized => f.write_str("a valid credential is required"),
            Self::Forbidden { detail, .. } => f.write_str(detail),
            Self::NotFound(what) => write!(f, "{what} not found"),
            Self::PreconditionFailed => {
                f.write_str("If-Match does not match the current version of the resource")
            }
            Self::PayloadTooLarge(detail) | Self::UnsupportedMediaType(detail) => {
                f.write_str(detail)
            }
            Self::IdempotencyKeyReused => f.write_str(
                "Idempotency-Key: this key was used within the last 24 hours for another \
                 request (another body or path); use a new key for a new request",
            ),
            Self::RateLimited { .. } => f.write_str(
                "this credential is over its rate limit; retry after the number of seconds in \
                 Retry-After",
            ),
            Self::Unavailable { retry_after, .. } => write!(
                f,
                "the service is briefly unavailable; retry in {retry_after} s"
            ),
            Self::Internal(cause) => f.write_str(cause),
        }
    }
}

impl std::error::Error for ApiError {}
