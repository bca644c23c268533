//! The Profiles API on localhost, as API Gateway and Lambda would run it: routes come from
//! `template.yaml`; each HTTP request is matched to a route, passes the API's Lambda
//! authorizer ([`authorizer`]) and usage-plan throttle ([`throttle`]) where the template
//! puts them, becomes the REST API (v1) proxy event API Gateway delivers, goes to the
//! function's own binary through the Lambda Runtime API ([`runtime`]), and its proxy
//! response goes back as HTTP; API Gateway's own answers follow the template's
//! `GatewayResponses` ([`responses`]). Data lives in an embedded DynamoDB (dynoxide) or any
//! engine named by URL, with a development API key made there ([`devkey`]).

pub mod authorizer;
pub mod binaries;
pub mod devkey;
pub mod responses;
pub mod runtime;
pub mod template;
pub mod throttle;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use shared::config::Secret;

use crate::binaries::Binaries;
use crate::responses::Kind;
use crate::runtime::{Environment, LogSink, Outcome, Pool, Pools};
use crate::template::{Api, ApiKeySource, Error, Route, Template};

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
            "path": format!("/{stage}{}", uri.path()),
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
    /// Template parameter values over their `Default`s (`--parameter-overrides`).
    pub parameter_overrides: Vec<(String, String)>,
    /// Where the runner keeps its files: the development key (`dev-api-key`, unless the
    /// data is in memory) and the embedded engine's URL (`engine-endpoint`). `None` keeps
    /// no files: a new development key at every start.
    pub state_dir: Option<PathBuf>,
    /// Where every log line (requests, and the functions' own output) also goes.
    pub log: Option<LogSink>,
}

impl Default for Options {
    /// In memory, no binaries, 4 instances per function, `us-east-1`, no files.
    fn default() -> Self {
        Self {
            storage: Storage::Memory,
            binaries: Binaries::new(),
            concurrency: 4,
            region: "us-east-1".into(),
            parameter_overrides: Vec::new(),
            state_dir: None,
            log: None,
        }
    }
}

/// A running local API: routes, one pool of instances per function, the engine.
pub struct Server {
    pub routes: Vec<Route>,
    /// The template's APIs, by logical id.
    pub apis: HashMap<String, Api>,
    pub pools: Pools,
    /// The DynamoDB endpoint the functions use.
    pub endpoint: String,
    pub table: String,
    /// Whether the table was created by this start.
    pub created_table: bool,
    /// The development API key (tenant `default`, principal `developer`, every scope).
    pub dev_api_key: Secret,
    /// Where the engine's URL was written for the `keys` command, if it was.
    pub engine_endpoint_file: Option<PathBuf>,
    region: String,
    cache: authorizer::Cache,
    buckets: throttle::Buckets,
    log: Option<LogSink>,
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
        let template = &template
            .clone()
            .with_parameter_overrides(&options.parameter_overrides)?;
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
        let apis: HashMap<String, Api> = template
            .apis()?
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect();
        let authorizer_functions: Vec<&str> = routes
            .iter()
            .filter_map(|r| {
                let api = apis.get(r.api.as_deref()?)?;
                Some(
                    api.authorizers
                        .get(r.authorizer.as_deref()?)?
                        .function
                        .as_str(),
                )
            })
            .collect();
        let environment = Environment {
            region: options.region.clone(),
            vars,
        };
        let mut pools = Pools::new();
        for function in template.functions(&table)? {
            let serves_a_route = routes.iter().any(|r| r.function == function.id);
            if !serves_a_route && !authorizer_functions.contains(&function.id.as_str()) {
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
            )
            .with_log(options.log.clone());
            pools.insert(function.id.clone(), Arc::new(pool));
        }

