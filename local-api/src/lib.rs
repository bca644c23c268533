//! The Profiles API on localhost, as API Gateway and Lambda would run it: routes come from
//! `template.yaml`; each HTTP request becomes the REST API (v1) proxy event API Gateway
//! delivers, goes to the function's own binary through the Lambda Runtime API
//! ([`runtime`]), and its proxy response goes back as HTTP. Data lives in an embedded
//! DynamoDB (dynoxide) or any engine named by URL.

pub mod binaries;
pub mod runtime;
pub mod template;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::binaries::Binaries;
use crate::runtime::{Environment, Outcome, Pool, Pools};
use crate::template::{Error, Route, Template};

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
    let now = std::time::SystemTime::now();
    let now_ms = now
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
            "stage": STAGE,
            "requestId": request_id,
            "requestTimeEpoch": now_ms,
            "identity": {
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent").and_then(|v| v.to_str().ok()),
            },
            "domainName": headers.get("host").and_then(|v| v.to_str().ok()),
            "path": format!("/{STAGE}{}", uri.path()),
            "resourcePath": route.resource,
            "httpMethod": method,
            "protocol": "HTTP/1.1",
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// The stage name events carry (paths reach the functions without it, as deployed with
/// `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH`).
pub const STAGE: &str = "local";

/// The table name the local API uses on its own engine.
pub const TABLE: &str = "profiles";

/// Where the data lives.
#[derive(Clone, Debug)]
pub enum Storage {
    /// Embedded dynoxide, in memory: gone when the runner stops.
    Memory,
    /// Embedded dynoxide, in this SQLite file.
    File(PathBuf),
    /// Another engine at this URL (DynamoDB Local, or AWS itself with credentials from the
    /// environment), with this table name.
    Endpoint { url: String, table: String },
}

/// How to start the runner.
pub struct Options {
    pub storage: Storage,
    /// The functions' executables by binary name.
    pub binaries: Binaries,
    /// Instances per function at most, as a function's reserved concurrency.
    pub concurrency: usize,
    /// `AWS_REGION` for the functions.
    pub region: String,
}

/// A running local API: routes, one pool of instances per function, the engine.
pub struct Server {
    pub routes: Vec<Route>,
    pub pools: Pools,
    /// The DynamoDB endpoint the functions use.
    pub endpoint: String,
    pub table: String,
    /// Whether the table was created by this start.
    pub created_table: bool,
    engine: std::sync::Mutex<Option<EngineTask>>,
}

type EngineTask = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

/// Variables passed through to the functions when they talk to a real engine.
const AWS_CREDENTIAL_VARS: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

impl Server {
    /// Starts the engine (or joins the one named), creates the template's table there when
    /// missing, and prepares a pool for every function the template's routes use.
    pub async fn start(template: &Template, options: Options) -> Result<Self, Error> {
        let mut vars = Vec::new();
        let (endpoint, table, engine) = match &options.storage {
            Storage::Endpoint { url, table } => {
                for name in AWS_CREDENTIAL_VARS {
                    if let Ok(v) = std::env::var(name) {
                        vars.push((name.to_owned(), v));
                    }
                }
                (url.clone(), table.clone(), None)
            }
            local => {
                let db = match local {
                    Storage::File(file) => {
                        if let Some(dir) = file.parent() {
                            std::fs::create_dir_all(dir)?;
                        }
                        dynoxide::Database::new(&file.to_string_lossy())?
                    }
                    _ => dynoxide::Database::memory()?,
                };
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let url = format!("http://{}", listener.local_addr()?);
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let task = tokio::spawn(async move {
                    let shutdown = async {
                        let _ = stopped.await;
                    };
                    if let Err(e) =
                        dynoxide::server::serve_with_shutdown(listener, db, shutdown).await
                    {
                        tracing::error!("embedded DynamoDB stopped: {e}");
                    }
                });
                (url, TABLE.to_owned(), Some((stop, task)))
            }
        };
        vars.push(("DYNAMODB_ENDPOINT".to_owned(), endpoint.clone()));

        let config = shared::config::Config::from_lookup(|k| match k {
            "TABLE_NAME" => Some(table.clone()),
            "DYNAMODB_ENDPOINT" => Some(endpoint.clone()),
            "AWS_REGION" => Some(options.region.clone()),
            "PROFILES_TENANT_ID" => Some("local".into()),
            _ if AWS_CREDENTIAL_VARS.contains(&k) && engine.is_none() => std::env::var(k).ok(),
            _ => None,
        })?;
        let client = shared::store::dynamodb_client(&config);
        let created_table = template.ensure_table(&client, &table).await?;

        let routes = template.routes()?;
        let environment = Environment {
            region: options.region.clone(),
            vars,
        };
        let mut pools = Pools::new();
        for function in template.functions(&table)? {
            if !routes.iter().any(|r| r.function == function.id) {
                continue;
            }
            let Some(binary) = options.binaries.get(&function.binary) else {
                return Err(
                    format!("{}: no binary {:?} was built", function.id, function.binary).into(),
                );
            };
            let pool = Pool::new(
                function.clone(),
                binary.clone(),
                environment.clone(),
                options.concurrency,
            );
            pools.insert(function.id.clone(), Arc::new(pool));
        }
        Ok(Self {
            routes,
            pools,
            endpoint,
            table,
            created_table,
            engine: std::sync::Mutex::new(engine),
        })
    }

