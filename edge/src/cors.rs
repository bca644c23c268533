//! CORS (the Fetch standard's cross-origin checks): the headers every answer carries for the
//! origins the configuration allows (`shared::origins`), and the preflight's answer. Off
//! unless `CORS_ALLOWED_ORIGINS` names origins (the template's `CorsAllowedOrigins`;
//! docs/browser.md).

use lambda_http::http::{HeaderMap, HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use shared::origins::Origins;

/// The request headers the API reads, which a browser must be allowed to send.
pub const ALLOWED_HEADERS: &str =
    "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, Prefer, x-api-key";

/// The response headers a page's script may read besides the CORS-safelisted ones.
pub const EXPOSED_HEADERS: &str =
    "ETag, Location, Link, Retry-After, Idempotent-Replayed, x-trace-id";

/// The methods the API's routes answer.
pub const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";

/// How long a browser may keep a preflight's answer: Chromium's cap (two hours).
pub const MAX_AGE_SECONDS: u32 = 7200;

/// Adds to an answer the headers a browser reads: `Vary: Origin` whenever CORS is on
/// (the answer depends on the origin, which caches must know), and for an allowed
/// `origin` the allow header and the exposed headers.
pub fn decorate(origins: &Origins, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
    if !origins.enabled() {
        return;
    }
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    let allowed = origin
        .and_then(|o| o.to_str().ok())
        .and_then(|o| origins.allow(o))
        .and_then(|o| HeaderValue::from_str(o).ok());
    if let Some(allowed) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
}

/// The answer to an `OPTIONS` request (the preflight a browser sends before a request
/// that is not "simple", which every API call is: it carries `Authorization` or
/// `x-api-key`). From an allowed origin: 204 with the allowed methods, request headers
/// and max age. From another origin: 403 problem+json saying so (the browser then
/// refuses the request; the detail helps whoever reads the network log). Without
/// `Origin` (not a browser): 204 with `Allow`.
pub fn preflight(origins: &Origins, req: &Request) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    let origin = req.headers().get(header::ORIGIN);
    let headers = response.headers_mut();
    headers.insert(
        header::ALLOW,
        HeaderValue::from_static(ALLOWED_METHODS_AND_OPTIONS),
    );
    let Some(origin) = origin else {
        return response;
    };
    decorate(origins, Some(origin), headers);
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        let detail = format!(
            "the origin {:?} may not call this API from a browser; its operator lists the \
             origins that may in CorsAllowedOrigins",
            origin.to_str().unwrap_or("(not text)")
        );
        let body = serde_json::json!({
            "type": "about:blank",
            "status": 403,
            "code": "origin_not_allowed",
            "title": crate::error::title(StatusCode::FORBIDDEN),
            "detail": detail,
        });
        *response.body_mut() = Body::Text(body.to_string());
        *response.status_mut() = StatusCode::FORBIDDEN;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::error::PROBLEM_JSON),
        );
        return response;
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOWED_METHODS),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOWED_HEADERS),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(MAX_AGE_SECONDS),
    );
    response
}

/// `Allow` on a preflight's answer: the routes' methods and `OPTIONS` itself.
const ALLOWED_METHODS_AND_OPTIONS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    fn options(origin: Option<&str>) -> Request {
        let mut b = lambda_http::http::Request::builder()
            .method("OPTIONS")
            .header("access-control-request-method", "PATCH");
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        b.body(Body::Empty).unwrap()
    }

    #[test]
    fn an_answer_carries_the_allow_and_expose_headers_only_for_an_allowed_origin() {
        let origins = Origins::parse("https://app.example.com").unwrap();
        let mut h = HeaderMap::new();
        decorate(
            &origins,
            Some(&HeaderValue::from_static("https://app.example.com")),
            &mut h,
        );
        assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(h["access-control-expose-headers"], EXPOSED_HEADERS);
        assert_eq!(h["vary"], "Origin");
        let mut h = HeaderMap::new();
        decorate(
            &origins,
            Some(&HeaderValue::from_static("https://evil.example")),
            &mut h,
        );
        assert!(!h.contains_key("access-control-allow-origin"));
        assert_eq!(h["vary"], "Origin", "caches must still key on the origin");
        let mut h = HeaderMap::new();
        decorate(
            &Origins::None,
            Some(&HeaderValue::from_static("https://a.example")),
            &mut h,
        );
        assert!(h.is_empty(), "CORS off adds nothing: {h:?}");
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_is_a_204_naming_methods_headers_and_max_age() {
        let origins = Origins::parse("https://app.example.com").unwrap();
        let r = preflight(&origins, &options(Some("https://app.example.com")));
        assert_eq!(r.status(), 204);
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(h["access-control-allow-methods"], ALLOWED_METHODS);
        for name in [
            "Authorization",
            "If-Match",
            "Idempotency-Key",
            "x-api-key",
            "Prefer",
        ] {
            let allowed = h["access-control-allow-headers"].to_str().unwrap();
            assert!(allowed.contains(name), "{name} in {allowed}");
        }
        assert_eq!(h["access-control-max-age"], "7200");
    }

    #[test]
    fn a_preflight_from_another_origin_is_a_403_without_allow_headers() {
        let origins = Origins::parse("https://app.example.com").unwrap();
        let r = preflight(&origins, &options(Some("https://evil.example")));
        assert_eq!(r.status(), 403);
        assert!(!r.headers().contains_key("access-control-allow-origin"));
        assert!(!r.headers().contains_key("access-control-allow-methods"));
        let Body::Text(body) = r.body() else {
            panic!("a refusal has a body")
        };
        assert!(body.contains("origin_not_allowed"), "{body}");
    }
}
