//! The Profiles API on localhost, as API Gateway and Lambda would run it: routes come from
//! `template.yaml`; each HTTP request is matched to a route, passes the API's Lambda
//! authorizer ([`authorizer`]) and usage-plan throttle ([`throttle`]) where the template
//! puts them, becomes the REST API (v1) proxy event API Gateway delivers, goes to the
//! function's own binary through the Lambda Runtime API ([`runtime`]), and its proxy
//! response goes back as HTTP; API Gateway's own answers follow the template's
//! `GatewayResponses` ([`responses`]). Data lives in an embedded DynamoDB (dynoxide) or any
//! engine named by URL, with a development API key made there ([`devkey`]); objects in an
//! embedded S3 whose object-created events invoke the functions the template subscribes
//! ([`s3`]); API keys and usage plans in an embedded API Gateway that admits only usage keys
//! registered in a plan ([`gateway`]).

pub mod authorizer;
pub mod binaries;
pub mod bus;
pub mod cli;
pub mod devkey;
pub mod engine;
pub mod event;
pub mod gateway;
pub mod meter;
mod mount;
pub mod receiver;
pub mod responses;
pub mod runtime;
pub mod s3;
mod start;
pub mod stream;
pub mod template;
pub mod throttle;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use shared::config::Secret;

pub use crate::event::{
    ACCOUNT_ID, API_ID, Incoming, Matched, STAGE, method_arn, rest_event, route,
};

pub use crate::mount::Mount;

use crate::binaries::Binaries;
use crate::event::{api_key_id, proxy_response, trace_id};
use crate::responses::ResponseType;
use crate::runtime::{LogSink, Outcome, Pools};
use crate::template::{Api, ApiKeySource, Route};

/// API Gateway's payload limit (10 MB): a larger request is answered 413 by the gateway.
pub const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

/// Whether reading a body stopped at [`MAX_PAYLOAD_BYTES`] (not a connection that broke).
fn is_over_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// The table name the local API uses on its own engine.
pub const TABLE: &str = shared::localstate::TABLE;

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
    /// The embedded S3's port on 127.0.0.1 (0: a free one).
    pub s3_port: u16,
    /// The embedded API Gateway management API's port on 127.0.0.1 (0: a free one).
    pub apigateway_port: u16,
    /// Where the API is served.
    pub mount: Mount,
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
            s3_port: 0,
            apigateway_port: 0,
            mount: Mount::Stage,
        }
    }
}

/// A running local API: its routes and APIs, and its components, each with its own start and
/// stop: the engine, the S3, the API Gateway, and one pool of instances per function.
pub struct Server {
    pub routes: Vec<Route>,
    /// The template's APIs, by logical id.
    pub apis: HashMap<String, Api>,
    pub pools: Pools,
    pub engine: engine::Engine,
    pub s3: s3::LocalS3,
    pub gateway: gateway::ApiGateway,
    /// The embedded EventBridge, when the template has a bus.
    pub bus: Option<bus::LocalBus>,
    /// The development API key (tenant `default`, principal `developer`, every scope).
    pub dev_api_key: Secret,
    pub mount: Mount,
    region: String,
    cache: authorizer::Cache,
    buckets: throttle::Buckets,
    log: Option<LogSink>,
}

/// One request as the runner received it, with the ids it was given.
struct Call<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    peer: SocketAddr,
    request_id: &'a str,
    trace: &'a str,
}

/// The answer to a request, who gave it (the function, the authorizer, "no route" or the
/// gateway) and how it went: what its log line says.
struct Answered {
    reply: axum::response::Response,
    by: String,
    how: String,
}

