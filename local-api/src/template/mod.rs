//! Reads `template.yaml`, the single source of the API's wiring: its routes (every `Api`
//! event of every function, alias routes included), each API's authorizers, gateway
//! responses and usage plans, its parameters, and its DynamoDB table definition.
//! This file reads routes, functions and parameters; `api` the APIs (authorizers, gateway
//! responses, usage plans, API keys); `table` the table, which it also creates; `s3` the buckets, the
//! functions' S3 events and the CloudFront distributions' S3 origins; `resolve` resolves values (`!Ref`,
//! `!Sub`, `!GetAtt …Arn`);
//! `policy` the functions' inline IAM statements.

mod api;
mod events;
mod policy;
mod resolve;
mod s3;
mod table;

pub use events::{BusRule, RuleTarget, StreamSource, TargetKind};
pub use policy::Allow;

pub use s3::{Origin, S3Subscription};

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use yaml_serde::Value;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// One route: a method and resource path of the API, served by one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Upper-case HTTP method.
    pub method: String,
    /// The resource path as the template gives it, e.g. `/profiles/{profile_id}`.
    pub resource: String,
    /// The function's logical id in the template.
    pub function: String,
    /// The function's binary (its crate under `functions/`).
    pub binary: String,
    /// How long API Gateway waits for the function: the event's `TimeoutInMillis`, else
    /// REST API's 29 s.
    pub integration_timeout: Duration,
    /// The `AWS::Serverless::Api` the event names (`RestApiId: !Ref …`); `None` for SAM's
    /// implicit API, which has no authorizers here.
    pub api: Option<String>,
    /// The authorizer API Gateway runs before the function: the event's `Auth.Authorizer`,
    /// else the API's `DefaultAuthorizer`; `NONE` (or neither) is `None`.
    pub authorizer: Option<String>,
    /// Whether the route needs a usage (API) key: the event's `Auth.ApiKeyRequired`, else
    /// the API's.
    pub api_key_required: bool,
}

/// An `AWS::Serverless::Api`: what API Gateway does around its routes.
#[derive(Clone, Debug)]
pub struct Api {
    /// Its logical id in the template.
    pub id: String,
    /// `StageName`, resolved (the stage in every event and method ARN).
    pub stage: String,
    /// `ApiKeySourceType`: where the usage key comes from.
    pub api_key_source: ApiKeySource,
    /// `Auth.Authorizers`, by name.
    pub authorizers: BTreeMap<String, Authorizer>,
    /// `GatewayResponses`, by response type (`UNAUTHORIZED`, `DEFAULT_4XX`, ...).
    pub gateway_responses: BTreeMap<String, GatewayResponse>,
    /// The usage plans this API's stage is in: every `AWS::ApiGateway::UsagePlan` naming the
    /// API, and the API's own `Auth.UsagePlan`. A request's usage key must be a key of one.
    pub plans: Vec<UsagePlan>,
}

/// A usage plan of an API.
#[derive(Clone, Debug, PartialEq)]
pub struct UsagePlan {
    /// Its logical id (the runner's plan id).
    pub id: String,
    /// Its `Throttle`, if any.
    pub throttle: Option<Throttle>,
}

/// An `AWS::ApiGateway::ApiKey` of the template, with the plans its `UsagePlanKey`s put it in.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateApiKey {
    /// Its logical id (the runner's API key id).
    pub id: String,
    pub name: String,
    /// `Value`, resolved: the usage key.
    pub value: String,
    pub enabled: bool,
    /// The usage plans (logical ids) it is a key of.
    pub plans: Vec<String>,
}

/// Where API Gateway takes a request's usage key from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKeySource {
    /// The `x-api-key` header (API Gateway's default).
    Header,
    /// The Lambda authorizer's `usageIdentifierKey`.
    Authorizer,
}

