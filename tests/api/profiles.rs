//! The profile endpoints, each test feeding real API Gateway events through the function's
//! handler, on a real DynamoDB engine. Test names state the contract rule they prove.
//!
//! Here: create, get, delete and list, and what the store's failures become. Validation is in
//! `profile_validation`, PATCH, PUT and conditional requests in `profile_updates`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use profiles_tests::{Api, Event, id_of, json};
use serde_json::Value;

// ---------------------------------------------------------------- create

#[tokio::test]
async fn create_from_empty_body_answers_201_with_defaults_location_and_etag() {
    let api = Api::start().await;
    let r = api.create(json!({})).await;
    assert_eq!(r.status, 201, "{}", r.raw_body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let id = id_of(&r.body);
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    assert_eq!(uuid.get_version_num(), 7, "ids are time-ordered UUID v7");
    assert_eq!(
        r.header("location"),
        Some(format!("/prod/profiles/{id}").as_str()),
        "the stage the request came through comes first"
    );
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["is_public"], false);
    assert_eq!(r.body["name"], Value::Null);
    assert_eq!(r.body["slug"], Value::Null);
    assert_eq!(r.body["tags"], json!([]));
    assert_eq!(r.body["custom_properties"], json!({}));
    assert_eq!(r.body["contacts"], json!([]));
    assert_eq!(r.body["owner_id"], "user-1");
    assert_eq!(r.body["created_at"], r.body["updated_at"]);
    let created_at = r.body["created_at"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 24,
        "{created_at}"
    );
}

