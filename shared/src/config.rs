//! The one configuration loader: every setting a function reads from its environment.

use crate::origins::Origins;

/// The shortest cursor-signing key accepted.
pub const MIN_CURSOR_KEY: usize = 32;

/// The environment variables, each name spelled once: the loader above reads them, the
/// local runner, the bench and the tests set them, and a test holds the template to
/// [`env::FROM_TEMPLATE`] (docs/configuration.md says what each means).
pub mod env {
    pub const TABLE_NAME: &str = "TABLE_NAME";
    pub const FUNCTION_TIMEOUT_SECONDS: &str = "FUNCTION_TIMEOUT_SECONDS";
    pub const PROFILES_CURSOR_KEY: &str = "PROFILES_CURSOR_KEY";
    pub const PHOTO_BUCKET: &str = "PHOTO_BUCKET";
    pub const PHOTO_BASE_URL: &str = "PHOTO_BASE_URL";
    pub const CORS_ALLOWED_ORIGINS: &str = "CORS_ALLOWED_ORIGINS";
    pub const JWT_ISSUER: &str = "JWT_ISSUER";
    pub const JWT_AUDIENCE: &str = "JWT_AUDIENCE";
    pub const JWT_TENANT_CLAIM: &str = "JWT_TENANT_CLAIM";
    pub const JWT_HS256_SECRET: &str = "JWT_HS256_SECRET";
    pub const JWT_RS256_PUBLIC_KEY: &str = "JWT_RS256_PUBLIC_KEY";
    pub const JWT_LEEWAY_SECONDS: &str = "JWT_LEEWAY_SECONDS";
    pub const JWT_USAGE_KEY: &str = "JWT_USAGE_KEY";
    pub const JWT_CALLER_BURST_LIMIT: &str = "JWT_CALLER_BURST_LIMIT";
    pub const JWT_CALLER_RATE_LIMIT: &str = "JWT_CALLER_RATE_LIMIT";
    pub const EVENT_BUS_NAME: &str = "EVENT_BUS_NAME";
    pub const EVENT_SOURCE: &str = "EVENT_SOURCE";
    pub const JOBS_BUCKET: &str = "JOBS_BUCKET";
    pub const IMPORT_MAX_BYTES: &str = "IMPORT_MAX_BYTES";
    /// Read by lambda_http, not by us: paths arrive without the stage.
    pub const AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH: &str = "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH";

    /// Set by Lambda itself.
    pub const AWS_REGION: &str = "AWS_REGION";
    pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    pub const AWS_LAMBDA_LOG_FORMAT: &str = "AWS_LAMBDA_LOG_FORMAT";
    pub const AWS_LAMBDA_LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";
    /// The log level when Lambda sets none (local runs).
    pub const RUST_LOG: &str = "RUST_LOG";

    /// Local runs only: never set in a deployed stack.
    pub const DYNAMODB_ENDPOINT: &str = "DYNAMODB_ENDPOINT";
    pub const S3_ENDPOINT: &str = "S3_ENDPOINT";
    pub const EVENTBRIDGE_ENDPOINT: &str = "EVENTBRIDGE_ENDPOINT";
    /// Set by whoever needs it (a proxy that re-signs TLS), never by the template.
    pub const TLS_PLATFORM_ROOTS: &str = "TLS_PLATFORM_ROOTS";
    /// Tests and the bench only: a PEM file of CA certificates trusted besides the pinned
    /// roots, for a local TLS endpoint signed by a throwaway CA. Never set on Lambda.
    pub const TEST_ONLY_TLS_CA_FILE: &str = "TEST_ONLY_TLS_CA_FILE";
    /// `false` leaves DynamoDB's connection to the first request instead of init.
    pub const CONNECT_AT_INIT: &str = "CONNECT_AT_INIT";

    /// The role credentials Lambda gives a function, in the order the SDK names them.
    pub const AWS_CREDENTIALS: [&str; 3] =
        [AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN];

