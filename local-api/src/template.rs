//! Reads `template.yaml`, the single source of the API's wiring: its routes (every `Api`
//! event of every function, alias routes included) and its DynamoDB table definition.

use std::path::Path;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use serde_yaml::Value;

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

pub struct Template {
    doc: Value,
}

fn text(v: &Value, what: &str) -> Result<String, Error> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("template.yaml: {what} is not a string").into())
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let raw = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let doc = serde_yaml::from_str(&raw).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self { doc })
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
        let mut routes = Vec::new();
        for (id, res) in self.resources() {
            if res["Type"].as_str() != Some("AWS::Serverless::Function") {
                continue;
            }
            let binary = text(
                &res["Metadata"]["BuildProperties"]["Binary"],
                &format!("{id} Binary"),
            )?;
            for (_, event) in res["Properties"]["Events"]
                .as_mapping()
                .into_iter()
                .flatten()
            {
                if event["Type"].as_str() != Some("Api") {
                    continue;
                }
                let p = &event["Properties"];
                let integration_timeout = p["TimeoutInMillis"]
                    .as_u64()
                    .map_or(MAX_INTEGRATION_TIMEOUT, Duration::from_millis);
                routes.push(Route {
                    method: text(&p["Method"], "Method")?.to_ascii_uppercase(),
                    resource: text(&p["Path"], "Path")?,
                    function: id.to_owned(),
                    binary: binary.clone(),
                    integration_timeout,
                });
            }
        }
        Ok(routes)
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
    /// a parameter as its default, `!Ref` to the table as `table_name`. `None` for a secret
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