        let store = shared::store::Store::new(client, table.clone());
        // In-memory data forgets the key with the data: a new one each start, kept nowhere.
        let key_dir = match options.storage {
            Storage::Memory => None,
            _ => options.state_dir.as_deref(),
        };
        let dev_api_key = devkey::ensure(&store, key_dir).await?;
        let engine_endpoint_file = match &options.state_dir {
            Some(dir) => {
                let file = dir.join(devkey::ENGINE_ENDPOINT_FILE);
                if engine.is_some() {
                    std::fs::create_dir_all(dir)?;
                    std::fs::write(&file, format!("{endpoint}\n"))?;
                    Some(file)
                } else {
                    // Another engine: a URL left by an earlier embedded one is stale.
                    let _ = std::fs::remove_file(&file);
                    None
                }
            }
            None => None,
        };
        Ok(Self {
            routes,
            apis,
            pools,
            endpoint,
            table,
            created_table,
            dev_api_key,
            engine_endpoint_file,
            region: options.region,
            cache: authorizer::Cache::default(),
            buckets: throttle::Buckets::default(),
            log: options.log,
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
        // The engine is gone: its URL no longer leads anywhere.
        if let Some(file) = &self.engine_endpoint_file
            && std::fs::read_to_string(file).is_ok_and(|url| url.trim() == self.endpoint)
        {
            let _ = std::fs::remove_file(file);
        }
    }
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

/// The id API Gateway gives a usage key in `requestContext.identity.apiKeyId`: API Gateway's
/// own id of the key, which the runner has no registry of; a stable 10-character id made
/// from the key stands in.
fn api_key_id(key: &str) -> String {
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
fn trace_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("Root=1-{secs:08x}-{};Sampled=0", &random[..24])
}

/// Why a request went no further than the gateway, and what to log about it.
struct Stop {
    kind: Kind,
    /// Who answered, for the log line: the function or the authorizer.
    by: String,
    how: String,
}

impl Server {
    /// Writes one line to the runner's log, and to the log sink if there is one.
    fn log(&self, line: &str) {
        tracing::info!("{line}");
        if let Some(sink) = &self.log {
            sink(line);
        }
    }

    /// The API a request on no route is answered for: the template's only
    /// `AWS::Serverless::Api`, if it has one.
    fn only_api(&self) -> Option<&Api> {
        let mut apis = self.apis.values();
        match (apis.next(), apis.next()) {
            (Some(api), None) => Some(api),
            _ => None,
        }
    }

    /// The authorizer and usage-plan steps of a request on `route`, API Gateway's order:
    /// identity sources, the authorizer (or its cached answer) and its policy, then the
    /// usage key and its throttle. On success `event` carries what they add to
    /// `requestContext`; the `String` says how the authorizer answered, for the log.
    async fn admit(
        &self,
        route: &Route,
        api: Option<&Api>,
        event: &mut Value,
        headers: &HeaderMap,
        trace: &str,
    ) -> Result<String, Stop> {
        let Some(api) = api else {
            return Ok(String::new());
        };
        let mut how = String::new();
        let mut usage_key = None;
        if let Some(name) = &route.authorizer {
            let stop = |kind, how: String| Stop {
                kind,
                by: name.clone(),
                how,
            };
            let (Some(authorizer), Some(pool)) = (
                api.authorizers.get(name),
                api.authorizers
                    .get(name)
                    .and_then(|a| self.pools.get(&a.function)),
            ) else {
                return Err(stop(
                    Kind::AuthorizerConfigurationError,
                    "no such authorizer".into(),
                ));
            };
            let arn = method_arn(
                &self.region,
                &api.stage,
                event["httpMethod"].as_str().unwrap_or_default(),
                event["path"].as_str().unwrap_or_default(),
            );
            let decision =
                authorizer::authorize(&api.id, authorizer, pool, &self.cache, event, &arn, trace)
                    .await;
            how = decision.how;
            let allowed = decision.result.map_err(|kind| stop(kind, how.clone()))?;
            event["requestContext"]["authorizer"] = allowed.request_context();
            usage_key = allowed.answer.usage_key;
        }
        if route.api_key_required {
            let key = match api.api_key_source {
                ApiKeySource::Authorizer => usage_key,
                ApiKeySource::Header => headers
                    .get("x-api-key")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            }
            .filter(|k| !k.is_empty());
            let stop = |kind, why: &str| Stop {
                kind,
                by: route.function.clone(),
                how: [how.as_str(), why]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let Some(key) = key else {
                return Err(stop(Kind::InvalidApiKey, "no usage key"));
            };
            if let Some(t) = api.throttle
                && !self.buckets.take(&api.id, &key, t)
            {
                return Err(stop(Kind::Throttled, "throttled"));
            }
            let identity = &mut event["requestContext"]["identity"];
            identity["apiKeyId"] = json!(api_key_id(&key));
            identity["apiKey"] = json!(key);
        }
        Ok(how)
    }

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
        let request_id = uuid::Uuid::new_v4().to_string();
        let trace = trace_id();
        let (mut reply, by, how) = self
            .answer(&method, &uri, &headers, &body, peer, &request_id, &trace)
            .await;
        let h = reply.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            h.insert("x-amzn-requestid", v);
        }
        if let Ok(v) = HeaderValue::from_str(&trace) {
            h.insert("x-amzn-trace-id", v);
        }
        let how = if how.is_empty() {
            String::new()
        } else {
            format!(" {how}")
        };
        self.log(&format!(
            "{method} {} → {by} {} {:.1} ms{how}",
            uri.path(),
            reply.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0,
        ));
        reply
    }

    /// The answer to a request, who gave it (the function, the authorizer, or "no route")
    /// and how it went.
    #[allow(clippy::too_many_arguments)]
    async fn answer(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        peer: SocketAddr,
        request_id: &str,
        trace: &str,
    ) -> (axum::response::Response, String, String) {
        let Some(matched) = route(&self.routes, method.as_str(), uri.path()) else {
            let ctx = responses::Context {
                request_id,
                headers,
                event: None,
            };
            let reply = responses::render(self.only_api(), Kind::MissingAuthenticationToken, &ctx);
            return (reply, "no route".into(), String::new());
        };
        let route = matched.route;
        let api = route.api.as_deref().and_then(|id| self.apis.get(id));
        let source_ip = peer.ip().to_string();
        let mut event = rest_event(
            &matched,
            &Incoming {
                method: method.as_str(),
                uri,
                headers,
                body,
                source_ip: &source_ip,
                request_id,
                stage: api.map_or(STAGE, |a| a.stage.as_str()),
            },
        );
        let gateway = |kind: Kind, event: &Value| {
            let ctx = responses::Context {
                request_id,
                headers,
                event: Some(event),
            };
            responses::render(api, kind, &ctx)
        };
        let authorized = match self.admit(route, api, &mut event, headers, trace).await {
            Ok(how) => how,
            Err(stop) => return (gateway(stop.kind, &event), stop.by, stop.how),
        };
        let Some(pool) = self.pools.get(&route.function).cloned() else {
            let reply = gateway(Kind::IntegrationFailure, &event);
            return (reply, route.function.clone(), "no instance pool".into());
        };
        // The invocation runs on even when the gateway stops waiting, as in Lambda.
        let invocation = tokio::spawn({
            let (id, trace) = (request_id.to_owned(), trace.to_owned());
            let payload = event.to_string().into_bytes();
            async move { pool.invoke(id, trace, payload).await }
        });
        let (reply, how) = match tokio::time::timeout(route.integration_timeout, invocation).await {
            Err(_) => (
                gateway(Kind::IntegrationTimeout, &event),
                "integration timeout".to_owned(),
            ),
            Ok(Err(_)) => (
                gateway(Kind::IntegrationFailure, &event),
                "invocation aborted".to_owned(),
            ),
            Ok(Ok(invoked)) => {
                let start = match invoked.cold {
                    Some(init) => format!(
                        "cold #{} (init {:.1} ms)",
                        invoked.instance,
                        init.as_secs_f64() * 1000.0
                    ),
                    None => format!("warm #{}", invoked.instance),
                };
                let failed = |why: String| (gateway(Kind::IntegrationFailure, &event), why);
                match invoked.outcome {
                    Outcome::Response(payload) => match proxy_response(&payload) {
                        Some(r) => (r, start),
                        None => failed(format!("{start}, malformed proxy response")),
                    },
                    Outcome::Error {
                        error_type,
                        message,
                    } => failed(format!("{start}, {error_type}: {message}")),
                    Outcome::InitError(e) => failed(format!("{start}, init failed: {e}")),
                    Outcome::Crashed(e) => failed(format!("{start}, crashed: {e}")),
                    Outcome::TimedOut => failed(format!(
                        "{start}, timed out after {} s",
                        self.pools
                            .get(&route.function)
                            .map_or(0, |p| p.function().timeout.as_secs())
                    )),
                }
            }
        };
        let how = match authorized.as_str() {
            "" => how,
            a => format!("{how}; {a}"),
        };
        (reply, route.function.clone(), how)
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