    /// Exactly what `template.yaml` sets, in Globals or a function's `Environment`.
    pub const FROM_TEMPLATE: [&str; 20] = [
        TABLE_NAME,
        FUNCTION_TIMEOUT_SECONDS,
        PROFILES_CURSOR_KEY,
        PHOTO_BUCKET,
        PHOTO_BASE_URL,
        CORS_ALLOWED_ORIGINS,
        JWT_ISSUER,
        JWT_AUDIENCE,
        JWT_TENANT_CLAIM,
        JWT_HS256_SECRET,
        JWT_RS256_PUBLIC_KEY,
        JWT_LEEWAY_SECONDS,
        JWT_USAGE_KEY,
        JWT_CALLER_BURST_LIMIT,
        JWT_CALLER_RATE_LIMIT,
        EVENT_BUS_NAME,
        EVENT_SOURCE,
        JOBS_BUCKET,
        IMPORT_MAX_BYTES,
        AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH,
    ];
}

/// A function's settings, read once at init.
#[derive(Clone, Debug)]
pub struct Config {
    /// `TABLE_NAME`: the DynamoDB table (set by the template).
    pub table_name: String,
    /// `AWS_REGION` (set by Lambda); `us-east-1` when absent, as for a local engine.
    pub region: String,
    /// `DYNAMODB_ENDPOINT`: a local engine's URL. Never set in production.
    pub dynamodb_endpoint: Option<String>,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`: the function's
    /// role credentials, which Lambda sets for the life of the execution environment.
    /// With a local engine and none set, placeholder credentials (the engine ignores them).
    pub credentials: StaticCredentials,
    /// `PROFILES_CURSOR_KEY`: signs list cursors (at least 32 characters; the template makes
    /// a random one in Secrets Manager and gives it to list-profiles only). With a local
    /// engine and none set, a fixed development key. Only listing needs it: see
    /// [`Config::cursor_key`].
    pub cursor_key: Option<Secret>,
    /// JWT verification (the authorizer's only): see [`JwtConfig`]. `None` when neither
    /// `JWT_HS256_SECRET` nor `JWT_RS256_PUBLIC_KEY` is set: then only API keys are accepted.
    pub jwt: Option<JwtConfig>,
    /// `FUNCTION_TIMEOUT_SECONDS`: the function's `Timeout`, which Lambda does not tell a
    /// process at init (the template sets both from its `FunctionTimeoutSeconds` parameter).
    /// The DynamoDB client's timeouts are derived from it ([`crate::budget`]). When unset,
    /// the template's default, [`DEFAULT_FUNCTION_TIMEOUT_SECONDS`].
    pub function_timeout: std::time::Duration,
    /// `PHOTO_BUCKET`: the photo bucket (set by the template for every function; only the
    /// photo functions and delete-profile use it).
    pub photo_bucket: Option<String>,
    /// `PHOTO_BASE_URL`: where the photo distribution serves accepted photos (process-photo's
    /// only); a photo's `photo_url` is this and its path.
    pub photo_base_url: Option<String>,
    /// `S3_ENDPOINT`: a local S3-compatible server's URL (path-style). Never set in production.
    pub s3_endpoint: Option<String>,
    /// `TLS_PLATFORM_ROOTS=true`: trust the platform's root certificates besides the ones
    /// AWS's endpoints chain to (`crate::store::https_client`), for a network whose proxy
    /// re-signs TLS with its own CA. Off by default: loading them lengthens every cold start
    /// (docs/performance.md).
    pub tls_platform_roots: bool,
    /// `TEST_ONLY_TLS_CA_FILE`: the certificates (PEM, read at init) of a throwaway CA that
    /// signs a local TLS endpoint, trusted besides the pinned roots (and, unlike an https
    /// endpoint alone, instead of the platform's). For the bench and tests only: nothing in
    /// the template sets it.
    pub tls_test_ca: Option<Vec<u8>>,
    /// `CONNECT_AT_INIT` (default `true`): the HTTP functions open their DynamoDB
    /// connection during init (`crate::store::Store::open_connection`), so that the first
    /// request finds it open. `false` leaves it to the first request.
    pub connect_at_init: bool,
    /// `CORS_ALLOWED_ORIGINS`: the browser origins that may call the API (the template's
    /// `CorsAllowedOrigins`, given to every function); empty, CORS is off.
    pub cors: Origins,
    /// `EVENT_BUS_NAME`: the bus change events go to (publish-events' only).
    pub event_bus: Option<String>,
    /// `EVENT_SOURCE` (default [`DEFAULT_EVENT_SOURCE`]): every change event's `source`.
    pub event_source: String,
    /// `EVENTBRIDGE_ENDPOINT`: a local EventBridge's URL. Never set in production.
    pub eventbridge_endpoint: Option<String>,
    /// `JOBS_BUCKET`: the bucket of bulk imports and exports (the job functions' only).
    pub jobs_bucket: Option<String>,
    /// `IMPORT_MAX_BYTES` (default [`DEFAULT_IMPORT_MAX_BYTES`]): the largest import file
    /// S3 takes (the template's `ImportMaxBytes`).
    pub import_max_bytes: u64,
}

/// The largest import file when `IMPORT_MAX_BYTES` is unset: 1 GiB.
pub const DEFAULT_IMPORT_MAX_BYTES: u64 = 1 << 30;

/// A change event's `source` when `EVENT_SOURCE` is unset.
pub const DEFAULT_EVENT_SOURCE: &str = "profiles-api";

/// The function timeout assumed when `FUNCTION_TIMEOUT_SECONDS` is unset: the template's
/// default for `FunctionTimeoutSeconds`.
pub const DEFAULT_FUNCTION_TIMEOUT_SECONDS: u64 = 10;

#[derive(Clone, Debug)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// A secret string that never shows in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get`, so tests can give them without touching the environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let non_empty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        // A `true`/`false` setting: unset or empty, `default`.
        let flag = |k: &str, default: bool| match non_empty(k).as_deref().map(str::trim) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(ConfigError(format!(
                "{k} must be true or false, not {other:?}"
            ))),
        };
        let table_name = non_empty(env::TABLE_NAME)
            .ok_or_else(|| ConfigError("TABLE_NAME is not set".into()))?;
        let dynamodb_endpoint = non_empty(env::DYNAMODB_ENDPOINT);
        let credentials = match (
            non_empty(env::AWS_ACCESS_KEY_ID),
            non_empty(env::AWS_SECRET_ACCESS_KEY),
        ) {
            (Some(access_key_id), Some(secret)) => StaticCredentials {
                access_key_id,
                secret_access_key: Secret::new(secret),
                session_token: non_empty(env::AWS_SESSION_TOKEN).map(Secret::new),
            },
            _ if dynamodb_endpoint.is_some()
                || non_empty(env::S3_ENDPOINT).is_some()
                || non_empty(env::EVENTBRIDGE_ENDPOINT).is_some() =>
            {
                StaticCredentials {
                    access_key_id: "local".into(),
                    secret_access_key: Secret::new("local".into()),
                    session_token: None,
                }
            }
            _ => {
                return Err(ConfigError(
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them; \
                     locally, set DYNAMODB_ENDPOINT to use a local engine)"
                        .into(),
                ));
            }
        };
        let cursor_key = match non_empty(env::PROFILES_CURSOR_KEY) {
            Some(k) if k.len() >= MIN_CURSOR_KEY => Some(Secret::new(k)),
            Some(_) => {
                return Err(ConfigError(format!(
                    "PROFILES_CURSOR_KEY must have at least {MIN_CURSOR_KEY} characters"
                )));
            }
            None if dynamodb_endpoint.is_some() => Some(Secret::new(
                "local-development-cursor-key-not-secret".into(),
            )),
            None => None,
        };
        let jwt = JwtConfig::from_lookup(&non_empty)?;
        let function_timeout = match non_empty(env::FUNCTION_TIMEOUT_SECONDS) {
            None => DEFAULT_FUNCTION_TIMEOUT_SECONDS,
            // Lambda's own bounds: 1 s to 15 minutes.
            Some(s) => match s.trim().parse::<u64>() {
                Ok(n @ 1..=900) => n,
                _ => {
                    return Err(ConfigError(format!(
                        "FUNCTION_TIMEOUT_SECONDS must be whole seconds from 1 to 900, not {s:?}"
                    )));
                }
            },
        };
        let import_max_bytes = match non_empty(env::IMPORT_MAX_BYTES) {
            None => DEFAULT_IMPORT_MAX_BYTES,
            // S3's own bound for one POST upload: 5 GiB.
            Some(s) => match s.trim().parse::<u64>() {
                Ok(n @ 1..=5_368_709_120) => n,
                _ => {
                    return Err(ConfigError(format!(
                        "IMPORT_MAX_BYTES must be bytes from 1 to 5368709120, not {s:?}"
                    )));
                }
            },
        };
        Ok(Self {
            function_timeout: std::time::Duration::from_secs(function_timeout),
            table_name,
            credentials,
            cursor_key,
            jwt,
            dynamodb_endpoint,
            photo_bucket: non_empty(env::PHOTO_BUCKET),
            photo_base_url: non_empty(env::PHOTO_BASE_URL),
            s3_endpoint: non_empty(env::S3_ENDPOINT),
            tls_platform_roots: flag(env::TLS_PLATFORM_ROOTS, false)?,
            tls_test_ca: match non_empty(env::TEST_ONLY_TLS_CA_FILE) {
                None => None,
                Some(path) => Some(
                    std::fs::read(path.trim())
                        .map_err(|e| ConfigError(format!("TEST_ONLY_TLS_CA_FILE {path:?}: {e}")))?,
                ),
            },
            connect_at_init: flag(env::CONNECT_AT_INIT, true)?,
            region: non_empty(env::AWS_REGION).unwrap_or_else(|| "us-east-1".into()),
            cors: cors_origins(&get)?,
            event_bus: non_empty(env::EVENT_BUS_NAME),
            event_source: non_empty(env::EVENT_SOURCE)
                .unwrap_or_else(|| DEFAULT_EVENT_SOURCE.to_owned()),
            eventbridge_endpoint: non_empty(env::EVENTBRIDGE_ENDPOINT),
            jobs_bucket: non_empty(env::JOBS_BUCKET),
            import_max_bytes,
        })
    }
}

