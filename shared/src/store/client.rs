//! The SDK clients of the store: built from configuration alone, on one HTTPS stack, with
//! timeouts and retries that fit the function's time budget.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;

use crate::config::Config;

/// Builds the DynamoDB client from configuration alone: region and credentials come from
/// the Lambda environment directly, skipping the SDK's default provider chains (profile
/// files, IMDS, SSO), which cost cold-start time and are never used in Lambda.
pub fn dynamodb_client(config: &Config) -> Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Region};

    let (timeouts, retries) = budgeted(config);
    let mut builder = aws_sdk_dynamodb::Config::builder()
        .http_client(https_client_for(
            config,
            config.dynamodb_endpoint.as_deref(),
        ))
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
        .http_client(https_client_for(config, config.s3_endpoint.as_deref()))
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

/// The EventBridge client of a function that publishes (`EVENTBRIDGE_ENDPOINT` overrides
/// the endpoint locally), with the same budget as the others.
pub fn eventbridge_client(config: &Config) -> aws_sdk_eventbridge::Client {
    use aws_sdk_eventbridge::config::{BehaviorVersion, Region};

    let (timeouts, retries) = budgeted(config);
    let mut builder = aws_sdk_eventbridge::Config::builder()
        .http_client(https_client_for(
            config,
            config.eventbridge_endpoint.as_deref(),
        ))
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .credentials_provider(credentials(config))
        .timeout_config(timeouts)
        .retry_config(retries);
    if let Some(endpoint) = &config.eventbridge_endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_eventbridge::Client::from_conf(builder.build())
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

/// Whether a configured endpoint is reached over TLS: then its certificate may come from any
/// CA the platform trusts.
pub fn is_https(endpoint: Option<&str>) -> bool {
    endpoint.is_some_and(|e| {
        e.get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    })
}

/// The roots AWS's service endpoints chain to: Amazon Trust Services' four, and the
/// Starfield root that cross-signs them (<https://www.amazontrust.com/repository/>).
const AMAZON_TRUST_SERVICES: &[u8] = include_bytes!("amazon-trust-services.pem");

/// Whom a client trusts to sign its endpoint's certificate, besides the pinned roots.
#[derive(Clone, Copy, Debug, Default)]
pub struct Trust<'a> {
    /// The platform's roots (`TLS_PLATFORM_ROOTS=true`, or an https endpoint set by
    /// configuration: a proxy or an engine with its own certificate).
    pub platform: bool,
    /// A throwaway CA's certificates, PEM (`TEST_ONLY_TLS_CA_FILE`: the bench and tests).
    pub test_ca: Option<&'a [u8]>,
}

/// The HTTPS client of `config`'s clients for `endpoint`: an https endpoint brings the
/// platform's roots unless a test CA is what signs it.
pub fn https_client_for(
    config: &Config,
    endpoint: Option<&str>,
) -> aws_sdk_dynamodb::config::SharedHttpClient {
    https_client(trust(config, endpoint))
}

/// Whom `config`'s clients trust for `endpoint`, besides the pinned roots.
fn trust<'a>(config: &'a Config, endpoint: Option<&str>) -> Trust<'a> {
    let test_ca = config.tls_test_ca.as_deref();
    Trust {
        platform: config.tls_platform_roots || (is_https(endpoint) && test_ca.is_none()),
        test_ca,
    }
}

/// The HTTPS client of every SDK client: rustls on ring, trusting the roots AWS's endpoints
/// chain to. Not the platform's ~145 roots: reading and parsing them was nearly all of a
/// function's init (docs/performance.md), and only these five can sign for DynamoDB, S3 or
/// API Gateway. [`Trust`] adds the platform's, or a test CA's; a plain-http local engine
/// needs neither, so local runs take Lambda's path.
pub fn https_client(trust: Trust<'_>) -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    let mut store = tls::TrustStore::empty()
        .with_native_roots(trust.platform)
        .with_pem_certificate(AMAZON_TRUST_SERVICES);
    if let Some(pem) = trust.test_ca {
        store = store.with_pem_certificate(pem.to_vec());
    }
    let builder = aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(
        tls::rustls_provider::CryptoMode::Ring,
    ));
    match tls::TlsContext::builder().with_trust_store(store).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        // Only a build without TLS support fails here; this crate always has rustls. Keep
        // the platform's roots rather than fail the function's init.
        Err(e) => {
            tracing::error!("TLS context: {e}; trusting the platform's roots");
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https()
        }
    }
}

impl super::Store {
    /// Opens the connection the store's calls will use, TLS handshake included, by asking
    /// DynamoDB's endpoint for its health check (`GET /`, which it answers `healthy: …`
    /// without authorizing: no IAM action, no capacity, nothing in CloudTrail) on the same
    /// HTTPS client, so the connection stays in its pool for the next call. A function's
    /// init calls it ([`crate::budget::INIT_CONNECT`] says why it is bounded so): the first
    /// request then skips the connection and the handshake, about half of its CPU
    /// (docs/performance.md, "Cold start over TLS").
    ///
    /// How long it took; an error (`Unavailable`) when the endpoint did not answer within
    /// `limit` or its answer was cut off: the first call then connects as if this had not
    /// run. The answer itself is not read: a whole one means the connection is open.
    pub async fn open_connection(&self, limit: Duration) -> Result<Duration, super::StoreError> {
        use aws_sdk_dynamodb::config::retry::RetryConfig;
        use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};

