//! `Idempotency-Key` on the POST routes, through the handlers: a retried create replays the
//! first answer and never makes a second profile or contact; another request with the key is
//! a 422; a refused request records nothing; keys are the caller's own and last 24 hours.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use profiles_tests::{Api, Event, Reply, json};
use serde_json::Value;

/// `POST /profiles` with `Idempotency-Key: key`.
async fn create_with_key(api: &Api, key: &str, body: Value) -> Reply {
    let event = Event::load("create-profile")
        .body(body)
        .header("Idempotency-Key", key);
    api.send("create-profile", event).await
}

/// `POST /profiles/{id}/contacts` with `Idempotency-Key: key`.
async fn contact_with_key(api: &Api, profile: &str, key: &str, body: Value) -> Reply {
    let event = Event::load("create-contact")
        .profile_id(profile)
        .body(body)
        .header("Idempotency-Key", key);
    api.send("create-contact", event).await
}

async fn profile_count(api: &Api) -> usize {
    let r = api.list(&[("limit", "100")]).await;
    assert_eq!(r.status, 200);
    r.body["data"].as_array().unwrap().len()
}

/// The replay is the first answer: status, body, `Location`, `ETag`, marked replayed.
fn assert_replays(first: &Reply, again: &Reply) {
    assert_eq!(again.status, first.status, "{}", again.raw_body);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("etag"), first.header("etag"));
    assert_eq!(again.header("content-type"), first.header("content-type"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.header("idempotent-replayed"), None);
}

#[tokio::test]
async fn a_retried_create_replays_the_first_answer_even_after_the_profile_changed() {
    let api = Api::start().await;
    let body = json!({"name": "Once", "contacts": [{"key": "email", "value": "once@example.com"}]});
    let first = create_with_key(&api, "create-1", body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.raw_body);
    let again = create_with_key(&api, "create-1", body.clone()).await;
    assert_replays(&first, &again);
    assert_eq!(profile_count(&api).await, 1);
    // The profile changes; the replay is still the first answer.
    let id = first.body["id"].as_str().unwrap();
    assert_eq!(api.patch(id, json!({"title": "Changed"})).await.status, 200);
    let later = create_with_key(&api, "create-1", body).await;
    assert_replays(&first, &later);
    assert_eq!(later.body["version"], 1);
    assert_eq!(profile_count(&api).await, 1);
}

#[tokio::test]
async fn the_same_body_with_its_keys_reordered_and_spaced_replays() {
    let api = Api::start().await;
    let first = create_with_key(&api, "k", json!({"name": "Acme", "tags": ["a", "b"]})).await;
    assert_eq!(first.status, 201);
    let event = Event::load("create-profile")
        .raw_body("{ \"tags\" : [\"a\",\"b\"],\n  \"name\":\"Acme\" }")
        .header("Idempotency-Key", "k");
    let again = api.send("create-profile", event).await;
    assert_replays(&first, &again);
    // The alias route is the same route.
    let event = Event::load("create-profile")
        .resource("/profiles/create", "/profiles/create")
        .body(json!({"name": "Acme", "tags": ["a", "b"]}))
        .header("Idempotency-Key", "\"k\"");
    let aliased = api.send("create-profile", event).await;
    assert_replays(&first, &aliased);
    // Spaces and tabs around the header's value are HTTP's, not the key's (the document's
    // pattern allows them).
    let padded = create_with_key(&api, " k\t", json!({"name": "Acme", "tags": ["a", "b"]})).await;
    assert_replays(&first, &padded);
    assert_eq!(profile_count(&api).await, 1);
}

#[tokio::test]
async fn another_request_with_a_used_key_is_422_and_writes_nothing() {
    let api = Api::start().await;
    assert_eq!(
        create_with_key(&api, "k", json!({"name": "A"}))
            .await
            .status,
        201
    );
    let r = create_with_key(&api, "k", json!({"name": "B"})).await;
    assert_eq!(r.assert_problem(422), "idempotency_key_reused");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
    assert_eq!(profile_count(&api).await, 1);
}

#[tokio::test]
async fn a_key_belongs_to_its_principal_and_route() {
    let api = Api::start().await;
    let mine = create_with_key(&api, "shared-key", json!({"name": "Mine"})).await;
    assert_eq!(mine.status, 201);
    let colleague = api.as_caller("tenant-a", "user-2");
    let theirs = create_with_key(&colleague, "shared-key", json!({"name": "Mine"})).await;
    assert_eq!(theirs.status, 201, "{}", theirs.raw_body);
    assert_eq!(theirs.header("idempotent-replayed"), None);
    assert_ne!(theirs.body["id"], mine.body["id"]);
    // The same key on the contacts route is another key.
    let id = mine.body["id"].as_str().unwrap();
    let contact = contact_with_key(
        &api,
        id,
        "shared-key",
        json!({"key": "email", "value": "a@b.co"}),
    )
    .await;
    assert_eq!(contact.status, 201, "{}", contact.raw_body);
    assert_eq!(profile_count(&api).await, 2);
}

