//! CORS (the Fetch standard's cross-origin checks): which browser origins may call the API,
//! the headers every answer carries for them, and the preflight's answer. Off unless
//! `CORS_ALLOWED_ORIGINS` names origins (the template's `CorsAllowedOrigins`; docs/browser.md).

use lambda_http::http::{HeaderMap, HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};

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

/// The origins allowed to call the API from a browser.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Origins {
    /// CORS off: no answer carries an allow header, and no function answers a preflight.
    #[default]
    None,
    /// `*`: any origin (answers say `Access-Control-Allow-Origin: *`).
    Any,
    /// These origins exactly (`scheme://host[:port]`, as a browser sends `Origin`).
    List(Vec<String>),
}

impl Origins {
    /// `CORS_ALLOWED_ORIGINS`: empty (off), `*`, or origins separated by commas. An origin is
    /// `http(s)://host[:port]` with no path, query or trailing slash, as browsers send it
    /// (compared without regard to case, since scheme and host are case-insensitive).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Self::None);
        }
        if raw == "*" {
            return Ok(Self::Any);
        }
        let mut list = Vec::new();
        for origin in raw.split(',').map(str::trim) {
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let host_ok = rest.is_some_and(|host| {
                !host.is_empty()
                    && host.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                    })
            });
            if !host_ok {
                return Err(format!(
                    "CORS_ALLOWED_ORIGINS: {origin:?} is not an origin: write \
                     http(s)://host[:port] (no path, no trailing slash), or * alone for any"
                ));
            }
            list.push(origin.to_ascii_lowercase());
        }
        Ok(Self::List(list))
    }

    /// Whether any origin is allowed at all.
    pub fn enabled(&self) -> bool {
        *self != Self::None
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    pub fn allow<'a>(&self, origin: &'a str) -> Option<&'a str> {
        match self {
            Self::None => None,
            Self::Any => Some("*"),
            Self::List(list) => list
                .iter()
                .find(|o| o.eq_ignore_ascii_case(origin))
                .map(|_| origin),
        }
    }

    /// Adds to an answer the headers a browser reads: `Vary: Origin` whenever CORS is on
    /// (the answer depends on the origin, which caches must know), and for an allowed
    /// `origin` the allow header and the exposed headers.
    pub fn decorate(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        if !self.enabled() {
            return;
        }
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        let allowed = origin
            .and_then(|o| o.to_str().ok())
            .and_then(|o| self.allow(o))
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
    pub fn preflight(&self, req: &Request) -> Response<Body> {
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
        self.decorate(Some(origin), headers);
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
    fn origins_parse_as_off_any_or_a_list_and_refuse_paths_and_schemes() {
        assert_eq!(Origins::parse("").unwrap(), Origins::None);
        assert_eq!(Origins::parse("  ").unwrap(), Origins::None);
        assert_eq!(Origins::parse("*").unwrap(), Origins::Any);
        assert_eq!(
            Origins::parse("https://App.example.com, http://localhost:5173").unwrap(),
            Origins::List(vec![
                "https://app.example.com".into(),
                "http://localhost:5173".into()
            ])
        );
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "ftp://x",
            "https://a.example,*",
            "https://",
            "https://a.example,,https://b.example",
        ] {
            let err = Origins::parse(bad).unwrap_err();
            assert!(err.contains("CORS_ALLOWED_ORIGINS"), "{bad}: {err}");
        }
    }

    #[test]
    fn only_a_listed_origin_is_allowed_and_star_only_when_configured() {
        let list = Origins::parse("https://app.example.com").unwrap();
        assert_eq!(
            list.allow("https://app.example.com"),
            Some("https://app.example.com")
        );
        assert_eq!(
            list.allow("HTTPS://APP.EXAMPLE.COM"),
            Some("HTTPS://APP.EXAMPLE.COM")
        );
        assert_eq!(list.allow("https://evil.example"), None);
        assert_eq!(list.allow("https://app.example.com.evil.example"), None);
        assert_eq!(list.allow("null"), None);
        assert_eq!(Origins::None.allow("https://app.example.com"), None);
        assert_eq!(Origins::Any.allow("https://anyone.example"), Some("*"));
    }

    #[test]
    fn an_answer_carries_the_allow_and_expose_headers_only_for_an_allowed_origin() {
        let origins = Origins::parse("https://app.example.com").unwrap();
        let mut h = HeaderMap::new();
        origins.decorate(
            Some(&HeaderValue::from_static("https://app.example.com")),
            &mut h,
        );
        assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(h["access-control-expose-headers"], EXPOSED_HEADERS);
        assert_eq!(h["vary"], "Origin");
        let mut h = HeaderMap::new();
        origins.decorate(
            Some(&HeaderValue::from_static("https://evil.example")),
            &mut h,
        );
        assert!(!h.contains_key("access-control-allow-origin"));
        assert_eq!(h["vary"], "Origin", "caches must still key on the origin");
        let mut h = HeaderMap::new();
        Origins::None.decorate(Some(&HeaderValue::from_static("https://a.example")), &mut h);
        assert!(h.is_empty(), "CORS off adds nothing: {h:?}");
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_is_a_204_naming_methods_headers_and_max_age() {
        let origins = Origins::parse("https://app.example.com").unwrap();
        let r = origins.preflight(&options(Some("https://app.example.com")));
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
        let r = origins.preflight(&options(Some("https://evil.example")));
        assert_eq!(r.status(), 403);
        assert!(!r.headers().contains_key("access-control-allow-origin"));
        assert!(!r.headers().contains_key("access-control-allow-methods"));
        let Body::Text(body) = r.body() else {
            panic!("a refusal has a body")
        };
        assert!(body.contains("origin_not_allowed"), "{body}");
    }
}