/// A Lambda authorizer of an API.
#[derive(Clone, Debug)]
pub struct Authorizer {
    pub name: String,
    /// The logical id of its function (`FunctionArn: !GetAtt <id>.Arn`, or `!Ref <id>.Alias`
    /// for its `AutoPublishAlias`).
    pub function: String,
    pub payload: Payload,
    /// `Identity.ReauthorizeEvery`: how long a result is cached (API Gateway's default 300 s).
    pub ttl: Duration,
}

/// What an authorizer receives, and what must be present before it is invoked.
#[derive(Clone, Debug)]
pub enum Payload {
    /// `FunctionPayloadType: REQUEST`: the request's headers, query string, path and
    /// context. The identity sources (`Identity.Headers`, `QueryStrings`, `StageVariables`,
    /// `Context`) must all be present and non-empty, and key the cache.
    Request {
        headers: Vec<String>,
        query_strings: Vec<String>,
        stage_variables: Vec<String>,
        context: Vec<String>,
    },
    /// `FunctionPayloadType: TOKEN` (SAM's default): one header (`Identity.Header`,
    /// default `Authorization`), which must be present.
    Token { header: String },
}

/// One of an API's `GatewayResponses`.
#[derive(Clone, Debug, Default)]
pub struct GatewayResponse {
    /// `StatusCode`; the response type's own status when absent.
    pub status: Option<u16>,
    /// `ResponseParameters.Headers`: name → mapping expression (`'static'`,
    /// `context.requestId`, `method.request.header.<name>`, ...).
    pub headers: Vec<(String, String)>,
    /// `ResponseTemplates`: content type → body template.
    pub templates: Vec<(String, String)>,
}

/// A usage plan's `Throttle`: a token bucket per usage key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Throttle {
    /// `BurstLimit`: the bucket's capacity.
    pub burst: u32,
    /// `RateLimit`: tokens added per second.
    pub rate: f64,
}

/// A function of the template, with what the runner needs to run its binary as Lambda would.
#[derive(Clone, Debug)]
pub struct Function {
    /// Its logical id in the template, e.g. `CreateProfileFunction`.
    pub id: String,
    /// Its binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    /// `Timeout` (function, else Globals, a number or a `!Ref` to a parameter; Lambda's
    /// default 3 s).
    pub timeout: Duration,
    /// `MemorySize` in MB (function, else Globals; Lambda's default 128).
    pub memory_mb: u64,
    /// `Environment.Variables`, Globals first, `!Ref`s resolved: a parameter to its default,
    /// a table to the runner's table name.
    pub env: Vec<(String, String)>,
    /// `LoggingConfig` as the variables Lambda sets from it (each key the function's own,
    /// else Globals', as SAM merges them).
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    /// `ReservedConcurrentExecutions` (function, else Globals), resolved: the most instances
    /// Lambda runs at once. `None` when unset or `AWS::NoValue` (no reservation); `Some(0)`
    /// throttles every invocation.
    pub reserved_concurrency: Option<u32>,
    /// `ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions` (function, else
    /// Globals), resolved: the instances Lambda keeps initialised on the function's alias.
    /// 0 when it has none (unset, or `AWS::NoValue`).
    pub provisioned_concurrency: u32,
}

/// REST API's maximum integration timeout.
pub const MAX_INTEGRATION_TIMEOUT: Duration = Duration::from_millis(29_000);

impl Route {
    /// Path parameters when `path` matches this route's resource.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let want: Vec<&str> = self.resource.trim_matches('/').split('/').collect();
        let got: Vec<&str> = path.trim_matches('/').split('/').collect();
        if want.len() != got.len() {
            return None;
        }
        let mut params = Vec::new();
        for (w, g) in want.iter().zip(&got) {
            match w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                Some(name) if !g.is_empty() => params.push((name.to_owned(), (*g).to_owned())),
                Some(_) => return None,
                None if w == g => {}
                None => return None,
            }
        }
        Some(params)
    }

    /// How specific the resource is: literal segments beat parameters, as in API Gateway.
    pub fn literal_segments(&self) -> usize {
        self.resource
            .split('/')
            .filter(|s| !s.is_empty() && !s.starts_with('{'))
            .count()
    }
}

