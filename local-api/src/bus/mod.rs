//! The runner's EventBridge: takes `PutEvents` for the template's buses (the functions'
//! `EVENTBRIDGE_ENDPOINT`), writes every event to `events.jsonl` in the state directory,
//! matches the template's rules' event patterns (`pattern`), and delivers to their targets:
//! a function of the template (invoked as EventBridge invokes one, asynchronously), or an
//! API destination (a real HTTP request to an `http://` URL, with its connection's header,
//! the target's headers and `InputPath`, at most its rate, no redirect followed). A
//! target's deliveries go one at a time in the order the events came; one that fails is
//! retried as EventBridge retries (401, 407, 409, 429, 5xx, a timeout or a refused
//! connection; backing off, within the target's `RetryPolicy`), holding up the ones after
//! it, then goes to its dead-letter queue: a line of `bus-dead-letters.jsonl`. Not emulated:
//! IAM (the bus policy, the target's role), the archive and its replays, input transformers,
//! HTTPS, EventBridge's retrying each event on its own.

pub mod pattern;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::runtime::{LogSink, Outcome, Pools};
use crate::template::{BusRule, Error, RuleTarget, TargetKind, Template};

/// How long an API destination's request may take (EventBridge's 5 s).
const DESTINATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The first pause before a failed delivery is retried (doubling, at most [`MAX_PAUSE`]).
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// The most entries one PutEvents takes.
const MAX_ENTRIES: usize = 10;

/// One event on its way to one target.
struct Delivery {
    event: Value,
    rule: String,
    put_at: Instant,
}

/// A rule on a bus, with the queue of each of its targets.
type Routed = (BusRule, Vec<mpsc::UnboundedSender<Delivery>>);

/// What the server shares with its handler and its delivery tasks.
struct Bus {
    /// Bus names (and ARNs) → the rules on it.
    buses: HashMap<String, Vec<Routed>>,
    region: String,
    state_dir: Option<PathBuf>,
    log: LogSink,
}

/// The runner's EventBridge as a component.
pub struct LocalBus {
    /// `http://127.0.0.1:<port>`: the functions' `EVENTBRIDGE_ENDPOINT`.
    pub endpoint: String,
    /// Each rule's targets, `Rule → function F` or `Rule → POST url`, for the banner.
    pub deliveries: Vec<String>,
    /// The functions rules target, once the runner has their pools.
    pools: Arc<OnceLock<Pools>>,
    task: tokio::task::JoinHandle<()>,
}

impl LocalBus {
    /// Serves the template's buses on a free port of 127.0.0.1, its rules' targets started;
    /// function targets are invoked once [`LocalBus::attach`] gives their pools.
    pub async fn start(
        template: &Template,
        region: &str,
        state_dir: Option<PathBuf>,
        log: LogSink,
    ) -> Result<Self, Error> {
        let pools: Arc<OnceLock<Pools>> = Arc::default();
        let mut buses: HashMap<String, Vec<_>> = HashMap::new();
        for (_, name) in template.buses()? {
            buses.entry(name.clone()).or_default();
            buses
                .entry(format!(
                    "arn:aws:events:{region}:{}:event-bus/{name}",
                    crate::ACCOUNT_ID
                ))
                .or_default();
        }
        // An API destination does not follow redirects: a 3xx is an answer, not delivered.
        let http = reqwest::Client::builder()
            .timeout(DESTINATION_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("the bus's HTTP client: {e}"))?;
        let mut deliveries = Vec::new();
        for rule in template.bus_rules()? {
            let mut queues = Vec::new();
            for target in &rule.targets {
                deliveries.push(match &target.kind {
                    TargetKind::Function(f) => format!("{} → function {f}", rule.id),
                    TargetKind::ApiDestination { method, url, .. } => {
                        // Built without TLS: say so at the start, not at each event's retries.
                        if !url.starts_with("http://") {
                            return Err(format!(
                                "{}: the local runner posts to http:// URLs only, not {url}",
                                rule.id
                            )
                            .into());
                        }
                        format!("{} → {method} {url}", rule.id)
                    }
                });
                let (send, receive) = mpsc::unbounded_channel();
                let worker = Worker {
                    target: target.clone(),
                    pools: pools.clone(),
                    http: http.clone(),
                    region: region.to_owned(),
                    state_dir: state_dir.clone(),
                    log: log.clone(),
                };
                tokio::spawn(worker.run(receive));
                queues.push(send);
            }
            let arn = format!(
                "arn:aws:events:{region}:{}:event-bus/{}",
                crate::ACCOUNT_ID,
                rule.bus
            );
            for key in [rule.bus.clone(), arn] {
                buses
                    .entry(key)
                    .or_default()
                    .push((rule.clone(), queues.clone()));
            }
        }
        let bus = Arc::new(Bus {
            buses,
            region: region.to_owned(),
            state_dir,
            log,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let app = axum::Router::new()
            .route("/", axum::routing::post(put_events))
            .with_state(bus);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("embedded EventBridge stopped: {e}");
            }
        });
        Ok(Self {
            endpoint,
            deliveries,
            pools,
            task,
        })
    }

    /// Gives the bus the pools of the functions its rules target.
    pub fn attach(&self, pools: Pools) {
        let _ = self.pools.set(pools);
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = json!({"__type": kind, "message": message.into()});
    (
        status,
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

/// `AWSEvents.PutEvents`: each entry checked as EventBridge checks it, written to the log
/// and delivered to the rules it matches; an entry that fails its checks is answered as
/// failed, the others are taken.
async fn put_events(State(bus): State<Arc<Bus>>, headers: HeaderMap, body: String) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if target != "AWSEvents.PutEvents" {
        return error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("the local EventBridge takes PutEvents only, not {target:?}"),
        );
    }
    let request: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                e.to_string(),
            );
        }
    };
    let entries = request["Entries"].as_array().cloned().unwrap_or_default();
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            format!("Entries must hold 1 to {MAX_ENTRIES} entries"),
        );
    }
    let mut answers = Vec::new();
    let mut failed = 0;
    for entry in &entries {
        match bus.take(entry) {
            Ok(id) => answers.push(json!({"EventId": id})),
            Err((code, message)) => {
                failed += 1;
                answers.push(json!({"ErrorCode": code, "ErrorMessage": message}));
            }
        }
    }
    let body = json!({"FailedEntryCount": failed, "Entries": answers});
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

