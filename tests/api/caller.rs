//! Callers: each route's scope, the authorizer's context as the only source of identity,
//! tenants confined to their own data, and each principal's primary profile
//! (`/profiles/me`, `/profiles/all`, `is_primary`). Handlers fed real API Gateway events.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use profiles_tests::{Api, Event, id_of};
use serde_json::json;

/// Every function, an event that reaches its handler, and the scope its route needs.
fn routes(profile: &str, contact: &str) -> Vec<(&'static str, Event, &'static str)> {
    vec![
        (
            "create-profile",
            Event::load("create-profile").body(json!({"name": "x"})),
            "profiles.create",
        ),
        (
            "get-profile",
            Event::load("get-profile").profile_id(profile),
            "profiles.read",
        ),
        (
            "get-primary-profile",
            Event::load("get-primary-profile"),
            "profiles.read",
        ),
        (
            "list-profiles",
            Event::load("list-profiles"),
            "profiles.lists",
        ),
        (
            "list-profiles",
            Event::load("list-own-profiles"),
            "profiles.lists",
        ),
        (
            "update-profile",
            Event::load("update-profile")
                .profile_id(profile)
                .body(json!({"title": "x"})),
            "profiles.update",
        ),
        (
            "replace-profile",
            Event::load("replace-profile")
                .profile_id(profile)
                .body(json!({"name": "x"})),
            "profiles.update",
        ),
        (
            "list-contacts",
            Event::load("list-contacts").profile_id(profile),
            "profiles.read",
        ),
        (
            "create-contact",
            Event::load("create-contact")
                .profile_id(profile)
                .body(json!({"key": "email", "value": "new@example.com"})),
            "profiles.update",
        ),
        (
            "get-contact",
            Event::load("get-contact").contact_id(profile, contact),
            "profiles.read",
        ),
        (
            "update-contact",
            Event::load("update-contact")
                .contact_id(profile, contact)
                .body(json!({"external_id": "x"})),
            "profiles.update",
        ),
        (
            "delete-contact",
            Event::load("delete-contact").contact_id(profile, contact),
            "profiles.update",
        ),
        (
            "delete-profile",
            Event::load("delete-profile").profile_id(profile),
            "profiles.delete",
        ),
    ]
}

const ALL: [&str; 5] = [
    "profiles.create",
    "profiles.read",
    "profiles.lists",
    "profiles.update",
    "profiles.delete",
];

#[tokio::test]
async fn every_route_answers_403_without_its_scope_and_serves_with_only_it() {
    let api = Api::start().await;
    let p = api
        .created(
            json!({"name": "Scoped", "contacts": [{"key": "email", "value": "s@example.com"}]}),
        )
        .await;
    let profile = id_of(&p);
    let contact = p["contacts"][0]["id"].as_str().unwrap().to_owned();
    for (function, event, scope) in routes(&profile, &contact) {
        let others: Vec<&str> = ALL.into_iter().filter(|s| *s != scope).collect();
        let r = api
            .with_scopes(&others.join(" "))
            .send(function, event)
            .await;
        assert_eq!(r.assert_problem(403), "insufficient_scope", "{function}");
        assert!(
            r.body["detail"].as_str().unwrap().contains(scope),
            "{function}: {}",
            r.raw_body
        );
    }
    // Nothing was written by the refused requests.
    assert_eq!(api.get(&profile).await.body["version"], p["version"]);
    assert_eq!(
        api.list(&[]).await.body["data"].as_array().unwrap().len(),
        1
    );
    // With only the route's scope, each gets past the check (deletes last).
    for (function, event, scope) in routes(&profile, &contact) {
        let r = api.with_scopes(scope).send(function, event).await;
        assert!(
            r.status < 400,
            "{function} with only {scope}: {} {}",
            r.status,
            r.raw_body
        );
    }
}

