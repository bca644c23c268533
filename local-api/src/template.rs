//! Reads `template.yaml`, the single source of the API's wiring: its routes (every `Api`
//! event of every function, alias routes included), each API's authorizers, gateway
//! responses and usage-plan throttle, its parameters, and its DynamoDB table definition.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
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
    /// The throttle of the usage plan this API's stage is in (an `AWS::ApiGateway::UsagePlan`
    /// naming the API, or the API's own `Auth.UsagePlan`), if any.
    pub throttle: Option<Throttle>,
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
    /// The logical id of its function (`FunctionArn: !GetAtt <id>.Arn`).
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
    /// `Timeout` (function, else Globals; Lambda's default 3 s).
    pub timeout: Duration,
    /// `MemorySize` in MB (function, else Globals; Lambda's default 128).
    pub memory_mb: u64,
    /// `Environment.Variables`, Globals first, `!Ref`s resolved: a parameter to its default,
    /// a table to the runner's table name.
    pub env: Vec<(String, String)>,
    /// `LoggingConfig` as the variables Lambda sets from it.
    pub log_format: Option<String>,
    pub log_level: Option<String>,
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

#[derive(Clone)]
pub struct Template {
    doc: Value,
    /// Parameter values given at start (`--parameter-overrides`), over the `Default`s.
    parameters: BTreeMap<String, String>,
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
        Ok(Self {
            doc,
            parameters: BTreeMap::new(),
        })
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
        Ok(self)
    }

    fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.doc["Resources"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?, v)))
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

    /// Every `AWS::Serverless::Api`, with its authorizers, gateway responses and throttle.
    pub fn apis(&self) -> Result<Vec<Api>, Error> {
        let mut apis = Vec::new();
        for (id, res) in self.resources() {
            if res["Type"].as_str() != Some("AWS::Serverless::Api") {
                continue;
            }
            let props = &res["Properties"];
            let stage = match self.resolve(&props["StageName"], "", &format!("{id} StageName"))? {
                Some(s) if !s.is_empty() => s,
                _ => return Err(format!("template.yaml: {id}: no StageName").into()),
            };
            let api_key_source = match props["ApiKeySourceType"].as_str() {
                None | Some("HEADER") => ApiKeySource::Header,
                Some("AUTHORIZER") => ApiKeySource::Authorizer,
                Some(other) => {
                    return Err(
                        format!("template.yaml: {id}: unknown ApiKeySourceType {other}").into(),
                    );
                }
            };
            let mut authorizers = BTreeMap::new();
            for (name, a) in props["Auth"]["Authorizers"]
                .as_mapping()
                .into_iter()
                .flatten()
            {
                let name = text(name, &format!("{id} an authorizer's name"))?;
                if let Some(authorizer) = self.authorizer(id, &name, a)? {
                    authorizers.insert(name, authorizer);
                }
            }
            let mut gateway_responses = BTreeMap::new();
            for (kind, r) in props["GatewayResponses"].as_mapping().into_iter().flatten() {
                let kind = text(kind, &format!("{id} a gateway response type"))?;
                gateway_responses.insert(kind.clone(), gateway_response(id, &kind, r)?);
            }
            apis.push(Api {
                id: id.to_owned(),
                stage,
                api_key_source,
                authorizers,
                gateway_responses,
                throttle: self.throttle_of(id, props)?,
            });
        }
        Ok(apis)
    }

    /// An entry of `Auth.Authorizers`; `None` for one that is not a Lambda authorizer (a
    /// Cognito user pool), which routes may then not use.
    fn authorizer(&self, api: &str, name: &str, a: &Value) -> Result<Option<Authorizer>, Error> {
        let what = format!("{api} authorizer {name}");
        let function = match reference(&a["FunctionArn"]) {
            Some(("GetAtt", target)) => match target.split_once('.') {
                Some((function, "Arn")) => function.to_owned(),
                _ => {
                    return Err(format!(
                        "template.yaml: {what}: FunctionArn must be !GetAtt <function>.Arn"
                    )
                    .into());
                }
            },
            _ if a["FunctionArn"].is_null() => return Ok(None),
            _ => {
                return Err(format!(
                    "template.yaml: {what}: FunctionArn must be !GetAtt <function>.Arn"
                )
                .into());
            }
        };
        if self.doc["Resources"][function.as_str()]["Type"].as_str()
            != Some("AWS::Serverless::Function")
        {
            return Err(format!(
                "template.yaml: {what}: {function} is not an AWS::Serverless::Function"
            )
            .into());
        }
        let identity = &a["Identity"];
        let names = |key: &str| -> Result<Vec<String>, Error> {
            identity[key]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|v| text(v, &format!("{what} Identity.{key}")))
                .collect()
        };
        let payload = match a["FunctionPayloadType"].as_str() {
            Some("REQUEST") => Payload::Request {
                headers: names("Headers")?,
                query_strings: names("QueryStrings")?,
                stage_variables: names("StageVariables")?,
                context: names("Context")?,
            },
            None | Some("TOKEN") => Payload::Token {
                header: identity["Header"]
                    .as_str()
                    .unwrap_or("Authorization")
                    .to_owned(),
            },
            Some(other) => {
                return Err(
                    format!("template.yaml: {what}: unknown FunctionPayloadType {other}").into(),
                );
            }
        };
        let ttl = match &identity["ReauthorizeEvery"] {
            Value::Null => 300,
            v => v.as_u64().ok_or_else(|| {
                format!("template.yaml: {what}: ReauthorizeEvery is not a number")
            })?,
        };
        Ok(Some(Authorizer {
            name: name.to_owned(),
            function,
            payload,
            ttl: Duration::from_secs(ttl),
        }))
    }

    /// The throttle of the usage plan `api`'s stage is in: an `AWS::ApiGateway::UsagePlan`
    /// whose `ApiStages` name the API, else the API's own `Auth.UsagePlan` (SAM makes that
    /// plan). A key is in one usage plan per stage; locally every key is in the first.
    fn throttle_of(&self, api: &str, props: &Value) -> Result<Option<Throttle>, Error> {
        for (id, res) in self.resources() {
            if res["Type"].as_str() != Some("AWS::ApiGateway::UsagePlan") {
                continue;
            }
            let names_api = res["Properties"]["ApiStages"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|s| reference(&s["ApiId"]) == Some(("Ref", api.to_owned())));
            if names_api {
                return throttle(id, &res["Properties"]["Throttle"]);
            }
        }
        let own = &props["Auth"]["UsagePlan"];
        match own["CreateUsagePlan"].as_str() {
            Some("PER_API" | "SHARED") => throttle(api, &own["Throttle"]),
            _ => Ok(None),
        }
    }

    /// The binary of every function the runner runs: each route's, and each authorizer a
    /// route uses.
    pub fn served_binaries(&self) -> Result<Vec<String>, Error> {
        let routes = self.routes()?;
        let apis = self.apis()?;
        let mut ids: Vec<&str> = routes.iter().map(|r| r.function.as_str()).collect();
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
            let logging = setting("LoggingConfig");
            out.push(Function {
                id: id.to_owned(),
                binary: text(
                    &res["Metadata"]["BuildProperties"]["Binary"],
                    &format!("{id} Binary"),
                )?,
                timeout: Duration::from_secs(setting("Timeout").as_u64().unwrap_or(3)),
                memory_mb: setting("MemorySize").as_u64().unwrap_or(128),
                env,
                log_format: logging["LogFormat"].as_str().map(str::to_owned),
                log_level: logging["ApplicationLogLevel"].as_str().map(str::to_owned),
            });
        }
        Ok(out)
    }

    /// A property's value as the deployed stack would see it: a scalar as written, `!Ref` to
    /// a parameter as its override (`--parameter-overrides`) or else its default, `!Ref` to the table as `table_name`. `None` for a secret
    /// resolved at deploy time (`{{resolve:secretsmanager:…}}`): locally the variable is
    /// left unset, and the function uses its local-engine default.
    fn resolve(&self, v: &Value, table_name: &str, what: &str) -> Result<Option<String>, Error> {
        match v {
            Value::String(s) => Ok(Some(s.clone())),
            Value::Number(n) => Ok(Some(n.to_string())),
            Value::Bool(b) => Ok(Some(b.to_string())),
            Value::Tagged(t)
                if t.tag == "Sub" && t.value.as_str().is_some_and(|s| s.contains("{{resolve:")) =>
            {
                Ok(None)
            }
            Value::Tagged(t) if t.tag == "Ref" => {
                let name = text(&t.value, what)?;
                if let Some(value) = self.parameters.get(&name) {
                    return Ok(Some(value.clone()));
                }
                let param = &self.doc["Parameters"][name.as_str()];
                if !param.is_null() {
                    return self.resolve(&param["Default"], table_name, &name);
                }
                match self.doc["Resources"][name.as_str()]["Type"].as_str() {
                    Some("AWS::DynamoDB::Table") => Ok(Some(table_name.to_owned())),
                    _ => Err(
                        format!("template.yaml: {what}: cannot resolve !Ref {name} locally").into(),
                    ),
                }
            }
            _ => Err(
                format!("template.yaml: {what}: only scalars and !Ref are resolved locally").into(),
            ),
        }
    }

    fn table(&self) -> Result<&Value, Error> {
        self.resources()
            .find(|(_, r)| r["Type"].as_str() == Some("AWS::DynamoDB::Table"))
            .map(|(_, r)| &r["Properties"])
            .ok_or_else(|| "template.yaml defines no AWS::DynamoDB::Table".into())
    }

    /// The template table's global secondary indexes.
    fn indexes(&self) -> Result<Vec<GlobalSecondaryIndex>, Error> {
        let props = self.table()?;
        props["GlobalSecondaryIndexes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|g| {
                let projection = ProjectionType::from(
                    text(&g["Projection"]["ProjectionType"], "ProjectionType")?.as_str(),
                );
                Ok(GlobalSecondaryIndex::builder()
                    .index_name(text(&g["IndexName"], "IndexName")?)
                    .set_key_schema(Some(key_schema(&g["KeySchema"])?))
                    .projection(Projection::builder().projection_type(projection).build())
                    .build()?)
            })
            .collect()
    }

    /// Creates `name` as the template's table: keys, GSIs, TTL.
    pub async fn create_table(&self, client: &Client, name: &str) -> Result<(), Error> {
        let props = self.table()?;
        let attributes = self.attribute_definitions()?;
        let gsis = self.indexes()?;
        let gsis = (!gsis.is_empty()).then_some(gsis);
        client
            .create_table()
            .table_name(name)
            .set_attribute_definitions(Some(attributes))
            .set_key_schema(Some(key_schema(&props["KeySchema"])?))
            .set_global_secondary_indexes(gsis)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "create table {name}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })?;
        self.enable_ttl(client, name).await
    }

    fn attribute_definitions(&self) -> Result<Vec<AttributeDefinition>, Error> {
        self.table()?["AttributeDefinitions"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|a| {
                Ok(AttributeDefinition::builder()
                    .attribute_name(text(&a["AttributeName"], "AttributeName")?)
                    .attribute_type(ScalarAttributeType::from(
                        text(&a["AttributeType"], "AttributeType")?.as_str(),
                    ))
                    .build()?)
            })
            .collect()
    }

    async fn enable_ttl(&self, client: &Client, name: &str) -> Result<(), Error> {
        let props = self.table()?;
        if props["TimeToLiveSpecification"]["Enabled"].as_bool() == Some(true) {
            let spec = TimeToLiveSpecification::builder()
                .attribute_name(text(
                    &props["TimeToLiveSpecification"]["AttributeName"],
                    "TTL",
                )?)
                .enabled(true)
                .build()?;
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "enable TTL on {name}: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                    )
                })?;
        }
        Ok(())
    }

    /// Creates the table unless it exists already; an existing one gets any index the
    /// template has gained since (a local data file from an older checkout). Lists the
    /// tables rather than describing a missing one, so a first start logs no SDK error.
    pub async fn ensure_table(&self, client: &Client, name: &str) -> Result<bool, Error> {
        let mut tables = client.list_tables().into_paginator().items().send();
        while let Some(table) = tables.next().await {
            let table = table.map_err(|e| {
                format!(
                    "list tables: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })?;
            if table == name {
                self.add_missing_indexes(client, name).await?;
                return Ok(false);
            }
        }
        self.create_table(client, name).await.map(|()| true)
    }

    async fn add_missing_indexes(&self, client: &Client, name: &str) -> Result<(), Error> {
        let described = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "describe table {name}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })?;
        let have: Vec<String> = described
            .table()
            .map(|t| {
                t.global_secondary_indexes()
                    .iter()
                    .filter_map(|g| g.index_name().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for gsi in self.indexes()? {
            if have.iter().any(|h| h == gsi.index_name()) {
                continue;
            }
            tracing::info!("table {name}: adding index {}", gsi.index_name());
            let create = aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
                .index_name(gsi.index_name())
                .set_key_schema(Some(gsi.key_schema().to_vec()))
                .set_projection(gsi.projection().cloned())
                .build()?;
            client
                .update_table()
                .table_name(name)
                .set_attribute_definitions(Some(self.attribute_definitions()?))
                .global_secondary_index_updates(
                    aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
                        .create(create)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "add index {} to {name}: {}",
                        gsi.index_name(),
                        aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                    )
                })?;
        }
        Ok(())
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

/// A `Throttle` of a usage plan; `None` when absent (no throttle).
fn throttle(owner: &str, v: &Value) -> Result<Option<Throttle>, Error> {
    if v.is_null() {
        return Ok(None);
    }
    let number = |key: &str| -> Result<f64, Error> {
        match &v[key] {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| format!("template.yaml: {owner}: Throttle.{key} is not a number").into())
    };
    Ok(Some(Throttle {
        burst: number("BurstLimit")? as u32,
        rate: number("RateLimit")?,
    }))
}

fn gateway_response(api: &str, kind: &str, r: &Value) -> Result<GatewayResponse, Error> {
    let what = format!("{api} GatewayResponses.{kind}");
    let status = match &r["StatusCode"] {
        Value::Null => None,
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    if !r["StatusCode"].is_null() && status.is_none() {
        return Err(format!("template.yaml: {what}: StatusCode is not a status").into());
    }
    let pairs = |v: &Value, part: &str| -> Result<Vec<(String, String)>, Error> {
        v.as_mapping()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                Ok((
                    text(k, &format!("{what} {part}"))?,
                    text(v, &format!("{what} {part}"))?,
                ))
            })
            .collect()
    };
    Ok(GatewayResponse {
        status,
        headers: pairs(&r["ResponseParameters"]["Headers"], "Headers")?,
        templates: pairs(&r["ResponseTemplates"], "ResponseTemplates")?,
    })
}

fn key_schema(v: &Value) -> Result<Vec<KeySchemaElement>, Error> {
    v.as_sequence()
        .into_iter()
        .flatten()
        .map(|k| {
            Ok(KeySchemaElement::builder()
                .attribute_name(text(&k["AttributeName"], "AttributeName")?)
                .key_type(KeyType::from(text(&k["KeyType"], "KeyType")?.as_str()))
                .build()?)
        })
        .collect()
}
