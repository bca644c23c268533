//! The template's events side: the functions' `DynamoDB` (stream) event sources, with the
//! event source mapping's settings; the EventBridge buses (`AWS::Events::EventBus`) and the
//! rules on them (`AWS::Events::Rule`: the event pattern, and each target, a function of
//! the template or an API destination with its connection's auth, retry policy and
//! dead-letter queue).

use std::time::Duration;

use yaml_serde::Value;

use super::{Error, Template, reference, text};

/// A function's `DynamoDB` event: the table's stream, delivered in batches.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamSource {
    /// The event's name in the template.
    pub name: String,
    /// The function's logical id.
    pub function: String,
    /// `BatchSize` (Lambda's default 100).
    pub batch_size: usize,
    /// `StartingPosition`: `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    /// `FunctionResponseTypes` holds `ReportBatchItemFailures`.
    pub reports_item_failures: bool,
    /// `BisectBatchOnFunctionError`.
    pub bisect: bool,
    /// `MaximumRetryAttempts`; `None` (or -1) retries until the record expires.
    pub max_retries: Option<u32>,
    /// `MaximumRecordAgeInSeconds`; `None` (or -1): the stream's own 24 h.
    pub max_record_age: Option<Duration>,
    /// `DestinationConfig.OnFailure.Destination`, resolved (an ARN).
    pub on_failure: Option<String>,
}

/// A rule on a bus.
#[derive(Clone, Debug, PartialEq)]
pub struct BusRule {
    /// Its logical id.
    pub id: String,
    /// The bus's name.
    pub bus: String,
    /// `EventPattern`, resolved.
    pub pattern: serde_json::Value,
    pub targets: Vec<RuleTarget>,
}

/// A target of a rule.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleTarget {
    /// `Id`.
    pub id: String,
    pub kind: TargetKind,
    /// `InputPath` (`$.detail`, ...): the part of the event sent; the whole event when absent.
    pub input_path: Option<String>,
    /// `HttpParameters.HeaderParameters`, for an API destination.
    pub headers: Vec<(String, String)>,
    /// `RetryPolicy.MaximumRetryAttempts` (EventBridge's default 185).
    pub max_retries: u32,
    /// `RetryPolicy.MaximumEventAgeInSeconds` (EventBridge's default 24 h).
    pub max_event_age: Duration,
    /// `DeadLetterConfig.Arn`, resolved.
    pub dead_letter: Option<String>,
}

/// What a target is.
#[derive(Clone, Debug, PartialEq)]
pub enum TargetKind {
    /// A function of the template (its logical id), invoked asynchronously.
    Function(String),
    /// An `AWS::Events::ApiDestination`: an HTTP request to `url`.
    ApiDestination {
        /// Its logical id.
        id: String,
        url: String,
        method: String,
        /// The connection's header: `API_KEY`'s name and value, or `BASIC`'s
        /// `Authorization`.
        auth: Option<(String, String)>,
        /// `InvocationRateLimitPerSecond` (EventBridge's default 300).
        rate_per_second: u32,
    },
}

/// EventBridge's defaults for a target without a `RetryPolicy`.
const DEFAULT_TARGET_RETRIES: u32 = 185;
const DEFAULT_EVENT_AGE: Duration = Duration::from_secs(86_400);

impl Template {
    /// Every function's `DynamoDB` events.
    pub fn stream_sources(&self) -> Result<Vec<StreamSource>, Error> {
        let mut out = Vec::new();
        for (id, res) in self.resources() {
            if res["Type"].as_str() != Some("AWS::Serverless::Function") {
                continue;
            }
            for (name, event) in res["Properties"]["Events"]
                .as_mapping()
                .into_iter()
                .flatten()
            {
                if event["Type"].as_str() != Some("DynamoDB") {
                    continue;
                }
                let name = text(name, "an event's name")?;
                let what = format!("{id} event {name}");
                let p = &event["Properties"];
                let number = |key: &str| -> Result<Option<i64>, Error> {
                    match &p[key] {
                        Value::Null => Ok(None),
                        v => Ok(self
                            .resolve(v, "", &format!("{what} {key}"))?
                            .and_then(|s| s.parse().ok())),
                    }
                };
                let positive = |v: Option<i64>| v.filter(|n| *n >= 0);
                out.push(StreamSource {
                    name,
                    function: id.to_owned(),
                    batch_size: number("BatchSize")?
                        .and_then(|n| usize::try_from(n).ok())
                        .unwrap_or(100),
                    starting_position: text(
                        &p["StartingPosition"],
                        &format!("{what} StartingPosition"),
                    )?,
                    reports_item_failures: p["FunctionResponseTypes"].as_sequence().is_some_and(
                        |t| {
                            t.iter()
                                .any(|v| v.as_str() == Some("ReportBatchItemFailures"))
                        },
                    ),
                    bisect: p["BisectBatchOnFunctionError"].as_bool().unwrap_or(false),
                    max_retries: positive(number("MaximumRetryAttempts")?)
                        .and_then(|n| u32::try_from(n).ok()),
                    max_record_age: positive(number("MaximumRecordAgeInSeconds")?)
                        .and_then(|n| u64::try_from(n).ok())
                        .map(Duration::from_secs),
                    on_failure: match &p["DestinationConfig"]["OnFailure"]["Destination"] {
                        Value::Null => None,
                        v => self.resolve(v, "", &format!("{what} OnFailure"))?,
                    },
                });
            }
        }
        Ok(out)
    }

