//! The one error type of the API, and the one place every other error becomes it. Each part
//! of the core speaks its own error (`Invalid` from validation, `StoreError` from storage,
//! `ConfigError`, `RenderError`, `ApiKeyError`); each has its one `From` here, which decides
//! its status (the contract's 400s, 409s, 412, 413, 503, and 500 for our bugs). `http::problem`
//! then turns an `ApiError` into problem+json.

use std::fmt;

use lambda_http::http::StatusCode;

use shared::apikeys::ApiKeyError;
use shared::config::ConfigError;
use shared::model::RenderError;
use shared::store::StoreError;
use shared::validate::{FieldError, Invalid};

/// The media type of every error answer (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem's `title`: one per status, the same for every problem of that status (RFC 9457:
/// the title summarises the type, and ours is `about:blank`), the gateway's own answers in
/// `template.yaml` included (`tests/api/docs.rs` holds them to it).
pub fn title(status: StatusCode) -> &'static str {
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
        Invalid::field(field, detail).into()
    }

    pub fn internal(context: &str, err: impl fmt::Display) -> Self {
        Self::Internal(format!("{context}: {err}"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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

/// Validation's refusal: a 400 naming every bad field, or the content's own code.
impl From<Invalid> for ApiError {
    fn from(err: Invalid) -> Self {
        match err {
            Invalid::Fields(errors) => Self::Validation(errors),
            Invalid::Content { code, detail } => Self::BadRequest {
                code,
                detail,
                field: None,
            },
        }
    }
}

/// A setting the deployment should have given: our mistake, a 500 with the cause logged.
impl From<ConfigError> for ApiError {
    fn from(err: ConfigError) -> Self {
        Self::internal("configuration", err.0)
    }
}

/// A model that would not render: our bug.
impl From<RenderError> for ApiError {
    fn from(err: RenderError) -> Self {
        Self::Internal(err.to_string())
    }
}

/// API keys: a bad name or scope list is the caller's 400; the rest is storage's or ours.
impl From<ApiKeyError> for ApiError {
    fn from(err: ApiKeyError) -> Self {
        match err {
            ApiKeyError::Invalid(invalid) => invalid.into(),
            ApiKeyError::Store(store) => store.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// The one place a storage failure becomes an answer: the contract's 409s, 412, 413, 503.
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::VersionChanged => Self::PreconditionFailed,
            StoreError::TooLarge => {
                Self::PayloadTooLarge(err.refusal().map(|r| r.detail).unwrap_or_default())
            }
            ref refused @ (StoreError::Taken { .. }
            | StoreError::NoFreeSlug
            | StoreError::ContactExists { .. }
            | StoreError::TooManyContacts) => match refused.refusal() {
                Some(r) => Self::Conflict {
                    code: r.code,
                    detail: r.detail,
                    field: r.field.map(str::to_owned),
                },
                None => Self::Internal(refused.to_string()),
            },
            StoreError::ProfileMissing => Self::NotFound("profile"),
            // A used key's answer is replayed by the handler when the request is the same
            // one; anything that reaches here is another request with that key.
            StoreError::KeyUsed(_) => Self::IdempotencyKeyReused,
            StoreError::Unavailable { retry_after, cause } => {
                Self::Unavailable { retry_after, cause }
            }
            err @ (StoreError::Backend { .. } | StoreError::IdInUse) => {
                Self::Internal(err.to_string())
            }
        }
    }
}
