//! The SDK clients of the store: built from configuration alone, on one HTTPS stack, with
//! timeouts and retries that fit the function's time budget.

use aws_sdk_dynamodb::Client;

use crate::config::Config;

/// Builds the DynamoDB client from configuration alone: region and credentials come from
/// the Lambda environment directly, skipping the SDK's default provider chains (profile
/// files, IMDS, SSO), which cost cold-start time and are never used in Lambda.
pub fn dynamodb_client(config: &Config) -> Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Region};

    let (timeouts, retries) = budgeted(config);
    let mut builder = aws_sdk_dynamodb::Config::builder()
        .http_client(https_client())
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .credentials_provider(credentials(config))
        .timeout_config(timeouts)
        .retry_config(retries);
    if let Some(endpoint) = &config.dynamodb_endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    Client::from_conf(builder.build())
}

/// Builds the S3 client as [`dynamodb_client`] builds DynamoDB's: the same credentials,
/// HTTPS client and time budget; path-style URLs on a local endpoint.
pub fn s3_client(config: &Config) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Region};

    let (timeouts, retries) = budgeted(config);
    let mut builder = aws_sdk_s3::Config::builder()
        .http_client(https_client())
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .credentials_provider(credentials(config))
        .timeout_config(timeouts)
        .retry_config(retries);
    if let Some(endpoint) = &config.s3_endpoint {
        builder = builder.endpoint_url(endpoint).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// The function role's credentials as every SDK client takes them (one type for all).
pub fn credentials(config: &Config) -> aws_sdk_dynamodb::config::Credentials {
    let c = &config.credentials;
    aws_sdk_dynamodb::config::Credentials::new(
        c.access_key_id.clone(),
        c.secret_access_key.expose().to_owned(),
        c.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "environment",
    )
}

/// The HTTPS client of every SDK client: rustls on ring, with the platform's root
/// certificates.
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Timeouts and retries that fit the function's own timeout ([`crate::budget`] says how),
/// for every SDK client.
/// (The SDK crates share these types; DynamoDB's re-exports name them.)
fn budgeted(
    config: &Config,
) -> (
    aws_sdk_dynamodb::config::timeout::TimeoutConfig,
    aws_sdk_dynamodb::config::retry::RetryConfig,
) {
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::config::timeout::TimeoutConfig;

    use crate::budget::Budget;
    let budget = Budget::for_timeout(config.function_timeout);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(budget.connect)
        .operation_attempt_timeout(budget.attempt)
        .operation_timeout(budget.operation)
        .build();
    let retries = RetryConfig::standard()
        .with_max_attempts(budget.max_attempts)
        .with_initial_backoff(budget.initial_backoff)
        .with_max_backoff(budget.max_backoff);
    (timeouts, retries)
}