/// A JWT caller over its own limit is let through by the authorizer with `retry_after` in
/// the context: every route answers 429 with `Retry-After` before doing anything.
#[tokio::test]
async fn a_caller_over_its_own_limit_gets_429_on_every_route_and_nothing_is_written() {
    let api = Api::start().await;
    let p = api
        .created(
            json!({"name": "Limited", "contacts": [{"key": "email", "value": "l@example.com"}]}),
        )
        .await;
    let profile = id_of(&p);
    let contact = p["contacts"][0]["id"].as_str().unwrap().to_owned();
    for (function, event, _) in routes(&profile, &contact) {
        let r = api
            .send(function, event.authorizer_context("retry_after", "3"))
            .await;
        assert_eq!(r.assert_problem(429), "rate_limited", "{function}");
        assert_eq!(r.header("retry-after"), Some("3"), "{function}");
    }
    // Nothing was written: the profile and its contact as they were, and no other profile.
    let after = api.get(&profile).await;
    assert_eq!(after.body["version"], p["version"]);
    assert_eq!(after.body["contacts"], p["contacts"]);
    assert_eq!(
        api.list(&[]).await.body["data"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn a_request_without_the_authorizers_context_is_401_on_every_route() {
    let api = Api::start().await;
    let profile = id_of(&api.created(json!({"name": "x"})).await);
    let contact = uuid::Uuid::now_v7().to_string();
    let before = api.engine.all_items().await.len();
    for (function, event, _) in routes(&profile, &contact) {
        // Not through `Api::send`, which adds the caller: the raw event without one.
        let response =
            edge::handlers::by_binary(function, &api.app, event.without_caller().request())
                .await
                .unwrap();
        let r = profiles_tests::Reply::from(response);
        assert_eq!(r.assert_problem(401), "unauthorized", "{function}");
    }
    assert_eq!(api.engine.all_items().await.len(), before);
}

#[tokio::test]
async fn a_scope_list_with_unknown_names_grants_only_the_known_ones() {
    let api = Api::start().await;
    let r = api
        .with_scopes("profiles.read admin profiles.* profiles.create2")
        .create(json!({"name": "x"}))
        .await;
    assert_eq!(r.assert_problem(403), "insufficient_scope");
}

#[tokio::test]
async fn another_tenants_principal_of_the_same_name_sees_nothing() {
    let api = Api::start().await;
    let p = api
        .created(json!({"name": "A's", "external_id": "crm-1", "email": "a@example.com"}))
        .await;
    let other = api.as_caller("tenant-b", "user-1");
    other.me().await.assert_problem(404);
    assert_eq!(other.list_own(&[]).await.body["data"], json!([]));
    for filter in [
        ("filter[external_id]", "crm-1"),
        ("filter[email]", "a@example.com"),
        ("filter[owner_id]", "user-1"),
    ] {
        let r = other.list(&[filter]).await;
        assert_eq!(r.body["data"], json!([]), "{filter:?}");
    }
    // The same unique values are free in the other tenant.
    let q = other
        .created(json!({"name": "B's", "external_id": "crm-1", "slug": p["slug"]}))
        .await;
    assert_eq!(
        q["is_primary"], true,
        "tenant-b's user-1 has their own first profile"
    );
    assert_eq!(api.get(&id_of(&p)).await.body["is_primary"], true);
}

// ---------------------------------------------------------------- primary profile

#[tokio::test]
async fn a_principals_first_profile_is_primary_and_me_answers_it() {
    let api = Api::start().await;
    api.me().await.assert_problem(404);
    let first = api
        .created(json!({"name": "First", "contacts": [{"key": "email", "value": "f@example.com"}]}))
        .await;
    assert_eq!(first["is_primary"], true);
    assert_eq!(first["owner_id"], "user-1");
    let second = api.created(json!({"name": "Second"})).await;
    assert_eq!(second["is_primary"], false);

    let me = api.me().await;
    assert_eq!(me.status, 200, "{}", me.raw_body);
    assert_eq!(me.body["id"], first["id"]);
    assert_eq!(me.body["contacts"][0]["value"], "f@example.com");
    assert_eq!(me.header("etag"), Some("\"1\""));
    let r = api
        .send(
            "get-primary-profile",
            Event::load("get-primary-profile").header("if-none-match", "\"1\""),
        )
        .await;
    assert_eq!(r.status, 304);

    // Another principal of the tenant has their own mark.
    let other = api.as_caller("tenant-a", "user-2");
    other.me().await.assert_problem(404);
    let theirs = other.created(json!({"name": "Theirs"})).await;
    assert_eq!(theirs["is_primary"], true);
    assert_eq!(other.me().await.body["id"], theirs["id"]);
    assert_eq!(api.me().await.body["id"], first["id"]);
}

#[tokio::test]
async fn patch_is_primary_true_moves_the_mark() {
    let api = Api::start().await;
    let first = api.created(json!({"name": "First"})).await;
    let second = api.created(json!({"name": "Second"})).await;
    let r = api
        .patch(&id_of(&second), json!({"is_primary": true}))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert_eq!(r.body["is_primary"], true);
    assert_eq!(r.body["version"], 2);
    // The old primary lost the mark, and its version moved with its representation.
    let old = api.get(&id_of(&first)).await;
    assert_eq!(old.body["is_primary"], false);
    assert_eq!(old.body["version"], 2);
    assert_eq!(old.header("etag"), Some("\"2\""));
    assert_eq!(api.me().await.body["id"], second["id"]);
    // Marking the primary again changes nothing but the version of a PATCH.
    let r = api
        .patch(&id_of(&second), json!({"is_primary": true}))
        .await;
    assert_eq!(r.body["is_primary"], true);
    assert_eq!(api.get(&id_of(&first)).await.body["version"], 2);
    // PUT leaves the mark alone when it does not name it, and can move it.
    let r = api.put(&id_of(&second), json!({"name": "Second"})).await;
    assert_eq!(r.body["is_primary"], true, "{}", r.raw_body);
    let r = api
        .put(&id_of(&first), json!({"name": "First", "is_primary": true}))
        .await;
    assert_eq!(r.body["is_primary"], true, "{}", r.raw_body);
    assert_eq!(api.me().await.body["id"], first["id"]);
    // Listed profiles carry the flag.
    let listed = api.list(&[]).await.body["data"].clone();
    let flags: Vec<bool> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["is_primary"].as_bool().unwrap())
        .collect();
    assert_eq!(flags, vec![false, true], "newest first: second, first");
}

#[tokio::test]
async fn concurrent_moves_leave_exactly_one_primary() {
    let api = Arc::new(Api::start().await);
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(id_of(&api.created(json!({"name": format!("P{i}")})).await));
    }
    let tasks: Vec<_> = ids
        .iter()
        .cloned()
        .map(|id| {
            let api = api.clone();
            tokio::spawn(async move { api.patch(&id, json!({"is_primary": true})).await })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap();
        // Each either moved the mark or, having lost every retry, said to retry: never a 500.
        let retry = r.status == 503 && r.header("retry-after") == Some("1");
        assert!(r.status == 200 || retry, "{}", r.raw_body);
    }
    let mut primaries = Vec::new();
    for id in &ids {
        if api.get(id).await.body["is_primary"] == true {
            primaries.push(id.clone());
        }
    }
    assert_eq!(primaries.len(), 1, "{primaries:?}");
    assert_eq!(api.me().await.body["id"], primaries[0].as_str());
}

#[tokio::test]
async fn create_with_is_primary_true_takes_the_mark_and_false_leaves_it() {
    let api = Api::start().await;
    // false: not primary, even as the principal's first profile.
    let quiet = api
        .created(json!({"name": "Quiet", "is_primary": false}))
        .await;
    assert_eq!(quiet["is_primary"], false);
    api.me().await.assert_problem(404);
    // Absent: the first profile with the mark free takes it.
    let first = api.created(json!({"name": "First"})).await;
    assert_eq!(first["is_primary"], true);
    // true: takes the mark from the profile that holds it, in the same write.
    let chosen = api
        .created(json!({"name": "Chosen", "is_primary": true}))
        .await;
    assert_eq!(chosen["is_primary"], true);
    assert_eq!(api.me().await.body["id"], chosen["id"]);
    let first_now = api.get(&id_of(&first)).await.body;
    assert_eq!(first_now["is_primary"], false);
    assert_eq!(
        first_now["version"], 2,
        "the mark left it in a write of its own"
    );
    // false with the mark held elsewhere: as absent.
    let other = api
        .created(json!({"name": "Other", "is_primary": false}))
        .await;
    assert_eq!(other["is_primary"], false);
    assert_eq!(api.me().await.body["id"], chosen["id"]);
}

#[tokio::test]
async fn is_primary_false_on_the_primary_or_not_a_boolean_or_on_anothers_profile_is_refused() {
    let api = Api::start().await;
    let mine = id_of(&api.created(json!({"name": "Mine"})).await);
    // false on the primary one: a well-formed request its state refuses.
    let r = api.patch(&mine, json!({"is_primary": false})).await;
    assert_eq!(r.assert_problem(409), "primary_mark_stays");
    assert_eq!(r.error_fields(), vec!["is_primary"]);
    let r = api.patch(&mine, json!({"is_primary": "yes"})).await;
    assert_eq!(r.error_fields(), vec!["is_primary"]);
    let r = api.create(json!({"name": "x", "is_primary": 1})).await;
    assert_eq!(r.error_fields(), vec!["is_primary"]);
    assert_eq!(api.get(&mine).await.body["version"], 1, "nothing written");
    // false on a profile that is not primary: as it is.
    let second = id_of(&api.created(json!({"name": "Second"})).await);
    let r = api
        .patch(&second, json!({"is_primary": false, "title": "T"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert_eq!(r.body["is_primary"], false);
    assert_eq!(api.me().await.body["id"], mine.as_str());

    let colleague = api.as_caller("tenant-a", "user-2");
    let r = colleague.patch(&mine, json!({"is_primary": true})).await;
    assert_eq!(r.assert_problem(403), "not_owner");
    assert_eq!(api.get(&mine).await.body["version"], 1, "nothing written");
    // A colleague may still edit other fields: the mark is the owner's alone.
    let r = colleague.patch(&mine, json!({"title": "Edited"})).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert_eq!(r.body["is_primary"], true);
}

#[tokio::test]
async fn deleting_the_primary_frees_the_mark_for_the_next_create() {
    let api = Api::start().await;
    let first = id_of(&api.created(json!({"name": "First"})).await);
    let second = api.created(json!({"name": "Second"})).await;
    assert_eq!(api.delete(&first).await.status, 204);
    api.me().await.assert_problem(404);
    assert_eq!(api.get(&id_of(&second)).await.body["is_primary"], false);
    let third = api.created(json!({"name": "Third"})).await;
    assert_eq!(third["is_primary"], true);
    assert_eq!(api.me().await.body["id"], third["id"]);
    // Deleting a profile that is not primary leaves the mark.
    assert_eq!(api.delete(&id_of(&second)).await.status, 204);
    assert_eq!(api.me().await.body["id"], third["id"]);
}

#[tokio::test]
async fn concurrent_first_creates_make_exactly_one_primary() {
    let api = Arc::new(Api::start().await);
    let bodies = (0..6).map(|i| json!({"name": format!("P{i}")})).collect();
    let created = api.created_many(bodies).await;
    let primaries = created.iter().filter(|p| p["is_primary"] == true).count();
    assert_eq!(primaries, 1);
}

// ---------------------------------------------------------------- /profiles/all

#[tokio::test]
async fn profiles_all_lists_only_the_callers_own_with_cursors_bound_to_it() {
    let api = Api::start().await;
    let colleague = api.as_caller("tenant-a", "user-2");
    for i in 0..3 {
        api.created(json!({"name": format!("Mine {i}")})).await;
    }
    let theirs_a = colleague.created(json!({"name": "Theirs A"})).await;
    let theirs_b = colleague.created(json!({"name": "Theirs B"})).await;

    assert_eq!(
        api.list(&[]).await.body["data"].as_array().unwrap().len(),
        5
    );
    let page = colleague.list_own(&[("limit", "1")]).await;
    assert_eq!(page.status, 200, "{}", page.raw_body);
    assert_eq!(page.body["data"][0]["id"], theirs_b["id"]);
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    let link = page.header("link").unwrap().to_owned();
    assert!(link.starts_with("</prod/profiles/all?"), "{link}");
    assert!(!link.contains("owner_id"), "{link}");
    let next = colleague
        .list_own(&[("limit", "1"), ("cursor", &cursor)])
        .await;
    assert_eq!(next.body["data"][0]["id"], theirs_a["id"]);
    assert_eq!(next.body["next_cursor"], json!(null));

    // The cursor belongs to /profiles/all: not to /profiles, not to another caller's.
    let r = colleague.list(&[("limit", "1"), ("cursor", &cursor)]).await;
    assert_eq!(r.error_fields(), vec!["cursor"]);
    let r = api.list_own(&[("limit", "1"), ("cursor", &cursor)]).await;
    assert_eq!(r.error_fields(), vec!["cursor"]);
    let r = colleague.list_own(&[("filter[owner_id]", "user-1")]).await;
    assert_eq!(r.error_fields(), vec!["filter[owner_id]"]);

    // Other sorts and filters combine with it.
    let r = colleague
        .list_own(&[("sort_by", "name"), ("sort_order", "asc")])
        .await;
    let names: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Theirs A", "Theirs B"]);
    let r = api.list_own(&[("filter[name]", "Theirs A")]).await;
    assert_eq!(r.body["data"], json!([]));
}

#[tokio::test]
async fn filter_by_owner_reads_only_that_owners_index_partition() {
    let api = Api::start().await;
    for i in 0..30 {
        api.created(json!({"name": format!("Mine {i}")})).await;
    }
    let colleague = api.as_caller("tenant-a", "user-2");
    colleague.created(json!({"name": "Theirs"})).await;
    let (counting, counter) = colleague.counting();
    counter.take();
    let r = counting.list_own(&[("limit", "5")]).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["next_cursor"], json!(null));
    // The tenant's list layout (read once, then kept a minute), one Query of the owner's
    // partition of its index (not 31 entries of the tenant's list), one BatchGetItem of the
    // page's one profile.
    assert_eq!(counter.take(), ["GetItem", "Query", "BatchGetItem"]);
    counting.list_own(&[("limit", "5")]).await;
    assert_eq!(
        counter.take(),
        ["Query", "BatchGetItem"],
        "the layout is kept"
    );
}
