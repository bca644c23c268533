//! The authorizer (`edge::authorizer::authorize`) fed real API Gateway REQUEST authorizer
//! events (`events/authorizer.json`), API keys on a real engine (`shared::apikeys`), the JWT
//! configuration, and the `keys` command line against an engine.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use shared::config::env;
use std::process::Output;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edge::authorizer::{AuthorizerError, authorize};
use jsonwebtoken::{Algorithm, EncodingKey, Header, get_current_timestamp};
use lambda_http::aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use profiles_tests::{ENGINE_ENV, Engine, json, repo_path};
use serde_json::Value;
use sha2::{Digest, Sha256};
use shared::apikeys;
use shared::app::App;
use shared::auth::{Scope, Scopes};
use shared::config::{Config, Secret};
use shared::ids::{PrincipalId, TenantId};

// ---------------------------------------------------------------------------------------
// Events, apps and credentials

/// The fixture's method ARN, and the policy resource every allowed request must get.
const STAGE_WILDCARD: &str = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/*";

/// `events/authorizer.json` with its credential headers replaced by `headers`.
fn event(headers: &[(&str, &str)]) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    serde_json::from_value(event_json(headers)).unwrap()
}

fn event_json(headers: &[(&str, &str)]) -> Value {
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

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A store no engine answers at: whatever reaches it fails.
const NOWHERE: &str = "http://127.0.0.1:9";

/// An app with the given settings on top of a table at `endpoint`.
fn app_with(endpoint: &str, table: &str, vars: &[(&str, &str)]) -> App {
    App::new(config_with(endpoint, table, vars).unwrap())
}

fn config_with(
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

async fn refused(app: &App, event: ApiGatewayCustomAuthorizerRequestTypeRequest) {
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
async fn allowed(app: &App, event: ApiGatewayCustomAuthorizerRequestTypeRequest) -> Value {
    match authorize(app, event).await {
        Ok(r) => serde_json::to_value(&r).unwrap(),
        Err(e) => panic!("expected an allow, got {e}"),
    }
}

/// Checks an allow answer: principal, stage-wide policy, context, usage key.
fn assert_allows(answer: &Value, tenant: &str, principal: &str, scopes: &str, usage_key: &str) {
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

fn tenant(t: &str) -> TenantId {
    TenantId::new(t).unwrap()
}

fn principal(p: &str) -> PrincipalId {
    PrincipalId::new(p).unwrap()
}

fn read_lists() -> Scopes {
    Scopes::default().with(Scope::Read).with(Scope::Lists)
}

/// An engine, the app on it, and one API key (read + lists) of tenant-k / svc-1.
async fn with_key() -> (Engine, App, Secret, apikeys::ApiKeyRecord) {
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
const ISSUER: &str = "https://issuer.example.test/";
const AUDIENCE: &str = "profiles-api";
const HS_SECRET: &str = "test-only-hs256-secret-not-for-any-deployment";
/// The one usage key JWT callers are counted on (the template's `JwtCallersApiKey`).
const JWT_USAGE: &str = "jwt-callers-test-stack-123456789012";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo_path(&format!("tests/fixtures/{name}"))).unwrap()
}

fn rs_public() -> String {
    fixture("test-only-rs256-public.pem")
}

/// An app that accepts JWTs with `keys` (`JWT_*` settings) and reaches no table.
fn jwt_app(keys: &[(&str, &str)]) -> App {
    let mut vars = vec![(env::JWT_ISSUER, ISSUER), (env::JWT_AUDIENCE, AUDIENCE)];
    vars.extend_from_slice(keys);
    app_with(NOWHERE, "profiles", &vars)
}

fn hs_app() -> App {
    jwt_app(&[(env::JWT_HS256_SECRET, HS_SECRET)])
}

/// Valid claims for the tests' issuer and audience, with `changes` applied (`null` removes).
fn claims(changes: Value) -> Value {
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

fn hs256(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn rs256(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(fixture("test-only-rs256-private.pem").as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
}

// ---------------------------------------------------------------------------------------
// No credential, conflicting credentials

#[tokio::test]
async fn no_credential_is_unauthorized() {
    refused(&hs_app(), event(&[])).await;
}

#[tokio::test]
async fn authorization_that_is_not_bearer_is_unauthorized() {
    let app = hs_app();
    refused(&app, event(&[("Authorization", "Basic dXNlcjpwYXNz")])).await;
    refused(&app, event(&[("Authorization", "Bearer")])).await;
    refused(&app, event(&[("Authorization", "Bearer   ")])).await;
}

#[tokio::test]
async fn different_credentials_in_authorization_and_x_api_key_are_unauthorized() {
    let (_engine, app, key, _) = with_key().await;
    let (other, _) = apikeys::create(
        &app.store,
        &tenant("tenant-k"),
        &principal("svc-2"),
        read_lists(),
        None,
    )
    .await
    .unwrap();
    // Each alone is fine...
    allowed(&app, event(&[("x-api-key", key.expose())])).await;
    allowed(&app, event(&[("x-api-key", other.expose())])).await;
    // ...together they disagree.
    refused(
        &app,
        event(&[
            ("Authorization", &bearer(key.expose())),
            ("x-api-key", other.expose()),
        ]),
    )
    .await;
}

#[tokio::test]
async fn the_same_api_key_in_both_headers_is_allowed() {
    let (_engine, app, key, record) = with_key().await;
    let answer = allowed(
        &app,
        event(&[
            ("Authorization", &bearer(key.expose())),
            ("x-api-key", key.expose()),
        ]),
    )
    .await;
    assert_eq!(answer["usageIdentifierKey"], record.usage_key.as_str());
}

// ---------------------------------------------------------------------------------------
// API keys

#[tokio::test]
async fn api_key_as_bearer_is_allowed_as_its_tenant_principal_and_scopes() {
    let (_engine, app, key, record) = with_key().await;
    assert!(key.expose().starts_with("prof_"));
    assert_eq!(key.expose().len(), 48);
    assert_eq!(record.key_id.len(), 16);
    assert!(record.usage_key.len() >= 20, "API Gateway wants 20+");
    assert_eq!(record.usage_key, format!("usage-{}", record.key_id));
    let answer = allowed(&app, event(&[("Authorization", &bearer(key.expose()))])).await;
    assert_allows(
        &answer,
        "tenant-k",
        "svc-1",
        "profiles.read profiles.lists",
        &record.usage_key,
    );
    // The scheme is case-insensitive.
    let answer = allowed(
        &app,
        event(&[("authorization", &format!("bEaReR {}", key.expose()))]),
    )
    .await;
    assert_eq!(answer["principalId"], "svc-1");
}

#[tokio::test]
async fn api_key_in_x_api_key_is_allowed() {
    let (_engine, app, key, record) = with_key().await;
    let answer = allowed(&app, event(&[("x-api-key", key.expose())])).await;
    assert_allows(
        &answer,
        "tenant-k",
        "svc-1",
        "profiles.read profiles.lists",
        &record.usage_key,
    );
}

#[tokio::test]
async fn malformed_api_key_is_unauthorized() {
    let (_engine, app, key, _) = with_key().await;
    let k = key.expose();
    let body = &k[5..];
    let malformed = [
        format!("prof_{}", &body[1..]),       // too short
        format!("{k}A"),                      // too long
        format!("prof_{}+", &body[1..]),      // not base64url
        format!("prof_{}=", &body[1..]),      // padding
        format!("PROF_{body}"),               // another prefix
        format!("prof_{}\u{e9}", &body[2..]), // not ASCII
        format!("prof_{}B", &"A".repeat(42)), // non-canonical last character
        "prof_".to_owned(),                   // nothing
    ];
    for bad in &malformed {
        refused(&app, event(&[("x-api-key", bad)])).await;
        if bad.starts_with("prof_") {
            refused(&app, event(&[("Authorization", &bearer(bad))])).await;
        }
    }
}

#[tokio::test]
async fn malformed_api_key_never_reaches_dynamodb() {
    // No engine at all: a well-formed key fails (a 500), a malformed one is refused (a 401)
    // without a request.
    let app = app_with(NOWHERE, "profiles", &[]);
    refused(&app, event(&[("x-api-key", "prof_short")])).await;
    refused(&app, event(&[("x-api-key", "sk_live_0123456789")])).await;
    let store = &app.store;
    assert_eq!(apikeys::lookup(store, "prof_short").await.unwrap(), None);
}

#[tokio::test]
async fn unreachable_table_is_an_error_not_unauthorized() {
    let app = app_with(NOWHERE, "profiles", &[]);
    let well_formed = format!("prof_{}", "A".repeat(43));
    match authorize(&app, event(&[("x-api-key", &well_formed)])).await {
        Err(e @ AuthorizerError::Internal(_)) => assert_ne!(e.to_string(), "Unauthorized"),
        other => panic!("expected an internal error, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_api_key_is_unauthorized() {
    let (_engine, app, _, _) = with_key().await;
    let unknown = format!("prof_{}", URL_SAFE_NO_PAD.encode([7u8; 32]));
    assert!(apikeys::is_well_formed(&unknown));
    assert_eq!(apikeys::lookup(&app.store, &unknown).await.unwrap(), None);
    refused(&app, event(&[("x-api-key", &unknown)])).await;
    refused(&app, event(&[("Authorization", &bearer(&unknown))])).await;
}

#[tokio::test]
async fn revoked_api_key_is_unauthorized() {
    let (_engine, app, key, record) = with_key().await;
    allowed(&app, event(&[("x-api-key", key.expose())])).await;

    let t = tenant("tenant-k");
    // Another tenant cannot revoke it, nor can an id it does not have.
    assert!(
        !apikeys::revoke(&app.store, &tenant("tenant-x"), &record.key_id)
            .await
            .unwrap()
    );
    assert!(
        !apikeys::revoke(&app.store, &t, "0000000000000000")
            .await
            .unwrap()
    );
    assert!(!apikeys::revoke(&app.store, &t, "not-an-id").await.unwrap());
    allowed(&app, event(&[("x-api-key", key.expose())])).await;

    assert!(
        apikeys::revoke(&app.store, &t, &record.key_id)
            .await
            .unwrap()
    );
    refused(&app, event(&[("x-api-key", key.expose())])).await;
    refused(&app, event(&[("Authorization", &bearer(key.expose()))])).await;

    // The record says so, in both items.
    let found = apikeys::lookup(&app.store, key.expose())
        .await
        .unwrap()
        .unwrap();
    assert!(found.revoked);
    let revoked_at = found.revoked_at.unwrap();
    let listed = apikeys::list(&app.store, &t).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked);
    assert_eq!(listed[0].revoked_at, Some(revoked_at));

    // Revoking again changes nothing, not even the time.
    assert!(
        apikeys::revoke(&app.store, &t, &record.key_id)
            .await
            .unwrap()
    );
    let again = apikeys::lookup(&app.store, key.expose())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.revoked_at, Some(revoked_at));
    refused(&app, event(&[("x-api-key", key.expose())])).await;
}

#[tokio::test]
async fn api_keys_are_listed_per_tenant_without_secrets() {
    let (_engine, app, _, first) = with_key().await;
    let (_, second) = apikeys::create(
        &app.store,
        &tenant("tenant-k"),
        &principal("svc-2"),
        Scopes::all(),
        None,
    )
    .await
    .unwrap();
    apikeys::create(
        &app.store,
        &tenant("tenant-other"),
        &principal("svc-3"),
        Scopes::all(),
        None,
    )
    .await
    .unwrap();
    let listed = apikeys::list(&app.store, &tenant("tenant-k"))
        .await
        .unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed.contains(&first) && listed.contains(&second),
        "{listed:?}"
    );
    assert!(listed.iter().all(|r| !r.revoked));
    assert!(
        apikeys::list(&app.store, &tenant("tenant-none"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn api_key_needs_a_scope_and_a_reasonable_name() {
    let engine = Engine::start().await;
    let app = engine.app();
    let (t, p) = (tenant("tenant-k"), principal("svc-1"));
    // Each refusal names its field, and is a 400 at the edge.
    let refused = |e: apikeys::ApiKeyError| match e {
        apikeys::ApiKeyError::Invalid(invalid) => {
            let field = invalid.fields()[0].to_owned();
            assert_eq!(edge::error::ApiError::from(invalid).status(), 400);
            field
        }
        other => panic!("expected a refusal, got {other}"),
    };
    let no_scope = apikeys::create(&app.store, &t, &p, Scopes::default(), None).await;
    assert_eq!(refused(no_scope.unwrap_err()), "scopes");
    let long = "n".repeat(101);
    let long_name = apikeys::create(&app.store, &t, &p, read_lists(), Some(&long)).await;
    assert_eq!(refused(long_name.unwrap_err()), "name");
    let control = apikeys::create(&app.store, &t, &p, read_lists(), Some("a\nb")).await;
    assert_eq!(refused(control.unwrap_err()), "name");
    assert!(engine.all_items().await.is_empty(), "nothing was written");
}

#[tokio::test]
async fn a_stored_api_key_never_contains_the_plaintext_key() {
    let (engine, app, key, record) = with_key().await;
    let key = key.expose();
    let body = &key[5..];
    let hash: String = Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();

    fn strings(v: &aws_sdk_dynamodb::types::AttributeValue, out: &mut Vec<String>) {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        match v {
            A::S(s) | A::N(s) => out.push(s.clone()),
            A::B(b) => out.push(String::from_utf8_lossy(b.as_ref()).into_owned()),
            A::Ss(v) | A::Ns(v) => out.extend(v.iter().cloned()),
            A::L(v) => v.iter().for_each(|x| strings(x, out)),
            A::M(m) => m.iter().for_each(|(k, x)| {
                out.push(k.clone());
                strings(x, out);
            }),
            _ => {}
        }
    }
    let items = engine.all_items().await;
    assert_eq!(items.len(), 2, "one item by hash, one in the tenant's list");
    for item in &items {
        let mut all = Vec::new();
        for (name, value) in item {
            all.push(name.clone());
            strings(value, &mut all);
        }
        for s in &all {
            assert!(!s.contains(body), "an attribute holds the key: {item:?}");
        }
        // Debug output of the record hides the key too (it never had it).
        assert!(!format!("{record:?}").contains(body));
    }
    // Addressed by the hash: PK APIKEY#<sha256 hex>, and the tenant item holds the same hash.
    let pks: Vec<String> = items
        .iter()
        .map(|i| i["PK"].as_s().unwrap().clone())
        .collect();
    assert!(pks.contains(&format!("APIKEY#{hash}")), "{pks:?}");
    assert!(pks.contains(&"T#tenant-k#APIKEYS".to_owned()), "{pks:?}");
    // The secret's Debug hides it.
    let (secret, _) = apikeys::create(
        &app.store,
        &tenant("tenant-k"),
        &principal("svc-9"),
        read_lists(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(format!("{secret:?}"), "Secret(***)");
}

// ---------------------------------------------------------------------------------------
// JWTs

#[tokio::test]
async fn hs256_jwt_with_scope_is_allowed() {
    let app = hs_app();
    let token = hs256(&claims(json!({})), HS_SECRET);
    let answer = allowed(&app, event(&[("Authorization", &bearer(&token))])).await;
    // billing.admin is another service's scope: ignored.
    assert_allows(
        &answer,
        "tenant-j",
        "user-42",
        "profiles.read profiles.lists",
        JWT_USAGE,
    );
}

#[tokio::test]
async fn hs256_jwt_with_scp_is_allowed() {
    let app = hs_app();
    let as_array = claims(json!({
        "scope": null, "scp": ["profiles.create", "profiles.delete", "other"]
    }));
    let answer = allowed(
        &app,
        event(&[("Authorization", &bearer(&hs256(&as_array, HS_SECRET)))]),
    )
    .await;
    assert_eq!(
        answer["context"]["scopes"],
        "profiles.create profiles.delete"
    );
    let as_string = claims(json!({ "scope": null, "scp": "profiles.update" }));
    let answer = allowed(
        &app,
        event(&[("Authorization", &bearer(&hs256(&as_string, HS_SECRET)))]),
    )
    .await;
    assert_eq!(answer["context"]["scopes"], "profiles.update");
    // No scope at all: allowed in, every route then answers 403.
    let none = claims(json!({ "scope": null }));
    let answer = allowed(
        &app,
        event(&[("Authorization", &bearer(&hs256(&none, HS_SECRET)))]),
    )
    .await;
    assert_eq!(answer["context"]["scopes"], "");
}

/// JWT callers registered nowhere: each is counted on the template's one usage key, and
/// limited on its own in the table, keyed by a digest (no subject in the table's keys).
#[tokio::test]
async fn jwt_callers_share_one_usage_key_and_are_limited_one_by_one_in_the_table() {
    let engine = Engine::start().await;
    let app = app_with(
        &engine.endpoint,
        &engine.table,
        &[
            (env::JWT_ISSUER, ISSUER),
            (env::JWT_AUDIENCE, AUDIENCE),
            (env::JWT_HS256_SECRET, HS_SECRET),
            (env::JWT_CALLER_BURST_LIMIT, "2"),
            (env::JWT_CALLER_RATE_LIMIT, "0.2"),
        ],
    );
    let token = |sub: &str| hs256(&claims(json!({ "sub": sub })), HS_SECRET);
    let ann = event(&[("Authorization", &bearer(&token("ann")))]);
    for _ in 0..2 {
        let answer = allowed(&app, ann.clone()).await;
        assert_eq!(answer["usageIdentifierKey"], JWT_USAGE);
        assert!(answer["context"].get("retry_after").is_none(), "{answer}");
    }
    // The third at once is over her limit: let through with the seconds to wait, which the
    // function answers with 429 (an authorizer cannot answer 429 itself).
    let answer = allowed(&app, ann.clone()).await;
    let wait = answer["context"]["retry_after"].as_u64().unwrap();
    assert!((1..=5).contains(&wait), "{answer}");
    assert_eq!(answer["usageIdentifierKey"], JWT_USAGE);
    // Another subject in the same tenant is not affected.
    let bob = event(&[("Authorization", &bearer(&token("bob")))]);
    let answer = allowed(&app, bob).await;
    assert!(answer["context"].get("retry_after").is_none(), "{answer}");

    let limits: Vec<String> = engine
        .client
        .scan()
        .table_name(&engine.table)
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .filter_map(|i| i["PK"].as_s().ok().cloned())
        .filter(|pk| pk.contains("#RATE#"))
        .collect();
    assert_eq!(limits.len(), 2, "one item per caller: {limits:?}");
    assert!(
        limits
            .iter()
            .all(|pk| pk.starts_with("T#tenant-j#RATE#jwt-"))
    );
    assert!(
        !limits
            .iter()
            .any(|pk| pk.contains("ann") || pk.contains("bob"))
    );

    // The table unreachable: the limit cannot be kept, AUTHORIZER_FAILURE (503), never a 401.
    let down = app_with(
        NOWHERE,
        "profiles",
        &[
            (env::JWT_ISSUER, ISSUER),
            (env::JWT_AUDIENCE, AUDIENCE),
            (env::JWT_HS256_SECRET, HS_SECRET),
            (env::JWT_CALLER_BURST_LIMIT, "2"),
            (env::JWT_CALLER_RATE_LIMIT, "0.2"),
        ],
    );
    let result = authorize(&down, ann).await;
    assert!(
        matches!(result, Err(AuthorizerError::Internal(_))),
        "{result:?}"
    );
}

#[test]
fn jwt_usage_key_and_caller_limits_are_checked_at_init() {
    let base = [
        (env::JWT_ISSUER, ISSUER),
        (env::JWT_AUDIENCE, AUDIENCE),
        (env::JWT_HS256_SECRET, HS_SECRET),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut vars = base.to_vec();
        vars.extend_from_slice(extra);
        jwt_config(&vars)
    };
    let e = with(&[(env::JWT_USAGE_KEY, "")]).unwrap_err();
    assert!(e.contains("JWT_USAGE_KEY is not set"), "{e}");
    let jwt = with(&[]).unwrap().jwt.unwrap();
    assert_eq!(jwt.usage_key, JWT_USAGE);
    assert_eq!(
        jwt.caller_rate, None,
        "unset: JWT callers limited only together"
    );
    let jwt = with(&[
        (env::JWT_CALLER_BURST_LIMIT, "10"),
        (env::JWT_CALLER_RATE_LIMIT, "2.5"),
    ])
    .unwrap()
    .jwt
    .unwrap();
    assert_eq!(
        jwt.caller_rate,
        Some(shared::config::Rate {
            burst: 10,
            per_second: 2.5
        })
    );
    for bad in [
        vec![(env::JWT_CALLER_BURST_LIMIT, "10")],
        vec![(env::JWT_CALLER_RATE_LIMIT, "2.5")],
        vec![
            (env::JWT_CALLER_BURST_LIMIT, "0"),
            (env::JWT_CALLER_RATE_LIMIT, "2.5"),
        ],
        vec![
            (env::JWT_CALLER_BURST_LIMIT, "10"),
            (env::JWT_CALLER_RATE_LIMIT, "0"),
        ],
        vec![
            (env::JWT_CALLER_BURST_LIMIT, "10"),
            (env::JWT_CALLER_RATE_LIMIT, "fast"),
        ],
    ] {
        let e = with(&bad).unwrap_err();
        assert!(e.contains("JWT_CALLER_"), "{bad:?}: {e}");
    }
}

#[tokio::test]
async fn rs256_jwt_is_allowed() {
    let app = jwt_app(&[(env::JWT_RS256_PUBLIC_KEY, &rs_public())]);
    let token = rs256(&claims(json!({})));
    let answer = allowed(&app, event(&[("Authorization", &bearer(&token))])).await;
    assert_allows(
        &answer,
        "tenant-j",
        "user-42",
        "profiles.read profiles.lists",
        JWT_USAGE,
    );
}

#[tokio::test]
async fn both_algorithms_are_accepted_when_both_keys_are_set() {
    let app = jwt_app(&[
        (env::JWT_RS256_PUBLIC_KEY, &rs_public()),
        (env::JWT_HS256_SECRET, HS_SECRET),
    ]);
    let c = claims(json!({}));
    allowed(&app, event(&[("Authorization", &bearer(&rs256(&c)))])).await;
    allowed(
        &app,
        event(&[("Authorization", &bearer(&hs256(&c, HS_SECRET)))]),
    )
    .await;
}

#[tokio::test]
async fn jwt_with_a_bad_signature_is_unauthorized() {
    let app = jwt_app(&[
        (env::JWT_RS256_PUBLIC_KEY, &rs_public()),
        (env::JWT_HS256_SECRET, HS_SECRET),
    ]);
    let c = claims(json!({}));
    // Signed with another secret.
    let other = hs256(&c, "another-secret-of-at-least-32-bytes-long");
    refused(&app, event(&[("Authorization", &bearer(&other))])).await;
    // A valid RS256 token whose payload was changed (another tenant).
    let token = rs256(&c);
    let parts: Vec<&str> = token.split('.').collect();
    let forged = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims(json!({ "tenant_id": "tenant-victim" }))).unwrap());
    let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
    refused(&app, event(&[("Authorization", &bearer(&tampered))])).await;
    // A signature cut short, and one missing.
    let short = &token[..token.len() - 4];
    refused(&app, event(&[("Authorization", &bearer(short))])).await;
    let unsigned = format!("{}.{}.", parts[0], parts[1]);
    refused(&app, event(&[("Authorization", &bearer(&unsigned))])).await;
    // Not a JWT at all.
    refused(&app, event(&[("Authorization", &bearer("not-a-jwt"))])).await;
}

#[tokio::test]
async fn expired_jwt_is_unauthorized_beyond_the_leeway() {
    let app = hs_app(); // leeway 30 s by default
    let now = get_current_timestamp();
    let expired = hs256(&claims(json!({ "exp": now - 120 })), HS_SECRET);
    refused(&app, event(&[("Authorization", &bearer(&expired))])).await;
    // With the leeway set to 0, even a just-expired token is refused.
    let strict = jwt_app(&[
        (env::JWT_HS256_SECRET, HS_SECRET),
        (env::JWT_LEEWAY_SECONDS, "0"),
    ]);
    let just = hs256(&claims(json!({ "exp": now - 5 })), HS_SECRET);
    refused(&strict, event(&[("Authorization", &bearer(&just))])).await;
}

#[tokio::test]
async fn expired_jwt_within_the_leeway_is_allowed() {
    let app = hs_app();
    let now = get_current_timestamp();
    let token = hs256(&claims(json!({ "exp": now - 10 })), HS_SECRET);
    allowed(&app, event(&[("Authorization", &bearer(&token))])).await;
}

#[tokio::test]
async fn jwt_without_exp_is_unauthorized() {
    let token = hs256(&claims(json!({ "exp": null })), HS_SECRET);
    refused(&hs_app(), event(&[("Authorization", &bearer(&token))])).await;
    let text_exp = hs256(&claims(json!({ "exp": "tomorrow" })), HS_SECRET);
    refused(&hs_app(), event(&[("Authorization", &bearer(&text_exp))])).await;
}

#[tokio::test]
async fn jwt_not_valid_yet_is_unauthorized() {
    let app = hs_app();
    let now = get_current_timestamp();
    let future = hs256(&claims(json!({ "nbf": now + 600 })), HS_SECRET);
    refused(&app, event(&[("Authorization", &bearer(&future))])).await;
    // Within the leeway, nbf a few seconds ahead (clock skew) is fine.
    let skewed = hs256(&claims(json!({ "nbf": now + 5 })), HS_SECRET);
    allowed(&app, event(&[("Authorization", &bearer(&skewed))])).await;
}

#[tokio::test]
async fn jwt_from_another_issuer_is_unauthorized() {
    let app = hs_app();
    let other = hs256(
        &claims(json!({ "iss": "https://evil.example/" })),
        HS_SECRET,
    );
    refused(&app, event(&[("Authorization", &bearer(&other))])).await;
    let missing = hs256(&claims(json!({ "iss": null })), HS_SECRET);
    refused(&app, event(&[("Authorization", &bearer(&missing))])).await;
}

#[tokio::test]
async fn jwt_for_another_audience_is_unauthorized() {
    let app = hs_app();
    let other = hs256(&claims(json!({ "aud": "another-api" })), HS_SECRET);
    refused(&app, event(&[("Authorization", &bearer(&other))])).await;
    let missing = hs256(&claims(json!({ "aud": null })), HS_SECRET);
    refused(&app, event(&[("Authorization", &bearer(&missing))])).await;
    // An audience list that includes ours is fine.
    let list = hs256(
        &claims(json!({ "aud": ["another-api", AUDIENCE] })),
        HS_SECRET,
    );
    allowed(&app, event(&[("Authorization", &bearer(&list))])).await;
}

#[tokio::test]
async fn jwt_without_a_tenant_claim_is_unauthorized() {
    let app = hs_app();
    let missing = hs256(&claims(json!({ "tenant_id": null })), HS_SECRET);
    refused(&app, event(&[("Authorization", &bearer(&missing))])).await;
    let invalid = hs256(&claims(json!({ "tenant_id": "a#b" })), HS_SECRET);
    refused(&app, event(&[("Authorization", &bearer(&invalid))])).await;
    let number = hs256(&claims(json!({ "tenant_id": 42 })), HS_SECRET);
    refused(&app, event(&[("Authorization", &bearer(&number))])).await;
    // The claim is configurable.
    let custom = jwt_app(&[
        (env::JWT_HS256_SECRET, HS_SECRET),
        (env::JWT_TENANT_CLAIM, "https://example.test/org"),
    ]);
    let token = hs256(
        &claims(json!({ "tenant_id": null, "https://example.test/org": "org-7" })),
        HS_SECRET,
    );
    let answer = allowed(&custom, event(&[("Authorization", &bearer(&token))])).await;
    assert_eq!(answer["context"]["tenant_id"], "org-7");
    refused(&custom, event(&[("Authorization", &bearer(&missing))])).await;
}

#[tokio::test]
async fn jwt_without_a_valid_subject_is_unauthorized() {
    let app = hs_app();
    let missing = hs256(&claims(json!({ "sub": null })), HS_SECRET);
    refused(&app, event(&[("Authorization", &bearer(&missing))])).await;
    let control = hs256(&claims(json!({ "sub": "a\u{7}b" })), HS_SECRET);
    refused(&app, event(&[("Authorization", &bearer(&control))])).await;
}

#[tokio::test]
async fn alg_none_jwt_is_unauthorized() {
    let app = jwt_app(&[
        (env::JWT_RS256_PUBLIC_KEY, &rs_public()),
        (env::JWT_HS256_SECRET, HS_SECRET),
    ]);
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(json!({}))).unwrap());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
        format!("{header}.{payload}.AAAA"),
    ] {
        refused(&app, event(&[("Authorization", &bearer(&token))])).await;
    }
    let none_upper = URL_SAFE_NO_PAD.encode(br#"{"alg":"None"}"#);
    refused(
        &app,
        event(&[(
            "Authorization",
            &bearer(&format!("{none_upper}.{payload}.")),
        )]),
    )
    .await;
}

#[tokio::test]
async fn hs256_jwt_against_an_rs256_only_configuration_is_unauthorized() {
    // Algorithm confusion: an HS256 token "signed" with the RSA public key as the secret.
    let public = rs_public();
    let app = jwt_app(&[(env::JWT_RS256_PUBLIC_KEY, &public)]);
    let c = claims(json!({}));
    refused(
        &app,
        event(&[("Authorization", &bearer(&hs256(&c, &public)))]),
    )
    .await;
    refused(
        &app,
        event(&[("Authorization", &bearer(&hs256(&c, HS_SECRET)))]),
    )
    .await;
    // And the other way round: an RS256 token where only HS256 is configured.
    refused(&hs_app(), event(&[("Authorization", &bearer(&rs256(&c)))])).await;
    // Other algorithms are never accepted, whatever the key.
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &c,
        &EncodingKey::from_secret(HS_SECRET.as_bytes()),
    )
    .unwrap();
    refused(&hs_app(), event(&[("Authorization", &bearer(&hs512))])).await;
}

#[tokio::test]
async fn jwt_without_a_configured_key_is_unauthorized() {
    let app = app_with(NOWHERE, "profiles", &[]);
    assert!(app.config.jwt.is_none());
    let token = hs256(&claims(json!({})), HS_SECRET);
    refused(&app, event(&[("Authorization", &bearer(&token))])).await;
}

#[tokio::test]
async fn jwt_in_x_api_key_is_unauthorized() {
    // x-api-key carries API keys only.
    let token = hs256(&claims(json!({})), HS_SECRET);
    refused(&hs_app(), event(&[("x-api-key", &token)])).await;
}

// ---------------------------------------------------------------------------------------
// Logging

/// Everything this test process logs (at INFO, the deployed level: the template's
/// ApplicationLogLevel; at TRACE the SDK logs request bodies, a GetItem key among them).
/// One global subscriber, set once: a per-test scoped one loses lines when other tests on
/// other threads register the same callsites first.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured_log() -> &'static Captured {
    static LOG: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = Captured::default();
        let out = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        log
    })
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn decisions_are_logged_without_any_credential() {
    let log = captured_log();
    let (_engine, key_app, key, record) = with_key().await;
    // This test's requests, told apart from other tests' by their request id.
    let trace_id = uuid::Uuid::now_v7().to_string();
    let event = |headers: &[(&str, &str)]| {
        let mut e = event_json(headers);
        e["requestContext"]["requestId"] = json!(trace_id);
        serde_json::from_value::<ApiGatewayCustomAuthorizerRequestTypeRequest>(e).unwrap()
    };

    let jwt_app = jwt_app(&[(env::JWT_HS256_SECRET, HS_SECRET)]);
    let token = hs256(&claims(json!({})), HS_SECRET);
    let forged = hs256(
        &claims(json!({})),
        "another-secret-of-at-least-32-bytes-long",
    );
    allowed(&key_app, event(&[("x-api-key", key.expose())])).await;
    allowed(&jwt_app, event(&[("Authorization", &bearer(&token))])).await;
    refused(&jwt_app, event(&[("Authorization", &bearer(&forged))])).await;
    let unknown = format!("prof_{}", URL_SAFE_NO_PAD.encode([9u8; 32]));
    refused(&key_app, event(&[("x-api-key", &unknown)])).await;
    apikeys::revoke(&key_app.store, &tenant("tenant-k"), &record.key_id)
        .await
        .unwrap();
    refused(&key_app, event(&[("x-api-key", key.expose())])).await;

    let text = log.text();
    let hash: String = Sha256::digest(key.expose().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let secrets = [
        &key.expose()[5..],
        &unknown[5..],
        &hash,
        HS_SECRET,
        token.rsplit('.').next().unwrap(),
        forged.rsplit('.').next().unwrap(),
        token.split('.').nth(1).unwrap(),
    ];
    for secret in secrets {
        assert!(!text.contains(secret), "the log holds a secret:\n{text}");
    }
    // One line per decision, under the request's id, with what an operator needs.
    let decisions: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&trace_id) && l.contains("authorizer decision"))
        .collect();
    assert_eq!(decisions.len(), 5, "{text}");
    let [key_allow, jwt_allow, jwt_deny, unknown_deny, revoked_deny] = decisions[..] else {
        unreachable!()
    };
    assert!(key_allow.contains("outcome=\"allow\"") && key_allow.contains(&record.key_id));
    assert!(key_allow.contains("tenant=tenant-k"), "{key_allow}");
    assert!(jwt_allow.contains("credential=\"jwt\"") && jwt_allow.contains("sub=user-42"));
    assert!(jwt_allow.contains(ISSUER) && jwt_allow.contains("tenant=tenant-j"));
    assert!(jwt_deny.contains("outcome=\"deny\"") && jwt_deny.contains("signature"));
    assert!(unknown_deny.contains("unknown API key"), "{unknown_deny}");
    assert!(revoked_deny.contains("revoked") && revoked_deny.contains(&record.key_id));
}

// ---------------------------------------------------------------------------------------
// The event and its answer

#[tokio::test]
async fn the_event_fixture_is_a_request_authorizer_event() {
    let e = event_json(&[]);
    assert_eq!(e["type"], "REQUEST");
    // As committed, it carries an API key no table holds.
    let (_engine, app, _, _) = with_key().await;
    let fixture: ApiGatewayCustomAuthorizerRequestTypeRequest = serde_json::from_str(
        &std::fs::read_to_string(repo_path("events/authorizer.json")).unwrap(),
    )
    .unwrap();
    refused(&app, fixture).await;
}

#[tokio::test]
async fn the_policy_covers_the_whole_stage_whatever_the_route() {
    let (_engine, app, key, _) = with_key().await;
    for arn in [
        "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/profiles",
        "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/DELETE/profiles/x/contacts/y",
        "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/POST/",
    ] {
        let mut e = event_json(&[("x-api-key", key.expose())]);
        e["methodArn"] = json!(arn);
        let answer = allowed(&app, serde_json::from_value(e).unwrap()).await;
        assert_eq!(
            answer["policyDocument"]["Statement"][0]["Resource"],
            json!([STAGE_WILDCARD])
        );
    }
    // Without a method ARN there is nothing to allow: an error (500), not a 401.
    let mut e = event_json(&[("x-api-key", key.expose())]);
    e["methodArn"] = Value::Null;
    let result = authorize(&app, serde_json::from_value(e).unwrap()).await;
    assert!(matches!(result, Err(AuthorizerError::Internal(_))));
}

// ---------------------------------------------------------------------------------------
// Configuration

/// The configuration as the authorizer loads it at init: the loader, then the JWT key check.
fn jwt_config(vars: &[(&str, &str)]) -> Result<Config, String> {
    let config = config_with(NOWHERE, "profiles", vars).map_err(|e| e.to_string())?;
    if let Some(jwt) = &config.jwt {
        jwt.check().map_err(|e| e.to_string())?;
    }
    Ok(config)
}

#[test]
fn functions_without_jwt_settings_still_load() {
    let config = jwt_config(&[]).unwrap();
    assert!(config.jwt.is_none());
    // The template gives every variable to the authorizer, empty when unused.
    let config = jwt_config(&[
        (env::JWT_ISSUER, ""),
        (env::JWT_AUDIENCE, ""),
        (env::JWT_TENANT_CLAIM, "tenant_id"),
        (env::JWT_HS256_SECRET, ""),
        (env::JWT_RS256_PUBLIC_KEY, ""),
        (env::JWT_LEEWAY_SECONDS, "30"),
    ])
    .unwrap();
    assert!(config.jwt.is_none());
}

#[test]
fn jwt_key_without_issuer_or_audience_is_a_config_error() {
    let e = jwt_config(&[
        (env::JWT_HS256_SECRET, HS_SECRET),
        (env::JWT_AUDIENCE, AUDIENCE),
    ])
    .unwrap_err();
    assert!(e.contains("JWT_ISSUER is not set"), "{e}");
    let e = jwt_config(&[
        (env::JWT_RS256_PUBLIC_KEY, &rs_public()),
        (env::JWT_ISSUER, ISSUER),
    ])
    .unwrap_err();
    assert!(e.contains("JWT_AUDIENCE is not set"), "{e}");
}

#[test]
fn bad_jwt_keys_are_config_errors() {
    let with = |k: &str, v: &str| {
        jwt_config(&[
            (env::JWT_ISSUER, ISSUER),
            (env::JWT_AUDIENCE, AUDIENCE),
            (k, v),
        ])
    };
    let e = with(env::JWT_HS256_SECRET, "too-short").unwrap_err();
    assert!(e.contains("at least 32 bytes"), "{e}");
    assert!(
        !e.contains("too-short"),
        "the secret is not in the message: {e}"
    );
    let e = with(
        env::JWT_RS256_PUBLIC_KEY,
        "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----",
    )
    .unwrap_err();
    assert!(e.contains(env::JWT_RS256_PUBLIC_KEY), "{e}");
    let e = with(
        env::JWT_RS256_PUBLIC_KEY,
        &fixture("test-only-rs256-private.pem"),
    )
    .unwrap_err();
    assert!(e.contains("private key"), "{e}");
    let e = with(
        env::JWT_RS256_PUBLIC_KEY,
        &fixture("test-only-rs1024-public.pem"),
    )
    .unwrap_err();
    assert!(e.contains("1024-bit"), "{e}");
    let e = jwt_config(&[
        (env::JWT_ISSUER, ISSUER),
        (env::JWT_AUDIENCE, AUDIENCE),
        (env::JWT_HS256_SECRET, HS_SECRET),
        (env::JWT_LEEWAY_SECONDS, "soon"),
    ])
    .unwrap_err();
    assert!(e.contains(env::JWT_LEEWAY_SECONDS), "{e}");
}

#[test]
fn jwt_settings_load_with_their_defaults() {
    // A one-line PEM (a CloudFormation parameter) with literal \n.
    let one_line = rs_public().trim().replace('\n', "\\n");
    assert!(!one_line.contains('\n'));
    let config = jwt_config(&[
        (env::JWT_ISSUER, ISSUER),
        (env::JWT_AUDIENCE, AUDIENCE),
        (env::JWT_RS256_PUBLIC_KEY, &one_line),
    ])
    .unwrap();
    let jwt = config.jwt.unwrap();
    assert_eq!(jwt.tenant_claim, "tenant_id");
    assert_eq!(jwt.leeway_seconds, 30);
    assert!(jwt.rs256_public_key.is_some());
    assert!(jwt.hs256_secret.is_none());
    let config = jwt_config(&[
        (env::JWT_ISSUER, ISSUER),
        (env::JWT_AUDIENCE, AUDIENCE),
        (env::JWT_HS256_SECRET, HS_SECRET),
        (env::JWT_LEEWAY_SECONDS, "5"),
    ])
    .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains(HS_SECRET), "Debug shows no secret: {debug}");
    assert_eq!(config.jwt.unwrap().leeway_seconds, 5);
}

// ---------------------------------------------------------------------------------------
// The keys command line

/// Runs the built `keys` binary. Asynchronously: the test's engine serves on this runtime.
async fn keys<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let bin = profiles_tests::binaries()
        .get("keys")
        .expect("the keys binary");
    tokio::process::Command::new(bin)
        .args(args)
        .env_remove(env::DYNAMODB_ENDPOINT)
        .env_remove(env::TABLE_NAME)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[tokio::test]
async fn keys_cli_creates_lists_and_revokes_keys() {
    let engine = Engine::start().await;
    let app = engine.app();
    let conn = ["--endpoint", &engine.endpoint, "--table", &engine.table];
    let with = |args: &[&str]| -> Vec<String> {
        conn.iter().chain(args).map(|s| (*s).to_owned()).collect()
    };

    let out = keys(&with(&[
        "create",
        "--tenant",
        "tenant-cli",
        "--principal",
        "svc-cli",
        "--scopes",
        "profiles.read,profiles.lists",
        "--name",
        "nightly export",
    ]))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let key = text.lines().next().unwrap().to_owned();
    assert!(
        apikeys::is_well_formed(&key),
        "first line is the key: {text}"
    );
    assert_eq!(
        text.matches(&key[5..]).count(),
        1,
        "the key is printed once"
    );
    let key_id = text
        .lines()
        .find_map(|l| l.strip_prefix("key id:"))
        .unwrap()
        .trim()
        .to_owned();
    let usage_key = format!("usage-{key_id}");
    assert!(text.contains(&format!("usage key:  {usage_key}")), "{text}");
    // A bare engine names no usage plan: it says so, and how to register later.
    assert!(text.contains("usage plan: none named"), "{text}");
    assert!(text.contains("keys register"), "{text}");

    // The printed key works.
    let answer = allowed(&app, event(&[("x-api-key", &key)])).await;
    assert_allows(
        &answer,
        "tenant-cli",
        "svc-cli",
        "profiles.read profiles.lists",
        &usage_key,
    );

    let out = keys(&with(&["list", "--tenant", "tenant-cli"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = stdout(&out);
    let row = listing.lines().find(|l| l.starts_with(&key_id)).unwrap();
    assert!(row.contains("svc-cli"), "{listing}");
    assert!(row.contains("profiles.read profiles.lists"), "{listing}");
    assert!(row.contains("nightly export"), "{listing}");
    assert!(row.trim_end().ends_with("no"), "not revoked: {listing}");
    assert!(!listing.contains(&key[5..]), "no key in the list");

    let out = keys(&with(&["revoke", "--tenant", "tenant-cli", &key_id])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("revoked {key_id}")));
    refused(&app, event(&[("x-api-key", &key)])).await;

    let out = keys(&with(&["list", "--tenant", "tenant-cli"])).await;
    let listing = stdout(&out);
    let row = listing.lines().find(|l| l.starts_with(&key_id)).unwrap();
    assert!(!row.trim_end().ends_with("no"), "revoked: {listing}");

    // Revoking an id the tenant does not have fails (1); a bad command line is 2.
    let out = keys(&with(&["revoke", "--tenant", "tenant-other", &key_id])).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("has no API key"), "{}", stderr(&out));
    let out = keys(&with(&[
        "create",
        "--tenant",
        "tenant-cli",
        "--scopes",
        "profiles.read",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--principal"), "{}", stderr(&out));
    let out = keys(&with(&[
        "create",
        "--tenant",
        "tenant-cli",
        "--principal",
        "p",
        "--scopes",
        "profiles.reed",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("profiles.reed"), "{}", stderr(&out));
    let out = keys(&["--help"]).await;
    assert!(out.status.success());
    assert!(stdout(&out).contains("usage: keys"));

    // An engine that is not there: 1, with the cause.
    let out = keys(&[
        "--endpoint",
        NOWHERE,
        "--table",
        "profiles",
        "list",
        "--tenant",
        "t",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));

    // --local: the endpoint from <dir>/engine-endpoint and the table `profiles`. (Only on
    // the test's own engine: a shared one may already have a `profiles` table.)
    if std::env::var(ENGINE_ENV).is_err() {
        profiles_tests::create_table_from_template(&engine.client, "profiles").await;
        let dir = std::env::temp_dir().join(format!("keys-local-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(shared::localstate::ENGINE_ENDPOINT),
            format!("{}\n", engine.endpoint),
        )
        .unwrap();
        // The runner's embedded API Gateway, with one usage plan, and its two files.
        let registry = std::sync::Arc::new(
            local_api::gateway::Registry::load(None, ["LocalPlan".to_owned()].into(), &[]).unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gateway_url = format!("http://{}", listener.local_addr().unwrap());
        let serving = local_api::gateway::serve(registry.clone(), listener);
        std::fs::write(
            dir.join(shared::localstate::APIGATEWAY_ENDPOINT),
            &gateway_url,
        )
        .unwrap();
        std::fs::write(dir.join(shared::localstate::USAGE_PLAN_ID), "LocalPlan\n").unwrap();
        let plans = ["LocalPlan".to_owned()];
        let dir_arg = dir.to_str().unwrap();
        let out = keys(&[
            "--local",
            dir_arg,
            "create",
            "--tenant",
            "tenant-local",
            "--principal",
            "dev",
            "--scopes",
            "profiles.read",
        ])
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let local_id = text
            .lines()
            .find_map(|l| l.strip_prefix("key id:"))
            .unwrap()
            .trim()
            .to_owned();
        let usage_key = format!("usage-{local_id}");
        assert!(text.contains("usage plan: joined as"), "{text}");
        assert_eq!(
            registry.plan_of(&usage_key, &plans).as_deref(),
            Some("LocalPlan"),
            "create put the usage key in the plan: {text}"
        );
        // register is idempotent: the key and its place in the plan are found, not doubled.
        let out = keys(&[
            "--local",
            dir_arg,
            "register",
            "--tenant",
            "tenant-local",
            &local_id,
        ])
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("already holds"), "{}", stdout(&out));
        assert_eq!(
            registry
                .keys_named(Some(&format!("profiles-{local_id}")))
                .len(),
            1
        );
        // `--local=DIR` anywhere, here right before the key id.
        let out = keys(&[
            "revoke",
            "--tenant",
            "tenant-local",
            &format!("--local={dir_arg}"),
            &local_id,
        ])
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).contains("taken out and deleted"),
            "{}",
            stdout(&out)
        );
        assert_eq!(
            registry.plan_of(&usage_key, &plans),
            None,
            "revoke took it out"
        );
        assert!(
            registry
                .keys_named(Some(&format!("profiles-{local_id}")))
                .is_empty()
        );
        // A revoked key is not registered again.
        let out = keys(&[
            "--local",
            dir_arg,
            "register",
            "--tenant",
            "tenant-local",
            &local_id,
        ])
        .await;
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
        serving.abort();
        let missing = dir.join("nothing-here");
        let out = keys(&[
            "--local",
            missing.to_str().unwrap(),
            "list",
            "--tenant",
            "t",
        ])
        .await;
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("engine-endpoint"), "{}", stderr(&out));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