    /// Stops every function instance, then the embedded engine, which closes its data file.
    pub async fn stop(&self) {
        for pool in self.pools.values() {
            pool.stop();
        }
        let engine = self
            .engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((stop, task)) = engine {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

fn gateway_error(
    status: StatusCode,
    message: &str,
    kind: &'static str,
) -> axum::response::Response {
    let mut r = axum::response::Response::new(axum::body::Body::from(
        json!({"message": message}).to_string(),
    ));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert("x-amzn-errortype", HeaderValue::from_static(kind));
    r
}

/// API Gateway's answer when the integration failed: the function errored, crashed, timed
/// out, or returned something that is not a proxy response.
fn bad_gateway() -> axum::response::Response {
    gateway_error(
        StatusCode::BAD_GATEWAY,
        "Internal server error",
        "InternalServerErrorException",
    )
}

/// A REST API proxy response turned into HTTP, as API Gateway does; `None` when malformed.
fn proxy_response(payload: &[u8]) -> Option<axum::response::Response> {
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

/// An X-Ray trace id of the form API Gateway sends.
fn trace_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("Root=1-{secs:08x}-{};Sampled=0", &random[..24])
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
            tracing::info!("{method} {} → no route 403", uri.path());
            return gateway_error(
                StatusCode::FORBIDDEN,
                "Missing Authentication Token",
                "MissingAuthenticationTokenException",
            );
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let trace = trace_id();
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
        let Some(pool) = self.pools.get(&route.function).cloned() else {
            return bad_gateway();
        };
        // The invocation runs on even when the gateway stops waiting, as in Lambda.
        let invocation = tokio::spawn({
            let (id, trace) = (request_id.clone(), trace.clone());
            async move { pool.invoke(id, trace, event.to_string().into_bytes()).await }
        });
        let (mut reply, how) = match tokio::time::timeout(route.integration_timeout, invocation)
            .await
        {
            Err(_) => (
                gateway_error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "Endpoint request timed out",
                    "InternalServerErrorException",
                ),
                "integration timeout".to_owned(),
            ),
            Ok(Err(_)) => (bad_gateway(), "invocation aborted".to_owned()),
            Ok(Ok(invoked)) => {
                let start = match invoked.cold {
                    Some(init) => format!(
                        "cold #{} (init {:.1} ms)",
                        invoked.instance,
                        init.as_secs_f64() * 1000.0
                    ),
                    None => format!("warm #{}", invoked.instance),
                };
                match invoked.outcome {
                    Outcome::Response(payload) => match proxy_response(&payload) {
                        Some(r) => (r, start),
                        None => (bad_gateway(), format!("{start}, malformed proxy response")),
                    },
                    Outcome::Error {
                        error_type,
                        message,
                    } => (bad_gateway(), format!("{start}, {error_type}: {message}")),
                    Outcome::InitError(e) => (bad_gateway(), format!("{start}, init failed: {e}")),
                    Outcome::Crashed(e) => (bad_gateway(), format!("{start}, crashed: {e}")),
                    Outcome::TimedOut => (
                        bad_gateway(),
                        format!(
                            "{start}, timed out after {} s",
                            self.pools
                                .get(&route.function)
                                .map_or(0, |p| p.function().timeout.as_secs())
                        ),
                    ),
                }
            }
        };
        let h = reply.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            h.insert("x-amzn-requestid", v);
        }
        if let Ok(v) = HeaderValue::from_str(&trace) {
            h.insert("x-amzn-trace-id", v);
        }
        tracing::info!(
            "{method} {} → {} {} {:.1} ms {how}",
            uri.path(),
            route.function,
            reply.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0,
        );
        reply
    }

    /// Serves on `listener` until `shutdown` resolves, letting requests in flight finish.
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
        // API Gateway's payload limit.
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
