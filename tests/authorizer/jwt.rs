//! JWTs through the authorizer: HS256 and RS256 allowed with their scopes; bad signatures,
//! expiry, not-before, issuer, audience, tenant and subject claims, `alg: none` and
//! algorithm confusion refused; JWT callers on one usage key, each limited in the table.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use shared::config::env;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edge::authorizer::{AuthorizerError, authorize};
use jsonwebtoken::{Algorithm, EncodingKey, Header, get_current_timestamp};
use profiles_tests::{Engine, json};

use crate::{
    AUDIENCE, HS_SECRET, ISSUER, JWT_USAGE, NOWHERE, allowed, app_with, assert_allows, bearer,
    claims, event, hs_app, hs256, jwt_app, refused, rs_public, rs256,
};

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
    // (the claims' changes, the scopes the answer carries)
    for (changes, scopes) in [
        // scp as an array.
        (
            json!({ "scope": null, "scp": ["profiles.create", "profiles.delete", "other"] }),
            "profiles.create profiles.delete",
        ),
        // scp as a string.
        (
            json!({ "scope": null, "scp": "profiles.update" }),
            "profiles.update",
        ),
        // No scope at all: allowed in, every route then answers 403.
        (json!({ "scope": null }), ""),
    ] {
        let token = hs256(&claims(changes.clone()), HS_SECRET);
        let answer = allowed(&app, event(&[("Authorization", &bearer(&token))])).await;
        assert_eq!(answer["context"]["scopes"], scopes, "{changes}");
    }
}

/// JWT callers registered nowhere: each is counted on the template's one usage key, and
/// limited on its own in the table, keyed by a digest (no subject in the table's keys).
#[tokio::test]
async fn jwt_callers_share_one_usage_key_and_are_limited_one_by_one_in_the_table() {
    let engine = Engine::start().await;
    let limited = [
        (env::JWT_ISSUER, ISSUER),
        (env::JWT_AUDIENCE, AUDIENCE),
        (env::JWT_HS256_SECRET, HS_SECRET),
        (env::JWT_CALLER_BURST_LIMIT, "2"),
        (env::JWT_CALLER_RATE_LIMIT, "0.2"),
    ];
    let app = app_with(&engine.endpoint, &engine.table, &limited);
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
    let down = app_with(NOWHERE, "profiles", &limited);
    let result = authorize(&down, ann).await;
    assert!(
        matches!(result, Err(AuthorizerError::Internal(_))),
        "{result:?}"
    );
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
    let token = rs256(&c);
    let parts: Vec<&str> = token.split('.').collect();
    let forged = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims(json!({ "tenant_id": "tenant-victim" }))).unwrap());
    for bad in [
        // Signed with another secret.
        hs256(&c, "another-secret-of-at-least-32-bytes-long"),
        // A valid RS256 token whose payload was changed (another tenant).
        format!("{}.{forged}.{}", parts[0], parts[2]),
        // A signature cut short, and one missing.
        token[..token.len() - 4].to_owned(),
        format!("{}.{}.", parts[0], parts[1]),
        // Not a JWT at all.
        "not-a-jwt".to_owned(),
    ] {
        refused(&app, event(&[("Authorization", &bearer(&bad))])).await;
    }
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
    // No exp, and one that is not a number.
    for changes in [json!({ "exp": null }), json!({ "exp": "tomorrow" })] {
        let token = hs256(&claims(changes), HS_SECRET);
        refused(&hs_app(), event(&[("Authorization", &bearer(&token))])).await;
    }
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
    // Another issuer, and none.
    for changes in [
        json!({ "iss": "https://evil.example/" }),
        json!({ "iss": null }),
    ] {
        let token = hs256(&claims(changes), HS_SECRET);
        refused(&app, event(&[("Authorization", &bearer(&token))])).await;
    }
}

#[tokio::test]
async fn jwt_for_another_audience_is_unauthorized() {
    let app = hs_app();
    // Another audience, and none.
    for changes in [json!({ "aud": "another-api" }), json!({ "aud": null })] {
        let token = hs256(&claims(changes), HS_SECRET);
        refused(&app, event(&[("Authorization", &bearer(&token))])).await;
    }
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
    // Missing, not a valid tenant id, not a string.
    for tenant_id in [json!(null), json!("a#b"), json!(42)] {
        let token = hs256(&claims(json!({ "tenant_id": tenant_id })), HS_SECRET);
        refused(&app, event(&[("Authorization", &bearer(&token))])).await;
    }
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
    let missing = hs256(&claims(json!({ "tenant_id": null })), HS_SECRET);
    refused(&custom, event(&[("Authorization", &bearer(&missing))])).await;
}

#[tokio::test]
async fn jwt_without_a_valid_subject_is_unauthorized() {
    let app = hs_app();
    // No subject, and one with a control character.
    for changes in [json!({ "sub": null }), json!({ "sub": "a\u{7}b" })] {
        let token = hs256(&claims(changes), HS_SECRET);
        refused(&app, event(&[("Authorization", &bearer(&token))])).await;
    }
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
