//! The authorizer where the local runner runs it, as API Gateway does: its answers and the
//! gateway's responses, caching on and off, the usage plan's throttle per credential, tenants
//! kept apart, JWT settings from `--parameter-overrides`, and a log with no credential in it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use shared::config::env;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use local_api::template::Template;
use local_api::{Options, Storage};
use profiles_tests::{Runner, client_with_key, json, repo_path};
use serde_json::Value;
use shared::auth::{Scope, Scopes};
use shared::ids::TenantId;

use crate::local_api::{
    add_faults, assert_problem, fault_function, jwt, roomy, start, template_with, yaml,
};

/// The fault template with the fault function as `ProfilesApi`'s authorizer (doing what each
/// request's `x-fault-auth` says, 1 s timeout), and `/guarded/{name}` (the fault function)
/// on `ProfilesApi`, behind it.
fn fault_authorizer_template() -> Template {
    template_with(|doc| {
        add_faults(doc);
        roomy(doc);
        let r = &mut doc["Resources"];
        let mut authorizer = fault_function("/unused", "get", yaml_serde::Value::Null);
        authorizer["Properties"]["Events"] = yaml_serde::Value::Null;
        r["FaultAuthorizerFunction"] = authorizer;
        r["ProfilesApi"]["Properties"]["Auth"]["Authorizers"]["ProfilesAuthorizer"]["FunctionArn"] =
            yaml(json!({"Fn::GetAtt": ["FaultAuthorizerFunction", "Arn"]}));
        r["FaultFunction"]["Properties"]["Events"]["Guarded"] = yaml(json!({
            "Type": "Api",
            "Properties": {"RestApiId": {"Ref": "ProfilesApi"}, "Path": "/guarded/{name}", "Method": "any"},
        }));
        // The usage key the fault authorizer names, in the per-credential plan.
        r["FaultApiKey"] = yaml(json!({
            "Type": "AWS::ApiGateway::ApiKey",
            "Properties": {"Enabled": true, "Value": "usage-fault-of-the-template"},
        }));
        r["FaultUsagePlanKey"] = yaml(json!({
            "Type": "AWS::ApiGateway::UsagePlanKey",
            "Properties": {"KeyId": {"Ref": "FaultApiKey"}, "KeyType": "API_KEY",
                "UsagePlanId": {"Ref": "ProfilesUsagePlan"}},
        }));
    })
}