/// Why a request went no further than the gateway, and what to log about it.
struct Stop {
    kind: ResponseType,
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
                    ResponseType::AuthorizerConfigurationError,
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
                return Err(stop(ResponseType::InvalidApiKey, "no usage key"));
            };
            // As API Gateway: an enabled API key with this value, in a plan of this API.
            let plan_ids: Vec<String> = api.plans.iter().map(|p| p.id.clone()).collect();
            let Some(plan) = self.gateway.registry.plan_of(&key, &plan_ids) else {
                return Err(stop(
                    ResponseType::InvalidApiKey,
                    "usage key not in a usage plan of the API",
                ));
            };
            let throttle = api
                .plans
                .iter()
                .find(|p| p.id == plan)
                .and_then(|p| p.throttle);
            if let Some(t) = throttle
                && !self.buckets.take(&plan, &key, t)
            {
                return Err(stop(ResponseType::Throttled, "throttled"));
            }
            let identity = &mut event["requestContext"]["identity"];
            identity["apiKeyId"] = json!(api_key_id(&key));
            identity["apiKey"] = json!(key);
        }
        Ok(how)
    }

    /// Answers one HTTP request as API Gateway and the function would; `body` is `None` when
    /// it was over API Gateway's payload limit.
    pub async fn handle(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Option<Bytes>,
        peer: SocketAddr,
    ) -> axum::response::Response {
        let started = Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let trace = trace_id();
        let call = Call {
            method: &method,
            uri: &uri,
            headers: &headers,
            peer,
            request_id: &request_id,
            trace: &trace,
        };
        let mut answered = match &body {
            Some(body) => self.answer(&call, body).await,
            // API Gateway refuses it before routing: the template's REQUEST_TOO_LARGE.
            None => Answered {
                reply: self.gateway_answer(
                    self.only_api(),
                    ResponseType::RequestTooLarge,
                    &call,
                    None,
                ),
                by: "gateway".to_owned(),
                how: format!("body over {MAX_PAYLOAD_BYTES} bytes"),
            },
        };
        let h = answered.reply.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            h.insert("x-amzn-requestid", v);
        }
        if let Ok(v) = HeaderValue::from_str(&trace) {
            h.insert("x-amzn-trace-id", v);
        }
        let how = if answered.how.is_empty() {
            String::new()
        } else {
            format!(" {}", answered.how)
        };
        self.log(&format!(
            "{method} {} → {} {} {:.1} ms{how}",
            uri.path(),
            answered.by,
            answered.reply.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0,
        ));
        answered.reply
    }

    /// One of API Gateway's own answers: `api`'s gateway response of `kind` (API Gateway's
    /// default without an API), with the request's event when it matched a route.
    fn gateway_answer(
        &self,
        api: Option<&Api>,
        kind: ResponseType,
        call: &Call<'_>,
        event: Option<&Value>,
    ) -> axum::response::Response {
        let ctx = responses::Context {
            request_id: call.request_id,
            headers: call.headers,
            event,
        };
        responses::render(api, kind, &ctx)
    }

    /// The answer to a request that arrived whole: matched to a route (else the gateway's
    /// 404), admitted by the authorizer and the usage plan (else their answer), then the
    /// function's.
    async fn answer(&self, call: &Call<'_>, body: &[u8]) -> Answered {
        let (base_path, path) = self.split_path(call.uri.path());
        let matched = route(&self.routes, call.method.as_str(), path).filter(|m| {
            // Under a stage, only that stage's API's routes.
            self.mount == Mount::Root || self.stage_of(m.route) == base_path.trim_start_matches('/')
        });
        let Some(matched) = matched else {
            let reply = self.gateway_answer(
                self.only_api(),
                ResponseType::MissingAuthenticationToken,
                call,
                None,
            );
            return Answered {
                reply,
                by: "no route".into(),
                how: String::new(),
            };
        };
        let route = matched.route;
        let api = route.api.as_deref().and_then(|id| self.apis.get(id));
        let source_ip = call.peer.ip().to_string();
        let mut event = rest_event(
            &matched,
            &Incoming {
                method: call.method.as_str(),
                uri: call.uri,
                headers: call.headers,
                body,
                source_ip: &source_ip,
                request_id: call.request_id,
                stage: api.map_or(STAGE, |a| a.stage.as_str()),
                base_path,
                path,
            },
        );
        let authorized = match self
            .admit(route, api, &mut event, call.headers, call.trace)
            .await
        {
            Ok(how) => how,
            Err(stop) => {
                return Answered {
                    reply: self.gateway_answer(api, stop.kind, call, Some(&event)),
                    by: stop.by,
                    how: stop.how,
                };
            }
        };
        let (reply, how) = match self.invoke(route, &event, call).await {
            Ok(invoked) => invoked,
            Err((kind, why)) => (self.gateway_answer(api, kind, call, Some(&event)), why),
        };
        let how = match authorized.as_str() {
            "" => how,
            a => format!("{how}; {a}"),
        };
        Answered {
            reply,
            by: route.function.clone(),
            how,
        }
    }

    /// Invokes `route`'s function with `event`, waiting at most the route's integration
    /// timeout: its proxy response and how the invocation went, or the gateway response
    /// that stands for its failure and why.
    async fn invoke(
        &self,
        route: &Route,
        event: &Value,
        call: &Call<'_>,
    ) -> Result<(axum::response::Response, String), (ResponseType, String)> {
        let failure = ResponseType::IntegrationFailure;
        let Some(pool) = self.pools.get(&route.function).cloned() else {
            return Err((failure, "no instance pool".into()));
        };
        let timeout = pool.function().timeout.as_secs();
        // The invocation runs on even when the gateway stops waiting, as in Lambda.
        let invocation = tokio::spawn({
            let (id, trace) = (call.request_id.to_owned(), call.trace.to_owned());
            let payload = event.to_string().into_bytes();
            async move { pool.invoke(id, trace, payload).await }
        });
        let invoked = match tokio::time::timeout(route.integration_timeout, invocation).await {
            Err(_) => {
                return Err((
                    ResponseType::IntegrationTimeout,
                    "integration timeout".into(),
                ));
            }
            Ok(Err(_)) => return Err((failure, "invocation aborted".into())),
            Ok(Ok(invoked)) => invoked,
        };
        let start = match invoked.cold {
            Some(init) => format!(
                "cold #{} (init {:.1} ms)",
                invoked.instance,
                init.as_secs_f64() * 1000.0
            ),
            None => format!("warm #{}", invoked.instance),
        };
        let why = match invoked.outcome {
            Outcome::Response(payload) => match proxy_response(&payload) {
                Some(r) => return Ok((r, start)),
                None => "malformed proxy response".to_owned(),
            },
            Outcome::Error {
                error_type,
                message,
            } => format!("{error_type}: {message}"),
            Outcome::InitError(e) => format!("init failed: {e}"),
            Outcome::Crashed(e) => format!("crashed: {e}"),
            Outcome::TimedOut => format!("timed out after {timeout} s"),
        };
        Err((failure, format!("{start}, {why}")))
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
                  body: axum::body::Body| {
                let server = self.clone();
                async move {
                    let body = match axum::body::to_bytes(body, MAX_PAYLOAD_BYTES).await {
                        Ok(body) => Some(body),
                        Err(e) if is_over_limit(&e) => None,
                        // The client went away mid-body: nobody reads this answer.
                        Err(_) => return axum::http::StatusCode::BAD_REQUEST.into_response(),
                    };
                    server.handle(method, uri, headers, body, peer).await
                }
            };
        // The body is read above, up to API Gateway's limit and no further.
        let router = axum::Router::new()
            .fallback(handler)
            .layer(axum::extract::DefaultBodyLimit::disable());
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}
