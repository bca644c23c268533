//! The local runner (`cargo run -p local-api`) over real HTTP: routes from the template, the
//! authorizer where API Gateway runs it (with its cache, gateway responses and usage-plan
//! throttle), the functions' own binaries under the Lambda Runtime API, answers as API
//! Gateway returns them, and what happens when a function crashes, errors, hangs or fails
//! init.
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

pub(crate) fn yaml(v: Value) -> yaml_serde::Value {
    yaml_serde::to_value(v).unwrap()
}

/// `template.yaml` as `edit` changes it.
pub(crate) fn template_with(edit: impl FnOnce(&mut yaml_serde::Value)) -> Template {
    let text = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    let mut doc: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    edit(&mut doc);
    let path = std::env::temp_dir().join(format!("template-{}.yaml", uuid::Uuid::now_v7()));
    std::fs::write(&path, yaml_serde::to_string(&doc).unwrap()).unwrap();
    let template = Template::load(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    template
}

/// Lifts the usage plan's throttle, for tests that send more than its burst on one key.
pub(crate) fn roomy(doc: &mut yaml_serde::Value) {
    doc["Resources"]["ProfilesUsagePlan"]["Properties"]["Throttle"] =
        yaml(json!({"BurstLimit": 100_000, "RateLimit": 100_000}));
}

/// The repository's template with the throttle lifted, in memory.
async fn start() -> Runner {
    Runner::start(&template_with(roomy), Storage::Memory, 4).await
}

/// `template.yaml` plus misbehaving functions (`tests/fault_function.rs`): `/fault/{name}`
/// with a 1 s function timeout, `/slow/{name}` behind a 500 ms integration timeout, and two
/// functions whose init fails; all on SAM's implicit API, with no authorizer.
fn fault_template() -> Template {
    template_with(add_faults)
}

/// A fault function with one `Api` event on `path` and `method`, and `extra` properties.
fn fault_function(path: &str, method: &str, extra: yaml_serde::Value) -> yaml_serde::Value {
    let mut events = yaml_serde::Mapping::new();
    events.insert(
        "Route".into(),
        yaml(json!({"Type": "Api", "Properties": {"Path": path, "Method": method}})),
    );
    let mut f = yaml(json!({
        "Type": "AWS::Serverless::Function",
        "Metadata": {"BuildMethod": "rust-cargolambda", "BuildProperties": {"Binary": "fault-function"}},
        "Properties": {"CodeUri": ".", "Timeout": 1},
    }));
    f["Properties"]["Events"] = yaml_serde::Value::Mapping(events);
    if let yaml_serde::Value::Mapping(m) = extra {
        for (k, v) in m {
            f["Properties"][k.as_str().unwrap()] = v;
        }
    }
    f
}

fn add_faults(doc: &mut yaml_serde::Value) {
    let none = yaml_serde::Value::Null;
    let r = &mut doc["Resources"];
    r["FaultFunction"] = fault_function("/fault/{name}", "any", none.clone());
    let mut slow = fault_function("/slow/{name}", "get", none);
    slow["Properties"]["Events"]["Route"]["Properties"]["TimeoutInMillis"] = 500.into();
    slow["Properties"]["Timeout"] = 5.into();
    r["SlowFunction"] = slow;
    for (id, mode) in [
        ("InitExitFunction", "exit"),
        ("InitReportFunction", "report"),
    ] {
        let env = yaml(json!({"Environment": {"Variables": {"FAULT_INIT": mode}}}));
        r[id] = fault_function(&format!("/init-{mode}"), "get", env);
    }
}

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

/// Asserts a gateway or function problem+json answer with `status` and `code`, whose
/// `trace_id` is the request's id (`x-trace-id`, `x-amzn-requestid`); returns its body.
pub(crate) async fn assert_problem(r: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let trace = r.headers()["x-trace-id"].to_str().unwrap().to_owned();
    assert_eq!(r.headers()["x-amzn-requestid"], trace.as_str());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["trace_id"], trace.as_str());
    body
}

/// A well-formed API key that no one was given.
fn unknown_key() -> String {
    format!("prof_{}", "A".repeat(43))
}

async fn start_faulty() -> Runner {
    Runner::start(&fault_template(), Storage::Memory, 4).await
}

