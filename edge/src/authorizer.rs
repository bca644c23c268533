//! The Lambda authorizer: turns a request's credential (an API key or a JWT) into the tenant,
//! principal and scopes API Gateway hands the functions (`shared::auth::Caller::of`), or
//! refuses it.
//!
//! The credential comes from `Authorization: Bearer <token>` or `x-api-key: <key>` (both may
//! be sent if they agree). A bearer token starting `prof_` is an API key, anything else a JWT.
//! A refusal is the error whose message is exactly `Unauthorized`, which API Gateway answers
//! with 401; any other error (the table unreachable, slow or throttling) is API Gateway's
//! `AUTHORIZER_FAILURE`, which the template answers with a 503 and `Retry-After`: an outage is
//! never a bad credential. An allowed credential gets a
//! policy for the whole stage, so a cached answer serves every route: scopes are checked by
//! the functions. Each decision is one log line (outcome, credential kind, key id or issuer
//! and subject, tenant), and a JWT caller over its own rate limit a second (`limited`, with
//! the seconds to wait: it is let through, and the function answers 429); never a token, key
//! or hash.

use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse,
};
use lambda_http::aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use lambda_http::http::HeaderMap;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use shared::apikeys;
use shared::app::App;
use shared::auth::Scopes;
use shared::ids::{PrincipalId, TenantId};

use crate::caller::{CONTEXT_PRINCIPAL, CONTEXT_RETRY_AFTER, CONTEXT_SCOPES, CONTEXT_TENANT};
use crate::error::ApiError;
use shared::config::JwtConfig;
use shared::store::Admission;

/// Why the authorizer did not allow a request.
#[derive(Debug)]
pub enum AuthorizerError {
    /// No credential, or a bad one. Its message is exactly `Unauthorized`: the words API
    /// Gateway looks for to answer 401.
    Unauthorized,
    /// The credential could not be checked (the table unreachable or throttling, a malformed
    /// event): API Gateway's `AUTHORIZER_FAILURE` (the template's 503), the log has the cause.
    Internal(ApiError),
}

impl fmt::Display for AuthorizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unauthorized => f.write_str(shared::auth::AUTHORIZER_REFUSAL),
            Self::Internal(e) => write!(f, "the authorizer failed: {e}"),
        }
    }
}

impl std::error::Error for AuthorizerError {}

impl<E: Into<ApiError>> From<E> for AuthorizerError {
    fn from(e: E) -> Self {
        Self::Internal(e.into())
    }
}

/// What a credential resolved to.
struct Identity {
    tenant: TenantId,
    principal: PrincipalId,
    scopes: Scopes,
    /// API Gateway's `usageIdentifierKey`: the usage plan key this credential is counted on.
    usage_key: String,
    /// A JWT caller over its own limit: the seconds until its next request fits. It is let
    /// through with this in the context, and the function answers 429 (an authorizer can only
    /// allow, deny with 403, or refuse with 401).
    retry_after: Option<u32>,
}

/// What kind of credential a request carries, for the log line.
#[derive(Clone, Copy)]
enum CredentialKind {
    None,
    ApiKey,
    Jwt,
}

impl CredentialKind {
    fn as_str(self) -> &'static str {
        match self {
            CredentialKind::None => "none",
            CredentialKind::ApiKey => "api_key",
            CredentialKind::Jwt => "jwt",
        }
    }
}

/// Logs a refusal (never the credential) and returns the 401 error.
fn deny(kind: CredentialKind, reason: &str) -> AuthorizerError {
    tracing::info!(
        outcome = "deny",
        credential = kind.as_str(),
        reason,
        "authorizer decision"
    );
    AuthorizerError::Unauthorized
}