impl Bus {
    /// One entry: checked, made the event EventBridge delivers, logged, queued to every
    /// matching rule's targets. Its event id, or why it failed.
    fn take(&self, entry: &Value) -> Result<String, (&'static str, String)> {
        let name = entry["EventBusName"].as_str().unwrap_or("default");
        let Some(rules) = self.buses.get(name) else {
            return Err((
                "NotFoundException",
                format!("no event bus {name:?} in the template"),
            ));
        };
        let field = |key: &str| {
            entry[key]
                .as_str()
                .filter(|s| !s.is_empty())
                .ok_or(("InvalidArgument", format!("{key} is required")))
        };
        let (source, detail_type, detail) =
            (field("Source")?, field("DetailType")?, field("Detail")?);
        if source.starts_with("aws.") {
            return Err((
                "InvalidArgument",
                "a Source starting aws. is AWS's".to_owned(),
            ));
        }
        let detail: Value = serde_json::from_str(detail)
            .ok()
            .filter(Value::is_object)
            .ok_or(("MalformedDetail", "Detail is not a JSON object".to_owned()))?;
        let id = uuid::Uuid::new_v4().to_string();
        let time = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        let event = json!({
            "version": "0",
            "id": id,
            "detail-type": detail_type,
            "source": source,
            "account": crate::ACCOUNT_ID,
            "time": time,
            "region": self.region,
            "resources": entry["Resources"].as_array().cloned().unwrap_or_default(),
            "detail": detail,
        });
        self.append(&event);
        let put_at = Instant::now();
        for (rule, queues) in rules {
            if !pattern::matches(&rule.pattern, &event) {
                continue;
            }
            for queue in queues {
                let _ = queue.send(Delivery {
                    event: event.clone(),
                    rule: rule.id.clone(),
                    put_at,
                });
            }
        }
        Ok(id)
    }

    /// Appends the event to `events.jsonl`.
    fn append(&self, event: &Value) {
        let Some(dir) = &self.state_dir else {
            return;
        };
        if let Err(e) = append_line(dir, shared::localstate::EVENTS_LOG, event) {
            (self.log)(&format!(
                "bus: writing {}: {e}",
                shared::localstate::EVENTS_LOG
            ));
        }
    }
}

fn append_line(dir: &std::path::Path, name: &str, value: &Value) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))?;
    file.write_all(format!("{value}\n").as_bytes())
}

/// Delivers one target's events, in order.
struct Worker {
    target: RuleTarget,
    pools: Arc<OnceLock<Pools>>,
    http: reqwest::Client,
    region: String,
    state_dir: Option<PathBuf>,
    log: LogSink,
}

/// Why a delivery failed, and whether EventBridge would try it again.
struct Failed {
    code: &'static str,
    message: String,
    retry: bool,
}

