//! bench-baseline: `GET /profiles/{profile_id}` as a Rust Lambda function is written from
//! AWS's own examples: the default config loader and credential chain, the SDK's default
//! HTTPS client, lambda_http's default tracing subscriber, `#[tokio::main]`. It reads the
//! same partition get-profile reads (a consistent Query of the profile's items) and answers
//! them as JSON, with none of the API's validation or shaping. The bench runs it through the
//! same runner, against the same engine, with the same event as get-profile.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Error, Request, RequestExt, Response, run, service_fn, tracing};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = aws_config::load_from_env().await;
    let client = Client::new(&config);
    let table = std::env::var("TABLE_NAME")?;
    run(service_fn(|event: Request| {
        get_profile(&client, &table, event)
    }))
    .await
}

async fn get_profile(
    client: &Client,
    table: &str,
    event: Request,
) -> Result<Response<Body>, Error> {
    let id = event
        .path_parameters_ref()
        .and_then(|p| p.first("profile_id"))
        .unwrap_or_default()
        .to_owned();
    let tenant = match event.request_context() {
        lambda_http::request::RequestContext::ApiGatewayV1(ctx) => ctx
            .authorizer
            .fields
            .get("tenant_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    };
    // The API's key scheme for a profile's partition (shared::store::schema); the bench
    // checks the answer names the profile, so a change there cannot go unnoticed.
    let output = client
        .query()
        .table_name(table)
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("T#{tenant}#P#{id}")))
        .consistent_read(true)
        .send()
        .await?;
    let items: Vec<Value> = serde_dynamo::from_items(output.items().to_vec())?;
    let (status, body) = if items.is_empty() {
        (404, json!({ "message": "not found" }))
    } else {
        (200, json!({ "items": items }))
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string().into())?)
}