        let started = Instant::now();
        let call = self
            .client
            .describe_endpoints()
            .customize()
            // One attempt: a retry could not finish within `limit` anyway. The timeouts stay
            // the client's: its HTTPS client keeps one pool per timeout setting, and the calls
            // after this one must find the connection in theirs.
            .config_override(
                aws_sdk_dynamodb::Config::builder().retry_config(RetryConfig::disabled()),
            )
            // DescribeEndpoints made into the health check: no target, no body. `GET` is a
            // valid method, so `set_method` cannot fail.
            .mutate_request(|request| {
                let _ = request.set_method("GET");
                for header in ["x-amz-target", "content-type", "content-length"] {
                    request.headers_mut().remove(header);
                }
                *request.body_mut() = Vec::<u8>::new().into();
            })
            .send();
        match tokio::time::timeout(limit, call).await {
            Err(_) => Err(super::StoreError::unavailable(format!(
                "DynamoDB did not answer within {limit:?}"
            ))),
            // The health check's text is no DescribeEndpoints answer: the call "fails" to read
            // it as one, after the whole answer came (a `ServiceError`), and the connection
            // is back in the pool. A `ResponseError` is an answer cut off: no connection left.
            Ok(Ok(_) | Err(SdkError::ServiceError(_))) => Ok(started.elapsed()),
            Ok(Err(e)) => Err(super::StoreError::unavailable(
                DisplayErrorContext(&e).to_string(),
            )),
        }
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use base64::Engine as _;
    use sha2::{Digest, Sha256};

    use super::AMAZON_TRUST_SERVICES;

    /// The SHA-256 fingerprints Amazon publishes for its roots (and Starfield's G2), the
    /// same as Debian's ca-certificates holds.
    const PUBLISHED: [(&str, &str); 5] = [
        (
            "Amazon Root CA 1",
            "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e",
        ),
        (
            "Amazon Root CA 2",
            "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4",
        ),
        (
            "Amazon Root CA 3",
            "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4",
        ),
        (
            "Amazon Root CA 4",
            "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092",
        ),
        (
            "Starfield Services Root Certificate Authority - G2",
            "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5",
        ),
    ];

    #[test]
    fn the_trusted_roots_are_exactly_amazons_published_ones() {
        let text = std::str::from_utf8(AMAZON_TRUST_SERVICES).unwrap();
        let blocks: Vec<String> = text
            .split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|b| {
                b.split("-----END CERTIFICATE-----")
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .collect()
            })
            .collect();
        let fingerprints: Vec<String> = blocks
            .iter()
            .map(|b64| {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap();
                Sha256::digest(&der)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            })
            .collect();
        let published: Vec<&str> = PUBLISHED.iter().map(|(_, f)| *f).collect();
        assert_eq!(fingerprints, published);
        for (name, _) in PUBLISHED {
            assert!(text.contains(name), "{name} is named in the file");
        }
        // The client builds with them (the PEM parses as rustls reads it).
        let _client = super::https_client(super::Trust::default());
    }

    #[test]
    fn a_test_ca_stands_in_for_the_platforms_roots_and_only_when_set() {
        use crate::config::{Config, env};
        let config = |vars: &'static [(&'static str, &'static str)], ca: Option<&[u8]>| {
            let mut c = Config::from_lookup(|k| {
                vars.iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| (*v).to_owned())
                    .or_else(|| (k == env::TABLE_NAME).then(|| "t".to_owned()))
            })
            .unwrap();
            c.tls_test_ca = ca.map(<[u8]>::to_vec);
            c
        };
        let https = Some("https://localhost:8443");
        let plain = config(&[(env::DYNAMODB_ENDPOINT, "https://localhost:8443")], None);
        let t = super::trust(&plain, https);
        assert!(t.platform && t.test_ca.is_none(), "an https endpoint alone");
        let ca = config(
            &[(env::DYNAMODB_ENDPOINT, "https://localhost:8443")],
            Some(b"pem"),
        );
        let t = super::trust(&ca, https);
        assert!(!t.platform, "the test CA, not the platform's roots");
        assert_eq!(t.test_ca, Some(&b"pem"[..]));
        let both = config(
            &[
                (env::DYNAMODB_ENDPOINT, "https://localhost:8443"),
                (env::TLS_PLATFORM_ROOTS, "true"),
            ],
            Some(b"pem"),
        );
        assert!(super::trust(&both, https).platform, "asked for as well");
        let lambda = config(
            &[
                (env::AWS_ACCESS_KEY_ID, "a"),
                (env::AWS_SECRET_ACCESS_KEY, "s"),
            ],
            None,
        );
        let t = super::trust(&lambda, None);
        assert!(
            !t.platform && t.test_ca.is_none(),
            "Lambda: the pinned roots alone"
        );
    }

    #[test]
    fn only_an_https_endpoint_brings_the_platforms_roots() {
        use super::is_https;
        assert!(is_https(Some("https://dynamodb.local:8443")));
        assert!(is_https(Some("HTTPS://x")));
        assert!(!is_https(Some("http://127.0.0.1:8000")));
        assert!(!is_https(Some("https:/")));
        assert!(!is_https(None));
    }
}
