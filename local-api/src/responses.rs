//! API Gateway's own answers (gateway responses): the template's `GatewayResponses` rendered
//! as API Gateway renders them (status, mapped headers, body template with `$context`
//! variables), else API Gateway's built-in defaults.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{Value, json};

use crate::template::{Api, GatewayResponse};

/// The gateway responses the runner gives, with API Gateway's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseType {
    /// No route for the method and path.
    MissingAuthenticationToken,
    /// The authorizer refused the credential (`Unauthorized`), or an identity source is
    /// missing.
    Unauthorized,
    /// The authorizer's policy does not allow the method ARN; `explicit` when a Deny
    /// statement matched.
    AccessDenied { explicit: bool },
    /// The authorizer errored, crashed or timed out.
    AuthorizerFailure,
    /// The authorizer's answer is not a valid authorizer response.
    AuthorizerConfigurationError,
    /// No usage key where the route requires one.
    InvalidApiKey,
    /// The usage key is over its usage plan's throttle.
    Throttled,
    /// The function errored, crashed, timed out or answered a malformed proxy response
    /// (API Gateway's 502; only `DEFAULT_5XX` customises it).
    IntegrationFailure,
    /// The function outlasted the integration timeout.
    IntegrationTimeout,
    /// The request's body is over API Gateway's 10 MB payload limit.
    RequestTooLarge,
}

impl ResponseType {
    /// The gateway response type's name in `GatewayResponses`, if it has one.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            ResponseType::MissingAuthenticationToken => "MISSING_AUTHENTICATION_TOKEN",
            ResponseType::Unauthorized => "UNAUTHORIZED",
            ResponseType::AccessDenied { .. } => "ACCESS_DENIED",
            ResponseType::AuthorizerFailure => "AUTHORIZER_FAILURE",
            ResponseType::AuthorizerConfigurationError => "AUTHORIZER_CONFIGURATION_ERROR",
            ResponseType::InvalidApiKey => "INVALID_API_KEY",
            ResponseType::Throttled => "THROTTLED",
            ResponseType::IntegrationTimeout => "INTEGRATION_TIMEOUT",
            ResponseType::RequestTooLarge => "REQUEST_TOO_LARGE",
            ResponseType::IntegrationFailure => return None,
        })
    }

    /// API Gateway's default status for the type.
    pub fn status(self) -> StatusCode {
        match self {
            ResponseType::MissingAuthenticationToken
            | ResponseType::AccessDenied { .. }
            | ResponseType::InvalidApiKey => StatusCode::FORBIDDEN,
            ResponseType::Unauthorized => StatusCode::UNAUTHORIZED,
            ResponseType::AuthorizerFailure | ResponseType::AuthorizerConfigurationError => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ResponseType::Throttled => StatusCode::TOO_MANY_REQUESTS,
            ResponseType::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ResponseType::IntegrationFailure => StatusCode::BAD_GATEWAY,
            ResponseType::IntegrationTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The `x-amzn-ErrorType` API Gateway sends with it.
    fn error_type(self) -> &'static str {
        match self {
            ResponseType::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ResponseType::Unauthorized => "UnauthorizedException",
            ResponseType::AccessDenied { .. } => "AccessDeniedException",
            ResponseType::AuthorizerFailure | ResponseType::AuthorizerConfigurationError => {
                "AuthorizerConfigurationException"
            }
            ResponseType::InvalidApiKey => "ForbiddenException",
            ResponseType::Throttled => "TooManyRequestsException",
            ResponseType::RequestTooLarge => "RequestTooLargeException",
            ResponseType::IntegrationFailure | ResponseType::IntegrationTimeout => {
                "InternalServerErrorException"
            }
        }
    }

    /// `$context.error.message`: `None` where API Gateway gives `null`.
    fn message(self) -> Option<&'static str> {
        Some(match self {
            ResponseType::MissingAuthenticationToken => "Missing Authentication Token",
            ResponseType::Unauthorized => "Unauthorized",
            ResponseType::AccessDenied { explicit: true } => {
                "User is not authorized to access this resource with an explicit deny"
            }
            ResponseType::AccessDenied { explicit: false } => {
                "User is not authorized to access this resource"
            }
            ResponseType::AuthorizerFailure | ResponseType::AuthorizerConfigurationError => {
                return None;
            }
            ResponseType::InvalidApiKey => "Forbidden",
            ResponseType::Throttled => "Too Many Requests",
            ResponseType::RequestTooLarge => "Request Too Long",
            ResponseType::IntegrationFailure => "Internal server error",
            ResponseType::IntegrationTimeout => "Endpoint request timed out",
        })
    }

    /// API Gateway's default body: `{"message": $context.error.messageString}` (an access
    /// denial from a Lambda authorizer spells it `Message`).
    fn default_body(self) -> String {
        let message = self.message().map_or(Value::Null, |m| json!(m));
        match self {
            ResponseType::AccessDenied { .. } => json!({ "Message": message }),
            _ => json!({ "message": message }),
        }
        .to_string()
    }

    /// The `DEFAULT_4XX` / `DEFAULT_5XX` type a response inherits from when the template
    /// does not declare its own.
    fn family(self) -> &'static str {
        if self.status().is_client_error() {
            "DEFAULT_4XX"
        } else {
            "DEFAULT_5XX"
        }
    }
}