    /// The functions the table's stream and the buses' rules invoke (logical ids).
    pub fn invoked_by_events(&self) -> Result<Vec<String>, Error> {
        let mut ids: Vec<String> = self
            .stream_sources()?
            .into_iter()
            .map(|s| s.function)
            .collect();
        for rule in self.bus_rules()? {
            for target in rule.targets {
                if let TargetKind::Function(id) = target.kind {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }

    /// Every `AWS::Events::EventBus`: logical id and name.
    pub fn buses(&self) -> Result<Vec<(String, String)>, Error> {
        let mut out = Vec::new();
        for (id, res) in self.resources() {
            if res["Type"].as_str() == Some("AWS::Events::EventBus") {
                out.push((id.to_owned(), self.bus_name(id)?));
            }
        }
        Ok(out)
    }

    /// A bus's `Name`, resolved.
    pub(super) fn bus_name(&self, id: &str) -> Result<String, Error> {
        self.resolve(
            &self.doc["Resources"][id]["Properties"]["Name"],
            "",
            &format!("{id} Name"),
        )?
        .ok_or_else(|| format!("template.yaml: {id} has no Name").into())
    }

    /// Every `AWS::Events::Rule` on one of the template's buses.
    pub fn bus_rules(&self) -> Result<Vec<BusRule>, Error> {
        let mut out = Vec::new();
        for (id, res) in self.resources() {
            if res["Type"].as_str() != Some("AWS::Events::Rule") {
                continue;
            }
            let p = &res["Properties"];
            if p["State"].as_str().is_some_and(|s| s != "ENABLED") {
                continue;
            }
            let bus = self
                .resolve(&p["EventBusName"], "", &format!("{id} EventBusName"))?
                .unwrap_or_else(|| "default".to_owned());
            let pattern = self
                .resolve_json(&p["EventPattern"], &format!("{id} EventPattern"))?
                .ok_or_else(|| format!("template.yaml: {id}: no EventPattern"))?;
            let mut targets = Vec::new();
            for t in p["Targets"].as_sequence().into_iter().flatten() {
                targets.push(self.rule_target(id, t)?);
            }
            out.push(BusRule {
                id: id.to_owned(),
                bus,
                pattern,
                targets,
            });
        }
        Ok(out)
    }

    fn rule_target(&self, rule: &str, t: &Value) -> Result<RuleTarget, Error> {
        let what = format!("{rule} target");
        let target = match reference(&t["Arn"]) {
            Some(("GetAtt", target)) => target,
            _ => return Err(format!("template.yaml: {what}: Arn must be a !GetAtt …Arn").into()),
        };
        let Some((target_id, "Arn")) = target.split_once('.') else {
            return Err(format!("template.yaml: {what}: Arn must be a !GetAtt …Arn").into());
        };
        let kind = match self.doc["Resources"][target_id]["Type"].as_str() {
            Some("AWS::Serverless::Function") => TargetKind::Function(target_id.to_owned()),
            Some("AWS::Events::ApiDestination") => self.api_destination(target_id)?,
            other => {
                return Err(format!(
                    "template.yaml: {what}: a {other:?} target does not run locally (functions and API destinations do)"
                )
                .into());
            }
        };
        let mut headers = Vec::new();
        for (k, v) in t["HttpParameters"]["HeaderParameters"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            let k = text(k, "a header's name")?;
            if let Some(v) = self.resolve(v, "", &format!("{what} header {k}"))? {
                headers.push((k, v));
            }
        }
        let retry = &t["RetryPolicy"];
        Ok(RuleTarget {
            id: text(&t["Id"], &format!("{what} Id"))?,
            kind,
            input_path: t["InputPath"].as_str().map(str::to_owned),
            headers,
            max_retries: retry["MaximumRetryAttempts"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(DEFAULT_TARGET_RETRIES),
            max_event_age: retry["MaximumEventAgeInSeconds"]
                .as_u64()
                .map_or(DEFAULT_EVENT_AGE, Duration::from_secs),
            dead_letter: match &t["DeadLetterConfig"]["Arn"] {
                Value::Null => None,
                v => self.resolve(v, "", &format!("{what} DeadLetterConfig"))?,
            },
        })
    }

    fn api_destination(&self, id: &str) -> Result<TargetKind, Error> {
        let p = &self.doc["Resources"][id]["Properties"];
        let what = id.to_owned();
        let url = self
            .resolve(
                &p["InvocationEndpoint"],
                "",
                &format!("{what} InvocationEndpoint"),
            )?
            .ok_or_else(|| format!("template.yaml: {what}: no InvocationEndpoint"))?;
        let connection = match reference(&p["ConnectionArn"]) {
            Some(("GetAtt", target)) => {
                target
                    .strip_suffix(".Arn")
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        format!("template.yaml: {what}: ConnectionArn must be a !GetAtt …Arn")
                    })?
            }
            _ => {
                return Err(
                    format!("template.yaml: {what}: ConnectionArn must be a !GetAtt …Arn").into(),
                );
            }
        };
        let c = &self.doc["Resources"][connection.as_str()]["Properties"];
        let auth = match c["AuthorizationType"].as_str() {
            Some("API_KEY") => {
                let a = &c["AuthParameters"]["ApiKeyAuthParameters"];
                let name =
                    self.resolve(&a["ApiKeyName"], "", &format!("{connection} ApiKeyName"))?;
                let value =
                    self.resolve(&a["ApiKeyValue"], "", &format!("{connection} ApiKeyValue"))?;
                name.zip(value)
            }
            Some("BASIC") => {
                use base64::Engine as _;
                let a = &c["AuthParameters"]["BasicAuthParameters"];
                let user = self.resolve(&a["Username"], "", &format!("{connection} Username"))?;
                let pass = self.resolve(&a["Password"], "", &format!("{connection} Password"))?;
                user.zip(pass).map(|(u, p)| {
                    let token =
                        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                    ("Authorization".to_owned(), format!("Basic {token}"))
                })
            }
            other => {
                return Err(format!(
                    "template.yaml: {connection}: AuthorizationType {other:?} does not run locally (API_KEY and BASIC do)"
                )
                .into());
            }
        };
        Ok(TargetKind::ApiDestination {
            id: id.to_owned(),
            url,
            method: p["HttpMethod"].as_str().unwrap_or("POST").to_owned(),
            auth,
            rate_per_second: match &p["InvocationRateLimitPerSecond"] {
                Value::Null => 300,
                v => self
                    .resolve(v, "", &format!("{what} InvocationRateLimitPerSecond"))?
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(300),
            },
        })
    }

    /// A structured value (an event pattern) as JSON: mappings and sequences walked, `!If`
    /// picking its branch, `AWS::NoValue` dropping its key or item, a `!Ref` to a
    /// `CommaDelimitedList` parameter a list, every other value resolved as a string.
    pub(super) fn resolve_json(
        &self,
        v: &Value,
        what: &str,
    ) -> Result<Option<serde_json::Value>, Error> {
        use serde_json::Value as J;
        Ok(match v {
            Value::Null => None,
            Value::Mapping(m) => {
                let mut out = serde_json::Map::new();
                for (k, v) in m {
                    let k = text(k, &format!("{what}: a key"))?;
                    if let Some(v) = self.resolve_json(v, &format!("{what}.{k}"))? {
                        out.insert(k, v);
                    }
                }
                Some(J::Object(out))
            }
            Value::Sequence(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.extend(self.resolve_json(item, what)?);
                }
                Some(J::Array(out))
            }
            Value::Bool(b) => Some(J::Bool(*b)),
            Value::Number(n) => serde_json::from_str(&n.to_string()).ok(),
            Value::Tagged(t) if t.tag == "If" => match t.value.as_sequence().map(Vec::as_slice) {
                Some([Value::String(c), then, otherwise]) => {
                    let pick = if self.condition(c)? { then } else { otherwise };
                    self.resolve_json(pick, what)?
                }
                _ => {
                    return Err(format!(
                        "template.yaml: {what}: !If takes [condition, then, else]"
                    )
                    .into());
                }
            },
            Value::Tagged(t) if t.tag == "Ref" && self.is_list_parameter(&t.value) => {
                self.resolve(v, "", what)?.map(|s| {
                    J::Array(
                        s.split(',')
                            .map(|item| J::String(item.trim().to_owned()))
                            .collect(),
                    )
                })
            }
            other => self.resolve(other, "", what)?.map(J::String),
        })
    }
}
