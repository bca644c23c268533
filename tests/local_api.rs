//! The local runner (`cargo run -p local-api`) over real HTTP: routes from the template, the
//! functions' own binaries under the Lambda Runtime API, answers as API Gateway returns them,
//! and what happens when a function crashes, errors, hangs or fails init.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::{Duration, Instant};

use local_api::Storage;
use local_api::template::Template;
use profiles_tests::{Runner, json, repo_path};
use serde_json::Value;

async fn start() -> Runner {
    Runner::start_default().await
}

/// `template.yaml` plus misbehaving functions (`tests/fault_function.rs`): `/fault/{name}`
/// with a 1 s function timeout, `/slow/{name}` behind a 500 ms integration timeout, and two
/// functions whose init fails.
fn fault_template() -> Template {
    let text = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let function = |path: &str, method: &str, extra: serde_yaml::Value| -> serde_yaml::Value {
        let mut events = serde_yaml::Mapping::new();
        events.insert(
            "Route".into(),
            serde_yaml::to_value(
                json!({"Type": "Api", "Properties": {"Path": path, "Method": method}}),
            )
            .unwrap(),
        );
        let mut f: serde_yaml::Value = serde_yaml::to_value(json!({
            "Type": "AWS::Serverless::Function",
            "Metadata": {"BuildMethod": "rust-cargolambda", "BuildProperties": {"Binary": "fault-function"}},
            "Properties": {"CodeUri": ".", "Timeout": 1},
        }))
        .unwrap();
        f["Properties"]["Events"] = serde_yaml::Value::Mapping(events);
        if let serde_yaml::Value::Mapping(m) = extra {
            for (k, v) in m {
                f["Properties"][k.as_str().unwrap()] = v;
            }
        }
        f
    };
    let none = serde_yaml::Value::Null;
    let r = &mut doc["Resources"];
    r["FaultFunction"] = function("/fault/{name}", "any", none.clone());
    let mut slow = function("/slow/{name}", "get", none);
    slow["Properties"]["Events"]["Route"]["Properties"]["TimeoutInMillis"] = 500.into();
    slow["Properties"]["Timeout"] = 5.into();
    r["SlowFunction"] = slow;
    for (id, mode) in [
        ("InitExitFunction", "exit"),
        ("InitReportFunction", "report"),
    ] {
        let env = serde_yaml::to_value(json!({"Environment": {"Variables": {"FAULT_INIT": mode}}}))
            .unwrap();
        r[id] = function(&format!("/init-{mode}"), "get", env);
    }
    let path = std::env::temp_dir().join(format!("fault-template-{}.yaml", uuid::Uuid::now_v7()));
    std::fs::write(&path, serde_yaml::to_string(&doc).unwrap()).unwrap();
    let template = Template::load(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    template
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
        format!("/profiles/{}", created["id"].as_str().unwrap())
    );

    let r = api
        .http
        .post(u("/profiles/create"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "the alias route");

    let r = api.http.get(u(&location)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["slug"], "acme-corp");

    let r = api
        .http
        .patch(u(&location))
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
        .put(u(&location))
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
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["data"][0]["name"], "Replaced");
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
        .post(u(&contacts))
        .json(&json!({"key": "phone", "value": "+1 415 555 2671"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["etag"], "\"1\"");
    let contact = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(contact.starts_with(&format!("{contacts}/")));
    assert_eq!(r.json::<Value>().await.unwrap()["value"], "+14155552671");
    let r = api.http.get(u(&contact)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = api
        .http
        .patch(u(&contact))
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"external_id": "crm-1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = api
        .http
        .put(u(&contact))
        .json(&json!({"key": "email", "value": "a@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "\"3\"");
    let r = api.http.get(u(&contacts)).send().await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = api.http.delete(u(&contact)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = api.http.get(u(&contact)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    let r = api.http.delete(u(&location)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = api.http.delete(u(&location)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let trace = r.headers()["x-trace-id"].to_str().unwrap().to_owned();
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["trace_id"], trace.as_str());
}

#[tokio::test]
async fn a_request_with_no_route_answers_403_like_api_gateway() {
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
        assert_eq!(r.status(), 403, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body, json!({"message": "Missing Authentication Token"}));
    }
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
async fn data_in_the_state_file_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("profiles-state-{}", uuid::Uuid::now_v7()));
    let file = dir.join("profiles.db");
    let template = Template::load(&repo_path("template.yaml")).unwrap();
    let api = Runner::start(&template, Storage::File(file.clone()), 2).await;
    assert!(api.server.created_table);
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

    let api = Runner::start(&template, Storage::File(file), 2).await;
    assert!(!api.server.created_table, "the table is kept");
    let r = api.http.get(api.url(&location)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "Kept");
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
    assert!(api.server.created_table);
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

/// The README's curl session, run as written (`sh -e`) against a runner started here: the
/// only change is the base URL.
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
    assert!(script.contains("API=http://localhost:3000"));
    let api = start().await;
    let script = script.replace("API=http://localhost:3000", &format!("API={}", api.url));
    let out = tokio::process::Command::new("sh")
        .args(["-e", "-c", &script])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The create's body goes to stderr (its Location is captured); the rest to stdout.
    let created: Value = serde_json::from_str(stderr.trim()).unwrap();
    assert_eq!(created["name"], "Mary Smith");
    assert_eq!(created["headline"], "CTO at Acme");
    assert_eq!(created["contacts"][0]["value"], "mary@example.com");
    let lines: Vec<&str> = stdout.lines().collect();
    let read: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(read["id"], created["id"]);
    let patched: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(patched["title"], "CEO");
    assert_eq!(patched["last_name"], Value::Null);
    let contact: Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(contact["value"], "+14155552671");
    let contacts: Value = serde_json::from_str(lines[3]).unwrap();
    assert_eq!(contacts["data"].as_array().unwrap().len(), 2);
    let page: Value = serde_json::from_str(lines[4]).unwrap();
    assert_eq!(page["data"][0]["id"], created["id"]);
    assert_eq!(&lines[5..], ["204", "404"]);
}