#[tokio::test]
async fn create_derives_name_headline_slug_and_expands_country() {
    let api = Api::start().await;
    let r = api
        .send("create-profile", Event::load("create-profile"))
        .await;
    assert_eq!(r.status, 201, "{}", r.raw_body);
    let p = &r.body;
    assert_eq!(p["name"], "Mary Jane Smith");
    assert_eq!(p["headline"], "CTO at Acme Corp");
    assert_eq!(p["slug"], "mary-jane-smith");
    assert_eq!(
        p["email"], "Mary@example.com",
        "the domain is lower-cased, the local part kept"
    );
    assert_eq!(
        p["country"],
        json!({
            "numeric_code": "840", "alpha2_code": "US", "alpha3_code": "USA",
            "name": "United States of America",
            "region_numeric_code": "021", "region_name": "Northern America"
        })
    );
    assert_eq!(p["tags"], json!(["blue", "green"]));
    let contacts = p["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[0]["key"], "email");
    assert_eq!(contacts[1]["key"], "phone");
    assert_eq!(
        contacts[1]["value"], "+14155552671",
        "phones are normalized to E.164"
    );
}

#[tokio::test]
async fn headline_uses_whichever_of_title_and_company_is_set_and_an_explicit_one_wins() {
    let api = Api::start().await;
    for (body, headline) in [
        (json!({"company": "Acme"}), "Acme"),
        (json!({"title": "Founder"}), "Founder"),
        (
            json!({"title": "Founder", "company": "Acme", "headline": "Builds things"}),
            "Builds things",
        ),
    ] {
        let p = api.created(body.clone()).await;
        assert_eq!(p["headline"], headline, "{body}");
    }
}

#[tokio::test]
async fn explicit_name_wins_over_the_parts() {
    let api = Api::start().await;
    let p = api
        .created(json!({"name": "Dr. Mary Smith", "first_name": "Mary", "last_name": "Smith"}))
        .await;
    assert_eq!(p["name"], "Dr. Mary Smith");
    assert_eq!(p["slug"], "dr-mary-smith");
}

#[tokio::test]
async fn create_alias_route_event_creates_a_profile() {
    let api = Api::start().await;
    let event = Event::load("create-profile")
        .resource("/profiles/create", "/profiles/create")
        .body(json!({"name": "Via Alias"}));
    let r = api.send("create-profile", event).await;
    assert_eq!(r.status, 201, "{}", r.raw_body);
    let got = api.get(&id_of(&r.body)).await;
    assert_eq!(got.body["name"], "Via Alias");
}

#[tokio::test]
async fn slug_from_name_gets_a_numeric_suffix_on_collision() {
    let api = Api::start().await;
    // Created in this order: (name, the slug it gets).
    for (name, slug) in [
        ("Acme Corp", "acme-corp"),
        ("Acme Corp", "acme-corp-2"),
        ("ACME corp!", "acme-corp-3"),
    ] {
        let p = api.created(json!({ "name": name })).await;
        assert_eq!(p["slug"], slug);
    }
}

#[tokio::test]
async fn explicit_slug_already_taken_is_409_naming_slug() {
    let api = Api::start().await;
    api.created(json!({"slug": "acme"})).await;
    let r = api.create(json!({"slug": "acme"})).await;
    assert_eq!(r.assert_problem(409), "slug_taken");
    assert_eq!(r.error_fields(), vec!["slug"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_cannot_both_take_one_slug() {
    let api = Arc::new(Api::start().await);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let api = api.clone();
        tasks.spawn(async move { api.create(json!({"slug": "contested"})).await.status });
    }
    let statuses: Vec<u16> = tasks.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_with_one_name_get_distinct_slugs() {
    let api = Arc::new(Api::start().await);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let api = api.clone();
        tasks.spawn(async move { api.created(json!({"name": "Same Name"})).await });
    }
    let mut slugs: Vec<String> = tasks
        .join_all()
        .await
        .iter()
        .map(|p| p["slug"].as_str().unwrap().to_owned())
        .collect();
    slugs.sort();
    slugs.dedup();
    assert_eq!(slugs.len(), 8, "{slugs:?}");
    assert!(slugs.contains(&"same-name".to_owned()));
}

#[tokio::test]
async fn duplicate_external_id_is_409_naming_the_existing_profile() {
    let api = Api::start().await;
    let first = api.created(json!({"external_id": "crm-42"})).await;
    let r = api.create(json!({"external_id": "crm-42"})).await;
    assert_eq!(r.assert_problem(409), "external_id_taken");
    assert_eq!(r.error_fields(), vec!["external_id"]);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains(&id_of(&first)), "{detail}");
}

#[tokio::test]
async fn create_writes_contacts_with_the_profile_or_not_at_all() {
    let api = Api::start().await;
    api.created(json!({"external_id": "taken"})).await;
    let before = api.engine.all_items().await.len();
    // The external_id conflict cancels the whole transaction: no profile, no contacts.
    let r = api
        .create(json!({
            "name": "Half", "external_id": "taken",
            "contacts": [{"key": "email", "value": "half@example.com"}]
        }))
        .await;
    r.assert_problem(409);
    assert_eq!(api.engine.all_items().await.len(), before);
}

// ---------------------------------------------------------------- get

#[tokio::test]
async fn get_returns_the_profile_with_its_contacts_and_etag() {
    let api = Api::start().await;
    let created = api
        .created(json!({"name": "Mary", "contacts": [{"key": "email", "value": "m@example.com"}]}))
        .await;
    let r = api.get(&id_of(&created)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(r.body, created);
    assert_eq!(r.body["contacts"][0]["value"], "m@example.com");
    assert_eq!(r.body["contacts"][0]["external_id"], Value::Null);
}

#[tokio::test]
async fn get_unknown_or_malformed_id_is_404_problem() {
    let api = Api::start().await;
    for id in [uuid::Uuid::now_v7().to_string(), "not-a-uuid".to_owned()] {
        let r = api.get(&id).await;
        assert_eq!(r.assert_problem(404), "not_found", "{id}");
    }
}

#[tokio::test]
async fn get_with_matching_if_none_match_is_304() {
    let api = Api::start().await;
    let id = id_of(&api.created(json!({"name": "Cached"})).await);
    let event = Event::load("get-profile")
        .profile_id(&id)
        .header("If-None-Match", "\"1\"");
    let r = api.send("get-profile", event).await;
    assert_eq!(r.status, 304);
    assert_eq!(r.raw_body, "");
    assert_eq!(r.header("etag"), Some("\"1\""));
    let event = Event::load("get-profile")
        .profile_id(&id)
        .header("If-None-Match", "\"0\"");
    assert_eq!(api.send("get-profile", event).await.status, 200);
}

#[tokio::test]
async fn trace_id_is_the_gateway_request_id_in_header_and_problem() {
    let api = Api::start().await;
    let event = Event::load("get-profile")
        .profile_id("nope")
        .with_request_id("req-123");
    let r = api.send("get-profile", event).await;
    r.assert_problem(404);
    assert_eq!(r.header("x-trace-id"), Some("req-123"));
    assert_eq!(r.body["trace_id"], "req-123");
}

#[tokio::test]
async fn a_server_failure_is_500_that_reveals_nothing() {
    let api = Api::start().await;
    // An app configured with a table that does not exist: every store call fails.
    let config = profiles_tests::config_for(&api.engine.endpoint, "no-such-table");
    let broken = Api {
        app: shared::app::App::new(config),
        ..api
    };
    let r = broken.create(json!({"name": "x"})).await;
    assert_eq!(r.assert_problem(500), "internal_error");
    assert!(!r.raw_body.contains("no-such-table"), "{}", r.raw_body);
    assert!(
        !r.raw_body.to_lowercase().contains("dynamo"),
        "{}",
        r.raw_body
    );
}

#[tokio::test]
async fn an_engine_that_refuses_connections_is_a_503_with_retry_after() {
    let api = Api::start().await;
    let created = api.created(json!({"name": "Kept"})).await;
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let down = Api {
        app: shared::app::App::new(profiles_tests::config_for(&endpoint, "profiles")),
        engine: api.engine.clone(),
        caller: api.caller.clone(),
    };
    for r in [
        down.create(json!({"name": "x"})).await,
        down.get(&id_of(&created)).await,
    ] {
        assert_eq!(r.assert_problem(503), "service_unavailable");
        assert_eq!(r.header("retry-after"), Some("1"));
        assert!(!r.raw_body.contains("127.0.0.1"), "{}", r.raw_body);
    }
    // The engine that is up still has exactly what it had.
    let r = api.get(&id_of(&created)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, created);
}

// ---------------------------------------------------------------- DELETE

#[tokio::test]
async fn delete_is_204_then_404_and_leaves_nothing_behind() {
    let api = Api::start().await;
    let p = api
        .created(json!({
            "name": "Gone", "external_id": "ext-1",
            "contacts": [{"key": "email", "value": "a@example.com"}, {"key": "phone", "value": "+14155552671"}]
        }))
        .await;
    let id = id_of(&p);
    let r = api.delete(&id).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.raw_body, "");
    api.delete(&id).await.assert_problem(404);
    api.get(&id).await.assert_problem(404);
    assert!(
        api.engine.all_items().await.is_empty(),
        "profile, contacts and guards all gone"
    );
    // Its unique values are free again.
    let again = api
        .created(json!({"name": "Gone", "external_id": "ext-1"}))
        .await;
    assert_eq!(again["slug"], "gone");
}

#[tokio::test]
async fn delete_with_stale_if_match_is_412_and_keeps_the_profile() {
    let api = Api::start().await;
    let id = id_of(&api.created(json!({"name": "x"})).await);
    let event = Event::load("delete-profile")
        .profile_id(&id)
        .header("If-Match", "\"7\"");
    api.send("delete-profile", event).await.assert_problem(412);
    assert_eq!(api.get(&id).await.status, 200);
}

// ---------------------------------------------------------------- list

async fn walk(api: &Api, query: &[(&str, &str)]) -> (Vec<String>, usize) {
    let (items, pages) = api.walk(query).await;
    (items.iter().map(id_of).collect(), pages)
}

#[tokio::test]
async fn list_is_newest_first_and_cursor_walks_every_profile_once() {
    let api = Api::start().await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(id_of(&api.created(json!({"name": format!("P{i}")})).await));
    }
    let (ids, pages) = walk(&api, &[("limit", "3")]).await;
    assert_eq!(pages, 3);
    let mut newest_first = created.clone();
    newest_first.reverse();
    assert_eq!(ids, newest_first);
    let (ids, _) = walk(&api, &[("limit", "2"), ("sort_order", "asc")]).await;
    assert_eq!(ids, created);
}

#[tokio::test]
async fn list_defaults_to_20_and_an_exact_last_page_has_no_cursor() {
    let api = Api::start().await;
    for _ in 0..21 {
        api.created(json!({})).await;
    }
    let r = api.list(&[]).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 20);
    assert!(r.body["next_cursor"].is_string());
    let r = api.list(&[("limit", "21")]).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 21);
    assert_eq!(r.body["next_cursor"], Value::Null);
}