/// `CORS_ALLOWED_ORIGINS` alone: all the preflight function reads (its init builds no
/// store).
pub fn cors_origins(get: &impl Fn(&str) -> Option<String>) -> Result<Origins, ConfigError> {
    Origins::parse(&get(env::CORS_ALLOWED_ORIGINS).unwrap_or_default())
        .map_err(|e| ConfigError(format!("{}: {e}", env::CORS_ALLOWED_ORIGINS)))
}

impl Config {
    /// The photo bucket. Its absence is a deployment mistake (the template sets it): the
    /// edge answers it as a 500 with the cause in the log.
    pub fn photo_bucket(&self) -> Result<&str, ConfigError> {
        self.photo_bucket
            .as_deref()
            .ok_or_else(|| ConfigError("PHOTO_BUCKET is not set".into()))
    }

    /// Where accepted photos are served (process-photo's). Its absence is a deployment
    /// mistake, as for [`Config::photo_bucket`].
    pub fn photo_base_url(&self) -> Result<&str, ConfigError> {
        self.photo_base_url
            .as_deref()
            .ok_or_else(|| ConfigError("PHOTO_BASE_URL is not set".into()))
    }

    /// The bucket of bulk jobs. Its absence is a deployment mistake (the template sets it
    /// for the job functions), as for [`Config::photo_bucket`].
    pub fn jobs_bucket(&self) -> Result<&str, ConfigError> {
        self.jobs_bucket
            .as_deref()
            .ok_or_else(|| ConfigError("JOBS_BUCKET is not set".into()))
    }