/// A well-formed API key that no one was given.
fn unknown_key() -> String {
    format!("prof_{}", "A".repeat(43))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_or_a_bad_one_is_a_401_from_the_gateway() {
    let api = start().await;
    let r = api
        .anonymous
        .get(api.url("/profiles"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_problem(r, 401, "unauthorized").await;
    for credential in [
        ("authorization", format!("Bearer {}", unknown_key())),
        ("authorization", "Bearer prof_short".to_owned()),
        ("authorization", "Bearer not.a.jwt".to_owned()),
        ("authorization", format!("Basic {}", api.key())),
        ("x-api-key", unknown_key()),
    ] {
        let r = api
            .anonymous
            .post(api.url("/profiles"))
            .header(credential.0, &credential.1)
            .json(&json!({"name": "Nope"}))
            .send()
            .await
            .unwrap();
        assert_problem(r, 401, "unauthorized").await;
    }
    assert_eq!(
        api.server.pools["CreateProfileFunction"].invocations(),
        0,
        "the function never ran"
    );
    // The key works as x-api-key too, and on a route with no such profile the function
    // answers (404), not the gateway.
    let r = api
        .anonymous
        .get(api.url(&format!("/profiles/{}", uuid::Uuid::now_v7())))
        .header("x-api-key", api.key())
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "not_found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_without_the_routes_scope_is_refused_by_the_function() {
    let api = start().await;
    let created: Value = api
        .http
        .post(api.url("/profiles"))
        .json(&json!({"name": "Scoped"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let location = format!("/profiles/{}", created["id"].as_str().unwrap());
    let reader = client_with_key(
        &api.create_key("default", "reader", Scopes::default().with(Scope::Read))
            .await,
    );
    let r = reader.get(api.url(&location)).send().await.unwrap();
    assert_eq!(r.status(), 200, "profiles.read reads");
    let r = reader
        .post(api.url("/profiles"))
        .json(&json!({"name": "No"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(r, 403, "insufficient_scope").await;
    assert!(body["detail"].as_str().unwrap().contains("profiles.create"));
    let r = reader.delete(api.url(&location)).send().await.unwrap();
    assert_problem(r, 403, "insufficient_scope").await;
    let r = reader.get(api.url("/profiles")).send().await.unwrap();
    assert_problem(r, 403, "insufficient_scope").await;
    let r = api.http.get(api.url(&location)).send().await.unwrap();
    assert_eq!(r.status(), 200, "still there");
}

/// The fault authorizer's answers on `/guarded/echo`: what the gateway makes of each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorizers_answers_become_api_gateways() {
    let api = Runner::start(&fault_authorizer_template(), Storage::Memory, 4).await;
    let guarded = |mode: &str| {
        api.anonymous
            .get(api.url("/guarded/echo"))
            .header("x-fault-auth", mode)
            .send()
    };

    // Allowed: the function sees the authorizer's principal, context (as text) and latency,
    // and the usage key in `identity`, as API Gateway passes them.
    let r = guarded("allow").await.unwrap();
    assert_eq!(r.status(), 200);
    let request_id = r.headers()["x-amzn-requestid"].to_str().unwrap().to_owned();
    let event: Value = r.json().await.unwrap();
    let ctx = &event["requestContext"];
    assert_eq!(ctx["requestId"], request_id.as_str());
    assert_eq!(ctx["stage"], "prod", "the API's StageName");
    let authorizer = ctx["authorizer"].as_object().unwrap();
    assert_eq!(authorizer["principalId"], "fault-principal");
    assert_eq!(authorizer["tenant_id"], "fault");
    assert_eq!(authorizer["principal_id"], "fault-principal");
    assert_eq!(authorizer["number"], "7");
    assert_eq!(authorizer["flag"], "true");
    assert!(authorizer["integrationLatency"].is_u64());
    assert_eq!(ctx["identity"]["apiKey"], "usage-fault-of-the-template");
    assert_eq!(ctx["identity"]["apiKeyId"].as_str().unwrap().len(), 10);
    assert_eq!(event["body"], Value::Null);

    let function_runs = api.server.pools["FaultFunction"].invocations();
    // (the authorizer's answer, the gateway's status and code)
    for (mode, status, code) in [
        ("unauthorized", 401, "unauthorized"),
        ("deny", 403, "access_denied"),
        ("elsewhere", 403, "access_denied"),
    ] {
        let r = guarded(mode).await.unwrap();
        assert_problem(r, status, code).await;
    }
    // An authorizer that fails (errors, crashes, times out) is AUTHORIZER_FAILURE: the
    // template's 503 with Retry-After, never a 401 (the credential was not judged).
    for mode in ["error", "crash"] {
        let r = guarded(mode).await.unwrap();
        assert_eq!(r.headers()["retry-after"], "1");
        assert_problem(r, 503, "service_unavailable").await;
    }
    let started = Instant::now();
    let r = guarded("sleep").await.unwrap();
    assert_problem(r, 503, "service_unavailable").await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stopped at the authorizer's 1 s Timeout"
    );
    // An answer that is not an authorizer response: AUTHORIZER_CONFIGURATION_ERROR, our bug.
    let r = guarded("malformed").await.unwrap();
    assert_problem(r, 500, "internal_error").await;
    // An Allow without a usage key, where the API requires one: API Gateway's
    // INVALID_API_KEY, in the template's problem+json.
    let r = guarded("no-usage-key").await.unwrap();
    let body = assert_problem(r, 403, "access_denied").await;
    assert!(body["detail"].as_str().unwrap().contains("usage plan"));
    assert_eq!(
        api.server.pools["FaultFunction"].invocations(),
        function_runs,
        "no refused request reached the function"
    );
    assert!(
        api.instances("FaultAuthorizerFunction") >= 3,
        "crashed and timed-out authorizer instances were replaced"
    );
    let r = guarded("allow").await.unwrap();
    assert_eq!(r.status(), 200, "the runner keeps serving");

    // Routes on SAM's implicit API have no authorizer.
    let r = api
        .anonymous
        .get(api.url("/fault/ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncached_authorizer_runs_for_every_request_and_a_revoked_key_stops_at_once() {
    let api = start().await;
    let store = api.store();
    let tenant = TenantId::new("default").unwrap();
    let (key, record) = api
        .create_key_record("default", "soon-revoked", Scopes::all())
        .await;
    let client = client_with_key(&key);
    let runs = || api.server.pools["AuthorizerFunction"].invocations();
    for _ in 0..3 {
        let r = client.get(api.url("/profiles")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(
        runs(),
        3,
        "the template's ReauthorizeEvery: 0 caches nothing"
    );
    assert!(
        shared::apikeys::revoke(&store, &tenant, &record.key_id)
            .await
            .unwrap()
    );
    let r = client.get(api.url("/profiles")).send().await.unwrap();
    assert_problem(r, 401, "unauthorized").await;
}

/// The template's suggested cache: `Identity.Headers: [Authorization]`, 300 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_authorizer_runs_once_per_credential_within_its_ttl() {
    let template = template_with(|doc| {
        roomy(doc);
        doc["Resources"]["ProfilesApi"]["Properties"]["Auth"]["Authorizers"]["ProfilesAuthorizer"]
            ["Identity"] = yaml(json!({"Headers": ["Authorization"], "ReauthorizeEvery": 300}));
    });
    let api = Runner::start(&template, Storage::Memory, 4).await;
    let runs = || api.server.pools["AuthorizerFunction"].invocations();
    let r = api
        .http
        .post(api.url("/profiles"))
        .json(&json!({"name": "Cached"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    // The cached policy (the whole stage) serves other routes and methods too.
    for url in [
        api.follow(&location),
        api.url("/profiles"),
        api.url("/profiles/me"),
    ] {
        let r = api.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
    }
    let r = api.http.delete(api.follow(&location)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(runs(), 1, "one authorizer run for five requests");

    // A missing identity source is a 401 without running the authorizer: here x-api-key
    // alone, which the uncached template accepts, and an empty Authorization.
    for (header, value) in [("x-api-key", api.key()), ("authorization", "")] {
        let r = api
            .anonymous
            .get(api.url("/profiles"))
            .header(header, value)
            .send()
            .await
            .unwrap();
        assert_problem(r, 401, "unauthorized").await;
    }
    assert_eq!(runs(), 1);

    // Another credential is another cache entry; revoked, it still works until the TTL.
    let store = api.store();
    let tenant = TenantId::new("default").unwrap();
    let (key, record) = api
        .create_key_record("default", "cached", Scopes::all())
        .await;
    let client = client_with_key(&key);
    let r = client.get(api.url("/profiles")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(runs(), 2);
    shared::apikeys::revoke(&store, &tenant, &record.key_id)
        .await
        .unwrap();
    let r = client.get(api.url("/profiles")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the cached answer stands until the TTL");
    assert_eq!(runs(), 2);
    // A refusal is not cached: a bad credential runs the authorizer each time.
    let bad = client_with_key(&unknown_key());
    for _ in 0..2 {
        let r = bad.get(api.url("/profiles")).send().await.unwrap();
        assert_problem(r, 401, "unauthorized").await;
    }
    assert_eq!(runs(), 4);
}

/// The template's usage plan: burst 10, 2.5 requests/s, per usage key (per credential).
/// The usage plan's limits are template parameters: `--parameter-overrides` sets them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_throttle_takes_its_limits_from_the_template_parameters() {
    let options = Options {
        parameter_overrides: vec![
            ("ThrottleBurstLimit".into(), "3".into()),
            ("ThrottleRateLimit".into(), "0.1".into()),
        ],
        ..Default::default()
    };
    let template = Template::load(&repo_path("template.yaml")).unwrap();
    let api = Runner::start_with(&template, options).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = api
            .http
            .get(api.url("/profiles?limit=1"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 429, 429],
        "a burst of 3, then 0.1/s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_credential_is_throttled_on_its_own_bucket() {
    let api = Runner::start_default().await;
    let other = client_with_key(&api.create_key("default", "other", Scopes::all()).await);
    // Warm the authorizer and the function with the other key, so the burst goes quickly.
    for _ in 0..2 {
        let r = other
            .get(api.url("/profiles?limit=1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let function_runs = || api.server.pools["ListProfilesFunction"].invocations();
    let started = Instant::now();
    let mut passed = 0;
    let throttled = loop {
        let r = api
            .http
            .get(api.url("/profiles?limit=1"))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => passed += 1,
            429 => break r,
            other => panic!("status {other}"),
        }
        assert!(passed <= 40, "never throttled");
    };
    let elapsed = started.elapsed().as_secs_f64();
    // 10 at once, then 2.5 more a second: however slow this machine sent them.
    let most = 10 + (elapsed * 2.5).floor() as usize;
    assert!(
        (10..=most).contains(&passed),
        "{passed} passed in {elapsed:.2} s"
    );
    let runs = function_runs();
    let retry_after: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry_after, 1, "the template's Retry-After");
    assert_problem(throttled, 429, "rate_limited").await;
    assert_eq!(
        function_runs(),
        runs,
        "a throttled request never reaches the function"
    );

    let r = other
        .get(api.url("/profiles?limit=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "another credential has its own bucket");

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let r = api
        .http
        .get(api.url("/profiles?limit=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "recovered after Retry-After");
}

/// What one tenant's credential can do to another tenant's data: nothing, and it cannot
/// even tell the data exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_profiles_are_not_found_and_its_cursors_refused() {
    let api = start().await;
    let u = |p: &str| api.url(p);
    let created: Value = api
        .http
        .post(u("/profiles"))
        .json(
            &json!({"name": "Tenant A", "contacts": [{"key": "email", "value": "a@example.com"}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let profile = format!("/profiles/{}", created["id"].as_str().unwrap());
    let contact = format!(
        "{profile}/contacts/{}",
        created["contacts"][0]["id"].as_str().unwrap()
    );
    let other = client_with_key(&api.create_key("tenant-b", "bob", Scopes::all()).await);

    let patch = |path: &str| {
        other
            .patch(u(path))
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"name": "Taken"}"#)
    };
    let requests = [
        other.get(u(&profile)),
        patch(&profile),
        other.put(u(&profile)).json(&json!({"name": "Taken"})),
        other.delete(u(&profile)),
        other.get(u(&format!("{profile}/contacts"))),
        other
            .post(u(&format!("{profile}/contacts")))
            .json(&json!({"key": "email", "value": "b@example.com"})),
        other.get(u(&contact)),
        patch(&contact),
        other
            .put(u(&contact))
            .json(&json!({"key": "email", "value": "b@example.com"})),
        other.delete(u(&contact)),
    ];
    for request in requests {
        let request = request.build().unwrap();
        let what = format!("{} {}", request.method(), request.url().path());
        let r = other.execute(request).await.unwrap();
        assert_eq!(r.status(), 404, "{what}");
        assert_problem(r, 404, "not_found").await;
    }
    let r = api.http.get(u(&profile)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mine: Value = r.json().await.unwrap();
    assert_eq!(mine["name"], "Tenant A", "unchanged");
    assert_eq!(mine["contacts"].as_array().unwrap().len(), 1);

    // A list cursor is bound to its tenant.
    let r = api
        .http
        .post(u("/profiles"))
        .json(&json!({"name": "Tenant A 2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let page: Value = api
        .http
        .get(u("/profiles?limit=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let cursor: String = cursor
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let r = other
        .get(u(&format!("/profiles?limit=1&cursor={cursor}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = other.get(u("/profiles")).send().await.unwrap();
    let theirs: Value = r.json().await.unwrap();
    assert_eq!(
        theirs["data"],
        json!([]),
        "tenant B sees none of A's profiles"
    );
}

/// A session with an API key (both headers) and a JWT (its settings from
/// `--parameter-overrides`), good and bad: the runner's whole output, request lines and
/// every function's own log lines, holds no credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_overrides_reach_the_authorizer_and_no_credential_reaches_the_log() {
    let secret = format!("hs256-test-secret-{}", uuid::Uuid::now_v7().simple());
    let (issuer, audience) = ("https://issuer.test", "profiles-api");
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = lines.clone();
    let options = Options {
        parameter_overrides: vec![
            ("JwtHs256Secret".into(), secret.clone()),
            ("JwtIssuer".into(), issuer.into()),
            ("JwtAudience".into(), audience.into()),
        ],
        log: Some(Arc::new(move |line: &str| {
            sink.lock().unwrap().push(line.to_owned())
        })),
        ..Default::default()
    };
    let api = Runner::start_with(&template_with(roomy), options).await;
    let env = &api.server.pools["AuthorizerFunction"].function().env;
    assert!(env.contains(&(env::JWT_ISSUER.into(), issuer.into())));

    let token = jwt(&secret, issuer, audience, "jwt-tenant", "jwt-user");
    let with_jwt = client_with_key(&token);
    let r = with_jwt
        .post(api.url("/profiles"))
        .json(&json!({"name": "By token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "the JWT settings reached the authorizer");
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["owner_id"], "jwt-user");
    let r = with_jwt.get(api.url("/profiles/me")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = with_jwt
        .delete(api.url(&format!("/profiles/{}", created["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_problem(r, 403, "insufficient_scope").await;
    let forged = jwt(
        "another-secret-that-is-long-enough-0123",
        issuer,
        audience,
        "t",
        "u",
    );
    let r = client_with_key(&forged)
        .get(api.url("/profiles"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "unauthorized").await;

    let r = api
        .anonymous
        .post(api.url("/profiles"))
        .header("x-api-key", api.key())
        .json(&json!({"name": "By key", "contacts": [{"key": "email", "value": "k@example.com"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    for url in [
        api.follow(&location),
        api.url("/profiles"),
        api.url("/nowhere"),
    ] {
        api.http.get(&url).send().await.unwrap();
    }
    let unknown = unknown_key();
    let r = client_with_key(&unknown)
        .get(api.follow(&location))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The functions' lines are forwarded as they come: give the last ones a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = lines.lock().unwrap().join("\n");
    for expected in [
        "[authorizer#1]",
        "[create-profile#1]",
        "GET /prod/profiles → ",
    ] {
        assert!(log.contains(expected), "{expected:?} missing from:\n{log}");
    }
    let signature = token.rsplit('.').next().unwrap();
    for (what, secret) in [
        ("the development key", api.key()),
        ("the unknown key", unknown.as_str()),
        ("the JWT", token.as_str()),
        ("the JWT's signature", signature),
        ("the forged JWT", forged.as_str()),
        ("the HS256 secret", secret.as_str()),
    ] {
        assert!(!log.contains(secret), "{what} is in the log:\n{log}");
    }
}
