//! Changing a profile through the handler on real events: PATCH as JSON merge patch, PUT as a
//! whole replacement, `If-Match` and `If-None-Match`, concurrent patches, and the slug and
//! `external_id` guards as they change.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use profiles_tests::{Api, Event, id_of, json};
use serde_json::Value;

// ---------------------------------------------------------------- PATCH

#[tokio::test]
async fn patch_sets_clears_and_leaves_fields_as_merge_patch() {
    let api = Api::start().await;
    let p = api
        .created(json!({"first_name": "Mary", "middle_name": "Jane", "last_name": "Smith", "title": "CTO"}))
        .await;
    let r = api
        .patch(&id_of(&p), json!({"title": "CEO", "middle_name": null}))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert_eq!(r.body["title"], "CEO", "a value sets");
    assert_eq!(r.body["middle_name"], Value::Null, "null clears");
    assert_eq!(r.body["first_name"], "Mary", "absent is unchanged");
    assert_eq!(r.body["name"], "Mary Smith", "the computed name follows");
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.header("etag"), Some("\"2\""));
    assert_ne!(r.body["updated_at"], p["updated_at"]);
    assert_eq!(r.body["created_at"], p["created_at"]);
}

#[tokio::test]
async fn patch_with_null_clears_field() {
    let api = Api::start().await;
    let p = api
        .created(json!({"email": "a@example.com", "enabled": false}))
        .await;
    let r = api
        .patch(&id_of(&p), json!({"email": null, "enabled": null}))
        .await;
    assert_eq!(r.body["email"], Value::Null);
    assert_eq!(
        r.body["enabled"], true,
        "a cleared flag returns to its default"
    );
}

#[tokio::test]
async fn patch_arrays_replace_whole_and_empty_clears() {
    let api = Api::start().await;
    let p = api
        .created(json!({"industry": ["Fintech", "SaaS"], "tags": ["a"]}))
        .await;
    let id = id_of(&p);
    let r = api.patch(&id, json!({"industry": ["Payments"]})).await;
    assert_eq!(r.body["industry"], json!(["Payments"]));
    let r = api.patch(&id, json!({"industry": [], "tags": null})).await;
    assert_eq!(r.body["industry"], json!([]));
    assert_eq!(r.body["tags"], json!([]));
}

#[tokio::test]
async fn patch_merges_custom_properties_key_by_key() {
    let api = Api::start().await;
    let p = api
        .created(json!({"custom_properties": {"a": "1", "b": "2", "c": "3"}}))
        .await;
    let id = id_of(&p);
    let r = api
        .patch(
            &id,
            json!({"custom_properties": {"b": "20", "c": null, "d": "4"}}),
        )
        .await;
    assert_eq!(
        r.body["custom_properties"],
        json!({"a": "1", "b": "20", "d": "4"})
    );
    let r = api.patch(&id, json!({"custom_properties": null})).await;
    assert_eq!(r.body["custom_properties"], json!({}));
}

#[tokio::test]
async fn patch_cannot_push_custom_properties_past_50_keys() {
    let api = Api::start().await;
    let first: serde_json::Map<String, Value> =
        (0..40).map(|i| (format!("k{i}"), json!("v"))).collect();
    let more: serde_json::Map<String, Value> =
        (40..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let id = id_of(&api.created(json!({"custom_properties": first})).await);
    let r = api.patch(&id, json!({"custom_properties": more})).await;
    r.assert_problem(400);
    assert_eq!(r.error_fields(), vec!["custom_properties"]);
}

#[tokio::test]
async fn empty_patch_is_400() {
    let api = Api::start().await;
    let id = id_of(&api.created(json!({"name": "x"})).await);
    let r = api.patch(&id, json!({})).await;
    assert_eq!(r.assert_problem(400), "empty_patch");
}

#[tokio::test]
async fn patch_with_prefer_return_minimal_is_204_with_etag() {
    let api = Api::start().await;
    let id = id_of(&api.created(json!({"name": "x"})).await);
    let event = Event::load("update-profile")
        .profile_id(&id)
        .header("Prefer", "return=minimal")
        .body(json!({"comment": "quiet"}));
    let r = api.send("update-profile", event).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.raw_body, "");
    assert_eq!(r.header("etag"), Some("\"2\""));
    assert_eq!(api.get(&id).await.body["comment"], "quiet");
}

