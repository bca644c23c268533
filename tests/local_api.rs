//! The local API (`cargo run -p local-api`) over real HTTP: routes from the template,
//! events as API Gateway builds them, answers as API Gateway returns them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use local_api::template::Template;
use local_api::{Server, Storage};
use profiles_tests::{json, repo_path};
use serde_json::Value;

struct Running {
    url: String,
    http: reqwest::Client,
}

async fn start() -> Running {
    let template = Template::load(&repo_path("template.yaml")).unwrap();
    let (server, created) = Server::start(&template, &Storage::Memory).await.unwrap();
    assert!(created, "a new store gets the template's table");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(Arc::new(server).serve(listener, std::future::pending()));
    Running {
        url,
        http: reqwest::Client::new(),
    }
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
    let r = api
        .http
        .get(format!("{}/profiles?limit=100", api.url))
        .send()
        .await
        .unwrap();
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 50);
}
