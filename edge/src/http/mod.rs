//! HTTP plumbing: reading requests (body, headers, parameters) at the edge and writing
//! responses. [`problem`] is the one function that maps an [`ApiError`] to HTTP, and the
//! `From<StoreError>` impl here the one place a storage failure becomes an `ApiError`.
//! `conditions` reads `If-Match` and `If-None-Match`.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use shared::idempotency::{IdempotencyKey, StoredAnswer};

mod conditions;

pub use conditions::{EntityTag, Precondition, WriteConditions, if_match, if_none_match};

pub use shared::model::MAX_BODY_BYTES;

pub const JSON: &str = "application/json";
pub use crate::error::{PROBLEM_JSON, title};
pub const MERGE_PATCH_JSON: &str = "application/merge-patch+json";

/// The request's id: API Gateway's request id, else the Lambda invocation's, else a new one.
pub fn trace_id(req: &Request) -> String {
    if let Some(RequestContext::ApiGatewayV1(ctx)) = req.request_context_ref()
        && let Some(id) = &ctx.request_id
    {
        return id.clone();
    }
    match req.lambda_context_ref() {
        Some(ctx) if !ctx.request_id.is_empty() => ctx.request_id.clone(),
        _ => uuid::Uuid::now_v7().to_string(),
    }
}

fn header_str(req: &Request, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The route's resource path as API Gateway matched it (`/profiles/{profile_id}`).
pub fn resource(req: &Request) -> Option<&str> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.resource_path.as_deref(),
        _ => None,
    }
}

/// Where the API lives on the host the request came to: what precedes the API's own path in
/// the URL the client called. On API Gateway's default endpoint that is the stage
/// (`/prod`); behind a custom domain, its base path mapping (`/v1`, or nothing). It is the
/// request context's full path less the event's path; `Location` and `Link` start with it,
/// so a client that follows them lands on the API, wherever it is mounted.
pub fn base_path(req: &Request) -> String {
    use lambda_http::request::RequestContext;
    let called = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.path.as_deref(),
        _ => None,
    };
    let own = req.raw_http_path();
    match called.and_then(|full| full.strip_suffix(own)) {
        // Only a path prefix of whole segments (never a scheme or host).
        Some(base) if base.is_empty() || (base.starts_with('/') && !base.ends_with('/')) => {
            base.to_owned()
        }
        _ => String::new(),
    }
}

/// A path parameter, if present.
pub fn path_param<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.path_parameters_ref().and_then(|p| p.first(name))
}

/// The query string as (name, value) pairs, multi-value ones repeated.
pub fn query_pairs(req: &Request) -> Vec<(String, String)> {
    req.query_string_parameters_ref()
        .map(|q| {
            q.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The body as a JSON object, with its media type checked. `allow_merge_patch` admits
/// `application/merge-patch+json` (PATCH).
pub fn json_object(req: &Request, allow_merge_patch: bool) -> Result<Map<String, Value>, ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => b"",
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "the request body is {} bytes; at most {MAX_BODY_BYTES} are accepted",
            bytes.len()
        )));
    }
    if let Some(ct) = header_str(req, header::CONTENT_TYPE) {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let ok = essence == JSON || (allow_merge_patch && essence == MERGE_PATCH_JSON);
        if !ok {
            let accepted = if allow_merge_patch {
                "application/json or application/merge-patch+json"
            } else {
                "application/json"
            };
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type {ct:?} is not supported; send {accepted}"
            )));
        }
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "missing_body",
            "the request needs a JSON object body",
        ));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "invalid_body",
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(
            "malformed_json",
            format!("the request body is not valid JSON: {e}"),
        )),
    }
}

