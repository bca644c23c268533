//! The local runner (`cargo run -p local-api`) over real HTTP: routes from the template, answers
//! as API Gateway returns them, bodies over its limit, the API mounted under its stage or at
//! the root, and the README's curl session; and the helpers the runner's tests share (the
//! template edited, the fault functions of `tests/fault_function.rs`, problem answers, JWTs).
//!
//! The rest of the runner's tests, by area: `runner_template` (the template as the runner
//! reads it), `runner_faults` (crashes, errors, init failures, timeouts), `runner_auth` (the
//! authorizer, its cache, the throttle, tenants, JWT parameters and the log) and
//! `runner_state` (the state directory, another engine, stopping).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use local_api::template::Template;
use local_api::{Options, Storage};
use profiles_tests::{Runner, json, repo_path};
use serde_json::Value;

/// `v` as YAML, for a template's parts.
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
pub(crate) async fn start() -> Runner {
    Runner::start(&template_with(roomy), Storage::Memory, 4).await
}

/// `template.yaml` plus misbehaving functions (`tests/fault_function.rs`): `/fault/{name}`
/// with a 1 s function timeout, `/slow/{name}` behind a 500 ms integration timeout, and two
/// functions whose init fails; all on SAM's implicit API, with no authorizer.
pub(crate) fn fault_template() -> Template {
    template_with(add_faults)
}

/// A fault function with one `Api` event on `path` and `method`, and `extra` properties.
pub(crate) fn fault_function(
    path: &str,
    method: &str,
    extra: yaml_serde::Value,
) -> yaml_serde::Value {
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

/// Adds the fault functions of [`fault_template`] to a template.
pub(crate) fn add_faults(doc: &mut yaml_serde::Value) {
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

/// The runner on [`fault_template`], in memory.
pub(crate) async fn start_faulty() -> Runner {
    Runner::start(&fault_template(), Storage::Memory, 4).await
}

/// The process id the fault function answers `ok` with: which instance served.
pub(crate) async fn pid(api: &Runner) -> u64 {
    let r = api.http.get(api.url("/fault/ok")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["pid"].as_u64().unwrap()
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

/// Fifty `POST /profiles` at once, the i-th named `name(i)`: their statuses.
async fn fifty_parallel_creates(api: &Arc<Runner>, name: fn(usize) -> String) -> Vec<u16> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let api = api.clone();
        tasks.spawn(async move {
            let r = api
                .http
                .post(api.url("/profiles"))
                .json(&json!({"name": name(i)}))
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        });
    }
    tasks.join_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_requests_all_succeed() {
    let api = Arc::new(start().await);
    let statuses = fifty_parallel_creates(&api, |i| format!("Parallel {}", i % 5)).await;
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

/// The runner's lines, as a log sink collects them.
type Lines = Arc<std::sync::Mutex<Vec<String>>>;

/// Options for at most `concurrency` instances per function with one parameter overridden,
/// and the lines the runner says, collected.
fn said_with(concurrency: usize, (name, value): (&str, &str)) -> (Options, Lines) {
    let lines: Lines = Arc::default();
    let sink = lines.clone();
    let options = Options {
        concurrency,
        parameter_overrides: vec![(name.to_owned(), value.to_owned())],
        log: Some(Arc::new(move |line: &str| {
            sink.lock().unwrap().push(line.to_owned())
        })),
        ..Default::default()
    };
    (options, lines)
}

/// A function's reserved concurrency caps its instances below `--concurrency`, and the runner
/// says so: with `WriterReservedConcurrency=2`, fifty parallel creates are all answered by at
/// most two instances of create-profile. A reservation of 0 (Lambda's "throttle every
/// invocation") is refused at start, naming the parameter, rather than run as one instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserved_concurrency_caps_the_instances_under_load() {
    let (options, lines) = said_with(4, ("WriterReservedConcurrency", "2"));
    let api = Arc::new(Runner::start_with(&template_with(roomy), options).await);
    let statuses = fifty_parallel_creates(&api, |i| format!("Capped {i}")).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let started = api.instances("CreateProfileFunction");
    assert!(
        (1..=2).contains(&started),
        "at most the reserved concurrency, under --concurrency 4: {started}"
    );
    let said = lines.lock().unwrap().clone();
    assert!(
        said.iter().any(|l| l.contains(
            "CreateProfileFunction: at most 2 instances, its reserved concurrency \
             (parameter WriterReservedConcurrency)"
        )),
        "{said:?}"
    );

    let zero = Options {
        parameter_overrides: vec![("WriterReservedConcurrency".into(), "0".into())],
        binaries: profiles_tests::binaries().clone(),
        ..Default::default()
    };
    let refused = local_api::Server::start(&template_with(roomy), zero).await;
    let err = refused
        .err()
        .expect("a reserved concurrency of 0 is refused");
    let err = err.to_string();
    assert!(
        err.contains("is 0 (parameter WriterReservedConcurrency)")
            && err.contains("throttle every invocation"),
        "{err}"
    );
}

/// A reader's provisioned concurrency is ready before the runner takes requests, as Lambda
/// readies it before the alias takes traffic: with `ReadProvisionedConcurrency=2`, two
/// instances of get-profile have finished init when the start returns, and the first request
/// runs on one of them, warm (no instance started for it, no init in its line). A provisioned
/// concurrency over the function's instance limit is capped at it, and the log says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioned_instances_are_ready_before_the_first_request() {
    let (options, lines) = said_with(3, ("ReadProvisionedConcurrency", "2"));
    let api = Runner::start_with(&template_with(roomy), options).await;
    assert_eq!(api.instances("GetProfileFunction"), 2);
    assert_eq!(api.instances("ListContactsFunction"), 2);
    assert_eq!(api.instances("CreateProfileFunction"), 0, "not provisioned");
    let r = api
        .http
        .get(format!("{}/profiles/{}", api.url, uuid::Uuid::now_v7()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        api.instances("GetProfileFunction"),
        2,
        "no instance started"
    );
    let said = lines.lock().unwrap().clone();
    assert!(
        said.iter()
            .any(|l| l.contains("GetProfileFunction: provisioned concurrency 2, initialised")),
        "{said:?}"
    );
    let served = said
        .iter()
        .find(|l| l.contains("→ GetProfileFunction 404"))
        .unwrap_or_else(|| panic!("no line for the request: {said:?}"));
    assert!(
        served.contains("warm #1") || served.contains("warm #2"),
        "served warm by a provisioned instance: {served}"
    );

    let (over, lines) = said_with(1, ("ReadProvisionedConcurrency", "5"));
    let api = Runner::start_with(&template_with(roomy), over).await;
    assert_eq!(api.instances("GetContactFunction"), 1);
    let said = lines.lock().unwrap().clone();
    assert!(
        said.iter().any(|l| l.contains(
            "GetContactFunction: provisioned concurrency 1 (of 5: its instance limit), initialised"
        )),
        "{said:?}"
    );
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
