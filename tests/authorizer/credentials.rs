//! What a request presents and what the answer covers: no credential, conflicting
//! credentials, the committed event fixture, and a policy for the whole stage.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use edge::authorizer::{AuthorizerError, authorize};
use lambda_http::aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use profiles_tests::{json, repo_path};
use serde_json::Value;
use shared::apikeys;

use crate::{
    STAGE_WILDCARD, allowed, bearer, event, event_json, hs_app, principal, read_lists, refused,
    tenant, with_key,
};

// ---------------------------------------------------------------------------------------
// No credential, conflicting credentials

#[tokio::test]
async fn no_credential_is_unauthorized() {
    refused(&hs_app(), event(&[])).await;
}

#[tokio::test]
async fn authorization_that_is_not_bearer_is_unauthorized() {
    let app = hs_app();
    for authorization in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   "] {
        refused(&app, event(&[("Authorization", authorization)])).await;
    }
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