/// The request header of an idempotent POST (draft-ietf-httpapi-idempotency-key-header).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The header that marks a replayed answer.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The request's `Idempotency-Key`, if it sent one; a malformed one is a 400 naming the
/// header.
pub fn idempotency_key(req: &Request) -> Result<Option<IdempotencyKey>, ApiError> {
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad_field("Idempotency-Key", "must be sent once"));
    }
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_field("Idempotency-Key", "must be ASCII"))?;
    IdempotencyKey::parse(text)
        .map(Some)
        .map_err(|m| ApiError::bad_field("Idempotency-Key", m))
}

/// Whether the request says `Prefer: return=minimal`.
pub fn prefers_minimal(req: &Request) -> bool {
    req.headers().get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split([',', ';'])
                .any(|p| p.trim().eq_ignore_ascii_case("return=minimal"))
        })
    })
}

/// A response under construction: status, JSON body, headers.
pub struct Reply {
    status: StatusCode,
    body: Option<Value>,
    headers: Vec<(header::HeaderName, String)>,
}

impl Reply {
    pub fn json(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            body: None,
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// This answer as an idempotency record keeps it: status, body text, headers.
    pub fn stored(&self) -> StoredAnswer {
        StoredAnswer {
            status: self.status.as_u16(),
            body: self.body.as_ref().map(Value::to_string).unwrap_or_default(),
            headers: self
                .headers
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), value.clone()))
                .collect(),
        }
    }

    /// A kept answer again, marked `Idempotent-Replayed: true`.
    pub fn replay(answer: StoredAnswer) -> Result<Self, ApiError> {
        let body = match answer.body.as_str() {
            "" => None,
            text => Some(
                serde_json::from_str(text)
                    .map_err(|e| ApiError::internal("replay a kept answer", e))?,
            ),
        };
        let mut reply = Self {
            status: StatusCode::from_u16(answer.status)
                .map_err(|e| ApiError::internal("replay a kept answer", e))?,
            body,
            headers: Vec::new(),
        };
        for (name, value) in answer.headers {
            let name = header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| ApiError::internal("replay a kept answer", e))?;
            reply = reply.header(name, value);
        }
        Ok(reply.header(header::HeaderName::from_static(IDEMPOTENT_REPLAYED), "true"))
    }

    fn into_response(self, content_type: &'static str, trace_id: &str) -> Response<Body> {
        let mut response = Response::new(match &self.body {
            Some(v) => Body::Text(v.to_string()),
            None => Body::Empty,
        });
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        if self.body.is_some() {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        if let Ok(v) = HeaderValue::from_str(trace_id) {
            headers.insert("x-trace-id", v);
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.append(name, v);
            }
        }
        response
    }
}

/// The one mapping of an error to its problem+json answer (RFC 9457).
pub fn problem(err: &ApiError, trace_id: &str) -> Response<Body> {
    let status = err.status();
    let code = match err {
        ApiError::Validation(_) => "validation_failed",
        ApiError::BadRequest { code, .. } => code,
        ApiError::Unauthorized => "unauthorized",
        ApiError::Forbidden { code, .. } => code,
        ApiError::NotFound(_) => "not_found",
        ApiError::Conflict { code, .. } => code,
        ApiError::PreconditionFailed => "precondition_failed",
        ApiError::PayloadTooLarge(_) => "payload_too_large",
        ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
        ApiError::IdempotencyKeyReused => "idempotency_key_reused",
        ApiError::RateLimited { .. } => "rate_limited",
        ApiError::Unavailable { .. } => "service_unavailable",
        ApiError::Internal(_) => "internal_error",
    };
    let title = title(status);
    let mut body = json!({
        "type": "about:blank",
        "status": status.as_u16(),
        "code": code,
        "title": title,
        "trace_id": trace_id,
    });
    let detail = match err {
        ApiError::Internal(_) => {
            "The server failed to answer; the error is logged under this trace_id.".to_owned()
        }
        other => other.to_string(),
    };
    body["detail"] = Value::String(detail);
    let errors = match err {
        ApiError::Validation(errors) => json!(errors),
        ApiError::BadRequest {
            field: Some(f),
            detail,
            ..
        }
        | ApiError::Conflict {
            field: Some(f),
            detail,
            ..
        } => {
            json!([{"field": f, "message": detail}])
        }
        _ => Value::Null,
    };
    if !errors.is_null() {
        body["errors"] = errors;
    }
    let mut reply = Reply::json(status, body);
    if let ApiError::Unavailable { retry_after, .. } | ApiError::RateLimited { retry_after } = err {
        reply = reply.header(header::RETRY_AFTER, retry_after.to_string());
    }
    reply.into_response(PROBLEM_JSON, trace_id)
}