impl Worker {
    async fn run(self, mut deliveries: mpsc::UnboundedReceiver<Delivery>) {
        let mut last_sent: Option<Instant> = None;
        while let Some(d) = deliveries.recv().await {
            let input = match &self.target.input_path {
                Some(path) => at_path(&d.event, path).cloned().unwrap_or(Value::Null),
                None => d.event.clone(),
            };
            let mut pause = FIRST_PAUSE;
            let mut retries = 0;
            loop {
                if let (
                    TargetKind::ApiDestination {
                        rate_per_second, ..
                    },
                    Some(at),
                ) = (&self.target.kind, last_sent)
                {
                    let gap = Duration::from_secs(1) / (*rate_per_second).max(1);
                    if let Some(wait) = gap.checked_sub(at.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                }
                last_sent = Some(Instant::now());
                let Err(failed) = self.send(&input).await else {
                    (self.log)(&format!(
                        "bus: {} → {}: delivered {}",
                        d.rule, self.target.id, d.event["detail-type"]
                    ));
                    break;
                };
                let aged = d.put_at.elapsed() + pause > self.target.max_event_age;
                if !failed.retry || retries >= self.target.max_retries || aged {
                    self.dead_letter(&d, &failed, retries);
                    break;
                }
                (self.log)(&format!(
                    "bus: {} → {}: {} ({}), trying again",
                    d.rule, self.target.id, failed.code, failed.message
                ));
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
                retries += 1;
            }
        }
    }

    async fn send(&self, input: &Value) -> Result<(), Failed> {
        match &self.target.kind {
            TargetKind::Function(id) => self.invoke(id, input).await,
            TargetKind::ApiDestination {
                url, method, auth, ..
            } => self.request(url, method, auth.as_ref(), input).await,
        }
    }

    async fn invoke(&self, function: &str, input: &Value) -> Result<(), Failed> {
        let Some(pool) = self.pools.get().and_then(|p| p.get(function)) else {
            return Err(Failed {
                code: "ResourceNotFoundException",
                message: format!("no function {function} runs"),
                retry: false,
            });
        };
        let invoked = pool
            .invoke(
                uuid::Uuid::new_v4().to_string(),
                crate::event::trace_id(),
                input.to_string().into_bytes(),
            )
            .await;
        match invoked.outcome {
            Outcome::Response(_) => Ok(()),
            other => Err(Failed {
                code: "LambdaFunctionFailed",
                message: format!("{other:?}"),
                retry: true,
            }),
        }
    }

    async fn request(
        &self,
        url: &str,
        method: &str,
        auth: Option<&(String, String)>,
        input: &Value,
    ) -> Result<(), Failed> {
        let method =
            reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::POST);
        // EventBridge's defaults, then the target's headers and the connection's over them (a
        // header set twice is replaced, not sent twice).
        let mut headers = reqwest::header::HeaderMap::new();
        let defaults = [
            ("user-agent", "Amazon/EventBridge/ApiDestinations"),
            ("content-type", "application/json; charset=utf-8"),
        ];
        let set = defaults
            .into_iter()
            .chain(
                self.target
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .chain(auth.map(|(k, v)| (k.as_str(), v.as_str())));
        for (name, value) in set {
            match (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_str(value),
            ) {
                (Ok(name), Ok(value)) => {
                    headers.insert(name, value);
                }
                _ => tracing::warn!("bus: header {name:?} is not a valid HTTP header; not sent"),
            }
        }
        let request = self.http.request(method, url).headers(headers);
        let body = match input {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match request.body(body).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => {
                let status = r.status().as_u16();
                Err(Failed {
                    code: "SdkClientException",
                    message: format!("the endpoint answered {status}"),
                    retry: matches!(status, 401 | 407 | 409 | 429 | 500..=599),
                })
            }
            Err(e) => Err(Failed {
                code: if e.is_timeout() {
                    "Timeout"
                } else {
                    "ConnectionError"
                },
                message: e.to_string(),
                retry: true,
            }),
        }
    }

    /// The target's dead-letter queue: a line of `bus-dead-letters.jsonl` with the event and
    /// the attributes EventBridge puts on the SQS message.
    fn dead_letter(&self, d: &Delivery, failed: &Failed, retries: u32) {
        let arn = |kind: &str, id: &str| {
            format!(
                "arn:aws:events:{}:{}:{kind}/{id}",
                self.region,
                crate::ACCOUNT_ID
            )
        };
        let target_arn = match &self.target.kind {
            TargetKind::Function(id) => format!(
                "arn:aws:lambda:{}:{}:function:{id}",
                self.region,
                crate::ACCOUNT_ID
            ),
            TargetKind::ApiDestination { id, .. } => arn("api-destination", id),
        };
        (self.log)(&format!(
            "bus: {} → {}: gave up after {retries} retries: {} ({})",
            d.rule, self.target.id, failed.code, failed.message
        ));
        let (Some(dir), Some(queue)) = (&self.state_dir, &self.target.dead_letter) else {
            return;
        };
        let line = json!({
            "queue": queue,
            "body": d.event,
            "attributes": {
                "RULE_ARN": arn("rule", &d.rule),
                "TARGET_ARN": target_arn,
                "ERROR_CODE": failed.code,
                "ERROR_MESSAGE": failed.message,
                "RETRY_ATTEMPTS": retries,
            },
        });
        if let Err(e) = append_line(dir, shared::localstate::BUS_DEAD_LETTERS, &line) {
            (self.log)(&format!("bus: writing the dead letter: {e}"));
        }
    }
}

/// The value at a JSONPath of plain keys (`$.detail`, `$.detail.data`).
fn at_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let rest = path.strip_prefix('$')?;
    rest.split('.')
        .filter(|k| !k.is_empty())
        .try_fold(v, |v, k| v.get(k))
}