/// What `${AWS::StackName}` is locally.
pub const STACK_NAME: &str = "profiles-local";

#[derive(Clone)]
pub struct Template {
    doc: Value,
    /// Parameter values given at start (`--parameter-overrides`), over the `Default`s.
    parameters: BTreeMap<String, String>,
    /// What `${AWS::Region}` is.
    region: String,
    /// The embedded S3's URL, once it runs: what a distribution's domain resolves to.
    s3_endpoint: Option<String>,
    /// `Conditions`, evaluated with the parameters above: a resource whose `Condition` is
    /// false does not exist, and `!If` picks by them.
    conditions: BTreeMap<String, bool>,
}

fn text(v: &Value, what: &str) -> Result<String, Error> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("template.yaml: {what} is not a string").into())
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let raw = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let doc = yaml_serde::from_str(&raw).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut template = Self {
            doc,
            parameters: BTreeMap::new(),
            region: "us-east-1".into(),
            s3_endpoint: None,
            conditions: BTreeMap::new(),
        };
        template.conditions = template.evaluate_conditions()?;
        Ok(template)
    }

    /// The same template deployed in `region`, with `s3_endpoint` standing in for S3 and
    /// CloudFront.
    pub fn with_local(mut self, region: &str, s3_endpoint: Option<&str>) -> Self {
        self.region = region.to_owned();
        self.s3_endpoint = s3_endpoint.map(str::to_owned);
        self
    }

    /// The same template with parameter values set, as `sam deploy --parameter-overrides`
    /// sets them; each must be a parameter the template declares.
    pub fn with_parameter_overrides(mut self, values: &[(String, String)]) -> Result<Self, Error> {
        for (name, value) in values {
            if self.doc["Parameters"][name.as_str()].is_null() {
                return Err(format!("template.yaml declares no parameter {name:?}").into());
            }
            self.parameters.insert(name.clone(), value.clone());
        }
        self.conditions = self.evaluate_conditions()?;
        Ok(self)
    }

    /// The resources the stack has: those without a `Condition`, and those whose condition
    /// holds.
    fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.doc["Resources"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?, v)))
            .filter(|(_, v)| {
                v["Condition"]
                    .as_str()
                    .is_none_or(|c| self.conditions.get(c).copied().unwrap_or(false))
            })
    }

    /// Every `Api` event of every `AWS::Serverless::Function`.
    pub fn routes(&self) -> Result<Vec<Route>, Error> {
        let apis = self.apis()?;
        let mut routes = Vec::new();
        for (id, res) in self.resources() {
            if res["Type"].as_str() != Some("AWS::Serverless::Function") {
                continue;
            }
            let binary = text(
                &res["Metadata"]["BuildProperties"]["Binary"],
                &format!("{id} Binary"),
            )?;
            for (name, event) in res["Properties"]["Events"]
                .as_mapping()
                .into_iter()
                .flatten()
            {
                if event["Type"].as_str() != Some("Api") {
                    continue;
                }
                let what = format!("{id} event {}", name.as_str().unwrap_or("?"));
                let p = &event["Properties"];
                let integration_timeout = p["TimeoutInMillis"]
                    .as_u64()
                    .map_or(MAX_INTEGRATION_TIMEOUT, Duration::from_millis);
                let api = match reference(&p["RestApiId"]) {
                    Some(("Ref", api)) => match apis.iter().find(|a| a.id == api) {
                        Some(a) => Some(a),
                        None => {
                            return Err(format!(
                                "template.yaml: {what}: RestApiId {api} is not an AWS::Serverless::Api"
                            )
                            .into());
                        }
                    },
                    None if p["RestApiId"].is_null() => None,
                    _ => {
                        return Err(
                            format!("template.yaml: {what}: RestApiId must be a !Ref").into()
                        );
                    }
                };
                let auth = &p["Auth"];
                let api_auth =
                    api.map(|a| &self.doc["Resources"][a.id.as_str()]["Properties"]["Auth"]);
                let authorizer = match (auth["Authorizer"].as_str(), api_auth) {
                    (Some("NONE"), _) => None,
                    (Some(name), _) => Some(name.to_owned()),
                    (None, Some(a)) => a["DefaultAuthorizer"]
                        .as_str()
                        .filter(|n| *n != "NONE")
                        .map(str::to_owned),
                    (None, None) => None,
                };
                if let Some(name) = &authorizer
                    && !api.is_some_and(|a| a.authorizers.contains_key(name))
                {
                    return Err(format!(
                        "template.yaml: {what}: authorizer {name:?} is not a Lambda authorizer of its API \
                         (only REQUEST and TOKEN Lambda authorizers run locally)"
                    )
                    .into());
                }
                let api_key_required = auth["ApiKeyRequired"]
                    .as_bool()
                    .or_else(|| api_auth.and_then(|a| a["ApiKeyRequired"].as_bool()))
                    .unwrap_or(false);
                routes.push(Route {
                    method: text(&p["Method"], "Method")?.to_ascii_uppercase(),
                    resource: text(&p["Path"], "Path")?,
                    function: id.to_owned(),
                    binary: binary.clone(),
                    integration_timeout,
                    api: api.map(|a| a.id.clone()),
                    authorizer,
                    api_key_required,
                });
            }
        }
        Ok(routes)
    }

    /// The binary of every function the runner runs: each route's, each authorizer a route
    /// uses, each function an S3 event invokes, and each the stream or a bus rule invokes.
    pub fn served_binaries(&self) -> Result<Vec<String>, Error> {
        let routes = self.routes()?;
        let apis = self.apis()?;
        let subscriptions = self.s3_subscriptions()?;
        let invoked = self.invoked_by_events()?;
        let mut ids: Vec<&str> = routes.iter().map(|r| r.function.as_str()).collect();
        ids.extend(subscriptions.iter().map(|s| s.function.as_str()));
        ids.extend(invoked.iter().map(String::as_str));
        for r in &routes {
            if let (Some(api), Some(name)) = (&r.api, &r.authorizer)
                && let Some(a) = apis.iter().find(|a| a.id == *api)
                && let Some(authorizer) = a.authorizers.get(name)
            {
                ids.push(&authorizer.function);
            }
        }
        let mut names = Vec::new();
        for id in ids {
            names.push(text(
                &self.doc["Resources"][id]["Metadata"]["BuildProperties"]["Binary"],
                &format!("{id} Binary"),
            )?);
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Every `AWS::Serverless::Function`, its settings merged over `Globals.Function`.
    /// `table_name` is what a `!Ref` to the table resolves to.
    pub fn functions(&self, table_name: &str) -> Result<Vec<Function>, Error> {
        let globals = &self.doc["Globals"]["Function"];
        let mut out = Vec::new();
        for (id, res) in self.resources() {
            if res["Type"].as_str() != Some("AWS::Serverless::Function") {
                continue;
            }
            let props = &res["Properties"];
            let setting = |name: &str| {
                let own = &props[name];
                if own.is_null() { &globals[name] } else { own }
            };
            let mut env: Vec<(String, String)> = Vec::new();
            for scope in [globals, props] {
                for (k, v) in scope["Environment"]["Variables"]
                    .as_mapping()
                    .into_iter()
                    .flatten()
                {
                    let k = text(k, "an environment variable's name")?;
                    env.retain(|(name, _)| *name != k);
                    if let Some(v) = self.resolve(v, table_name, &format!("{id} {k}"))? {
                        env.push((k, v));
                    }
                }
            }
            let logging = |key: &str| {
                let own = &props["LoggingConfig"][key];
                let value = if own.is_null() {
                    &globals["LoggingConfig"][key]
                } else {
                    own
                };
                value.as_str().map(str::to_owned)
            };
            let reserved_concurrency = match setting("ReservedConcurrentExecutions") {
                Value::Null => None,
                v => {
                    let what = format!("{id} ReservedConcurrentExecutions");
                    match self.resolve(v, table_name, &what)? {
                        None => None,
                        Some(n) => Some(n.parse().map_err(|_| {
                            format!("template.yaml: {what}: {n:?} is not 0 or more")
                        })?),
                    }
                }
            };
            let provisioned_concurrency = {
                let what = format!("{id} ProvisionedConcurrencyConfig");
                match self.resolve_json(setting("ProvisionedConcurrencyConfig"), &what)? {
                    None => 0,
                    Some(config) => {
                        let n = &config["ProvisionedConcurrentExecutions"];
                        n.as_str()
                            .and_then(|n| n.parse().ok())
                            .or_else(|| n.as_u64().and_then(|n| u32::try_from(n).ok()))
                            .ok_or_else(|| {
                                format!(
                                    "template.yaml: {what}: ProvisionedConcurrentExecutions {n} is not 0 or more"
                                )
                            })?
                    }
                }
            };
            out.push(Function {
                id: id.to_owned(),
                binary: text(
                    &res["Metadata"]["BuildProperties"]["Binary"],
                    &format!("{id} Binary"),
                )?,
                timeout: Duration::from_secs(match setting("Timeout") {
                    Value::Null => 3,
                    t => self
                        .resolve(t, table_name, &format!("{id} Timeout"))?
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| format!("template.yaml: {id} Timeout: not whole seconds"))?,
                }),
                memory_mb: setting("MemorySize").as_u64().unwrap_or(128),
                env,
                log_format: logging("LogFormat"),
                log_level: logging("ApplicationLogLevel"),
                reserved_concurrency,
                provisioned_concurrency,
            });
        }
        Ok(out)
    }
}