    /// The bus change events go to. Its absence is a deployment mistake (the template sets
    /// it for publish-events), as for [`Config::photo_bucket`].
    pub fn event_bus(&self) -> Result<&str, ConfigError> {
        self.event_bus
            .as_deref()
            .ok_or_else(|| ConfigError("EVENT_BUS_NAME is not set".into()))
    }

    /// The cursor-signing key. Its absence is a deployment mistake (the template sets it for
    /// list-profiles), as for [`Config::photo_bucket`].
    pub fn cursor_key(&self) -> Result<&Secret, ConfigError> {
        self.cursor_key
            .as_ref()
            .ok_or_else(|| ConfigError("PROFILES_CURSOR_KEY is not set".into()))
    }
}

/// The shortest HS256 secret accepted, in bytes (RFC 7518 §3.2: at least the hash's size).
pub const MIN_HS256_SECRET: usize = 32;

/// The smallest RS256 public key accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// How a JWT is verified: the authorizer accepts a JWT only when one of the two keys is set,
/// and then only HS256 (with the secret) and RS256 (with the public key) tokens whose `iss`
/// and `aud` are these.
#[derive(Clone, Debug)]
pub struct JwtConfig {
    /// `JWT_ISSUER`: the `iss` every token must carry.
    pub issuer: String,
    /// `JWT_AUDIENCE`: a value the token's `aud` must hold.
    pub audience: String,
    /// `JWT_TENANT_CLAIM` (default `tenant_id`): the claim that names the caller's tenant.
    pub tenant_claim: String,
    /// `JWT_HS256_SECRET`: the HS256 shared secret, at least [`MIN_HS256_SECRET`] bytes.
    pub hs256_secret: Option<Secret>,
    /// `JWT_RS256_PUBLIC_KEY`: the RS256 public key in PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`;
    /// a literal `\n` stands for a newline, as a CloudFormation parameter is one line).
    /// Parsed by the authorizer at its init ([`JwtConfig::check`]), not here: every function
    /// runs this loader, and only the authorizer should carry an RSA key parser.
    pub rs256_public_key: Option<Rs256PublicKey>,
    /// `JWT_LEEWAY_SECONDS` (default 30): the clock skew allowed on `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// `JWT_USAGE_KEY`: the usage key every JWT caller is counted on in API Gateway: the
    /// template's `JwtCallersApiKey`, which the stack itself puts in the JWT callers' usage
    /// plan, so no subject is registered anywhere (docs/authentication.md).
    pub usage_key: String,
    /// `JWT_CALLER_BURST_LIMIT` and `JWT_CALLER_RATE_LIMIT`: each JWT caller's own limit,
    /// kept in the table (`crate::store::Store::admit`). Unset, JWT callers are limited only
    /// all together, by their usage plan.
    pub caller_rate: Option<Rate>,
}