/// The process id the fault function answers `ok` with: which instance served.
async fn pid(api: &Runner) -> u64 {
    let r = api.http.get(api.url("/fault/ok")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["pid"].as_u64().unwrap()
}

async fn assert_bad_gateway(r: reqwest::Response, status: u16, message: &str) {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(r.headers().contains_key("x-amzn-requestid"));
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"message": message})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_template_route_answers_over_http() {
    let api = start().await;
    let u = |p: &str| format!("{}{p}", api.url);
    // Location and Link are followed literally: they name the stage, as execute-api needs.
    let f = |target: &str| api.follow(target);
    let r = api
        .http
        .post(u("/profiles"))
        .json(&json!({"name": "Acme Corp", "tags": ["a"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(r.headers()["etag"], "\"1\"");
    assert_eq!(r.headers()["content-type"], "application/json");
    let created: Value = r.json().await.unwrap();
    assert_eq!(
        location,
        format!("/prod/profiles/{}", created["id"].as_str().unwrap())
    );

    // The caller's first profile is its primary one.
    let r = api.http.get(u("/profiles/me")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], created["id"]);
    let r = api.http.get(u("/profiles/all")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().await.unwrap()["data"].is_array());

    let r = api
        .http
        .post(u("/profiles/create"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "the alias route");

    let r = api.http.get(f(&location)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["slug"], "acme-corp");

    let r = api
        .http
        .patch(f(&location))
        .header("content-type", "application/merge-patch+json")
        .header("prefer", "return=minimal")
        .body(r#"{"tags": null}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["etag"], "\"2\"");

    let r = api
        .http
        .put(f(&location))
        .json(&json!({"name": "Replaced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Query strings arrive decoded, as API Gateway delivers them.
    let r = api
        .http
        .get(u("/profiles?limit=1&sort_order=asc"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["link"]
            .to_str()
            .unwrap()
            .contains("rel=\"next\"")
    );
    let link = r.headers()["link"].to_str().unwrap().to_owned();
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["data"][0]["name"], "Replaced");
    let next = link
        .strip_prefix('<')
        .and_then(|l| l.split_once('>'))
        .map(|(target, _)| target.to_owned())
        .unwrap();
    assert!(next.starts_with("/prod/profiles?"), "{link}");
    let r = api.http.get(f(&next)).send().await.unwrap();
    assert_eq!(r.status(), 200, "the next page, at the Link's target");
    let r = api
        .http
        .get(u("/profiles?filter%5Bshoe%5D=9"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "filter[shoe]");

    // The contacts sub-resource, every route.
    let contacts = format!("{location}/contacts");
    let r = api
        .http
        .post(f(&contacts))
        .json(&json!({"key": "phone", "value": "+1 415 555 2671"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["etag"], "\"1\"");
    let contact = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(contact.starts_with(&format!("{contacts}/")));
    assert_eq!(r.json::<Value>().await.unwrap()["value"], "+14155552671");
    let r = api.http.get(f(&contact)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = api
        .http
        .patch(f(&contact))
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"external_id": "crm-1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = api
        .http
        .put(f(&contact))
        .json(&json!({"key": "email", "value": "a@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "\"3\"");
    let r = api.http.get(f(&contacts)).send().await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = api.http.delete(f(&contact)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = api.http.get(f(&contact)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    let r = api.http.delete(f(&location)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = api.http.delete(f(&location)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let trace = r.headers()["x-trace-id"].to_str().unwrap().to_owned();
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["trace_id"], trace.as_str());
}

/// API Gateway answers a method and path no route has with 403 "Missing Authentication
/// Token"; the template makes it a 404 problem+json. (Without a declared response the runner
/// gives API Gateway's own: `local_api::responses`' unit test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_no_route_is_a_404_problem() {
    let api = start().await;
    for (method, path) in [
        (reqwest::Method::GET, "/nope"),
        (reqwest::Method::POST, "/profiles/abc"),
        (reqwest::Method::DELETE, "/profiles"),
    ] {
        let r = api
            .http
            .request(method, format!("{}{path}", api.url))
            .send()
            .await
            .unwrap();
        let body = assert_problem(r, 404, "not_found").await;
        assert_eq!(body["detail"], "no route matches this method and path");
    }
}

/// A body over API Gateway's 10 MB payload limit is refused by the gateway before any route,
/// authorizer or function, with the template's `REQUEST_TOO_LARGE` problem; one at the limit
/// reaches the function (which refuses it itself: 413 from the handler).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_gateways_limit_is_the_templates_413() {
    let api = start().await;
    let over = vec![b' '; local_api::MAX_PAYLOAD_BYTES + 1];
    let r = api
        .http
        .post(api.url("/profiles"))
        .header("content-type", "application/json")
        .body(over)
        .send()
        .await
        .unwrap();
    let body = assert_problem(r, 413, "payload_too_large").await;
    assert_eq!(
        body["detail"],
        "the request is over API Gateway's 10 MB limit"
    );
    assert_eq!(api.server.pools["AuthorizerFunction"].invocations(), 0);
    let at_limit = vec![b' '; local_api::MAX_PAYLOAD_BYTES];
    let r = api
        .http
        .post(api.url("/profiles"))
        .header("content-type", "application/json")
        .body(at_limit)
        .send()
        .await
        .unwrap();
    let body = assert_problem(r, 413, "payload_too_large").await;
    assert!(
        body["detail"].as_str().unwrap().contains("at most"),
        "the function's own limit: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_requests_all_succeed() {
    let api = Arc::new(start().await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let api = api.clone();
        tasks.spawn(async move {
            let r = api
                .http
                .post(format!("{}/profiles", api.url))
                .json(&json!({"name": format!("Parallel {}", i % 5)}))
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        });
    }
    let statuses = tasks.join_all().await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let started = api.instances("CreateProfileFunction");
    assert!(
        (1..=4).contains(&started),
        "instances start on demand, at most the concurrency limit: {started}"
    );
    let r = api
        .http
        .get(format!("{}/profiles?limit=100", api.url))
        .send()
        .await
        .unwrap();
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_receives_the_rest_event_api_gateway_builds() {
    let api = start_faulty().await;
    let r = api
        .http
        .post(api.url("/fault/echo?tag=a&tag=b&q=x%20y"))
        .header("x-multi", "1")
        .header("x-multi", "2")
        .body(vec![0u8, 159, 146, 150])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let request_id = r.headers()["x-amzn-requestid"].to_str().unwrap().to_owned();
    let event: Value = r.json().await.unwrap();
    assert_eq!(event["resource"], "/fault/{name}");
    assert_eq!(event["path"], "/fault/echo");
    assert_eq!(event["httpMethod"], "POST");
    assert_eq!(event["pathParameters"], json!({"name": "echo"}));
    assert_eq!(event["queryStringParameters"]["q"], "x y");
    assert_eq!(event["queryStringParameters"]["tag"], "b", "the last value");
    assert_eq!(
        event["multiValueQueryStringParameters"]["tag"],
        json!(["a", "b"])
    );
    assert_eq!(event["multiValueHeaders"]["x-multi"], json!(["1", "2"]));
    assert_eq!(
        event["isBase64Encoded"], true,
        "a binary body arrives base64-encoded"
    );
    assert_eq!(event["body"], "AJ+Slg==");
    let ctx = &event["requestContext"];
    assert_eq!(ctx["requestId"], request_id.as_str());
    assert_eq!(ctx["stage"], "local");
    assert_eq!(ctx["resourcePath"], "/fault/{name}");
    assert_eq!(ctx["httpMethod"], "POST");
    assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base64_proxy_response_with_multi_value_headers_goes_back_as_http() {
    let api = start_faulty().await;
    let r = api.http.get(api.url("/fault/binary")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.headers()["x-single"], "one");
    let multi: Vec<_> = r.headers().get_all("x-multi").iter().collect();
    assert_eq!(multi, ["a", "b"]);
    assert_eq!(r.bytes().await.unwrap().as_ref(), [0u8, 1, 2, 255]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_function_answers_502_and_the_next_request_is_served() {
    let api = start_faulty().await;
    let before = pid(&api).await;
    let r = api.http.get(api.url("/fault/crash")).send().await.unwrap();
    assert_bad_gateway(r, 502, "Internal server error").await;
    let after = pid(&api).await;
    assert_ne!(before, after, "a new instance replaced the crashed one");
    assert_eq!(api.instances("FaultFunction"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_error_answers_502_and_its_instance_stays_warm() {
    let api = start_faulty().await;
    let before = pid(&api).await;
    let r = api.http.get(api.url("/fault/error")).send().await.unwrap();
    assert_bad_gateway(r, 502, "Internal server error").await;
    assert_eq!(pid(&api).await, before, "the same warm instance");
    assert_eq!(api.instances("FaultFunction"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_proxy_response_answers_502() {
    let api = start_faulty().await;
    let r = api
        .http
        .get(api.url("/fault/malformed"))
        .send()
        .await
        .unwrap();
    assert_bad_gateway(r, 502, "Internal server error").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrunning_the_function_timeout_answers_502_and_replaces_the_instance() {
    let api = start_faulty().await;
    let before = pid(&api).await;
    let started = Instant::now();
    let r = api.http.get(api.url("/fault/sleep")).send().await.unwrap();
    let took = started.elapsed();
    assert_bad_gateway(r, 502, "Internal server error").await;
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "stopped at the template's 1 s Timeout, not the 3 s sleep: {took:?}"
    );
    assert_ne!(
        pid(&api).await,
        before,
        "the timed-out instance was stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrunning_the_integration_timeout_answers_504() {
    let api = start_faulty().await;
    let started = Instant::now();
    let r = api.http.get(api.url("/slow/sleep")).send().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the route's 500 ms TimeoutInMillis"
    );
    assert_bad_gateway(r, 504, "Endpoint request timed out").await;
    let r = api.http.get(api.url("/slow/ok")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the runner keeps serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_whose_init_fails_answers_502_every_time() {
    let api = start_faulty().await;
    for path in ["/init-exit", "/init-report", "/init-report"] {
        let r = api.http.get(api.url(path)).send().await.unwrap();
        assert_bad_gateway(r, 502, "Internal server error").await;
    }
    assert_eq!(
        api.instances("InitReportFunction"),
        2,
        "each attempt is a new cold start"
    );
    assert!(pid(&api).await > 0, "other functions are unaffected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_specific_method_beats_any_on_the_same_resource() {
    let template = fault_template();
    let routes = template.routes().unwrap();
    let m = local_api::route(&routes, "GET", "/fault/x").unwrap();
    assert_eq!(m.route.function, "FaultFunction", "ANY serves GET");
    let m = local_api::route(&routes, "GET", "/profiles/create").unwrap();
    assert_eq!(m.route.function, "GetProfileFunction");
    let m = local_api::route(&routes, "POST", "/profiles/create").unwrap();
    assert_eq!(
        m.route.function, "CreateProfileFunction",
        "the literal alias beats {{profile_id}}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_the_development_key_in_the_state_dir_survive_a_restart() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("profiles-state-{}", uuid::Uuid::now_v7()));
    let file = dir.join(shared::localstate::DATA_FILE);
    let template = Template::load(&repo_path("template.yaml")).unwrap();
    let options = || Options {
        storage: Storage::File(file.clone()),
        concurrency: 2,
        state_dir: Some(dir.clone()),
        ..Default::default()
    };
    let api = Runner::start_with(&template, options()).await;
    assert!(api.server.engine.created_table);
    let key = api.key().to_owned();
    assert!(key.starts_with("prof_"));
    let kept = dir.join(shared::localstate::DEV_API_KEY);
    assert_eq!(std::fs::read_to_string(&kept).unwrap().trim(), key);
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the key file is its owner's only");
    let endpoint = std::fs::read_to_string(dir.join(shared::localstate::ENGINE_ENDPOINT)).unwrap();
    assert_eq!(
        endpoint,
        format!("{}\n", api.server.engine.endpoint),
        "for the keys command"
    );
    let r = api
        .http
        .post(api.url("/profiles"))
        .json(&json!({"name": "Kept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    api.server.stop().await;
    assert!(
        !dir.join(shared::localstate::ENGINE_ENDPOINT).exists(),
        "a stopped engine's URL is removed"
    );

    let api = Runner::start_with(&template, options()).await;
    assert!(!api.server.engine.created_table, "the table is kept");
    assert_eq!(api.key(), key, "the same development key");
    let r = api.http.get(api.follow(&location)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "Kept");
    api.server.stop().await;

    // In memory, a key for this start only: the kept one is left alone.
    let memory = Options {
        storage: Storage::Memory,
        ..options()
    };
    let api = Runner::start_with(&template, memory).await;
    assert_ne!(api.key(), key);
    assert_eq!(std::fs::read_to_string(&kept).unwrap().trim(), key);
    let r = api.http.get(api.url("/profiles")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    api.server.stop().await;

    // A data file that lost the key (deleted, here) gets a new one, kept.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("profiles.db") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let api = Runner::start_with(&template, options()).await;
    assert!(api.server.engine.created_table);
    assert_ne!(api.key(), key);
    assert_eq!(std::fs::read_to_string(&kept).unwrap().trim(), api.key());
    let r = api.http.get(api.url("/profiles")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    api.server.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_engine_by_url_gets_the_table_and_the_data() {
    let engine = profiles_tests::Engine::start().await;
    let table = format!("other-{}", uuid::Uuid::now_v7().simple());
    let template = Template::load(&repo_path("template.yaml")).unwrap();
    let storage = Storage::Endpoint {
        url: engine.endpoint.clone(),
        table: table.clone(),
    };
    let api = Runner::start(&template, storage, 2).await;
    assert!(api.server.engine.created_table);
    let r = api
        .http
        .post(api.url("/profiles"))
        .json(&json!({"name": "Elsewhere"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let items = engine
        .client
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    assert!(
        items.count() >= 1,
        "the function wrote to the named engine and table"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_runner_stops_every_function_instance() {
    let api = start_faulty().await;
    let first = pid(&api).await;
    api.server.stop().await;
    let proc = format!("/proc/{first}");
    let deadline = Instant::now() + Duration::from_secs(5);
    // A killed child stays a zombie until reaped; its state line then says 'Z'.
    while std::fs::read_to_string(format!("{proc}/stat")).is_ok_and(|s| !s.contains(") Z "))
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let alive = std::fs::read_to_string(format!("{proc}/stat")).is_ok_and(|s| !s.contains(") Z "));
    assert!(!alive, "instance {first} still runs after stop");
}

/// The README's curl session, run as written (`sh -e`) against a runner started here on the
/// repository's template: the only changes are the base URL and where the key comes from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_curl_session_works_as_written() {
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    let block = readme
        .split("<!-- curl-session -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- /curl-session -->").next())
        .expect("README has a curl session between markers");
    let script = block
        .lines()
        .filter(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(script.contains("API=http://localhost:3000/prod"));
    assert!(script.contains("KEY=$(cat .local/dev-api-key)"));
    let api = Runner::start_default().await;
    let script = script
        .replace(
            "API=http://localhost:3000/prod",
            &format!("API={}", api.url),
        )
        .replace(
            "KEY=$(cat .local/dev-api-key)",
            &format!("KEY={}", api.key()),
        );
    let out = tokio::process::Command::new("sh")
        .args(["-e", "-c", &script])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Every command prints to stdout, one line per line asserted below; nothing on stderr.
    assert_eq!(stderr, "", "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 7, "{stdout}");
    // The create: status, ETag and Location; the id is Location's last segment.
    let (status_and_tag, location) = lines[0].rsplit_once(' ').unwrap();
    assert_eq!(status_and_tag, "201 \"1\"", "{}", lines[0]);
    let id = location
        .strip_prefix("/prod/profiles/")
        .unwrap_or_else(|| panic!("Location under the stage: {}", lines[0]));
    assert!(uuid::Uuid::try_parse(id).is_ok(), "{}", lines[0]);
    // The read: derived name and headline, version 1.
    let read: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(read["id"], id);
    assert_eq!(read["name"], "Mary Smith");
    assert_eq!(read["headline"], "CTO at Acme");
    assert_eq!(read["version"], 1);
    // The list: the one profile, and no next page.
    let page: Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["data"][0]["id"], id);
    assert_eq!(page["next_cursor"], Value::Null);
    // The PATCH with If-Match: "1": the profile at version 2, then its status and new ETag.
    let patched: Value = serde_json::from_str(lines[3]).unwrap();
    assert_eq!(patched["title"], "CEO");
    assert_eq!(patched["headline"], "CEO at Acme");
    assert_eq!(patched["version"], 2);
    assert_eq!(lines[4], "200 \"2\"");
    // The same If-Match again: a stale version, refused with 412 problem+json.
    let refused: Value = serde_json::from_str(lines[5]).unwrap();
    assert_eq!(refused["status"], 412);
    assert_eq!(refused["code"], "precondition_failed");
    assert_eq!(lines[6], "412 application/problem+json");
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

/// The function behind a route of the template's API fails, or outlasts its integration
/// timeout: API Gateway's own 502 and 504, which the template's DEFAULT_5XX and
/// INTEGRATION_TIMEOUT make problem+json with the request's trace id, as the runner renders
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_5xx_are_problem_json_with_the_trace_id() {
    let template = template_with(|doc| {
        add_faults(doc);
        roomy(doc);
        let r = &mut doc["Resources"];
        // The fault function on the template's API, behind its authorizer; and the slow one
        // there with a 500 ms integration timeout.
        r["FaultFunction"]["Properties"]["Events"]["Guarded"] = yaml(json!({
            "Type": "Api",
            "Properties": {"RestApiId": {"Ref": "ProfilesApi"}, "Path": "/guarded/{name}", "Method": "any"},
        }));
        r["SlowFunction"]["Properties"]["Events"]["Guarded"] = yaml(json!({
            "Type": "Api",
            "Properties": {"RestApiId": {"Ref": "ProfilesApi"}, "Path": "/guarded-slow/{name}",
                           "Method": "get", "TimeoutInMillis": 500},
        }));
    });
    let api = Runner::start(&template, Storage::Memory, 4).await;
    for name in ["crash", "error", "malformed", "sleep"] {
        let r = api
            .http
            .get(api.url(&format!("/guarded/{name}")))
            .send()
            .await
            .unwrap();
        let body = assert_problem(r, 502, "bad_gateway").await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("logged under this trace_id"),
            "{name}: {body}"
        );
    }
    let r = api
        .http
        .get(api.url("/guarded-slow/sleep"))
        .send()
        .await
        .unwrap();
    let body = assert_problem(r, 504, "gateway_timeout").await;
    assert!(body["detail"].as_str().unwrap().contains("may or may not"));
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
    let r = guarded("unauthorized").await.unwrap();
    assert_problem(r, 401, "unauthorized").await;
    let r = guarded("deny").await.unwrap();
    assert_problem(r, 403, "access_denied").await;
    let r = guarded("elsewhere").await.unwrap();
    assert_problem(r, 403, "access_denied").await;
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
    // alone, which the uncached template accepts.
    let r = api
        .anonymous
        .get(api.url("/profiles"))
        .header("x-api-key", api.key())
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "unauthorized").await;
    let r = api
        .anonymous
        .get(api.url("/profiles"))
        .header("authorization", "")
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "unauthorized").await;
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

/// A JWT signed with the HS256 secret given as a template parameter.
pub(crate) fn jwt(
    secret: &str,
    issuer: &str,
    audience: &str,
    tenant: &str,
    subject: &str,
) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({
        "iss": issuer, "aud": audience, "sub": subject, "tenant_id": tenant,
        "iat": now, "exp": now + 600, "scope": "profiles.create profiles.read profiles.lists",
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
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

#[test]
fn parameter_overrides_must_name_template_parameters() {
    let template = Template::load(&repo_path("template.yaml")).unwrap();
    let unknown = template
        .clone()
        .with_parameter_overrides(&[("JwtIssur".into(), "x".into())]);
    assert!(unknown.is_err(), "a misspelt parameter is an error");
    let template = template
        .with_parameter_overrides(&[("JwtIssuer".into(), "https://i.test".into())])
        .unwrap();
    // A distribution's domain resolves only where an S3 stands in for it.
    assert!(template.functions("t").is_err());
    let template = template.with_local("eu-west-1", Some("http://127.0.0.1:9"));
    let functions = template.functions("t").unwrap();
    let process = functions
        .iter()
        .find(|f| f.id == "ProcessPhotoFunction")
        .unwrap();
    let bucket = "profiles-local-123456789012-eu-west-1-photos";
    assert!(process.env.contains(&(
        env::PHOTO_BASE_URL.into(),
        format!("http://127.0.0.1:9/{bucket}/photos")
    )));
    assert!(
        process
            .env
            .contains(&(env::PHOTO_BUCKET.into(), bucket.into()))
    );
    assert_eq!(process.memory_mb, 512);
    let authorizer = functions
        .iter()
        .find(|f| f.id == "AuthorizerFunction")
        .unwrap();
    assert!(
        authorizer
            .env
            .contains(&(env::JWT_ISSUER.into(), "https://i.test".into()))
    );
    assert!(
        authorizer
            .env
            .contains(&(env::JWT_AUDIENCE.into(), String::new())),
        "the others at their defaults"
    );
    let api = &template.apis().unwrap()[0];
    assert_eq!(api.stage, "prod");
    let plans: Vec<(&str, Option<(u32, f64)>)> = api
        .plans
        .iter()
        .map(|p| (p.id.as_str(), p.throttle.map(|t| (t.burst, t.rate))))
        .collect();
    assert_eq!(
        plans,
        [
            ("ProfilesUsagePlan", Some((10, 2.5))),
            ("JwtCallersUsagePlan", None)
        ],
        "the JWT callers' plan has no throttle of its own"
    );
    assert!(api.gateway_responses.contains_key("THROTTLED"));
}

#[test]
fn a_routes_authorizer_and_key_come_from_its_api_and_its_event() {
    let template = template_with(|doc| {
        let events = &mut doc["Resources"]["GetProfileFunction"]["Properties"]["Events"];
        events["Open"] = yaml(json!({"Type": "Api", "Properties": {
            "RestApiId": {"Ref": "ProfilesApi"}, "Path": "/open", "Method": "get",
            "Auth": {"Authorizer": "NONE", "ApiKeyRequired": false},
        }}));
        events["Keyed"] = yaml(json!({"Type": "Api", "Properties": {
            "RestApiId": {"Ref": "ProfilesApi"}, "Path": "/keyed", "Method": "get",
            "Auth": {"Authorizer": "NONE"},
        }}));
        events["Implicit"] = yaml(json!({"Type": "Api", "Properties": {
            "Path": "/implicit", "Method": "get",
        }}));
    });
    let routes = template.routes().unwrap();
    let by_path = |p: &str| routes.iter().find(|r| r.resource == p).unwrap();
    let get = by_path("/profiles/{profile_id}");
    assert_eq!(get.api.as_deref(), Some("ProfilesApi"));
    assert_eq!(get.authorizer.as_deref(), Some("ProfilesAuthorizer"));
    assert!(get.api_key_required);
    let open = by_path("/open");
    assert_eq!(
        (open.authorizer.as_deref(), open.api_key_required),
        (None, false)
    );
    let keyed = by_path("/keyed");
    assert_eq!(
        (keyed.authorizer.as_deref(), keyed.api_key_required),
        (None, true)
    );
    let implicit = by_path("/implicit");
    assert_eq!(implicit.api, None);
    assert_eq!(
        (implicit.authorizer.as_deref(), implicit.api_key_required),
        (None, false)
    );
    assert!(
        template
            .served_binaries()
            .unwrap()
            .contains(&"authorizer".to_owned()),
        "the authorizer is built and run like the functions"
    );

    let unknown = template_with(|doc| {
        doc["Resources"]["GetProfileFunction"]["Properties"]["Events"]["Get"]["Properties"]["Auth"] =
            yaml(json!({"Authorizer": "Nobody"}));
    });
    let err = unknown.routes().unwrap_err().to_string();
    assert!(err.contains("Nobody"), "{err}");
}

/// Served under its stage, as execute-api serves it, the API's links name the stage; served
/// at the root, as a custom domain with an empty base path serves it, they do not; both are
/// followed literally. Outside the stage there is no route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_and_link_resolve_where_the_api_is_mounted() {
    let template = Template::load(&repo_path("template.yaml")).unwrap();
    for (mount, base) in [
        (local_api::Mount::Stage, "/prod"),
        (local_api::Mount::Root, ""),
    ] {
        let options = Options {
            mount,
            ..Default::default()
        };
        let api = Runner::start_with(&template, options).await;
        assert_eq!(api.url, format!("{}{base}", api.origin));
        for name in ["A", "B"] {
            let r = api
                .http
                .post(format!("{}/profiles/create", api.url))
                .json(&json!({ "name": name }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            let location = r.headers()["location"].to_str().unwrap().to_owned();
            assert!(
                location.starts_with(&format!("{base}/profiles/")),
                "{location}"
            );
            let r = api.http.get(api.follow(&location)).send().await.unwrap();
            assert_eq!(r.status(), 200, "{location} from the alias route");
        }
        let r = api
            .http
            .get(format!("{}/profiles/all?limit=1", api.url))
            .send()
            .await
            .unwrap();
        let link = r.headers()["link"].to_str().unwrap().to_owned();
        let target = link.trim_start_matches('<').split('>').next().unwrap();
        assert!(
            target.starts_with(&format!("{base}/profiles/all?")),
            "{link}"
        );
        let r = api.http.get(api.follow(target)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<Value>().await.unwrap()["data"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        if mount == local_api::Mount::Stage {
            let r = api
                .http
                .get(format!("{}/profiles", api.origin))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 404, "no stage, no route");
            let r = api
                .http
                .get(format!("{}/dev/profiles", api.origin))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 404, "another stage, no route");
        }
        api.server.stop().await;
    }
}