/// Authorizes one API Gateway REQUEST authorizer event. Its decision is logged under the
/// request's API Gateway request id (the `trace_id` the functions and error answers carry).
pub async fn authorize(
    app: &App,
    event: ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Result<ApiGatewayCustomAuthorizerResponse, AuthorizerError> {
    let span = tracing::info_span!(
        "authorizer",
        trace_id = event.request_context.request_id.as_deref().unwrap_or("-")
    );
    decide(app, event).instrument(span).await
}

async fn decide(
    app: &App,
    event: ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Result<ApiGatewayCustomAuthorizerResponse, AuthorizerError> {
    let resource = stage_wildcard(event.method_arn.as_deref())?;
    let credential = credential(&event.headers, &event.multi_value_headers)?;
    let identity = match credential {
        Credential::ApiKey(key) => api_key(app, key).await?,
        Credential::Jwt(token) => {
            let (identity, caller) = jwt(app.config.jwt.as_ref(), token)?;
            limit(app, identity, &caller).await?
        }
    };
    Ok(allow(identity, resource))
}

/// A JWT caller's own rate limit, when one is configured: one conditional write to its
/// item in the table (two mid-burst; `Store::admit`).
async fn limit(
    app: &App,
    mut identity: Identity,
    caller: &str,
) -> Result<Identity, AuthorizerError> {
    let Some(rate) = app.config.jwt.as_ref().and_then(|j| j.caller_rate) else {
        return Ok(identity);
    };
    let now_ms = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX);
    // Boxed, as the API key's GetItem is (see there).
    let admission = Box::pin(app.store.admit(&identity.tenant, caller, rate, now_ms))
        .await
        .map_err(|e| AuthorizerError::Internal(e.into()))?;
    if let Admission::Limited { retry_after_ms } = admission {
        let seconds = u32::try_from((retry_after_ms + 999) / 1000)
            .unwrap_or(u32::MAX)
            .max(1);
        tracing::info!(
            outcome = "limited",
            credential = CredentialKind::Jwt.as_str(),
            sub = %identity.principal,
            tenant = %identity.tenant,
            retry_after = seconds,
            "authorizer decision"
        );
        identity.retry_after = Some(seconds);
    }
    Ok(identity)
}

/// `<arn prefix>/<stage>/*` from a method ARN
/// (`arn:aws:execute-api:<region>:<account>:<api id>/<stage>/<method>/<path>`).
fn stage_wildcard(method_arn: Option<&str>) -> Result<String, AuthorizerError> {
    let mut parts = method_arn.unwrap_or_default().splitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(api), Some(stage)) if api.starts_with("arn:") && !stage.is_empty() => {
            Ok(format!("{api}/{stage}/*"))
        }
        _ => Err(AuthorizerError::Internal(ApiError::internal(
            "authorizer event",
            format!("methodArn {method_arn:?} is not an execute-api method ARN"),
        ))),
    }
}

enum Credential<'a> {
    ApiKey(&'a str),
    Jwt(&'a str),
}

/// Every value of header `name` in the event (API Gateway gives `headers` with the last value
/// and `multiValueHeaders` with all of them).
fn header_values<'a>(headers: &'a HeaderMap, multi: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    let mut values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .chain(multi.get_all(name).iter())
        .map(|v| v.to_str().unwrap_or("\u{0}"))
        .collect();
    values.sort_unstable();
    values.dedup();
    values
}

/// The one credential of a request: `Authorization: Bearer <x>` or `x-api-key: <key>`; both
/// only when they are the same credential. Two different values of one header are refused.
fn credential<'a>(
    headers: &'a HeaderMap,
    multi: &'a HeaderMap,
) -> Result<Credential<'a>, AuthorizerError> {
    let authorization = match header_values(headers, multi, "authorization")[..] {
        [] => None,
        [value] => {
            let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
            let token = token.trim();
            if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
                return Err(deny(
                    CredentialKind::None,
                    "authorization is not Bearer <token>",
                ));
            }
            Some(token)
        }
        _ => {
            return Err(deny(
                CredentialKind::None,
                "more than one authorization header",
            ));
        }
    };
    let api_key = match header_values(headers, multi, "x-api-key")[..] {
        [] => None,
        [value] => Some(value.trim()),
        _ => {
            return Err(deny(
                CredentialKind::ApiKey,
                "more than one x-api-key header",
            ));
        }
    };
    match (authorization, api_key) {
        (None, None) => Err(deny(CredentialKind::None, "no credential")),
        (Some(bearer), Some(key)) if bearer != key => Err(deny(
            CredentialKind::None,
            "authorization and x-api-key carry different credentials",
        )),
        // x-api-key carries API keys only.
        (_, Some(key)) => Ok(Credential::ApiKey(key)),
        (Some(bearer), None) if bearer.starts_with(apikeys::PREFIX) => {
            Ok(Credential::ApiKey(bearer))
        }
        (Some(token), None) => Ok(Credential::Jwt(token)),
    }
}

async fn api_key(app: &App, key: &str) -> Result<Identity, AuthorizerError> {
    if !apikeys::is_well_formed(key) {
        return Err(deny(CredentialKind::ApiKey, "malformed API key"));
    }
    // Boxed: the SDK's GetItem future nested this deep overflows rustc's query depth when
    // the function's whole future is laid out (debug builds of the authorizer binary).
    let Some(record) = Box::pin(apikeys::lookup(&app.store, key)).await? else {
        return Err(deny(CredentialKind::ApiKey, "unknown API key"));
    };
    if record.revoked {
        tracing::info!(
            outcome = "deny",
            credential = CredentialKind::ApiKey.as_str(),
            reason = "revoked API key",
            key_id = %record.key_id,
            tenant = %record.tenant,
            "authorizer decision"
        );
        return Err(AuthorizerError::Unauthorized);
    }
    tracing::info!(
        outcome = "allow",
        credential = CredentialKind::ApiKey.as_str(),
        key_id = %record.key_id,
        tenant = %record.tenant,
        principal = %record.principal,
        scopes = %record.scopes,
        "authorizer decision"
    );
    Ok(Identity {
        tenant: record.tenant,
        principal: record.principal,
        scopes: record.scopes,
        usage_key: record.usage_key,
        retry_after: None,
    })
}

