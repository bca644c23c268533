//! CORS through the runner, as a browser meets it (docs/browser.md): off by default; with
//! `CorsAllowedOrigins` set, a preflight on every path answered without the authorizer, and
//! every answer (the functions' and the gateway's own) readable by an allowed origin only.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use local_api::Options;
use profiles_tests::{Event, Runner, json, repo_path};
use reqwest::Method;
use serde_json::Value;

use crate::local_api::{roomy, template_with};

const APP: &str = "http://app.test:5173";
const OTHER_APP: &str = "https://admin.example";
const FOREIGN: &str = "https://evil.example";

/// The runner on the repository's template with `CorsAllowedOrigins` set to `origins`.
async fn with_origins(origins: &str) -> Runner {
    let options = Options {
        parameter_overrides: vec![("CorsAllowedOrigins".into(), origins.into())],
        ..Default::default()
    };
    Runner::start_with(&template_with(roomy), options).await
}

fn header<'r>(r: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

/// A browser's preflight of a PATCH with the headers a client sends.
async fn preflight(api: &Runner, path: &str, origin: &str) -> reqwest::Response {
    api.anonymous
        .request(Method::OPTIONS, api.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "PATCH")
        .header(
            "access-control-request-headers",
            "authorization,content-type,if-match",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_by_default_no_preflight_route_and_no_allow_header() {
    let api = Runner::start(&template_with(roomy), local_api::Storage::Memory, 2).await;
    assert!(
        !api.server.pools.contains_key("CorsPreflightFunction"),
        "the preflight function is not made without CorsAllowedOrigins"
    );
    let r = preflight(&api, "/profiles", APP).await;
    assert_eq!(r.status(), 404, "no OPTIONS route: the gateway's 404");
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    let r = api
        .http
        .post(api.url("/profiles"))
        .header("origin", APP)
        .json(&json!({"name": "No CORS"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for name in [
        "access-control-allow-origin",
        "access-control-expose-headers",
        "vary",
    ] {
        assert_eq!(header(&r, name), None, "{name} with CORS off");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preflight_from_an_allowed_origin_is_a_204_on_every_path_without_the_authorizer() {
    let api = with_origins(&format!("{APP},{OTHER_APP}")).await;
    let id = uuid::Uuid::now_v7();
    let contact = uuid::Uuid::now_v7();
    for path in [
        "/profiles".to_owned(),
        "/profiles/create".to_owned(),
        "/profiles/all".to_owned(),
        "/profiles/me".to_owned(),
        format!("/profiles/{id}"),
        format!("/profiles/{id}/contacts"),
        format!("/profiles/{id}/contacts/{contact}"),
        format!("/profiles/{id}/photo"),
    ] {
        let r = preflight(&api, &path, APP).await;
        assert_eq!(r.status(), 204, "{path}");
        assert_eq!(
            header(&r, "access-control-allow-origin"),
            Some(APP),
            "{path}"
        );
        let methods = header(&r, "access-control-allow-methods").unwrap();
        assert!(
            methods.contains("PATCH") && methods.contains("DELETE"),
            "{methods}"
        );
        let allowed = header(&r, "access-control-allow-headers").unwrap();
        for name in [
            "Authorization",
            "Content-Type",
            "If-Match",
            "If-None-Match",
            "Idempotency-Key",
            "Prefer",
            "x-api-key",
        ] {
            assert!(allowed.contains(name), "{name} in {allowed}");
        }
        assert_eq!(header(&r, "access-control-max-age"), Some("7200"));
        assert!(header(&r, "vary").unwrap().contains("Origin"));
    }
    let r = preflight(&api, "/profiles", OTHER_APP).await;
    assert_eq!(header(&r, "access-control-allow-origin"), Some(OTHER_APP));
    assert_eq!(
        api.server.pools["AuthorizerFunction"].invocations(),
        0,
        "a preflight carries no credential and never meets the authorizer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preflight_from_an_origin_not_listed_gets_no_allow_header() {
    let api = with_origins(APP).await;
    let r = preflight(&api, "/profiles", FOREIGN).await;
    assert_eq!(r.status(), 403);
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    assert_eq!(header(&r, "access-control-allow-methods"), None);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "origin_not_allowed");
    // The origin must match exactly: a longer host or another scheme is another origin.
    for near in [
        "http://app.test:5173.evil.example",
        "https://app.test:5173",
        "http://app.test",
    ] {
        let r = preflight(&api, "/profiles", near).await;
        assert_eq!(header(&r, "access-control-allow-origin"), None, "{near}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_functions_answer_is_readable_by_an_allowed_origin_with_its_headers_exposed() {
    let api = with_origins(&format!("{APP},{OTHER_APP}")).await;
    let r = api
        .http
        .post(api.url("/profiles"))
        .header("origin", APP)
        .json(&json!({"name": "From a browser"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(APP));
    assert!(header(&r, "vary").unwrap().contains("Origin"));
    let exposed = header(&r, "access-control-expose-headers").unwrap();
    for name in [
        "ETag",
        "Location",
        "Link",
        "Retry-After",
        "Idempotent-Replayed",
    ] {
        assert!(exposed.contains(name), "{name} in {exposed}");
    }
    let location = header(&r, "location").unwrap().to_owned();
    // A problem answer of a function carries them too.
    let r = api
        .http
        .patch(api.follow(&location))
        .header("origin", APP)
        .header("if-match", "\"9\"")
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(APP));
    // Another origin reads nothing: no allow header, though the answer varies by origin.
    let r = api
        .http
        .get(api.follow(&location))
        .header("origin", FOREIGN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    assert!(header(&r, "vary").unwrap().contains("Origin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_answers_carry_the_allow_header_for_the_configured_origin() {
    // One origin: the gateway's answers name it, whatever the request's origin.
    let api = with_origins(APP).await;
    let r = api
        .anonymous
        .get(api.url("/profiles"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(APP));
    assert_eq!(header(&r, "vary"), Some("Origin"));
    assert!(
        header(&r, "access-control-expose-headers")
            .unwrap()
            .contains("x-trace-id")
    );
    let r = api
        .anonymous
        .get(api.url("/profiles"))
        .header("origin", FOREIGN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        Some(APP),
        "a browser on another origin sees a mismatch and refuses the answer"
    );
    let r = api
        .http
        .delete(api.url("/nothing/here"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(APP));

    // Several origins: the gateway's answers echo the request's origin.
    let api = with_origins(&format!("{APP},{OTHER_APP}")).await;
    let r = api
        .anonymous
        .get(api.url("/profiles"))
        .header("origin", OTHER_APP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(OTHER_APP));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_allows_any_origin_only_when_configured() {
    let api = with_origins("*").await;
    let r = preflight(&api, "/profiles", FOREIGN).await;
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
    let r = api
        .http
        .post(api.url("/profiles"))
        .header("origin", FOREIGN)
        .json(&json!({"name": "Anyone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
    let r = api
        .anonymous
        .get(api.url("/profiles"))
        .header("origin", FOREIGN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
}

/// The template's own guards: every path of the API has its OPTIONS event on the preflight
/// function (else a browser could not call that path), with neither authorizer nor usage
/// key; and every gateway response carries the three CORS headers under `CorsEnabled`.
#[test]
fn every_path_has_a_preflight_and_every_gateway_response_its_cors_headers() {
    let raw = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    let doc: yaml_serde::Value = yaml_serde::from_str(&raw).unwrap();
    let resources = doc["Resources"].as_mapping().unwrap();
    let mut paths = std::collections::BTreeSet::new();
    let mut preflights = std::collections::BTreeSet::new();
    for (id, r) in resources {
        for (_, e) in r["Properties"]["Events"].as_mapping().into_iter().flatten() {
            if e["Type"].as_str() != Some("Api") {
                continue;
            }
            let p = &e["Properties"];
            let path = p["Path"].as_str().unwrap().to_owned();
            if id.as_str() == Some("CorsPreflightFunction") {
                assert_eq!(p["Method"].as_str(), Some("options"));
                assert_eq!(p["Auth"]["Authorizer"].as_str(), Some("NONE"), "{path}");
                assert_eq!(p["Auth"]["ApiKeyRequired"].as_bool(), Some(false), "{path}");
                preflights.insert(path);
            } else {
                paths.insert(path);
            }
        }
    }
    assert_eq!(
        paths, preflights,
        "every path, and only those, has a preflight"
    );
    let preflight = &doc["Resources"]["CorsPreflightFunction"];
    assert_eq!(preflight["Condition"].as_str(), Some("CorsEnabled"));
    assert!(
        preflight["Properties"]["Policies"].is_null(),
        "the preflight calls nothing, so its role grants nothing of ours"
    );
    let responses = doc["Resources"]["ProfilesApi"]["Properties"]["GatewayResponses"]
        .as_mapping()
        .unwrap();
    for (kind, r) in responses {
        let headers = &r["ResponseParameters"]["Headers"];
        for name in [
            "Access-Control-Allow-Origin",
            "Access-Control-Expose-Headers",
            "Vary",
        ] {
            let value = format!("{:?}", headers[name]);
            assert!(value.contains("CorsEnabled"), "{kind:?} {name}: {value}");
        }
    }
}

/// The preflight's fixture (`events/cors-preflight.json`, what `sam local invoke` feeds it):
/// answered 204 for its origin when that origin is listed, 403 when it is not.
#[test]
fn the_preflight_fixture_is_answered_as_its_origin_deserves() {
    let event = Event::load("cors-preflight");
    let listed = shared::origins::Origins::parse("https://app.example.com").unwrap();
    let r = edge::cors::preflight(&listed, &event.request());
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let other = shared::origins::Origins::parse("https://admin.example").unwrap();
    assert_eq!(
        edge::cors::preflight(&other, &event.request()).status(),
        403
    );
}