/// A rate limit: `burst` requests at once, `per_second` steadily after (API Gateway's usage
/// plan throttle, in the same two numbers).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub burst: u32,
    pub per_second: f64,
}

impl Rate {
    /// The time between two requests at the steady rate, in ms (at least 1).
    pub(crate) fn interval_ms(self) -> i64 {
        // A finite positive rate (the loader refuses others) makes a finite quotient; the
        // cast saturates at the extremes.
        ((1000.0 / self.per_second).round() as i64).max(1)
    }

    /// The burst, at least 1.
    pub(crate) fn burst(self) -> i64 {
        i64::from(self.burst.max(1))
    }

    /// Both numbers from `get`, or neither; anything else is an error.
    fn from_lookup(
        get: &impl Fn(&str) -> Option<String>,
        burst_name: &str,
        rate_name: &str,
    ) -> Result<Option<Self>, ConfigError> {
        let (burst, rate) = match (get(burst_name), get(rate_name)) {
            (None, None) => return Ok(None),
            (Some(b), Some(r)) => (b, r),
            _ => {
                return Err(ConfigError(format!(
                    "{burst_name} and {rate_name} go together: set both or neither"
                )));
            }
        };
        let burst = burst
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|b| *b >= 1)
            .ok_or_else(|| {
                ConfigError(format!(
                    "{burst_name} must be a whole number from 1, not {burst:?}"
                ))
            })?;
        let per_second = rate
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|r| r.is_finite() && *r >= 0.001)
            .ok_or_else(|| {
                ConfigError(format!(
                    "{rate_name} must be a number of requests a second from 0.001, not {rate:?}"
                ))
            })?;
        Ok(Some(Self { burst, per_second }))
    }
}

/// The default of `JWT_TENANT_CLAIM`.
pub const DEFAULT_TENANT_CLAIM: &str = "tenant_id";

/// The default of `JWT_LEEWAY_SECONDS`.
pub const DEFAULT_JWT_LEEWAY_SECONDS: u64 = 30;

