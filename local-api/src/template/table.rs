//! The template's DynamoDB table: its keys, indexes and TTL, made on an engine when missing.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use yaml_serde::Value;

use super::{Error, Template, text};

impl Template {
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
            .set_stream_specification(self.stream_specification()?)
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

    /// `StreamSpecification` (CloudFormation's has the view type alone: present means on).
    fn stream_specification(
        &self,
    ) -> Result<Option<aws_sdk_dynamodb::types::StreamSpecification>, Error> {
        let spec = &self.table()?["StreamSpecification"];
        let Some(view) = spec["StreamViewType"].as_str() else {
            return Ok(None);
        };
        Ok(Some(
            aws_sdk_dynamodb::types::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::from(view))
                .build()?,
        ))
    }

    /// Turns the template's stream on for a table made without it (a data file from an
    /// older checkout).
    async fn ensure_stream(
        &self,
        client: &Client,
        name: &str,
        described: &aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput,
    ) -> Result<(), Error> {
        let has = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .is_some();
        let Some(spec) = self.stream_specification()? else {
            return Ok(());
        };
        if has {
            return Ok(());
        }
        tracing::info!("table {name}: turning its stream on");
        client
            .update_table()
            .table_name(name)
            .stream_specification(spec)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "turn the stream of {name} on: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })?;
        Ok(())
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

    /// Creates the table unless it exists already; an existing one gets any index, and the
    /// stream, the template has gained since (a local data file from an older checkout). Lists the
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
                self.bring_up_to_date(client, name).await?;
                return Ok(false);
            }
        }
        self.create_table(client, name).await.map(|()| true)
    }

    async fn bring_up_to_date(&self, client: &Client, name: &str) -> Result<(), Error> {
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
        self.ensure_stream(client, name, &described).await?;
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