impl Template {
    /// The template parameters function `id`'s `ReservedConcurrentExecutions` (its own, else
    /// Globals') refers to, so that a message about its value can name what sets it.
    pub fn reserved_concurrency_parameters(&self, id: &str) -> Vec<String> {
        let own = &self.doc["Resources"][id]["Properties"]["ReservedConcurrentExecutions"];
        let v = if own.is_null() {
            &self.doc["Globals"]["Function"]["ReservedConcurrentExecutions"]
        } else {
            own
        };
        let mut names = Vec::new();
        self.parameters_in(v, &mut names);
        names
    }

    /// Every template parameter a `!Ref` in `v` names, in order, once each.
    fn parameters_in(&self, v: &Value, names: &mut Vec<String>) {
        match v {
            Value::Tagged(t) if t.tag == "Ref" => {
                if let Some(name) = t.value.as_str()
                    && !self.doc["Parameters"][name].is_null()
                    && !names.iter().any(|n| n == name)
                {
                    names.push(name.to_owned());
                }
            }
            Value::Tagged(t) => self.parameters_in(&t.value, names),
            Value::Sequence(items) => {
                for item in items {
                    self.parameters_in(item, names);
                }
            }
            Value::Mapping(m) => {
                for (_, item) in m {
                    self.parameters_in(item, names);
                }
            }
            _ => {}
        }
    }
}

/// The target of a `!Ref X` / `!GetAtt X.Attr` (or `{Ref: X}` / `{Fn::GetAtt: [X, Attr]}`):
/// `("Ref", "X")` or `("GetAtt", "X.Attr")`.
fn reference(v: &Value) -> Option<(&'static str, String)> {
    let joined = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Sequence(parts) => {
                let parts: Option<Vec<&str>> = parts.iter().map(Value::as_str).collect();
                Some(parts?.join("."))
            }
            _ => None,
        }
    };
    match v {
        Value::Tagged(t) if t.tag == "Ref" => Some(("Ref", t.value.as_str()?.to_owned())),
        Value::Tagged(t) if t.tag == "GetAtt" => Some(("GetAtt", joined(&t.value)?)),
        Value::Mapping(m) if m.len() == 1 => {
            if let Some(target) = m.get("Ref") {
                Some(("Ref", target.as_str()?.to_owned()))
            } else {
                Some(("GetAtt", joined(m.get("Fn::GetAtt")?)?))
            }
        }
        _ => None,
    }
}
