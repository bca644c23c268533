//! The Profiles API on localhost. Routes come from `template.yaml`; each HTTP request becomes
//! the REST API (v1) proxy event API Gateway would deliver, and goes to the handler of the
//! function the template names, on an embedded DynamoDB (dynoxide).
//!
//! Today the handlers run in-process ([`dispatch`]); running each function's own binary
//! under the Lambda Runtime API is the planned next step.

pub mod template;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use base64::Engine as _;
use lambda_http::{Body, Request, Response};
use serde_json::{Map, Value, json};
use shared::handlers::{self as h, App};

use crate::template::Route;

/// Calls the handler that function `binary` runs. `None` for a binary this build lacks.
pub async fn dispatch(binary: &str, app: &App, req: Request) -> Option<Response<Body>> {
    Some(match binary {
        "create-profile" => h::create_profile(app, req).await,
        "get-profile" => h::get_profile(app, req).await,
        "list-profiles" => h::list_profiles(app, req).await,
        "update-profile" => h::update_profile(app, req).await,
        "replace-profile" => h::replace_profile(app, req).await,
        "delete-profile" => h::delete_profile(app, req).await,
        _ => return None,
    })
}

/// A route a request matched, with its path parameters.
pub struct Matched<'r> {
    pub route: &'r Route,
    pub params: Vec<(String, String)>,
}

/// The route a request takes: the most specific resource matching the path and method.
/// `None` when none does (API Gateway's 403 "Missing Authentication Token").
pub fn route<'r>(routes: &'r [Route], method: &str, path: &str) -> Option<Matched<'r>> {
    let mut best: Option<Matched<'r>> = None;
    for r in routes.iter().filter(|r| r.method == method) {
        if let Some(params) = r.matches(path) {
            let better = best
                .as_ref()
                .is_none_or(|b| r.literal_segments() > b.route.literal_segments());
            if better {
                best = Some(Matched { route: r, params });
            }
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
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    json!({
        "resource": route.resource,
        "path": uri.path(),
        "httpMethod": method,
        "headers": or_null(single),
        "multiValueHeaders": or_null(multi),
        "queryStringParameters": or_null(q_single),
        "multiValueQueryStringParameters": or_null(q_multi),
        "pathParameters": or_null(path_params),
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "resourceId": "local",
            "stage": "local",
            "requestId": request_id,
            "requestTimeEpoch": now_ms,
            "identity": {"sourceIp": source_ip},
            "path": format!("/local{}", uri.path()),
            "resourcePath": route.resource,
            "httpMethod": method,
            "protocol": "HTTP/1.1",
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// Where the local API keeps its data.
pub enum Storage {
    Memory,
    File(std::path::PathBuf),
}

/// The table name the local API uses.
pub const TABLE: &str = "profiles";

impl Server {
    /// Starts an embedded DynamoDB on `storage`, creates the template's table in it when
    /// missing, and builds the app against it. Returns the server and whether the table is new.
    pub async fn start(
        template: &template::Template,
        storage: &Storage,
    ) -> Result<(Self, bool), template::Error> {
        let db = match storage {
            Storage::Memory => dynoxide::Database::memory()?,
            Storage::File(file) => {
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                dynoxide::Database::new(&file.to_string_lossy())?
            }
        };
        let db_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", db_listener.local_addr()?);
        tokio::spawn(dynoxide::server::serve_on(db_listener, db));
        let config = shared::config::Config::from_lookup(|k| match k {
            "TABLE_NAME" => Some(TABLE.into()),
            "DYNAMODB_ENDPOINT" => Some(endpoint.clone()),
            _ => std::env::var(k).ok(),
        })?;
        let app = App::new(config);
        let client = shared::store::dynamodb_client(&app.config);
        let created = template.ensure_table(&client, TABLE).await?;
        let routes = template.routes()?;
        Ok((Self { routes, app }, created))
    }
}

/// A running local API.
pub struct Server {
    pub routes: Vec<Route>,
    pub app: App,
}

fn gateway_error(status: StatusCode, message: &str) -> axum::response::Response {
    let mut r = axum::response::Response::new(axum::body::Body::from(
        json!({"message": message}).to_string(),
    ));
    *r.status_mut() = status;
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    r
}

impl Server {
    /// Answers one HTTP request as API Gateway and the function would.
    pub async fn handle(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
        peer: SocketAddr,
    ) -> axum::response::Response {
        let started = Instant::now();
        let Some(matched) = route(&self.routes, method.as_str(), uri.path()) else {
            tracing::info!(method = %method, path = uri.path(), status = 403, "no route");
            return gateway_error(StatusCode::FORBIDDEN, "Missing Authentication Token");
        };
        let request_id = uuid::Uuid::now_v7().to_string();
        let source_ip = peer.ip().to_string();
        let event = rest_event(
            &matched,
            &Incoming {
                method: method.as_str(),
                uri: &uri,
                headers: &headers,
                body: &body,
                source_ip: &source_ip,
                request_id: &request_id,
            },
        );
        let route = matched.route;
        let Ok(req) = lambda_http::request::from_str(&event.to_string()) else {
            return gateway_error(StatusCode::BAD_GATEWAY, "Internal server error");
        };
        let Some(response) = dispatch(&route.binary, &self.app, req).await else {
            return gateway_error(StatusCode::BAD_GATEWAY, "Internal server error");
        };
        let (parts, body) = response.into_parts();
        let bytes: Vec<u8> = match body {
            Body::Text(t) => t.into_bytes(),
            Body::Binary(b) => b,
            _ => Vec::new(),
        };
        let status = parts.status.as_u16();
        let mut out = axum::response::Response::from_parts(parts, axum::body::Body::from(bytes));
        out.headers_mut().insert(
            "x-amzn-requestid",
            axum::http::HeaderValue::from_str(&request_id)
                .unwrap_or(axum::http::HeaderValue::from_static("local")),
        );
        tracing::info!(
            method = %method,
            path = uri.path(),
            function = %route.function,
            status,
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
        out
    }

    /// Serves on `listener` until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let handler =
            move |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
                  method: Method,
                  uri: Uri,
                  headers: HeaderMap,
                  body: Bytes| {
                let server = self.clone();
                async move { server.handle(method, uri, headers, body, peer).await }
            };
        let router = axum::Router::new()
            .fallback(handler)
            .layer(axum::extract::DefaultBodyLimit::max(10 * 1024 * 1024));
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}
