//! What the local runner answers when a function misbehaves, as API Gateway does: crashes,
//! errors, malformed answers, init failures, the function's and the integration's timeouts,
//! and the template's problem+json for the gateway's own 5xx.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use local_api::Storage;
use profiles_tests::{Runner, json};
use serde_json::Value;

use crate::local_api::{add_faults, assert_problem, pid, roomy, start_faulty, template_with, yaml};

/// Asserts API Gateway's own answer on a route with no gateway responses (SAM's implicit
/// API): `status`, and JSON `{"message": message}`.
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
