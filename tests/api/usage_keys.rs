//! Credentials that work the moment they exist, through the runner as API Gateway admits
//! them: a usage key must be an enabled API key in a usage plan of the API, else 403. An API
//! key made with `keys create --local` is registered by the command itself; JWT callers are
//! counted on the template's one usage key and limited one by one by the authorizer.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use shared::config::env;
use std::time::Duration;

use serde_json::{Value, json};

use profiles_tests::{Runner, client_with_key, repo_path};

use crate::local_api::{assert_problem, jwt};

/// Runs the built `keys` binary with `args`.
async fn keys(args: &[&str]) -> (bool, String, String) {
    let bin = profiles_tests::binaries()
        .get("keys")
        .expect("the keys binary");
    let out = tokio::process::Command::new(bin)
        .args(args)
        .env_remove(env::DYNAMODB_ENDPOINT)
        .env_remove(env::TABLE_NAME)
        .env_remove("USAGE_PLAN_ID")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The runner on the repository's template, in memory, keeping its files in a new folder.
async fn start_with_files(overrides: &[(&str, &str)]) -> (Runner, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("usage-keys-{}", uuid::Uuid::now_v7()));
    let template = local_api::template::Template::load(&repo_path("template.yaml")).unwrap();
    let options = local_api::Options {
        state_dir: Some(dir.clone()),
        parameter_overrides: overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    };
    (Runner::start_with(&template, options).await, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_usage_key_is_in_no_plan_is_refused_as_api_gateway_does() {
    let api = Runner::start_default().await;
    // A key in the table only, as `keys create` made them before it registered them.
    let (key, record) = shared::apikeys::create(
        &api.store(),
        &shared::ids::TenantId::new("t-unregistered").unwrap(),
        &shared::ids::PrincipalId::new("svc").unwrap(),
        shared::auth::Scopes::all(),
        None,
    )
    .await
    .unwrap();
    let client = client_with_key(key.expose());
    let calls = api.server.pools["ListProfilesFunction"].invocations();
    let r = client.get(api.url("/profiles")).send().await.unwrap();
    let body = assert_problem(r, 403, "access_denied").await;
    assert!(
        body["detail"].as_str().unwrap().contains("usage plan"),
        "{body}"
    );
    assert_eq!(
        api.server.pools["ListProfilesFunction"].invocations(),
        calls,
        "refused before the function"
    );

    // Registered (what `keys register` does): it passes.
    api.register(&record).await;
    let r = client.get(api.url("/profiles")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Taken out of the plan: refused again, though the key itself is still valid.
    let gateway = keys::gateway::Gateway::new(
        &profiles_tests::config_for(&api.server.engine.endpoint, &api.server.engine.table),
        Some(&api.server.gateway.endpoint),
        api.server.gateway.usage_plan.as_deref().unwrap(),
    );
    let name = keys::gateway::key_name(&record.key_id);
    assert!(gateway.unregister(&name).await.unwrap());
    assert!(!gateway.unregister(&name).await.unwrap(), "idempotent");
    let r = client.get(api.url("/profiles")).send().await.unwrap();
    assert_problem(r, 403, "access_denied").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_create_local_makes_a_key_that_reaches_the_api_and_revoke_takes_it_out() {
    let (api, dir) = start_with_files(&[]).await;
    let dir_arg = dir.to_str().unwrap();
    let (ok, out, err) = keys(&[
        "--local",
        dir_arg,
        "create",
        "--tenant",
        "t-cli",
        "--principal",
        "svc-cli",
        "--scopes",
        "profiles.create,profiles.read",
    ])
    .await;
    assert!(ok, "{err}");
    let key = out.lines().next().unwrap().to_owned();
    let key_id = out
        .lines()
        .find_map(|l| l.strip_prefix("key id:"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(out.contains("usage plan: joined as"), "{out}");

    // Nothing registered by hand: the new key is admitted at once.
    let client = client_with_key(&key);
    let r = client
        .post(api.url("/profiles"))
        .json(&json!({"name": "Made by a new key"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let plan = api.server.gateway.usage_plan.clone().unwrap();
    let usage_key = format!("usage-{key_id}");
    assert_eq!(
        api.server
            .gateway
            .registry
            .plan_of(&usage_key, std::slice::from_ref(&plan)),
        Some(plan.clone())
    );

    let (ok, out, err) = keys(&["--local", dir_arg, "revoke", "--tenant", "t-cli", &key_id]).await;
    assert!(ok, "{err}");
    assert!(out.contains("taken out and deleted"), "{out}");
    assert_eq!(
        api.server.gateway.registry.plan_of(&usage_key, &[plan]),
        None
    );
    let r = client.get(api.url("/profiles")).send().await.unwrap();
    assert_problem(r, 401, "unauthorized").await;
    api.server.stop().await;
    assert!(
        !dir.join(shared::localstate::APIGATEWAY_ENDPOINT).exists(),
        "a stopped runner leaves no endpoint behind"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_callers_need_no_registration_and_are_limited_one_by_one() {
    let secret = format!("hs256-test-secret-{}", uuid::Uuid::now_v7().simple());
    let (issuer, audience) = ("https://issuer.test", "profiles-api");
    // A burst of 3 and one request every 2 s, for API keys and each JWT caller alike.
    let (api, dir) = start_with_files(&[
        ("JwtHs256Secret", &secret),
        ("JwtIssuer", issuer),
        ("JwtAudience", audience),
        ("ThrottleBurstLimit", "3"),
        ("ThrottleRateLimit", "0.5"),
    ])
    .await;
    let ann = client_with_key(&jwt(&secret, issuer, audience, "t-jwt", "ann"));
    let bob = client_with_key(&jwt(&secret, issuer, audience, "t-jwt", "bob"));

    // Never seen before, registered nowhere: admitted.
    for _ in 0..3 {
        let r = ann.get(api.url("/profiles")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // Over her own limit: 429 with Retry-After, from the function, before any work: a
    // create is not written.
    let creates = api.server.pools["CreateProfileFunction"].invocations();
    let r = ann
        .post(api.url("/profiles"))
        .json(&json!({"name": "Never written"}))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body = assert_problem(r, 429, "rate_limited").await;
    assert!(body["detail"].as_str().unwrap().contains("Retry-After"));
    assert_eq!(
        api.server.pools["CreateProfileFunction"].invocations(),
        creates + 1
    );
    // Another subject of the same tenant has its own limit.
    let r = bob.get(api.url("/profiles")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let listed: Value = r.json().await.unwrap();
    assert_eq!(
        listed["data"],
        json!([]),
        "the limited create wrote nothing"
    );

    // After the wait she is admitted again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let r = ann.get(api.url("/profiles")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Both callers were counted on the one usage key the template registers.
    let jwt_key = api
        .server
        .gateway
        .registry
        .keys_named(None)
        .into_iter()
        .find(|k| k.id == "JwtCallersApiKey")
        .unwrap();
    assert!(jwt_key.value.starts_with("jwt-callers-"));
    assert_eq!(
        api.server
            .gateway
            .registry
            .plan_of(&jwt_key.value, &["JwtCallersUsagePlan".to_owned()]),
        Some("JwtCallersUsagePlan".to_owned())
    );
    api.server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