impl JwtConfig {
    /// The JWT settings from `get` (which yields only non-blank values). A key without its
    /// issuer or audience, a short secret or a key that does not parse is an error: the
    /// authorizer refuses to start rather than accept or refuse tokens it was not meant to.
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let hs256_secret = match get(env::JWT_HS256_SECRET) {
            Some(s) if s.len() >= MIN_HS256_SECRET => Some(Secret::new(s)),
            Some(_) => {
                return Err(ConfigError(format!(
                    "JWT_HS256_SECRET must have at least {MIN_HS256_SECRET} bytes"
                )));
            }
            None => None,
        };
        let rs256_public_key = get(env::JWT_RS256_PUBLIC_KEY)
            .map(|pem| Rs256PublicKey::from_text(&pem))
            .transpose()?;
        if hs256_secret.is_none() && rs256_public_key.is_none() {
            return Ok(None);
        }
        let required = |name: &str| {
            get(name).ok_or_else(|| {
                ConfigError(format!(
                    "{name} is not set, but a JWT key is (JWT_HS256_SECRET or \
                     JWT_RS256_PUBLIC_KEY): set {name}, or unset the keys to accept API keys only"
                ))
            })
        };
        let issuer = required(env::JWT_ISSUER)?;
        let audience = required(env::JWT_AUDIENCE)?;
        let usage_key = required(env::JWT_USAGE_KEY)?;
        let caller_rate =
            Rate::from_lookup(get, env::JWT_CALLER_BURST_LIMIT, env::JWT_CALLER_RATE_LIMIT)?;
        let tenant_claim = get(env::JWT_TENANT_CLAIM)
            .map(|c| c.trim().to_owned())
            .unwrap_or_else(|| DEFAULT_TENANT_CLAIM.to_owned());
        let leeway_seconds = match get(env::JWT_LEEWAY_SECONDS) {
            None => DEFAULT_JWT_LEEWAY_SECONDS,
            Some(raw) => raw
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| *s <= 3600)
                .ok_or_else(|| {
                    ConfigError(format!(
                        "JWT_LEEWAY_SECONDS must be a whole number of seconds from 0 to 3600, not {raw:?}"
                    ))
                })?,
        };
        Ok(Some(Self {
            issuer,
            audience,
            tenant_claim,
            hs256_secret,
            rs256_public_key,
            leeway_seconds,
            usage_key,
            caller_rate,
        }))
    }
}

impl JwtConfig {
    /// Parses and checks the RS256 key, if any. The authorizer calls this at init, so a bad
    /// key fails init rather than every request.
    pub fn check(&self) -> Result<(), ConfigError> {
        match &self.rs256_public_key {
            Some(key) => key.decoding_key().map(|_| ()),
            None => Ok(()),
        }
    }
}

/// An RS256 public key as configured (PEM), parsed on first use.
#[derive(Clone)]
pub struct Rs256PublicKey {
    pem: String,
    parsed: std::sync::OnceLock<jsonwebtoken::DecodingKey>,
}

impl std::fmt::Debug for Rs256PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rs256PublicKey(..)")
    }
}

fn bad_rs256(why: &str) -> ConfigError {
    ConfigError(format!("JWT_RS256_PUBLIC_KEY: {why}"))
}

impl Rs256PublicKey {
    /// The key as the environment gives it: `\n` becomes a newline; a private key is refused
    /// at once (it would be a leak, and verifies nothing).
    fn from_text(text: &str) -> Result<Self, ConfigError> {
        let pem = text.replace("\\n", "\n").trim().to_owned();
        if pem.contains("PRIVATE KEY") {
            return Err(bad_rs256(
                "this is a private key; give the public key (openssl rsa -pubout)",
            ));
        }
        Ok(Self {
            pem,
            parsed: std::sync::OnceLock::new(),
        })
    }

    /// The verification key: parsed and checked (an RSA public key of at least
    /// [`MIN_RSA_BITS`] bits) on the first call, then kept.
    pub fn decoding_key(&self) -> Result<&jsonwebtoken::DecodingKey, ConfigError> {
        if let Some(key) = self.parsed.get() {
            return Ok(key);
        }
        let key = parse_rs256(&self.pem)?;
        // Another thread may have set it meanwhile: either value is the same key.
        Ok(self.parsed.get_or_init(|| key))
    }
}