#[tokio::test]
async fn patch_accepts_merge_patch_media_type_but_create_does_not() {
    let api = Api::start().await;
    let id = id_of(&api.created(json!({"name": "x"})).await);
    // The update-profile event carries application/merge-patch+json.
    assert_eq!(api.patch(&id, json!({"title": "t"})).await.status, 200);
    let event = Event::load("create-profile")
        .header("Content-Type", "application/merge-patch+json")
        .body(json!({}));
    api.send("create-profile", event).await.assert_problem(415);
}

#[tokio::test]
async fn patch_rejects_contacts_and_read_only_fields() {
    let api = Api::start().await;
    let id = id_of(&api.created(json!({"name": "x"})).await);
    let r = api
        .patch(&id, json!({"contacts": [], "version": 9, "name": "y"}))
        .await;
    r.assert_problem(400);
    let mut fields = r.error_fields();
    fields.sort();
    assert_eq!(fields, vec!["contacts", "version"]);
    assert_eq!(api.get(&id).await.body["name"], "x", "nothing was written");
}

#[tokio::test]
async fn patch_of_unknown_profile_is_404() {
    let api = Api::start().await;
    let r = api
        .patch(&uuid::Uuid::now_v7().to_string(), json!({"name": "x"}))
        .await;
    r.assert_problem(404);
}

#[tokio::test]
async fn patch_with_stale_if_match_is_412_and_current_one_succeeds() {
    let api = Api::start().await;
    let id = id_of(&api.created(json!({"name": "x"})).await);
    api.patch(&id, json!({"title": "a"})).await;
    let stale = Event::load("update-profile")
        .profile_id(&id)
        .header("If-Match", "\"1\"")
        .body(json!({"title": "b"}));
    assert_eq!(
        api.send("update-profile", stale).await.assert_problem(412),
        "precondition_failed"
    );
    let current = Event::load("update-profile")
        .profile_id(&id)
        .header("If-Match", "\"2\"")
        .body(json!({"title": "b"}));
    assert_eq!(api.send("update-profile", current).await.status, 200);
}