#[tokio::test]
async fn list_of_an_empty_tenant_is_an_empty_page() {
    let api = Api::start().await;
    let r = api.list(&[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"data": [], "next_cursor": null}));
}

#[tokio::test]
async fn list_rejects_bad_parameters_by_name() {
    let api = Api::start().await;
    for (query, field) in [
        (vec![("limit", "0")], "limit"),
        (vec![("limit", "101")], "limit"),
        (vec![("limit", "ten")], "limit"),
        (vec![("offset", "20")], "offset"),
        (vec![("sort_order", "up")], "sort_order"),
        (vec![("sort_by", "shoe_size")], "sort_by"),
        (vec![("cursor", "garbage")], "cursor"),
        (vec![("filter[shoe_size]", "9")], "filter[shoe_size]"),
        (vec![("page", "2")], "page"),
    ] {
        let r = api.list(&query).await;
        r.assert_problem(400);
        assert_eq!(r.error_fields(), vec![field], "{query:?}: {}", r.raw_body);
    }
    let r = api.list(&[("offset", "20")]).await;
    assert!(r.raw_body.contains("use cursor"), "{}", r.raw_body);
}

#[tokio::test]
async fn a_cursor_is_bound_to_its_sort_order_and_to_the_callers_tenant() {
    let api = Api::start().await;
    for _ in 0..3 {
        api.created(json!({})).await;
    }
    let r = api.list(&[("limit", "1")]).await;
    let cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
    let r = api
        .list(&[("limit", "1"), ("cursor", &cursor), ("sort_order", "asc")])
        .await;
    assert_eq!(r.error_fields(), vec!["cursor"]);
    let mut altered = cursor.clone();
    altered.insert(3, 'x');
    let r = api.list(&[("cursor", &altered)]).await;
    assert_eq!(r.error_fields(), vec!["cursor"]);

    // Another tenant on the same table, holding the first tenant's cursor: a 400, never data.
    let other = api.as_caller("tenant-b", "user-1");
    other.created(json!({"name": "B's"})).await;
    let r = other.list(&[("cursor", &cursor)]).await;
    r.assert_problem(400);
    assert_eq!(r.error_fields(), vec!["cursor"]);
}

#[tokio::test]
async fn another_tenants_profile_is_404_on_every_route() {
    let api = Api::start().await;
    let id = id_of(&api.created(json!({"name": "A's"})).await);
    let other = api.as_caller("tenant-b", "user-1");
    // GET, PATCH, PUT and DELETE, in that order.
    for r in [
        other.get(&id).await,
        other.patch(&id, json!({"name": "x"})).await,
        other.put(&id, json!({})).await,
        other.delete(&id).await,
    ] {
        r.assert_problem(404);
    }
    assert_eq!(other.list(&[]).await.body["data"], json!([]));
}