/// Why jsonwebtoken refused a token, as a fixed phrase (its own messages may quote parts of
/// the token).
fn jwt_reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidSignature => "JWT signature does not verify",
        ErrorKind::ExpiredSignature => "JWT expired",
        ErrorKind::ImmatureSignature => "JWT not valid yet (nbf)",
        ErrorKind::InvalidIssuer => "JWT issuer not accepted",
        ErrorKind::InvalidAudience => "JWT audience not accepted",
        ErrorKind::MissingRequiredClaim(_) => "JWT lacks a required claim (exp, iss, aud, sub)",
        ErrorKind::InvalidClaimFormat(_) => "JWT claim of the wrong type",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "JWT algorithm not accepted"
        }
        _ => "malformed JWT",
    }
}

/// The name of a JWT caller's rate limit: one per (issuer, tenant, subject), so each is
/// limited on its own; a digest, so the table holds no subject in its keys.
pub fn jwt_caller(issuer: &str, tenant: &TenantId, subject: &PrincipalId) -> String {
    let digest = Sha256::digest(format!("{issuer}\n{tenant}\n{subject}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("jwt-{}", &hex[..32])
}

/// Scope names from a claim: a space-separated string, or an array of strings.
fn scope_names(claim: Option<&Value>) -> Vec<&str> {
    match claim {
        Some(Value::String(s)) => s.split_whitespace().collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A JWT's identity, and the name of its caller's rate limit ([`jwt_caller`]).
fn jwt(config: Option<&JwtConfig>, token: &str) -> Result<(Identity, String), AuthorizerError> {
    let Some(config) = config else {
        return Err(deny(
            CredentialKind::Jwt,
            "JWT presented, but no JWT key is configured",
        ));
    };
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| deny(CredentialKind::Jwt, jwt_reason(e.kind())))?;
    // The key follows from the algorithm, and only these two pairs exist: an HS256 token is
    // never checked against the RSA public key (algorithm confusion), nor `none` against
    // anything (jsonwebtoken has no `none`).
    let secret_key;
    let key: &DecodingKey = match (header.alg, &config.hs256_secret, &config.rs256_public_key) {
        (Algorithm::HS256, Some(secret), _) => {
            secret_key = DecodingKey::from_secret(secret.expose().as_bytes());
            &secret_key
        }
        // Parsed at init (JwtConfig::check), so this only reads it back.
        (Algorithm::RS256, _, Some(public)) => public
            .decoding_key()
            .map_err(|e| AuthorizerError::Internal(ApiError::internal("JWT key", e)))?,
        _ => return Err(deny(CredentialKind::Jwt, "JWT algorithm not accepted")),
    };
    let mut validation = Validation::new(header.alg);
    validation.leeway = config.leeway_seconds;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
        .map_err(|e| deny(CredentialKind::Jwt, jwt_reason(e.kind())))?
        .claims;

    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let Some(principal) = text("sub").and_then(|s| PrincipalId::new(s).ok()) else {
        return Err(deny(
            CredentialKind::Jwt,
            "JWT sub is not a valid principal id",
        ));
    };
    let Some(tenant) = text(&config.tenant_claim).and_then(|t| TenantId::new(t).ok()) else {
        tracing::info!(
            outcome = "deny",
            credential = CredentialKind::Jwt.as_str(),
            reason = "JWT tenant claim missing or not a valid tenant id",
            tenant_claim = %config.tenant_claim,
            iss = %config.issuer,
            sub = %principal,
            "authorizer decision"
        );
        return Err(AuthorizerError::Unauthorized);
    };
    // Names that are not ours are ignored: a token may carry other services' scopes.
    let scopes = Scopes::from_names(
        scope_names(claims.get("scope"))
            .into_iter()
            .chain(scope_names(claims.get("scp"))),
    );
    tracing::info!(
        outcome = "allow",
        credential = CredentialKind::Jwt.as_str(),
        iss = %config.issuer,
        sub = %principal,
        tenant = %tenant,
        scopes = %scopes,
        "authorizer decision"
    );
    let caller = jwt_caller(&config.issuer, &tenant, &principal);
    let identity = Identity {
        usage_key: config.usage_key.clone(),
        tenant,
        principal,
        scopes,
        retry_after: None,
    };
    Ok((identity, caller))
}

/// The answer that lets the request through as `identity`.
fn allow(identity: Identity, resource: String) -> ApiGatewayCustomAuthorizerResponse {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_owned()];
    statement.effect = IamPolicyEffect::Allow;
    statement.resource = vec![resource];
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".to_owned());
    policy.statement = vec![statement];

    // Context values must be strings, numbers or booleans: scopes are one space-separated string.
    let mut context = Map::new();
    context.insert(CONTEXT_TENANT.into(), identity.tenant.to_string().into());
    context.insert(
        CONTEXT_PRINCIPAL.into(),
        identity.principal.to_string().into(),
    );
    context.insert(CONTEXT_SCOPES.into(), identity.scopes.to_string().into());
    if let Some(seconds) = identity.retry_after {
        context.insert(CONTEXT_RETRY_AFTER.into(), seconds.into());
    }

    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    response.principal_id = Some(identity.principal.to_string());
    response.policy_document = policy;
    response.context = Value::Object(context);
    response.usage_identifier_key = Some(identity.usage_key);
    response
}