/// RFC 9110 §13.1.1: `If-Match` uses the strong comparison, so a weak tag never matches; a
/// well-formed tag that is not the current one is a 412 (only a malformed header is a 400);
/// any tag of a list may match.
#[tokio::test]
async fn if_match_is_strong_any_listed_tag_may_match_and_a_foreign_tag_is_412() {
    let api = Api::start().await;
    let created = api.created(json!({"name": "x"})).await;
    let id = id_of(&created);
    let patch = |if_match: &str| {
        Event::load("update-profile")
            .profile_id(&id)
            .header("If-Match", if_match)
            .body(json!({"title": "changed"}))
    };
    for refused in ["W/\"1\"", "\"stale-etag\"", "\"2\", W/\"1\""] {
        let r = api.send("update-profile", patch(refused)).await;
        assert_eq!(r.assert_problem(412), "precondition_failed", "{refused}");
    }
    let delete = Event::load("delete-profile")
        .profile_id(&id)
        .header("If-Match", "W/\"1\"");
    api.send("delete-profile", delete).await.assert_problem(412);
    let r = api.send("update-profile", patch("stale-etag")).await;
    assert_eq!(r.assert_problem(400), "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "if-match");
    assert_eq!(api.get(&id).await.body, created, "nothing changed");

    let r = api.send("update-profile", patch("\"7\", \"1\"")).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert_eq!(r.body["title"], "changed");
}

/// RFC 9110 §13.1.2: `If-None-Match` uses the weak comparison, and on a write `*` (or the
/// current tag) means "only if it does not exist", which an existing profile fails.
#[tokio::test]
async fn if_none_match_is_weak_and_a_write_to_an_existing_profile_with_star_is_412() {
    let api = Api::start().await;
    let created = api.created(json!({"name": "x"})).await;
    let id = id_of(&created);
    let get = Event::load("get-profile")
        .profile_id(&id)
        .header("If-None-Match", "W/\"1\"");
    assert_eq!(api.send("get-profile", get).await.status, 304);
    let put = |if_none_match: &str| {
        Event::load("replace-profile")
            .profile_id(&id)
            .header("If-None-Match", if_none_match)
            .body(json!({"name": "y"}))
    };
    for refused in ["*", "\"1\"", "W/\"1\""] {
        let r = api.send("replace-profile", put(refused)).await;
        assert_eq!(r.assert_problem(412), "precondition_failed", "{refused}");
    }
    let delete = Event::load("delete-profile")
        .profile_id(&id)
        .header("If-None-Match", "*");
    api.send("delete-profile", delete).await.assert_problem(412);
    assert_eq!(api.get(&id).await.body, created, "nothing changed");
    let r = api.send("replace-profile", put("\"9\"")).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_patches_all_land_and_each_bumps_the_version() {
    let api = Arc::new(Api::start().await);
    let id = id_of(&api.created(json!({"name": "x"})).await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..3 {
        let (api, id) = (api.clone(), id.clone());
        tasks.spawn(async move {
            api.patch(&id, json!({"custom_properties": {format!("k{i}"): "v"}}))
                .await
                .status
        });
    }
    let statuses = tasks.join_all().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let got = api.get(&id).await;
    assert_eq!(got.body["version"], 4);
    assert_eq!(
        got.body["custom_properties"],
        json!({"k0": "v", "k1": "v", "k2": "v"})
    );
}

#[tokio::test]
async fn patching_the_slug_frees_the_old_one_and_guards_the_new_one() {
    let api = Api::start().await;
    let a = id_of(&api.created(json!({"slug": "first"})).await);
    api.created(json!({"slug": "taken"})).await;
    let r = api.patch(&a, json!({"slug": "taken"})).await;
    assert_eq!(r.assert_problem(409), "slug_taken");
    assert_eq!(api.patch(&a, json!({"slug": "second"})).await.status, 200);
    // "first" is free again.
    assert_eq!(api.created(json!({"slug": "first"})).await["slug"], "first");
}

#[tokio::test]
async fn patching_external_id_to_a_taken_one_is_409() {
    let api = Api::start().await;
    let a = id_of(&api.created(json!({"external_id": "a"})).await);
    let b = id_of(&api.created(json!({"external_id": "b"})).await);
    let r = api.patch(&a, json!({"external_id": "b"})).await;
    r.assert_problem(409);
    assert!(r.body["detail"].as_str().unwrap().contains(&b));
    assert_eq!(api.patch(&a, json!({"external_id": "c"})).await.status, 200);
    assert_eq!(
        api.created(json!({"external_id": "a"})).await["external_id"],
        "a"
    );
}

#[tokio::test]
async fn a_slug_is_made_when_a_name_first_appears_and_kept_when_it_changes() {
    let api = Api::start().await;
    let id = id_of(&api.created(json!({})).await);
    let r = api
        .patch(&id, json!({"first_name": "Ada", "last_name": "Lovelace"}))
        .await;
    assert_eq!(r.body["slug"], "ada-lovelace");
    let r = api.patch(&id, json!({"last_name": "King"})).await;
    assert_eq!(r.body["slug"], "ada-lovelace", "slugs are stable links");
    let r = api.patch(&id, json!({"slug": null})).await;
    assert_eq!(
        r.body["slug"], "ada-king",
        "a cleared slug is made anew from the name"
    );
}

// ---------------------------------------------------------------- PUT

#[tokio::test]
async fn put_replaces_every_writable_field_and_keeps_contacts() {
    let api = Api::start().await;
    let p = api
        .created(json!({
            "name": "Old", "title": "CTO", "tags": ["a"], "custom_properties": {"k": "v"},
            "contacts": [{"key": "phone", "value": "+14155552671"}]
        }))
        .await;
    let id = id_of(&p);
    let r = api
        .put(
            &id,
            json!({"name": "New", "website_url": "https://new.example"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert_eq!(r.body["name"], "New");
    assert_eq!(r.body["title"], Value::Null);
    assert_eq!(r.body["tags"], json!([]));
    assert_eq!(r.body["custom_properties"], json!({}));
    assert_eq!(r.body["id"], p["id"]);
    assert_eq!(r.body["created_at"], p["created_at"]);
    assert_eq!(r.body["version"], 2);
    let got = api.get(&id).await;
    assert_eq!(
        got.body["contacts"].as_array().unwrap().len(),
        1,
        "PUT leaves contacts alone"
    );
}

#[tokio::test]
async fn put_validates_like_create_and_rejects_contacts() {
    let api = Api::start().await;
    let id = id_of(&api.created(json!({"name": "x"})).await);
    let r = api.put(&id, json!({"email": "nope", "contacts": []})).await;
    r.assert_problem(400);
    let mut fields = r.error_fields();
    fields.sort();
    assert_eq!(fields, vec!["contacts", "email"]);
    let r = api.put(&uuid::Uuid::now_v7().to_string(), json!({})).await;
    r.assert_problem(404);
}

/// What GET shows, less the members a client never writes (the read-only ones and the
/// contacts sub-resource): a PUT body.
fn writable_part(read: &Value) -> Value {
    let mut body = read.clone();
    let map = body.as_object_mut().unwrap();
    for member in shared::model::READ_ONLY_FIELDS.iter().chain(&["contacts"]) {
        map.remove(*member);
    }
    body
}

/// Everything a client sees of a profile but its version and update time.
fn seen(read: &Value) -> Value {
    let mut seen = read.clone();
    let map = seen.as_object_mut().unwrap();
    map.remove("version");
    map.remove("updated_at");
    seen
}

#[tokio::test]
async fn get_then_put_of_what_was_read_succeeds_and_changes_nothing_a_client_sees() {
    let api = Api::start().await;
    let long = |c: char| c.to_string().repeat(255);
    let bodies = [
        // Computed name and headline at their longest: 3 x 255 + 2 and 255 + 4 + 255.
        json!({"first_name": long('a'), "middle_name": long('b'), "last_name": long('c'),
               "title": long('t'), "company": long('c')}),
        json!({"name": "Acme", "website_url": "https://acme.com", "country_numeric_code": "840",
               "social_links": [{"platform": "github", "url": "https://github.com/acme"}],
               "custom_properties": {"tier": "gold"}, "tags": ["a"], "enabled": false,
               "contacts": [{"key": "email", "value": "a@example.com"}]}),
        json!({}),
    ];
    for body in bodies {
        let created = api.created(body.clone()).await;
        let id = id_of(&created);
        let before = api.get(&id).await.body;
        let r = api.put(&id, writable_part(&before)).await;
        assert_eq!(r.status, 200, "{body}: {}", r.raw_body);
        let after = api.get(&id).await.body;
        assert_eq!(seen(&after), seen(&before), "{body}");
        assert_eq!(after["version"], before["version"].as_u64().unwrap() + 1);
    }
}

#[tokio::test]
async fn computed_name_and_headline_are_cut_to_255_characters() {
    let api = Api::start().await;
    let long = |c: char| c.to_string().repeat(255);
    let p = api
        .created(json!({"first_name": long('é'), "last_name": long('z'),
                        "title": long('t'), "company": "Acme"}))
        .await;
    let name = p["name"].as_str().unwrap();
    assert_eq!(name.chars().count(), 255);
    assert_eq!(
        name,
        long('é'),
        "the first 255 characters, no trailing space"
    );
    assert_eq!(p["headline"], long('t'));
    // Shorter values are as before.
    let p = api
        .created(
            json!({"first_name": "Mary", "last_name": "Smith", "title": "CTO", "company": "Acme"}),
        )
        .await;
    assert_eq!(p["name"], "Mary Smith");
    assert_eq!(p["headline"], "CTO at Acme");
}
