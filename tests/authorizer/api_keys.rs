//! API keys (`shared::apikeys`) through the authorizer: allowed as their tenant, principal and
//! scopes; malformed, unknown and revoked ones refused; listed, validated and stored without
//! the key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edge::authorizer::{AuthorizerError, authorize};
use profiles_tests::Engine;
use sha2::{Digest, Sha256};
use shared::apikeys;
use shared::auth::Scopes;

use crate::{
    NOWHERE, allowed, app_with, assert_allows, bearer, event, principal, read_lists, refused,
    tenant, with_key,
};

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
    for malformed in ["prof_short", "sk_live_0123456789"] {
        refused(&app, event(&[("x-api-key", malformed)])).await;
    }
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
    let long = "n".repeat(101);
    // (scopes, name, the field refused): no scope, a name too long, a control character.
    for (scopes, name, field) in [
        (Scopes::default(), None, "scopes"),
        (read_lists(), Some(long.as_str()), "name"),
        (read_lists(), Some("a\nb"), "name"),
    ] {
        let created = apikeys::create(&app.store, &t, &p, scopes, name).await;
        assert_eq!(refused(created.unwrap_err()), field);
    }
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