/// Ends a request: maps the outcome to a response and writes its one log line.
/// A 500's cause is logged here and nowhere shown to the caller.
pub fn finish(req: &Request, trace_id: &str, outcome: Result<Reply, ApiError>) -> Response<Body> {
    let method = req.method().as_str();
    let path = req.uri().path();
    match outcome {
        Ok(reply) => {
            let response = reply.into_response(JSON, trace_id);
            tracing::info!(
                trace_id,
                method,
                path,
                status = response.status().as_u16(),
                "request"
            );
            response
        }
        Err(err) => {
            let response = problem(&err, trace_id);
            let status = response.status().as_u16();
            if let ApiError::Internal(cause) | ApiError::Unavailable { cause, .. } = &err {
                tracing::error!(trace_id, method, path, status, cause = %cause, "request failed");
            } else {
                tracing::info!(trace_id, method, path, status, detail = %err, "request refused");
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

    use shared::store::{StoreError, Unique};

    use super::*;

    fn with_header(name: &str, value: &str) -> Request {
        lambda_http::http::Request::builder()
            .header(name, value)
            .body(Body::Empty)
            .unwrap()
    }

    fn field_of(err: ApiError) -> String {
        match err {
            ApiError::Validation(errors) => errors[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    fn tag(weak: bool, opaque: &str) -> EntityTag {
        EntityTag {
            weak,
            opaque: opaque.into(),
        }
    }

    #[test]
    fn a_header_lists_its_entity_tags_weak_or_strong() {
        let r = with_header("if-match", "\"3\"");
        let tags = Precondition::Tags(vec![tag(false, "3")]);
        assert_eq!(if_match(&r).unwrap(), Some(tags));
        let r = with_header("if-none-match", " W/\"12\" , \"a,b\",,\"x\" ");
        let tags = vec![tag(true, "12"), tag(false, "a,b"), tag(false, "x")];
        assert_eq!(if_none_match(&r).unwrap(), Some(Precondition::Tags(tags)));
    }

    #[test]
    fn if_match_compares_strongly_and_any_listed_tag_may_match() {
        let p = |raw: &str| if_match(&with_header("if-match", raw)).unwrap().unwrap();
        assert!(p("\"1\"").matches_strong(1));
        assert!(!p("W/\"1\"").matches_strong(1), "a weak tag never matches");
        assert!(p("\"7\", \"1\"").matches_strong(1));
        assert!(!p("\"stale-etag\"").matches_strong(1));
        assert!(p("*").matches_strong(42));
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let p = |raw: &str| {
            if_none_match(&with_header("if-none-match", raw))
                .unwrap()
                .unwrap()
        };
        assert!(p("W/\"1\"").matches_weak(1));
        assert!(p("\"2\", W/\"1\"").matches_weak(1));
        assert!(!p("\"2\"").matches_weak(1));
        assert!(p("*").matches_weak(1));
    }

    #[test]
    fn a_write_goes_ahead_only_when_both_conditions_hold() {
        let of = |name: &str, raw: &str| WriteConditions::of(&with_header(name, raw)).unwrap();
        assert!(of("if-match", "\"2\"").check(2).is_ok());
        assert_eq!(of("if-match", "\"1\"").check(2).unwrap_err().status(), 412);
        assert_eq!(
            of("if-match", "\"nope\"").check(2).unwrap_err().status(),
            412
        );
        assert_eq!(of("if-none-match", "*").check(2).unwrap_err().status(), 412);
        assert_eq!(
            of("if-none-match", "W/\"2\"")
                .check(2)
                .unwrap_err()
                .status(),
            412
        );
        assert!(of("if-none-match", "\"1\"").check(2).is_ok());
        assert!(WriteConditions::default().check(2).is_ok());
        assert!(of("if-match", "\"2\"").holds_to_a_version());
        assert!(!of("if-match", "*").holds_to_a_version());
    }

    #[test]
    fn no_header_is_no_precondition() {
        let r = lambda_http::http::Request::builder()
            .body(Body::Empty)
            .unwrap();
        assert_eq!(if_match(&r).unwrap(), None);
        assert_eq!(if_none_match(&r).unwrap(), None);
    }

    #[test]
    fn a_malformed_entity_tag_is_a_400_naming_the_header() {
        for bad in ["3", "\"3", "W/3", "\"3\" x", "\"a b\"", "w/\"3\"", ","] {
            let err = if_match(&with_header("if-match", bad)).unwrap_err();
            assert_eq!(field_of(err), "if-match", "{bad}");
        }
        let err = if_none_match(&with_header("if-none-match", "abc")).unwrap_err();
        assert_eq!(field_of(err), "if-none-match");
    }

    #[test]
    fn prefer_return_minimal_is_found_among_other_preferences() {
        assert!(prefers_minimal(&with_header("prefer", "return=minimal")));
        assert!(prefers_minimal(&with_header(
            "prefer",
            "respond-async, RETURN=MINIMAL; x=1"
        )));
        assert!(!prefers_minimal(&with_header(
            "prefer",
            "return=representation"
        )));
    }

    #[test]
    fn a_problem_carries_status_code_trace_and_field() {
        let err = ApiError::Conflict {
            code: "slug_taken",
            detail: "slug is taken".into(),
            field: Some("slug".into()),
        };
        let response = problem(&err, "trace-1");
        assert_eq!(response.status(), 409);
        assert_eq!(response.headers()["content-type"], PROBLEM_JSON);
        assert_eq!(response.headers()["x-trace-id"], "trace-1");
        let Body::Text(text) = response.body() else {
            panic!("a problem has a body");
        };
        let body: Value = serde_json::from_str(text).unwrap();
        assert_eq!(body["code"], "slug_taken");
        assert_eq!(body["trace_id"], "trace-1");
        assert_eq!(body["errors"][0]["field"], "slug");
    }

    #[test]
    fn an_outage_is_a_503_with_retry_after_that_hides_its_cause() {
        let err = ApiError::from(StoreError::Unavailable {
            retry_after: 2,
            cause: "connection refused to 10.0.0.1".into(),
        });
        let response = problem(&err, "t");
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "2");
        let Body::Text(text) = response.body() else {
            panic!("a problem has a body");
        };
        assert!(!text.contains("10.0.0.1"), "{text}");
        assert!(text.contains("service_unavailable"), "{text}");
    }

    #[test]
    fn store_errors_become_the_contracts_answers() {
        let status = |e: StoreError| ApiError::from(e).status();
        assert_eq!(status(StoreError::VersionChanged), 412);
        let taken = |what| StoreError::Taken { what, holder: None };
        assert_eq!(status(taken(Unique::Slug)), 409);
        assert_eq!(status(taken(Unique::ExternalId)), 409);
        assert_eq!(status(StoreError::NoFreeSlug), 409);
        let exists = StoreError::ContactExists {
            holder: "c1".into(),
        };
        assert_eq!(status(exists), 409);
        assert_eq!(status(StoreError::TooManyContacts), 409);
        assert_eq!(status(StoreError::ProfileMissing), 404);
        assert_eq!(status(StoreError::TooLarge), 413);
        let backend = StoreError::Backend {
            context: "get_item",
            cause: "boom".into(),
        };
        assert_eq!(status(backend), 500);
    }
}
