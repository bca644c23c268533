//! The authorizer (`edge::authorizer::authorize`) fed real API Gateway REQUEST authorizer
//! events (`events/authorizer.json`), API keys on a real engine (`shared::apikeys`), the JWT
//! configuration, and the `keys` command line against an engine: a module per area, the
//! events, apps and credentials they share here.
//!
//! Its own test binary, its own process: `logs` installs a process-wide log subscriber (set
//! once, global) to read every line the process logs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod api_keys;
mod config;
mod credentials;
mod jwt;
mod keys_cli;
mod logs;

use shared::config::env;

use edge::authorizer::{AuthorizerError, authorize};
use jsonwebtoken::{Algorithm, EncodingKey, Header, get_current_timestamp};
use lambda_http::aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use profiles_tests::{Engine, json, repo_path};
use serde_json::Value;
use shared::apikeys;
use shared::app::App;
use shared::auth::{Scope, Scopes};
use shared::config::{Config, Secret};
use shared::ids::{PrincipalId, TenantId};

// ---------------------------------------------------------------------------------------
// Events, apps and credentials

/// The fixture's method ARN, and the policy resource every allowed request must get.
pub(crate) const STAGE_WILDCARD: &str =
    "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/*";

/// `events/authorizer.json` with its credential headers replaced by `headers`.
pub(crate) fn event(headers: &[(&str, &str)]) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    serde_json::from_value(event_json(headers)).unwrap()
}

pub(crate) fn event_json(headers: &[(&str, &str)]) -> Value {
    let path = repo_path("events/authorizer.json");
    let mut e: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for map in ["headers", "multiValueHeaders"] {
        let m = e[map].as_object_mut().unwrap();
        m.retain(|k, _| !k.eq_ignore_ascii_case("authorization"));
        for (name, value) in headers {
            let v = if map == "headers" {
                json!(value)
            } else {
                json!([value])
            };
            m.insert((*name).to_owned(), v);
        }
    }
    e
}

pub(crate) fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A store no engine answers at: whatever reaches it fails.
pub(crate) const NOWHERE: &str = "http://127.0.0.1:9";

/// An app with the given settings on top of a table at `endpoint`.
pub(crate) fn app_with(endpoint: &str, table: &str, vars: &[(&str, &str)]) -> App {
    App::new(config_with(endpoint, table, vars).unwrap())
}

pub(crate) fn config_with(
    endpoint: &str,
    table: &str,
    vars: &[(&str, &str)],
) -> Result<Config, shared::config::ConfigError> {
    let mut all: Vec<(String, String)> = vec![
        (env::TABLE_NAME.into(), table.into()),
        (env::DYNAMODB_ENDPOINT.into(), endpoint.into()),
    ];
    all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    // The template always sets it; a test's own value comes first and wins.
    all.push((env::JWT_USAGE_KEY.into(), JWT_USAGE.into()));
    Config::from_lookup(move |k| all.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
}

pub(crate) async fn refused(app: &App, event: ApiGatewayCustomAuthorizerRequestTypeRequest) {
    match authorize(app, event).await {
        Err(e @ AuthorizerError::Unauthorized) => assert_eq!(e.to_string(), "Unauthorized"),
        Err(e) => panic!("expected Unauthorized, got the error {e}"),
        Ok(r) => panic!(
            "expected Unauthorized, got {}",
            serde_json::to_string(&r).unwrap()
        ),
    }
}

/// The allow answer as API Gateway receives it (JSON).
pub(crate) async fn allowed(
    app: &App,
    event: ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Value {
    match authorize(app, event).await {
        Ok(r) => serde_json::to_value(&r).unwrap(),
        Err(e) => panic!("expected an allow, got {e}"),
    }
}

/// Checks an allow answer: principal, stage-wide policy, context, usage key.
pub(crate) fn assert_allows(
    answer: &Value,
    tenant: &str,
    principal: &str,
    scopes: &str,
    usage_key: &str,
) {
    assert_eq!(answer["principalId"], principal);
    let policy = &answer["policyDocument"];
    assert_eq!(policy["Version"], "2012-10-17");
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0]["Effect"], "Allow");
    assert_eq!(statements[0]["Action"], json!(["execute-api:Invoke"]));
    assert_eq!(statements[0]["Resource"], json!([STAGE_WILDCARD]));
    assert_eq!(
        answer["context"],
        json!({ "tenant_id": tenant, "principal_id": principal, "scopes": scopes })
    );
    assert_eq!(answer["usageIdentifierKey"], usage_key);
}

pub(crate) fn tenant(t: &str) -> TenantId {
    TenantId::new(t).unwrap()
}

pub(crate) fn principal(p: &str) -> PrincipalId {
    PrincipalId::new(p).unwrap()
}

pub(crate) fn read_lists() -> Scopes {
    Scopes::default().with(Scope::Read).with(Scope::Lists)
}

/// An engine, the app on it, and one API key (read + lists) of tenant-k / svc-1.
pub(crate) async fn with_key() -> (Engine, App, Secret, apikeys::ApiKeyRecord) {
    let engine = Engine::start().await;
    let app = engine.app();
    let (key, record) = apikeys::create(
        &app.store,
        &tenant("tenant-k"),
        &principal("svc-1"),
        read_lists(),
        Some("billing sync"),
    )
    .await
    .unwrap();
    (engine, app, key, record)
}

// JWT settings of the tests.
pub(crate) const ISSUER: &str = "https://issuer.example.test/";
pub(crate) const AUDIENCE: &str = "profiles-api";
pub(crate) const HS_SECRET: &str = "test-only-hs256-secret-not-for-any-deployment";
/// The one usage key JWT callers are counted on (the template's `JwtCallersApiKey`).
pub(crate) const JWT_USAGE: &str = "jwt-callers-test-stack-123456789012";

pub(crate) fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo_path(&format!("tests/fixtures/{name}"))).unwrap()
}

pub(crate) fn rs_public() -> String {
    fixture("test-only-rs256-public.pem")
}

/// An app that accepts JWTs with `keys` (`JWT_*` settings) and reaches no table.
pub(crate) fn jwt_app(keys: &[(&str, &str)]) -> App {
    let mut vars = vec![(env::JWT_ISSUER, ISSUER), (env::JWT_AUDIENCE, AUDIENCE)];
    vars.extend_from_slice(keys);
    app_with(NOWHERE, "profiles", &vars)
}

pub(crate) fn hs_app() -> App {
    jwt_app(&[(env::JWT_HS256_SECRET, HS_SECRET)])
}

/// Valid claims for the tests' issuer and audience, with `changes` applied (`null` removes).
pub(crate) fn claims(changes: Value) -> Value {
    let now = get_current_timestamp();
    let mut c = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "tenant_id": "tenant-j",
        "iat": now, "exp": now + 300,
        "scope": "profiles.read profiles.lists billing.admin",
    });
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

pub(crate) fn hs256(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

pub(crate) fn rs256(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(fixture("test-only-rs256-private.pem").as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
}
