//! Failure as part of the contract, met for real: the runner's functions and authorizer talk
//! to their engine through a fault proxy (`profiles_tests::fault_proxy`) that refuses,
//! resets, hangs, slows or throttles. Every such outage is a 503 problem+json with
//! `Retry-After`, inside the function's time budget, and loses nothing: once the proxy passes
//! again, the data is what it was, or has a write whole, never half.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use local_api::{Options, Storage};
use profiles_tests::fault_proxy::{Fault, FaultProxy};
use profiles_tests::{Engine, Runner, json};
use serde_json::Value;

use crate::local_api::{assert_problem, roomy, template_with, yaml};

/// The template's `Timeout` (`FunctionTimeoutSeconds`' default): an answer after it would be
/// Lambda's timeout and API Gateway's bare 502, not ours.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The runner on the repository's template, its engine behind a fault proxy; `cached` caches
/// the authorizer's answers (`Identity.Headers: [Authorization]`), so that once a credential
/// is checked, the functions alone meet the faults.
struct Faulty {
    api: Runner,
    proxy: FaultProxy,
    /// Every line the runner and its functions log.
    log: Arc<Mutex<Vec<String>>>,
    _engine: Engine,
}

impl Faulty {
    async fn start(cached: bool) -> Self {
        let engine = Engine::start().await;
        let proxy = FaultProxy::start(&engine.endpoint).await;
        let template = template_with(|doc| {
            roomy(doc);
            if cached {
                doc["Resources"]["ProfilesApi"]["Properties"]["Auth"]["Authorizers"]["ProfilesAuthorizer"]
                    ["Identity"] =
                    yaml(json!({"Headers": ["Authorization"], "ReauthorizeEvery": 300}));
            }
        });
        let storage = Storage::Endpoint {
            url: proxy.url.clone(),
            table: format!("faults-{}", uuid::Uuid::now_v7().simple()),
        };
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = log.clone();
        let options = Options {
            storage,
            log: Some(Arc::new(move |line: &str| {
                sink.lock().unwrap().push(line.to_owned())
            })),
            ..Default::default()
        };
        let api = Runner::start_with(&template, options).await;
        Self {
            api,
            proxy,
            log,
            _engine: engine,
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Timed {
        let mut request = self.api.http.request(method, self.api.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let started = Instant::now();
        let response = request.send().await.unwrap();
        Timed {
            took: started.elapsed(),
            response,
        }
    }

    async fn get(&self, path: &str) -> Value {
        let r = self.send(reqwest::Method::GET, path, None).await.response;
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    /// A profile, and one call of every function that the faults then meet (warm, so that
    /// no cold start is timed, and the authorizer's answer cached when it caches).
    async fn seeded(&self) -> Value {
        let r = self
            .send(
                reqwest::Method::POST,
                "/profiles",
                Some(json!({"name": "Before"})),
            )
            .await
            .response;
        assert_eq!(r.status(), 201);
        let profile: Value = r.json().await.unwrap();
        let path = format!("/profiles/{}", profile["id"].as_str().unwrap());
        let r = self
            .send(
                reqwest::Method::PATCH,
                &path,
                Some(json!({"title": "Warm"})),
            )
            .await;
        assert_eq!(r.response.status(), 200);
        self.get(&path).await
    }

    /// During `fault`: a read, a patch and a create, sent together. Each is a 503
    /// problem+json with `Retry-After: 1`, answered within `bound`.
    async fn outage(&self, profile: &Value, fault: Fault, bound: Duration) {
        let path = format!("/profiles/{}", profile["id"].as_str().unwrap());
        let seen = self.proxy.requests();
        self.proxy.set(fault);
        let (read, patch, create) = tokio::join!(
            self.send(reqwest::Method::GET, &path, None),
            self.send(
                reqwest::Method::PATCH,
                &path,
                Some(json!({"title": "During"}))
            ),
            self.send(
                reqwest::Method::POST,
                "/profiles",
                Some(json!({"name": "During"}))
            ),
        );
        self.proxy.set(Fault::Pass);
        let mut traces = Vec::new();
        for (what, r) in [("GET", read), ("PATCH", patch), ("POST", create)] {
            traces.push(
                r.response.headers()["x-trace-id"]
                    .to_str()
                    .unwrap()
                    .to_owned(),
            );
            assert!(
                r.took < bound,
                "{fault:?}: {what} took {:?}, over {bound:?}",
                r.took
            );
            assert_eq!(
                r.response.headers()["retry-after"],
                "1",
                "{fault:?}: {what}"
            );
            let body = assert_problem(r.response, 503, "service_unavailable").await;
            assert!(
                !body.to_string().contains("127.0.0.1"),
                "{fault:?}: {what}: the cause stays in the log: {body}"
            );
        }
        if fault != Fault::Refuse {
            assert!(
                self.proxy.requests() > seen,
                "{fault:?}: the engine was asked"
            );
        }
        // The cause is in the request's log line (a function's output reaches the runner's
        // log a moment after its answer).
        for trace in traces {
            let logged = || {
                self.log
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|l| l.contains(&trace) && l.contains(r#""status":503,"cause":"#))
            };
            let deadline = Instant::now() + Duration::from_secs(5);
            while !logged() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(
                logged(),
                "{fault:?}: no log line with the cause for {trace}"
            );
        }
    }

    /// The profile is `before` exactly, and no profile named "During" exists.
    async fn unchanged(&self, before: &Value) {
        let path = format!("/profiles/{}", before["id"].as_str().unwrap());
        assert_eq!(&self.get(&path).await, before, "nothing was written");
        let during = self.get("/profiles?filter[name]=During").await;
        assert_eq!(during["data"], json!([]), "nothing was created");
    }

    /// Each write sent during the outage is there whole or not at all: the profile is
    /// `before` or `before` with the patch (its version one up), and a "During" profile, if
    /// one was made, is whole.
    async fn whole_or_absent(&self, before: &Value) {
        let path = format!("/profiles/{}", before["id"].as_str().unwrap());
        let now = self.get(&path).await;
        if now["version"] == before["version"] {
            assert_eq!(&now, before);
        } else {
            assert_eq!(now["version"], before["version"].as_u64().unwrap() + 1);
            assert_eq!(now["title"], "During");
            assert_eq!(now["name"], before["name"]);
        }
        let during = self.get("/profiles?filter[name]=During").await;
        for listed in during["data"].as_array().unwrap() {
            let got = self
                .get(&format!("/profiles/{}", listed["id"].as_str().unwrap()))
                .await;
            assert_eq!(&got, listed, "a created profile is whole");
            assert_eq!(got["slug"], "during");
        }
    }
}

struct Timed {
    took: Duration,
    response: reqwest::Response,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_refuses_connections_is_a_503_and_nothing_is_written() {
    let f = Faulty::start(true).await;
    let before = f.seeded().await;
    f.outage(&before, Fault::Refuse, Duration::from_secs(5))
        .await;
    f.unchanged(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_never_answers_is_a_503_well_inside_the_functions_timeout() {
    let f = Faulty::start(true).await;
    let before = f.seeded().await;
    // Two attempts of 1.5 s, then the call's 3 s (shared::budget): about 3 s.
    f.outage(&before, Fault::Hang, Duration::from_secs(6)).await;
    assert!(Duration::from_secs(6) < FUNCTION_TIMEOUT);
    f.unchanged(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_engine_is_a_503_with_retry_after() {
    let f = Faulty::start(true).await;
    let before = f.seeded().await;
    f.outage(&before, Fault::Throttle, Duration::from_secs(5))
        .await;
    f.unchanged(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodbs_other_passing_errors_are_503s_too() {
    let f = Faulty::start(true).await;
    let before = f.seeded().await;
    for (status, code) in [
        (400, "ThrottlingException"),
        (400, "RequestLimitExceeded"),
        (500, "InternalServerError"),
    ] {
        f.outage(
            &before,
            Fault::Error { status, code },
            Duration::from_secs(5),
        )
        .await;
    }
    f.unchanged(&before).await;
}

/// Every transaction cancelled because another holds its items, past the retries: a
/// collision that may pass, so a 503, not a 409 or a 500. (Reads pass.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_keep_colliding_are_503s_and_write_nothing() {
    let f = Faulty::start(true).await;
    let before = f.seeded().await;
    let path = format!("/profiles/{}", before["id"].as_str().unwrap());
    f.proxy.set(Fault::ConflictingTransactions);
    let (patch, create, delete) = tokio::join!(
        f.send(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"title": "During"}))
        ),
        f.send(
            reqwest::Method::POST,
            "/profiles",
            Some(json!({"name": "During"}))
        ),
        f.send(reqwest::Method::DELETE, &path, None),
    );
    f.proxy.set(Fault::Pass);
    for r in [patch, create, delete] {
        assert_eq!(r.response.headers()["retry-after"], "1");
        assert_problem(r.response, 503, "service_unavailable").await;
    }
    f.unchanged(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_resets_mid_response_is_a_503_and_writes_are_whole_or_absent() {
    let f = Faulty::start(true).await;
    let before = f.seeded().await;
    f.outage(&before, Fault::ResetMidResponse, Duration::from_secs(5))
        .await;
    f.whole_or_absent(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_slower_than_an_attempt_is_a_503_and_writes_are_whole_or_absent() {
    let f = Faulty::start(true).await;
    let before = f.seeded().await;
    f.outage(
        &before,
        Fault::Slow(Duration::from_millis(2_000)),
        Duration::from_secs(6),
    )
    .await;
    // The engine acts on what it got late, after the caller was told 503.
    tokio::time::sleep(Duration::from_secs(3)).await;
    f.whole_or_absent(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_engine_inside_the_attempt_timeout_is_only_slow() {
    let f = Faulty::start(true).await;
    let before = f.seeded().await;
    let path = format!("/profiles/{}", before["id"].as_str().unwrap());
    f.proxy.set(Fault::Slow(Duration::from_millis(300)));
    let r = f
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"title": "Slow"})),
        )
        .await;
    f.proxy.set(Fault::Pass);
    assert_eq!(r.response.status(), 200);
    assert!(
        r.took >= Duration::from_millis(600),
        "a read and a write, each slowed: {:?}",
        r.took
    );
    assert_eq!(f.get(&path).await["title"], "Slow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorizer_that_cannot_reach_the_table_is_a_503_never_a_401() {
    // Uncached, as the template ships: every request runs the authorizer, which reads the
    // API key's record through the proxy.
    let f = Faulty::start(false).await;
    let before = f.seeded().await;
    let path = format!("/profiles/{}", before["id"].as_str().unwrap());
    let runs = || f.api.server.pools["GetProfileFunction"].invocations();
    let function_runs = runs();
    for (fault, bound) in [
        (Fault::Throttle, Duration::from_secs(5)),
        (Fault::Refuse, Duration::from_secs(5)),
        (Fault::Hang, Duration::from_secs(6)),
    ] {
        f.proxy.set(fault);
        let r = f.send(reqwest::Method::GET, &path, None).await;
        f.proxy.set(Fault::Pass);
        assert!(r.took < bound, "{fault:?}: {:?}", r.took);
        assert_eq!(r.response.headers()["retry-after"], "1", "{fault:?}");
        // The template's AUTHORIZER_FAILURE gateway response, as the runner renders it.
        let body = assert_problem(r.response, 503, "service_unavailable").await;
        assert!(body["detail"].as_str().unwrap().contains("credential"));
    }
    assert_eq!(runs(), function_runs, "no request got past the gateway");
    assert_eq!(
        f.get(&path).await,
        before,
        "and the key works again at once"
    );
}

/// The crash the idempotency record is for: a create commits, its answer is lost on the way
/// back (the connection reset after the transaction was sent), the caller gets a 503 and
/// retries with its key. Exactly one profile, and the retry gets the first answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_then_retried_with_its_key_makes_exactly_one() {
    let f = Faulty::start(true).await;
    let holder = f.seeded().await;
    let holder_path = format!("/profiles/{}/contacts", holder["id"].as_str().unwrap());
    let post = |path: &str, key: &str, body: Value| {
        f.api
            .http
            .post(f.api.url(path))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    for (path, body, key) in [
        ("/profiles", json!({"name": "Exactly once"}), "lost-1"),
        (
            holder_path.as_str(),
            json!({"key": "email", "value": "once@example.com"}),
            "lost-2",
        ),
    ] {
        f.proxy.set(Fault::ResetTransactions);
        let r = post(path, key, body.clone()).await.unwrap();
        f.proxy.set(Fault::Pass);
        assert_eq!(r.status(), 503, "{path}: the answer was lost");
        let r = post(path, key, body.clone()).await.unwrap();
        assert_eq!(r.status(), 201, "{path}");
        assert_eq!(
            r.headers()["idempotent-replayed"],
            "true",
            "{path}: the write had committed"
        );
        let replayed: Value = r.json().await.unwrap();
        let listed = if path == "/profiles" {
            f.get("/profiles?filter[name]=Exactly%20once").await["data"].clone()
        } else {
            f.get(path).await["data"].clone()
        };
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), 1, "{path}: exactly one");
        assert_eq!(listed[0]["id"], replayed["id"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_whose_reads_stay_unprocessed_is_a_503_in_budget_and_lists_again_after() {
    let f = Faulty::start(true).await;
    let before = f.seeded().await;
    let listed = f.get("/profiles").await;
    assert_eq!(listed["data"][0]["id"], before["id"]);
    f.proxy.set(Fault::UnprocessedReads);
    let r = f.send(reqwest::Method::GET, "/profiles", None).await;
    f.proxy.set(Fault::Pass);
    assert!(r.took < FUNCTION_TIMEOUT, "answered after {:?}", r.took);
    assert_eq!(r.response.headers()["retry-after"], "1");
    assert_problem(r.response, 503, "service_unavailable").await;
    assert_eq!(f.get("/profiles").await, listed);
}
