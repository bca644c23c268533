//! Change events (docs/events.md) through the local runner and real HTTP: the table's stream
//! read as Lambda's event source mapping reads it, publish-events' own binary, the embedded
//! bus and the webhook's API destination, POSTing to a receiver in the test. And the
//! publisher's failure paths (the bus down, slow, throttling, refusing entries) with the
//! fault proxy between it and the bus, on `events/publish-events.json`, a real stream batch.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use local_api::receiver::{Received, Receiver};
use local_api::{Options, Storage};
use profiles_tests::fault_proxy::{Fault, FaultProxy};
use profiles_tests::openapi::check_schema;
use profiles_tests::{Runner, config_for, json, repo_path};
use serde_json::Value;

use crate::local_api::{roomy, template_with, yaml};

/// The webhook's secret in these tests.
const SECRET: &str = "events-test-secret-0123456789abcdef";

/// How long the whole path may take before a test calls an event missing.
const PATIENCE: Duration = Duration::from_secs(30);

/// A fresh state directory.
fn state_dir() -> PathBuf {
    std::env::temp_dir().join(format!("profiles-events-{}", uuid::Uuid::now_v7()))
}

/// The runner on the repository's template (throttle lifted, `edit` applied), its webhook
/// posting to `hook` with `more` parameters, its files in `dir`.
async fn runner_with_webhook(
    hook: &Receiver,
    dir: &Path,
    more: &[(&str, &str)],
    edit: impl FnOnce(&mut yaml_serde::Value),
) -> Runner {
    let template = template_with(|doc| {
        roomy(doc);
        edit(doc);
    });
    let mut parameter_overrides = vec![
        ("WebhookUrl".to_owned(), hook.url.clone()),
        ("WebhookSecret".to_owned(), SECRET.to_owned()),
    ];
    parameter_overrides.extend(more.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let options = Options {
        storage: Storage::Memory,
        concurrency: 2,
        parameter_overrides,
        state_dir: Some(dir.to_owned()),
        ..Options::default()
    };
    Runner::start_with(&template, options).await
}

/// The lines of a JSON-lines file of the state directory (none when it is missing).
fn lines(dir: &Path, name: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The types of the events received, in order.
fn types(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.body["type"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// Waits until `hook` has taken `n` requests; fails with what it has otherwise.
async fn wait_for(hook: &Receiver, n: usize) -> Vec<Received> {
    let (received, enough) = hook.wait_until(PATIENCE, |r| r.len() >= n).await;
    assert!(enough, "{n} events expected, got {:?}", types(&received));
    received
}

/// Sends `body` with `method` to `path` as the development key; the answer's status and body.
async fn send(runner: &Runner, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = runner.http.request(method.clone(), runner.url(path));
    if let Some(body) = body {
        let media = match method {
            reqwest::Method::PATCH => "application/merge-patch+json",
            _ => "application/json",
        };
        request = request.header("content-type", media).body(body.to_string());
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_change_arrives_once_in_order_with_previous_values_and_replays_and_no_ops_make_none() {
    let hook = Receiver::start().await.unwrap();
    let dir = state_dir();
    let runner = runner_with_webhook(&hook, &dir, &[], |_| {}).await;

    // A create, and the same create again as a client retries it: one profile, one event.
    let create = || {
        runner
            .http
            .post(runner.url("/profiles"))
            .header("content-type", "application/json")
            .header("Idempotency-Key", "events-create-1")
            .body(json!({"name": "Mary Smith"}).to_string())
            .send()
    };
    let first = create().await.unwrap();
    assert_eq!(first.status(), 201);
    let profile: Value = first.json().await.unwrap();
    let id = profile["id"].as_str().unwrap().to_owned();
    let replayed = create().await.unwrap();
    assert_eq!(replayed.status(), 201);
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");

    let path = format!("/profiles/{id}");
    let (status, renamed) =
        send(&runner, "PATCH", &path, Some(json!({"name": "Mary Jones"}))).await;
    assert_eq!(status, 200, "{renamed}");
    // The same value again: a write that changes nothing the API shows.
    let (status, _) = send(&runner, "PATCH", &path, Some(json!({"name": "Mary Jones"}))).await;
    assert_eq!(status, 200);

    let contacts = format!("{path}/contacts");
    let (status, contact) = send(
        &runner,
        "POST",
        &contacts,
        Some(json!({"key": "email", "value": "mary@example.com"})),
    )
    .await;
    assert_eq!(status, 201, "{contact}");
    let contact_path = format!("{contacts}/{}", contact["id"].as_str().unwrap());
    let (status, _) = send(
        &runner,
        "PATCH",
        &contact_path,
        Some(json!({"value": "mary.jones@example.com"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(send(&runner, "DELETE", &contact_path, None).await.0, 204);
    assert_eq!(send(&runner, "DELETE", &path, None).await.0, 204);

    wait_for(&hook, 6).await;
    // A moment more (four reads of the stream), for anything that should not come: a
    // duplicate, a replay's or a no-op's event.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = &hook.received();
    assert_eq!(
        types(received),
        [
            "profile.created",
            "profile.updated",
            "contact.created",
            "contact.updated",
            "contact.deleted",
            "profile.deleted"
        ]
    );
    let events: Vec<&Value> = received.iter().map(|r| &r.body).collect();
    for (r, event) in received.iter().zip(&events) {
        check_schema("ChangeEvent", event).unwrap();
        assert_eq!(r.header("x-profiles-webhook-secret"), Some(SECRET));
        assert_eq!(
            r.header("content-type"),
            Some("application/cloudevents+json; charset=utf-8")
        );
        assert_eq!(event["subject"], id.as_str());
        assert_eq!(event["tenantid"], "default");
        assert_eq!(event["source"], "profiles-api/profiles-local");
        let text = event.to_string();
        assert!(
            !text.contains(runner.key()) && !text.to_lowercase().contains("bearer"),
            "an event carries a credential: {text}"
        );
    }
    let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 6, "event ids are unique");
    let sequences: Vec<&str> = events
        .iter()
        .map(|e| e["sequence"].as_str().unwrap())
        .collect();
    assert!(
        sequences.is_sorted(),
        "delivered in stream order: {sequences:?}"
    );

    assert_eq!(events[0]["data"]["object"]["name"], "Mary Smith");
    assert_eq!(events[1]["data"]["object"]["name"], "Mary Jones");
    assert_eq!(
        events[1]["data"]["previous_attributes"]["name"],
        "Mary Smith"
    );
    assert_eq!(events[1]["data"]["version"], renamed["version"]);
    assert_eq!(events[2]["data"]["object"]["profile_id"], id.as_str());
    assert_eq!(
        events[3]["data"]["previous_attributes"]["value"],
        "mary@example.com"
    );
    assert_eq!(
        events[3]["data"]["object"]["value"],
        "mary.jones@example.com"
    );
    assert_eq!(
        events[4]["data"]["object"]["value"],
        "mary.jones@example.com"
    );
    // A deletion carries the last state.
    assert_eq!(events[5]["data"]["object"]["name"], "Mary Jones");

    // The bus took these six and nothing else (index, guard, idempotency items make none).
    let logged = lines(&dir, shared::localstate::EVENTS_LOG);
    let logged: Vec<&Value> = logged.iter().map(|e| &e["detail"]).collect();
    assert_eq!(logged, events);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_filtered_on_tenant_and_types_gets_only_those_events() {
    let hook = Receiver::start().await.unwrap();
    let dir = state_dir();
    let runner = runner_with_webhook(
        &hook,
        &dir,
        &[
            ("WebhookTenant", "tenant-b"),
            ("WebhookEventTypes", "profile.created,profile.deleted"),
        ],
        |_| {},
    )
    .await;
    let tenant_b = profiles_tests::client_with_key(
        &runner
            .create_key("tenant-b", "bea", shared::auth::Scopes::all())
            .await,
    );

    // The default tenant's create first: delivered in order, it would come before B's.
    assert_eq!(
        send(
            &runner,
            "POST",
            "/profiles",
            Some(json!({"name": "Other Tenant"}))
        )
        .await
        .0,
        201
    );
    let created = tenant_b
        .post(runner.url("/profiles"))
        .header("content-type", "application/json")
        .body(json!({"name": "Bea"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = runner.url(&format!("/profiles/{id}"));
    let patched = tenant_b
        .patch(&url)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"name": "Bea B"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    assert_eq!(tenant_b.delete(&url).send().await.unwrap().status(), 204);

    let received = wait_for(&hook, 2).await;
    assert_eq!(types(&received), ["profile.created", "profile.deleted"]);
    assert!(received.iter().all(|r| r.body["tenantid"] == "tenant-b"));
    assert!(received.iter().all(|r| r.body["subject"] == id.as_str()));
    // The bus took all four; the rule passed two.
    let logged = lines(&dir, shared::localstate::EVENTS_LOG);
    let tenants: Vec<&str> = logged
        .iter()
        .map(|e| e["detail"]["tenantid"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["default", "tenant-b", "tenant-b", "tenant-b"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_that_cannot_be_published_is_retried_then_dead_lettered_and_holds_up_no_other() {
    let hook = Receiver::start().await.unwrap();
    let dir = state_dir();
    let runner = runner_with_webhook(&hook, &dir, &[], |doc| {
        let stream = &mut doc["Resources"]["PublishEventsFunction"]["Properties"]["Events"]
            ["TableStream"]["Properties"];
        stream["MaximumRetryAttempts"] = yaml(json!(2));
    })
    .await;

    let before = send(
        &runner,
        "POST",
        "/profiles",
        Some(json!({"name": "Before"})),
    )
    .await;
    assert_eq!(before.0, 201);
    // A profile item the API never wrote (no attribute but its keys): no event can be made
    // of it, and publish-events answers it as the batch's failure at every delivery.
    let poison = uuid::Uuid::now_v7();
    let config = config_for(&runner.server.engine.endpoint, &runner.server.engine.table);
    shared::store::dynamodb_client(&config)
        .put_item()
        .table_name(&runner.server.engine.table)
        .item("PK", AttributeValue::S(format!("T#default#P#{poison}")))
        .item("SK", AttributeValue::S("PROFILE".into()))
        .send()
        .await
        .unwrap();
    let after = send(&runner, "POST", "/profiles", Some(json!({"name": "After"}))).await;
    assert_eq!(after.0, 201);

    wait_for(&hook, 2).await;
    let failures = {
        let started = Instant::now();
        loop {
            let failures = lines(&dir, shared::localstate::STREAM_FAILURES);
            if !failures.is_empty() || started.elapsed() > PATIENCE {
                break failures;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = hook.received();
    let subjects: Vec<&str> = received
        .iter()
        .map(|r| r.body["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        [
            before.1["id"].as_str().unwrap(),
            after.1["id"].as_str().unwrap()
        ],
        "each good record published once, in order"
    );
    // Retried (the first delivery and two retries), then the poison record alone went to
    // the on-failure destination.
    assert_eq!(failures.len(), 1, "{failures:?}");
    let info = &failures[0]["DDBStreamBatchInfo"];
    assert_eq!(info["batchSize"], 1, "{info}");
    assert_eq!(info["startSequenceNumber"], info["endSequenceNumber"]);
    assert_eq!(failures[0]["requestContext"]["approximateInvokeCount"], 3);
    assert!(
        failures[0]["requestContext"]["functionArn"]
            .as_str()
            .unwrap()
            .ends_with(":function:PublishEventsFunction")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The stream batch of `events/publish-events.json`: a profile's create, rename and delete.
fn batch() -> Value {
    let text = std::fs::read_to_string(repo_path("events/publish-events.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The bus publish-events would be given, reached through `proxy`.
fn bus_through(proxy: &FaultProxy) -> shared::bus::Bus {
    let config = shared::config::Config::from_lookup(|k| match k {
        shared::config::env::TABLE_NAME => Some("profiles".to_owned()),
        shared::config::env::EVENT_BUS_NAME => Some("profiles-local-profiles".to_owned()),
        shared::config::env::EVENTBRIDGE_ENDPOINT => Some(proxy.url.clone()),
        _ => None,
    })
    .unwrap();
    shared::bus::Bus::from_config(&config).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_publisher_fails_the_batch_while_the_bus_fails_and_publishes_it_once_the_bus_is_back() {
    let hook = Receiver::start().await.unwrap();
    let dir = state_dir();
    let runner = runner_with_webhook(&hook, &dir, &[], |_| {}).await;
    let endpoint = &runner.server.bus.as_ref().unwrap().endpoint;
    let proxy = FaultProxy::start(endpoint).await;
    let bus = bus_through(&proxy);
    let batch = batch();
    let first = batch["Records"][0]["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    let source = "profiles-api/profiles-local";

    for fault in [
        Fault::Refuse,
        Fault::Hang,
        Fault::Error {
            status: 400,
            code: "ThrottlingException",
        },
        Fault::Error {
            status: 500,
            code: "InternalException",
        },
        Fault::FailedEntries,
    ] {
        proxy.set(fault);
        let seen = proxy.requests();
        let started = Instant::now();
        let answer = shared::events::publish(&bus, source, &batch).await;
        let took = started.elapsed();
        // The batch's first record failed: the invocation fails (Lambda splits the batch).
        let failed = answer.expect_err("the bus is failing");
        assert_eq!(failed.sequence, first, "{fault:?}");
        // Inside the function's time budget (10 s by default): Lambda never times it out.
        assert!(took < Duration::from_secs(10), "{fault:?} took {took:?}");
        if matches!(fault, Fault::Error { .. } | Fault::FailedEntries) {
            assert!(proxy.requests() > seen + 1, "{fault:?} is tried again");
        }
        assert!(
            lines(&dir, shared::localstate::EVENTS_LOG).is_empty(),
            "{fault:?}: the bus took nothing"
        );
    }

    // The bus back: the same batch (as Lambda delivers it again) publishes all of it.
    proxy.set(Fault::Pass);
    let answer = shared::events::publish(&bus, source, &batch).await.unwrap();
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let received = wait_for(&hook, 3).await;
    assert_eq!(
        types(&received),
        ["profile.created", "profile.updated", "profile.deleted"]
    );
    for r in &received {
        check_schema("ChangeEvent", &r.body).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_that_makes_no_event_is_the_batchs_item_failure_or_fails_the_batch_when_first() {
    let hook = Receiver::start().await.unwrap();
    let dir = state_dir();
    let runner = runner_with_webhook(&hook, &dir, &[], |_| {}).await;
    let endpoint = &runner.server.bus.as_ref().unwrap().endpoint;
    let proxy = FaultProxy::start(endpoint).await;
    let bus = bus_through(&proxy);
    let source = "profiles-api/profiles-local";
    let good = batch()["Records"].as_array().unwrap().clone();
    // A profile image with nothing but its keys: the API never writes one.
    let mut poison = good[1].clone();
    poison["dynamodb"]["NewImage"] = poison["dynamodb"]["Keys"].clone();
    poison["dynamodb"]["SequenceNumber"] = json!("100000000000000000009");

    // After a record that was published: that one is done, the rest delivered again.
    let answer = shared::events::publish(
        &bus,
        source,
        &json!({"Records": [good[0], poison, good[2]]}),
    )
    .await
    .unwrap();
    assert_eq!(
        serde_json::to_value(answer).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "100000000000000000009"}]})
    );
    let received = wait_for(&hook, 1).await;
    assert_eq!(types(&received), ["profile.created"]);

    // After records that make no event (another item of the table): that one is done too,
    // so the bad record is the batch's item failure, not the invocation's.
    let mut guard = good[0].clone();
    guard["dynamodb"]["Keys"]["SK"] = json!({"S": "GUARD#slug#mary-smith"});
    guard["dynamodb"]["SequenceNumber"] = json!("100000000000000000008");
    let answer = shared::events::publish(&bus, source, &json!({"Records": [guard, poison]}))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(answer).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "100000000000000000009"}]})
    );

    // First in its batch: the invocation fails, and nothing after it is put.
    let failed = shared::events::publish(&bus, source, &json!({"Records": [poison, good[2]]}))
        .await
        .expect_err("a batch that starts with a record that makes no event");
    assert_eq!(failed.sequence, "100000000000000000009");
    assert_eq!(lines(&dir, shared::localstate::EVENTS_LOG).len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_runner_refuses_to_start_with_a_webhook_it_cannot_post_to() {
    let template = template_with(roomy)
        .with_parameter_overrides(&[
            (
                "WebhookUrl".to_owned(),
                "https://hooks.example.com/profiles".to_owned(),
            ),
            ("WebhookSecret".to_owned(), SECRET.to_owned()),
        ])
        .unwrap();
    let quiet: local_api::runtime::LogSink = std::sync::Arc::new(|_: &str| {});
    let refused = local_api::bus::LocalBus::start(&template, "us-east-1", None, quiet).await;
    let message = refused
        .err()
        .expect("an https:// webhook is refused")
        .to_string();
    assert!(message.contains("http:// URLs only"), "{message}");
}