/// What a response's mapping expressions can read: the request and its context.
pub struct Context<'a> {
    pub request_id: &'a str,
    /// The request's headers (`method.request.header.<name>`).
    pub headers: &'a HeaderMap,
    /// The REST event's `requestContext`, when the request matched a route (`stage`,
    /// `resourcePath`, `httpMethod`, `path`, ...) with its query string and path
    /// parameters.
    pub event: Option<&'a Value>,
}

impl Context<'_> {
    /// A `context.*` variable, as text.
    fn variable(&self, name: &str, kind: ResponseType) -> Option<String> {
        match name {
            "requestId" | "extendedRequestId" => Some(self.request_id.to_owned()),
            "error.message" => Some(kind.message().unwrap_or("null").to_owned()),
            "error.messageString" => Some(
                kind.message()
                    .map_or_else(|| "null".to_owned(), |m| json!(m).to_string()),
            ),
            "error.responseType" => Some(kind.name().unwrap_or("DEFAULT_5XX").to_owned()),
            other => {
                let mut v = &self.event?["requestContext"];
                for part in other.split('.') {
                    v = &v[part];
                }
                match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                }
            }
        }
    }

    /// A header mapping expression's value: `'static'`, `context.<var>`,
    /// `method.request.header|querystring|path.<name>`, `stageVariables.<name>`.
    fn expression(&self, expr: &str, kind: ResponseType) -> Option<String> {
        let expr = expr.trim();
        if let Some(inner) = expr.strip_prefix('\'').and_then(|e| e.strip_suffix('\'')) {
            return Some(inner.to_owned());
        }
        if let Some(var) = expr.strip_prefix("context.") {
            return self.variable(var, kind);
        }
        if let Some(name) = expr.strip_prefix("method.request.header.") {
            return self
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
        }
        let event = self.event?;
        let lookup = |field: &str, name: &str| event[field][name].as_str().map(str::to_owned);
        if let Some(name) = expr.strip_prefix("method.request.querystring.") {
            return lookup("queryStringParameters", name);
        }
        if let Some(name) = expr.strip_prefix("method.request.path.") {
            return lookup("pathParameters", name);
        }
        if let Some(name) = expr.strip_prefix("stageVariables.") {
            return lookup("stageVariables", name);
        }
        None
    }

    /// A body template with its `$context.<var>` (and `${context.<var>}`) references
    /// replaced; other VTL is left as written.
    fn template(&self, template: &str, kind: ResponseType) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (braced, body) = match after.strip_prefix('{') {
                Some(b) => (true, b),
                None => (false, after),
            };
            let Some(name_and_more) = body.strip_prefix("context.") else {
                out.push('$');
                rest = after;
                continue;
            };
            let len = name_and_more
                .char_indices()
                .find(|&(i, c)| {
                    !(c.is_ascii_alphanumeric()
                        || c == '_'
                        || (c == '.'
                            && name_and_more[i + 1..]
                                .starts_with(|n: char| n.is_ascii_alphabetic())))
                })
                .map_or(name_and_more.len(), |(i, _)| i);
            let name = &name_and_more[..len];
            let mut consumed = "context.".len() + len;
            if braced {
                if !name_and_more[len..].starts_with('}') {
                    out.push('$');
                    rest = after;
                    continue;
                }
                consumed += 2;
            }
            out.push_str(&self.variable(name, kind).unwrap_or_default());
            rest = &after[consumed..];
        }
        out.push_str(rest);
        out
    }
}