#[tokio::test]
async fn a_refused_request_records_nothing_so_a_fixed_retry_with_the_key_succeeds() {
    let api = Api::start().await;
    let r = create_with_key(&api, "fix-me", json!({"email": "nope"})).await;
    assert_eq!(r.error_fields(), vec!["email"]);
    let r = create_with_key(&api, "fix-me", json!({"email": "ok@example.com"})).await;
    assert_eq!(r.status, 201, "{}", r.raw_body);
    assert_eq!(r.header("idempotent-replayed"), None);
    // A 403 (no create scope) records nothing either.
    let reader = api.with_scopes("profiles.read");
    let r = create_with_key(&reader, "scoped", json!({"name": "R"})).await;
    r.assert_problem(403);
    let r = create_with_key(&api, "scoped", json!({"name": "Other"})).await;
    assert_eq!(r.status, 201, "{}", r.raw_body);
}

#[tokio::test]
async fn a_malformed_key_is_a_400_naming_the_header() {
    let api = Api::start().await;
    let long = "k".repeat(256);
    // White space other than HTTP's spaces and tabs is the key's, and refused (a control
    // character cannot be a header's at all).
    for bad in [
        "\"\"",
        "with space",
        "ключ",
        long.as_str(),
        "k\u{a0}",
        "\u{2003}k",
    ] {
        let r = create_with_key(&api, bad, json!({"name": "x"})).await;
        assert_eq!(
            r.error_fields(),
            vec!["Idempotency-Key"],
            "{bad:?}: {}",
            r.raw_body
        );
    }
    assert_eq!(profile_count(&api).await, 0);
}

#[tokio::test]
async fn twenty_concurrent_creates_with_one_key_make_one_profile_and_twenty_identical_answers() {
    let api = Arc::new(Api::start().await);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let api = api.clone();
        tasks.spawn(async move { create_with_key(&api, "race", json!({"name": "Raced"})).await });
    }
    let answers: Vec<Reply> = tasks.join_all().await;
    assert_eq!(profile_count(&api).await, 1, "exactly one profile");
    let first = &answers[0];
    for a in &answers {
        assert_eq!(a.status, 201, "{}", a.raw_body);
        assert_eq!(a.body, first.body);
        assert_eq!(a.header("location"), first.header("location"));
    }
    let replayed = answers
        .iter()
        .filter(|a| a.header("idempotent-replayed") == Some("true"))
        .count();
    assert_eq!(replayed, 19, "one made it, nineteen replayed it");
}

#[tokio::test]
async fn a_key_is_forgotten_after_24_hours() {
    let api = Api::start().await;
    let first = create_with_key(&api, "daily", json!({"name": "Day one"})).await;
    assert_eq!(first.status, 201);
    api.app.clock.advance(24 * 60 * 60 - 5);
    let again = create_with_key(&api, "daily", json!({"name": "Day one"})).await;
    assert_replays(&first, &again);
    api.app.clock.advance(10);
    let later = create_with_key(&api, "daily", json!({"name": "Day one"})).await;
    assert_eq!(later.status, 201, "{}", later.raw_body);
    assert_eq!(later.header("idempotent-replayed"), None);
    assert_ne!(later.body["id"], first.body["id"], "a new profile");
    // And the key is live again, for the new request.
    let r = create_with_key(&api, "daily", json!({"name": "Other"})).await;
    assert_eq!(r.assert_problem(422), "idempotency_key_reused");
}

#[tokio::test]
async fn a_retried_contact_create_replays_and_another_body_is_422() {
    let api = Api::start().await;
    let id = api.created(json!({"name": "Holder"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"key": "phone", "value": "+1 415 555 2671"});
    let first = contact_with_key(&api, &id, "c-1", body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.raw_body);
    let again = contact_with_key(&api, &id, "c-1", body).await;
    assert_replays(&first, &again);
    let r = contact_with_key(&api, &id, "c-1", json!({"key": "email", "value": "x@y.co"})).await;
    assert_eq!(r.assert_problem(422), "idempotency_key_reused");
    let contacts = api.list_contacts(&id).await;
    assert_eq!(contacts.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_contact_create_refused_for_a_missing_profile_records_nothing() {
    let api = Api::start().await;
    let missing = uuid::Uuid::now_v7().to_string();
    let body = json!({"key": "email", "value": "a@example.com"});
    let r = contact_with_key(&api, &missing, "c-2", body.clone()).await;
    r.assert_problem(404);
    // The key is free for the request that was meant: the same body on a real profile
    // (another path, so another fingerprint: a recorded 404 would make this a 422).
    let id = api.created(json!({"name": "Real"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = contact_with_key(&api, &id, "c-2", body).await;
    assert_eq!(r.status, 201, "{}", r.raw_body);
}
