//! API Gateway's REST API (v1) proxy integration, as the runner speaks it: which route a
//! request takes, the event a function gets, the method ARN an authorizer gets, and the
//! function's proxy response turned back into HTTP.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::template::Route;

/// A route a request matched, with its path parameters.
pub struct Matched<'r> {
    pub route: &'r Route,
    pub params: Vec<(String, String)>,
}

/// The route a request takes: the most specific resource matching the path, and on it the
/// request's own method before `ANY`, as in API Gateway. `None` when none matches (API
/// Gateway's 403 "Missing Authentication Token").
pub fn route<'r>(routes: &'r [Route], method: &str, path: &str) -> Option<Matched<'r>> {
    let rank = |r: &Route| (r.literal_segments(), r.method != "ANY");
    let mut best: Option<Matched<'r>> = None;
    for r in routes
        .iter()
        .filter(|r| r.method == method || r.method == "ANY")
    {
        if let Some(params) = r.matches(path)
            && best.as_ref().is_none_or(|b| rank(r) > rank(b.route))
        {
            best = Some(Matched { route: r, params });
        }
    }
    best
}

/// An HTTP request as it reached the gateway.
pub struct Incoming<'a> {
    pub method: &'a str,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: &'a str,
    pub request_id: &'a str,
    /// The stage of the route's API.
    pub stage: &'a str,
    /// What precedes the API's own path in the URL called: `/<stage>` on execute-api's
    /// default endpoint, nothing on a root-mounted custom domain.
    pub base_path: &'a str,
    /// The API's own path (the URL's path less `base_path`): the event's `path`.
    pub path: &'a str,
}

/// The REST API (v1) proxy event for a request on a matched route, as API Gateway builds it.
pub fn rest_event(matched: &Matched<'_>, incoming: &Incoming<'_>) -> Value {
    let Incoming {
        method,
        uri,
        headers,
        body,
        source_ip,
        request_id,
        stage,
        base_path,
        path,
    } = *incoming;
    let (route, params) = (matched.route, &matched.params);
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (name, value) in headers {
        let v = Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned());
        single.insert(name.as_str().to_owned(), v.clone());
        if let Value::Array(a) = multi.entry(name.as_str()).or_insert_with(|| json!([])) {
            a.push(v);
        }
    }
    let mut q_single = Map::new();
    let mut q_multi: Map<String, Value> = Map::new();
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        q_single.insert(k.to_string(), json!(v));
        if let Value::Array(a) = q_multi.entry(k.to_string()).or_insert_with(|| json!([])) {
            a.push(json!(v));
        }
    }
    let or_null = |m: Map<String, Value>| {
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    };
    let path_params: Map<String, Value> =
        params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let (body, is_base64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (json!(text), false),
        Err(_) => (
            json!(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    };
    let now = std::time::SystemTime::now();
    let now_ms = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    json!({
        "resource": route.resource,
        "path": path,
        "httpMethod": method,
        "headers": or_null(single),
        "multiValueHeaders": or_null(multi),
        "queryStringParameters": or_null(q_single),
        "multiValueQueryStringParameters": or_null(q_multi),
        "pathParameters": or_null(path_params),
        "stageVariables": null,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "resourceId": "local",
            "stage": stage,
            "requestId": request_id,
            "requestTimeEpoch": now_ms,
            "identity": {
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent").and_then(|v| v.to_str().ok()),
            },
            "domainName": headers.get("host").and_then(|v| v.to_str().ok()),
            "path": format!("{base_path}{path}"),
            "resourcePath": route.resource,
            "httpMethod": method,
            "protocol": "HTTP/1.1",
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// The stage name events carry on SAM's implicit API, which has no `StageName` here; an
/// `AWS::Serverless::Api`'s routes carry its `StageName`. Paths reach the functions without
/// it, as deployed with `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH`.
pub const STAGE: &str = "local";

/// The account id and API id in events and method ARNs.
pub const ACCOUNT_ID: &str = "123456789012";
pub const API_ID: &str = "local";

/// The method ARN API Gateway gives an authorizer:
/// `arn:aws:execute-api:<region>:<account>:<api id>/<stage>/<METHOD>/<path>`.
pub fn method_arn(region: &str, stage: &str, method: &str, path: &str) -> String {
    format!(
        "arn:aws:execute-api:{region}:{ACCOUNT_ID}:{API_ID}/{stage}/{method}/{}",
        path.trim_start_matches('/')
    )
}

/// A REST API proxy response turned into HTTP, as API Gateway does; `None` when malformed.
pub(crate) fn proxy_response(payload: &[u8]) -> Option<axum::response::Response> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let obj = v.as_object()?;
    let status = match obj.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64()?,
        Some(Value::String(s)) => s.parse().ok()?,
        _ => return None,
    };
    let status = StatusCode::from_u16(u16::try_from(status).ok()?).ok()?;
    let body = match obj.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if obj.get("isBase64Encoded") == Some(&Value::Bool(true)) => {
            base64::engine::general_purpose::STANDARD.decode(s).ok()?
        }
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(_) => return None,
    };
    let mut out = axum::response::Response::new(axum::body::Body::from(body));
    *out.status_mut() = status;
    let headers = out.headers_mut();
    // Multi-value headers win for a name both give, as in API Gateway.
    let multi = obj.get("multiValueHeaders").and_then(Value::as_object);
    if let Some(single) = obj.get("headers").and_then(Value::as_object) {
        for (k, v) in single {
            if multi.is_some_and(|m| m.contains_key(k)) {
                continue;
            }
            let value = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).ok()?,
                HeaderValue::from_str(&value).ok()?,
            );
        }
    }
    for (k, values) in multi.into_iter().flatten() {
        let name = HeaderName::from_bytes(k.as_bytes()).ok()?;
        for v in values.as_array()? {
            let value = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            headers.append(name.clone(), HeaderValue::from_str(&value).ok()?);
        }
    }
    Some(out)
}

/// The id API Gateway gives a usage key in `requestContext.identity.apiKeyId`: API Gateway's
/// own id of the key, which the runner has no registry of; a stable 10-character id made
/// from the key stands in.
pub(crate) fn api_key_id(key: &str) -> String {
    // FNV-1a: stable across runs and Rust versions, unlike the std hasher.
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..10)
        .map(|i| char::from(alphabet[((hash >> (i * 6)) % 36) as usize]))
        .collect()
}

/// An X-Ray trace id of the form API Gateway sends.
pub(crate) fn trace_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("Root=1-{secs:08x}-{};Sampled=0", &random[..24])
}