/// The gateway response `kind` for a request, from `api`'s `GatewayResponses` (the type's
/// own, else `DEFAULT_4XX`/`DEFAULT_5XX`), else API Gateway's default.
pub fn render(
    api: Option<&Api>,
    kind: ResponseType,
    ctx: &Context<'_>,
) -> axum::response::Response {
    let declared = |name: &str| api.and_then(|a| a.gateway_responses.get(name));
    let own = kind.name().and_then(declared);
    let inherited = declared(kind.family());
    // A type's own status, else its default's (API Gateway: changing a default's status
    // changes every type that inherits it), else the type's built-in one.
    let status = own
        .and_then(|r| r.status)
        .or_else(|| inherited.and_then(|r| r.status))
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or_else(|| kind.status());
    let chosen: Option<&GatewayResponse> = own.or(inherited);
    let (content_type, body) = match chosen.and_then(|r| {
        r.templates
            .iter()
            .find(|(t, _)| t == "application/json")
            .or_else(|| r.templates.first())
    }) {
        Some((content_type, template)) => (content_type.clone(), ctx.template(template, kind)),
        None => ("application/json".to_owned(), kind.default_body()),
    };
    let mut response = axum::response::Response::new(axum::body::Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        headers.insert(axum::http::header::CONTENT_TYPE, v);
    }
    headers.insert(
        "x-amzn-errortype",
        HeaderValue::from_static(kind.error_type()),
    );
    // The inherited type's headers first, the type's own over them.
    for response in [inherited, own].into_iter().flatten() {
        for (name, expr) in &response.headers {
            let value = ctx.expression(expr, kind);
            match (HeaderName::from_bytes(name.as_bytes()), value) {
                (Ok(name), Some(value)) => {
                    if let Ok(value) = HeaderValue::from_str(&value) {
                        headers.insert(name, value);
                    }
                }
                _ => tracing::warn!(
                    "gateway response {}: header {name}: cannot map {expr:?} locally",
                    kind.name().unwrap_or("DEFAULT_5XX")
                ),
            }
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Api, ApiKeySource};

    fn api(responses: &[(&str, GatewayResponse)]) -> Api {
        Api {
            id: "Api".into(),
            stage: "prod".into(),
            api_key_source: ApiKeySource::Header,
            authorizers: Default::default(),
            gateway_responses: responses
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            plans: Vec::new(),
        }
    }

    /// A rendered response's body, as text (empty if it cannot be read).
    fn body(r: axum::response::Response) -> String {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
            return String::new();
        };
        let bytes = runtime
            .block_on(axum::body::to_bytes(r.into_body(), usize::MAX))
            .map(|b| b.to_vec())
            .unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }

    #[test]
    fn declared_types_are_rendered_and_others_inherit_or_default() {
        let mut headers = HeaderMap::new();
        headers.insert("x-client", HeaderValue::from_static("c1"));
        let event =
            json!({"requestContext": {"stage": "prod"}, "queryStringParameters": {"q": "v"}});
        let ctx = Context {
            request_id: "req-1",
            headers: &headers,
            event: Some(&event),
        };
        let unauthorized = GatewayResponse {
            status: Some(401),
            headers: vec![
                ("Content-Type".into(), "'application/problem+json'".into()),
                ("x-trace-id".into(), "context.requestId".into()),
                ("x-echo".into(), "method.request.header.x-client".into()),
                ("x-q".into(), "method.request.querystring.q".into()),
            ],
            templates: vec![(
                "application/json".into(),
                r#"{"id":"$context.requestId","m":$context.error.messageString,"s":"${context.stage}","cost":"$5"}"#.into(),
            )],
        };
        let four = GatewayResponse {
            status: Some(400),
            headers: vec![("x-family".into(), "'4xx'".into())],
            templates: vec![(
                "application/json".into(),
                r#"{"type":"$context.error.responseType"}"#.into(),
            )],
        };
        let api = api(&[("UNAUTHORIZED", unauthorized), ("DEFAULT_4XX", four)]);

        let r = render(Some(&api), ResponseType::Unauthorized, &ctx);
        assert_eq!(r.status(), 401);
        let h = r.headers().clone();
        assert_eq!(h["content-type"], "application/problem+json");
        assert_eq!(h["x-trace-id"], "req-1");
        assert_eq!(h["x-echo"], "c1");
        assert_eq!(h["x-q"], "v");
        assert_eq!(h["x-family"], "4xx", "inherited from DEFAULT_4XX");
        assert_eq!(h["x-amzn-errortype"], "UnauthorizedException");
        assert_eq!(
            body(r),
            r#"{"id":"req-1","m":"Unauthorized","s":"prod","cost":"$5"}"#
        );

        // Not declared: DEFAULT_4XX's template and, as API Gateway gives a default's status
        // to the types that inherit it, its status.
        let r = render(Some(&api), ResponseType::Throttled, &ctx);
        assert_eq!(r.status(), 400);
        assert_eq!(body(r), r#"{"type":"THROTTLED"}"#);

        // A default with no status of its own: the type keeps its built-in status.
        let five = GatewayResponse {
            status: None,
            headers: vec![],
            templates: vec![("application/json".into(), r#"{"five":true}"#.into())],
        };
        let with_five = self::api(&[("DEFAULT_5XX", five)]);
        let r = render(Some(&with_five), ResponseType::IntegrationTimeout, &ctx);
        assert_eq!(r.status(), 504);
        assert_eq!(body(r), r#"{"five":true}"#);

        // Nothing declared: API Gateway's defaults.
        let r = render(None, ResponseType::AccessDenied { explicit: true }, &ctx);
        assert_eq!(r.status(), 403);
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(
            body(r),
            r#"{"Message":"User is not authorized to access this resource with an explicit deny"}"#
        );
        let r = render(None, ResponseType::AuthorizerFailure, &ctx);
        assert_eq!(r.status(), 500);
        assert_eq!(body(r), r#"{"message":null}"#);
        let r = render(Some(&api), ResponseType::IntegrationFailure, &ctx);
        assert_eq!(r.status(), 502);
        assert_eq!(body(r), r#"{"message":"Internal server error"}"#);
    }
}