/// Parses and checks an RS256 public key from PEM.
fn parse_rs256(pem: &str) -> Result<jsonwebtoken::DecodingKey, ConfigError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::traits::PublicKeyParts;
    let bad = bad_rs256;
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| {
        bad(&format!(
            "not an RSA public key in PEM (-----BEGIN PUBLIC KEY-----): {e}"
        ))
    })?;
    // The DER jsonwebtoken verifies with, read as the verifier will read it.
    let jsonwebtoken::DecodingKeyKind::SecretOrDer(der) = key.kind() else {
        return Err(bad("not an RSA public key in PEM"));
    };
    let parsed = rsa::RsaPublicKey::from_pkcs1_der(der)
        .map_err(|e| bad(&format!("not a valid RSA public key: {e}")))?;
    let bits = parsed.size() * 8;
    if bits < MIN_RSA_BITS {
        return Err(bad(&format!(
            "a {bits}-bit key is too short; RS256 needs at least {MIN_RSA_BITS} bits"
        )));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use std::time::Duration;

    use super::*;

    fn with_timeout(value: Option<&str>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| match k {
            env::TABLE_NAME => Some("t".into()),
            env::DYNAMODB_ENDPOINT => Some("http://127.0.0.1:1".into()),
            env::FUNCTION_TIMEOUT_SECONDS => value.map(str::to_owned),
            _ => None,
        })
    }

    #[test]
    fn the_function_timeout_is_read_and_defaults_to_the_templates() {
        let default = with_timeout(None).unwrap().function_timeout;
        assert_eq!(
            default,
            Duration::from_secs(DEFAULT_FUNCTION_TIMEOUT_SECONDS)
        );
        let set = with_timeout(Some("29")).unwrap().function_timeout;
        assert_eq!(set, Duration::from_secs(29));
        for bad in ["0", "901", "1.5", "ten", "-3"] {
            let err = with_timeout(Some(bad)).unwrap_err();
            assert!(
                err.0.contains(env::FUNCTION_TIMEOUT_SECONDS),
                "{bad}: {err}"
            );
        }
    }

    fn with(name: &'static str, value: &str) -> Result<Config, ConfigError> {
        let value = value.to_owned();
        Config::from_lookup(move |k| match k {
            env::TABLE_NAME => Some("t".into()),
            env::DYNAMODB_ENDPOINT => Some("http://127.0.0.1:1".into()),
            k if k == name => Some(value.clone()),
            _ => None,
        })
    }

    #[test]
    fn the_connection_is_opened_at_init_unless_turned_off() {
        assert!(with_timeout(None).unwrap().connect_at_init);
        assert!(with(env::CONNECT_AT_INIT, "true").unwrap().connect_at_init);
        assert!(!with(env::CONNECT_AT_INIT, "false").unwrap().connect_at_init);
        let err = with(env::CONNECT_AT_INIT, "no").unwrap_err();
        assert!(err.0.contains(env::CONNECT_AT_INIT), "{err}");
    }

    #[test]
    fn a_test_ca_is_read_at_init_and_an_unreadable_one_is_named() {
        assert!(with_timeout(None).unwrap().tls_test_ca.is_none());
        let file = std::env::temp_dir().join(format!("test-ca-{}.pem", std::process::id()));
        std::fs::write(&file, b"-----BEGIN CERTIFICATE-----").unwrap();
        let read = with(env::TEST_ONLY_TLS_CA_FILE, &file.to_string_lossy()).unwrap();
        assert_eq!(
            read.tls_test_ca.as_deref(),
            Some(&b"-----BEGIN CERTIFICATE-----"[..])
        );
        std::fs::remove_file(&file).unwrap();
        let err = with(env::TEST_ONLY_TLS_CA_FILE, &file.to_string_lossy()).unwrap_err();
        assert!(err.0.contains(env::TEST_ONLY_TLS_CA_FILE), "{err}");
    }
}
