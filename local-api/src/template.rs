//! Reads `template.yaml`, the single source of the API's wiring: its routes (every `Api`
//! event of every function, alias routes included) and its DynamoDB table definition.

use std::path::Path;

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
}

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
                routes.push(Route {
                    method: text(&p["Method"], "Method")?.to_ascii_uppercase(),
                    resource: text(&p["Path"], "Path")?,
                    function: id.to_owned(),
                    binary: binary.clone(),
                });
            }
        }
        Ok(routes)
    }

    fn table(&self) -> Result<&Value, Error> {
        self.resources()
            .find(|(_, r)| r["Type"].as_str() == Some("AWS::DynamoDB::Table"))
            .map(|(_, r)| &r["Properties"])
            .ok_or_else(|| "template.yaml defines no AWS::DynamoDB::Table".into())
    }

    /// Creates `name` as the template's table: keys, GSIs, TTL.
    pub async fn create_table(&self, client: &Client, name: &str) -> Result<(), Error> {
        let props = self.table()?;
        let key_schema = |v: &Value| -> Result<Vec<KeySchemaElement>, Error> {
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
        };
        let attributes = props["AttributeDefinitions"]
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
            .collect::<Result<Vec<_>, Error>>()?;
        let gsis = props["GlobalSecondaryIndexes"]
            .as_sequence()
            .map(|seq| {
                seq.iter()
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
                    .collect::<Result<Vec<_>, Error>>()
            })
            .transpose()?;
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

    /// Creates the table unless it exists already.
    pub async fn ensure_table(&self, client: &Client, name: &str) -> Result<bool, Error> {
        match client.describe_table().table_name(name).send().await {
            Ok(_) => Ok(false),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                self.create_table(client, name).await.map(|()| true)
            }
            Err(e) => Err(format!(
                "describe table {name}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            )
            .into()),
        }
    }
}
