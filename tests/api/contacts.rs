//! The contacts sub-resource: validation and normalization by key, at most 50 per profile and
//! no value twice (atomically, under concurrency), 404s through missing profiles, ETags, and
//! the cascade when a profile is deleted. Handlers fed real API Gateway events, on a real
//! engine.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use profiles_tests::{Api, Event, id_of, json};
use serde_json::Value;

fn emails(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"key": "email", "value": format!("user{i}@example.com")}))
        .collect()
}

async fn profile(api: &Api) -> String {
    id_of(&api.created(json!({"name": "Has Contacts"})).await)
}

#[tokio::test]
async fn create_contact_normalizes_by_key_and_answers_201_with_location_and_etag() {
    let api = Api::start().await;
    let p = profile(&api).await;
    let r = api
        .create_contact(
            &p,
            json!({"key": "phone", "value": "+1 (415) 555-2671", "external_id": "crm-42"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.raw_body);
    let c = &r.body;
    assert_eq!(c["key"], "phone");
    assert_eq!(c["value"], "+14155552671", "E.164");
    assert_eq!(c["external_id"], "crm-42");
    assert_eq!(c["created_at"], c["updated_at"]);
    let cid = c["id"].as_str().unwrap();
    assert_eq!(
        r.header("location").unwrap(),
        format!("/prod/profiles/{p}/contacts/{cid}"),
        "the stage the request came through comes first"
    );
    assert_eq!(r.header("etag"), Some("\"1\""));

    let r = api
        .create_contact(&p, json!({"key": "email", "value": "Mary@Example.COM"}))
        .await;
    assert_eq!(
        r.body["value"], "Mary@example.com",
        "the domain lower-cased"
    );

    let r = api.get_contact(&p, cid).await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body, c);
    let list = api.list_contacts(&p).await;
    assert_eq!(list.status, 200);
    let values: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["+14155552671", "Mary@example.com"], "oldest first");
}

#[tokio::test]
async fn a_bad_key_value_or_member_is_400_naming_the_field() {
    let api = Api::start().await;
    let p = profile(&api).await;
    let cases = [
        (json!({"key": "fax", "value": "123"}), "key"),
        (json!({"key": "email", "value": "not-an-address"}), "value"),
        (json!({"key": "phone", "value": "12"}), "value"),
        (json!({"value": "a@example.com"}), "key"),
        (json!({"key": "email"}), "value"),
        (
            json!({"key": "email", "value": "a@example.com", "label": "work"}),
            "label",
        ),
        (
            json!({"key": "email", "value": "a@example.com", "id": "x"}),
            "id",
        ),
        (
            json!({"key": "email", "value": "a@example.com", "external_id": ""}),
            "external_id",
        ),
    ];
    for (body, field) in cases {
        let r = api.create_contact(&p, body.clone()).await;
        r.assert_problem(400);
        assert!(
            r.error_fields().contains(&field.to_owned()),
            "{body} should name {field}: {}",
            r.raw_body
        );
    }
    assert_eq!(
        api.list_contacts(&p).await.body["data"],
        json!([]),
        "nothing written"
    );
}

/// One answer names every bad field: a missing or unusable `key` does not hide a missing
/// `value`, on POST, on PUT, and inside a profile's `contacts` on create.
#[tokio::test]
async fn every_bad_field_of_a_contact_is_reported_at_once() {
    let api = Api::start().await;
    let p = profile(&api).await;
    let c = api
        .created_contact(&p, json!({"key": "email", "value": "a@example.com"}))
        .await;
    let cid = c["id"].as_str().unwrap();
    let sorted = |r: &profiles_tests::Reply| {
        let mut fields = r.error_fields();
        fields.sort();
        fields
    };
    for body in [json!({}), json!({"key": "fax"}), json!({"value": 5})] {
        let r = api.create_contact(&p, body.clone()).await;
        r.assert_problem(400);
        assert_eq!(sorted(&r), ["key", "value"], "POST {body}: {}", r.raw_body);
        let r = api.update_contact("PUT", &p, cid, body.clone()).await;
        r.assert_problem(400);
        assert_eq!(sorted(&r), ["key", "value"], "PUT {body}: {}", r.raw_body);
    }
    let r = api.create(json!({"contacts": [{"key": "fax"}]})).await;
    r.assert_problem(400);
    assert_eq!(
        sorted(&r),
        ["contacts[0].key", "contacts[0].value"],
        "{}",
        r.raw_body
    );
    assert_eq!(api.get_contact(&p, cid).await.body, c, "unchanged");
}

#[tokio::test]
async fn every_contact_route_of_a_missing_profile_is_404() {
    let api = Api::start().await;
    let missing = uuid::Uuid::now_v7().to_string();
    let cid = uuid::Uuid::now_v7().to_string();
    api.list_contacts(&missing).await.assert_problem(404);
    api.create_contact(&missing, json!({"key": "email", "value": "a@example.com"}))
        .await
        .assert_problem(404);
    api.get_contact(&missing, &cid).await.assert_problem(404);
    for method in ["PUT", "PATCH"] {
        api.update_contact(
            method,
            &missing,
            &cid,
            json!({"key": "email", "value": "a@example.com"}),
        )
        .await
        .assert_problem(404);
    }
    api.delete_contact(&missing, &cid).await.assert_problem(404);
    assert!(api.engine.all_items().await.is_empty(), "nothing written");
}

#[tokio::test]
async fn a_contact_of_another_profile_or_an_unknown_one_is_404() {
    let api = Api::start().await;
    let a = profile(&api).await;
    let b = id_of(&api.created(json!({"name": "Other"})).await);
    let c = api
        .created_contact(&a, json!({"key": "email", "value": "a@example.com"}))
        .await;
    let cid = c["id"].as_str().unwrap();
    api.get_contact(&b, cid).await.assert_problem(404);
    api.update_contact("PATCH", &b, cid, json!({"external_id": "x"}))
        .await
        .assert_problem(404);
    api.delete_contact(&b, cid).await.assert_problem(404);
    api.get_contact(&a, "not-a-uuid").await.assert_problem(404);
    api.get_contact(&a, &uuid::Uuid::now_v7().to_string())
        .await
        .assert_problem(404);
    assert_eq!(api.get_contact(&a, cid).await.status, 200, "untouched");
}

#[tokio::test]
async fn the_same_key_and_value_twice_is_409_however_it_is_written() {
    let api = Api::start().await;
    let p = profile(&api).await;
    let first = api
        .created_contact(&p, json!({"key": "phone", "value": "+14155552671"}))
        .await;
    let r = api
        .create_contact(&p, json!({"key": "phone", "value": "+1 415-555-2671"}))
        .await;
    r.assert_problem(409);
    assert_eq!(r.body["code"], "contact_exists");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains(first["id"].as_str().unwrap()),
        "names the existing contact: {}",
        r.raw_body
    );
    // The same value under another profile is fine.
    let other = id_of(&api.created(json!({"name": "Other"})).await);
    api.created_contact(&other, json!({"key": "phone", "value": "+14155552671"}))
        .await;
    // Changing another contact to the taken value is a 409 too, and changes nothing.
    let second = api
        .created_contact(&p, json!({"key": "email", "value": "b@example.com"}))
        .await;
    let sid = second["id"].as_str().unwrap();
    let r = api
        .update_contact(
            "PUT",
            &p,
            sid,
            json!({"key": "phone", "value": "+14155552671"}),
        )
        .await;
    r.assert_problem(409);
    assert_eq!(api.get_contact(&p, sid).await.body, second);
}

#[tokio::test]
async fn a_profile_holds_at_most_50_contacts() {
    let api = Api::start().await;
    let p = id_of(
        &api.created(json!({"name": "Full", "contacts": emails(49)}))
            .await,
    );
    api.created_contact(&p, json!({"key": "email", "value": "fiftieth@example.com"}))
        .await;
    let r = api
        .create_contact(
            &p,
            json!({"key": "email", "value": "one-too-many@example.com"}),
        )
        .await;
    r.assert_problem(409);
    assert_eq!(r.body["code"], "too_many_contacts");
    assert_eq!(
        api.list_contacts(&p).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        50
    );
    // Deleting one makes room again.
    let any = api.list_contacts(&p).await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(api.delete_contact(&p, &any).await.status, 204);
    api.created_contact(
        &p,
        json!({"key": "email", "value": "one-too-many@example.com"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_cannot_pass_the_limit() {
    let api = Arc::new(Api::start().await);
    let p = id_of(
        &api.created(json!({"name": "Almost full", "contacts": emails(45)}))
            .await,
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let (api, p) = (api.clone(), p.clone());
        tasks.spawn(async move {
            api.create_contact(
                &p,
                json!({"key": "email", "value": format!("racer{i}@example.com")}),
            )
            .await
        });
    }
    let replies = tasks.join_all().await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 5, "exactly the room that was left");
    for r in replies.iter().filter(|r| r.status != 201) {
        assert_eq!(r.status, 409, "{}", r.raw_body);
    }
    assert_eq!(
        api.list_contacts(&p).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        50
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_value_make_one_contact() {
    let api = Arc::new(Api::start().await);
    let p = profile(&api).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (api, p) = (api.clone(), p.clone());
        tasks.spawn(async move {
            api.create_contact(&p, json!({"key": "email", "value": "same@example.com"}))
                .await
                .status
        });
    }
    let mut statuses = tasks.join_all().await;
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(
        api.list_contacts(&p).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn get_profile_embeds_its_contacts_from_one_query() {
    let api = Api::start().await;
    let p = id_of(
        &api.created(json!({"name": "Embedded", "contacts": emails(30)}))
            .await,
    );
    let (counting, ops) = api.counting();
    let r = counting.get(&p).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["contacts"].as_array().unwrap().len(), 30);
    assert_eq!(ops.take(), ["Query"], "one Query, not one read per contact");
    let r = counting.list_contacts(&p).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 30);
    assert_eq!(ops.take(), ["Query"]);
}

#[tokio::test]
async fn put_replaces_the_contact_and_patch_merges_into_it() {
    let api = Api::start().await;
    let p = profile(&api).await;
    let c = api
        .created_contact(
            &p,
            json!({"key": "email", "value": "old@example.com", "external_id": "ext"}),
        )
        .await;
    let cid = c["id"].as_str().unwrap();

    // PATCH: value only keeps the key and external_id.
    let r = api
        .update_contact("PATCH", &p, cid, json!({"value": "New@EXAMPLE.com"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert_eq!(r.body["value"], "New@example.com");
    assert_eq!(r.body["external_id"], "ext");
    assert_eq!(r.header("etag"), Some("\"2\""));
    assert!(r.body["updated_at"].as_str() > c["updated_at"].as_str());
    assert_eq!(r.body["created_at"], c["created_at"]);

    // PATCH: null clears; a new key needs its value.
    let r = api
        .update_contact("PATCH", &p, cid, json!({"external_id": null}))
        .await;
    assert_eq!(r.body["external_id"], Value::Null);
    let r = api
        .update_contact("PATCH", &p, cid, json!({"key": "phone"}))
        .await;
    r.assert_problem(400);
    assert_eq!(r.error_fields(), ["value"]);
    api.update_contact("PATCH", &p, cid, json!({}))
        .await
        .assert_problem(400);

    // PUT: the whole contact; an absent external_id is cleared, key and value required.
    let r = api
        .update_contact(
            "PUT",
            &p,
            cid,
            json!({"key": "phone", "value": "+44 20 7946 0958", "external_id": "x"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert_eq!(r.body["value"], "+442079460958");
    let r = api
        .update_contact(
            "PUT",
            &p,
            cid,
            json!({"key": "phone", "value": "+442079460958"}),
        )
        .await;
    assert_eq!(r.body["external_id"], Value::Null);
    api.update_contact("PUT", &p, cid, json!({"external_id": "only"}))
        .await
        .assert_problem(400);

    // The old value is free again; the new one is taken.
    api.created_contact(&p, json!({"key": "email", "value": "old@example.com"}))
        .await;
    api.create_contact(&p, json!({"key": "phone", "value": "+442079460958"}))
        .await
        .assert_problem(409);
}

#[tokio::test]
async fn contacts_honour_if_match_and_if_none_match() {
    let api = Api::start().await;
    let p = profile(&api).await;
    let c = api
        .created_contact(&p, json!({"key": "email", "value": "a@example.com"}))
        .await;
    let cid = c["id"].as_str().unwrap();
    let event = |name: &str| Event::load(name).contact_id(&p, cid);

    let r = api
        .send(
            "get-contact",
            event("get-contact").header("If-None-Match", "\"1\""),
        )
        .await;
    assert_eq!(r.status, 304);
    for method in ["PATCH", "PUT"] {
        let stale = event("update-contact")
            .method(method)
            .header("Content-Type", "application/json")
            .header("If-Match", "\"9\"")
            .body(json!({"key": "email", "value": "b@example.com"}));
        api.send("update-contact", stale).await.assert_problem(412);
    }
    api.send(
        "delete-contact",
        event("delete-contact").header("If-Match", "\"9\""),
    )
    .await
    .assert_problem(412);
    assert_eq!(api.get_contact(&p, cid).await.body, c, "unchanged");

    let fresh = event("update-contact")
        .method("PATCH")
        .header("If-Match", "\"1\"")
        .header("Prefer", "return=minimal")
        .body(json!({"external_id": "v2"}));
    let r = api.send("update-contact", fresh).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("etag"), Some("\"2\""));
    let r = api
        .send(
            "delete-contact",
            event("delete-contact").header("If-Match", "\"2\""),
        )
        .await;
    assert_eq!(r.status, 204);
    api.delete_contact(&p, cid).await.assert_problem(404);
}

#[tokio::test]
async fn contact_preconditions_follow_rfc_9110_like_profiles() {
    let api = Api::start().await;
    let p = profile(&api).await;
    let c = api
        .created_contact(&p, json!({"key": "email", "value": "a@example.com"}))
        .await;
    let cid = c["id"].as_str().unwrap();
    let event = |name: &str| Event::load(name).contact_id(&p, cid);
    let patch = |header: &str, value: &str| {
        event("update-contact")
            .method("PATCH")
            .header(header, value)
            .body(json!({"external_id": "v2"}))
    };
    for (header, value) in [
        ("If-Match", "W/\"1\""),
        ("If-Match", "\"not-ours\""),
        ("If-None-Match", "*"),
        ("If-None-Match", "W/\"1\""),
    ] {
        let r = api.send("update-contact", patch(header, value)).await;
        assert_eq!(
            r.assert_problem(412),
            "precondition_failed",
            "{header}: {value}"
        );
    }
    let delete = event("delete-contact").header("If-Match", "W/\"1\"");
    api.send("delete-contact", delete).await.assert_problem(412);
    assert_eq!(api.get_contact(&p, cid).await.body, c, "unchanged");
    let get = event("get-contact").header("If-None-Match", "\"5\", W/\"1\"");
    assert_eq!(api.send("get-contact", get).await.status, 304);
    let r = api
        .send("update-contact", patch("If-Match", "\"3\", \"1\""))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
}

#[tokio::test]
async fn a_contact_change_changes_the_profiles_etag() {
    let api = Api::start().await;
    let p = profile(&api).await;
    let before = api.get(&p).await.header("etag").unwrap().to_owned();
    let c = api
        .created_contact(&p, json!({"key": "email", "value": "a@example.com"}))
        .await;
    let after = api.get(&p).await;
    assert_ne!(
        after.header("etag").unwrap(),
        before,
        "the representation changed"
    );
    assert_eq!(after.body["contacts"][0], c);
    // A client holding the old ETag cannot overwrite unknowingly.
    let stale = Event::load("update-profile")
        .profile_id(&p)
        .header("If-Match", &before)
        .body(json!({"name": "x"}));
    api.send("update-profile", stale).await.assert_problem(412);
    // A profile write keeps the contact index: the value is still taken.
    assert_eq!(api.patch(&p, json!({"name": "Renamed"})).await.status, 200);
    api.create_contact(&p, json!({"key": "email", "value": "a@example.com"}))
        .await
        .assert_problem(409);
}

#[tokio::test]
async fn deleting_a_profile_deletes_its_contacts_at_0_1_and_50() {
    let api = Api::start().await;
    for n in [0, 1, 50] {
        let p = id_of(
            &api.created(json!({"name": format!("With {n}"), "external_id": format!("e{n}"), "contacts": emails(n)}))
                .await,
        );
        assert!(!api.engine.all_items().await.is_empty());
        assert_eq!(api.delete(&p).await.status, 204);
        assert!(
            api.engine.all_items().await.is_empty(),
            "nothing of the profile with {n} contacts remains"
        );
    }
}

#[tokio::test]
async fn a_contact_left_without_its_profile_is_unreachable() {
    // What a failure part-way through a delete would leave, if the delete were not one
    // transaction: a contact item whose profile is gone. Written here by hand.
    let api = Api::start().await;
    let p = id_of(
        &api.created(json!({"name": "Doomed", "contacts": emails(1)}))
            .await,
    );
    let contact = api.get(&p).await.body["contacts"][0].clone();
    let cid = contact["id"].as_str().unwrap().to_owned();
    let profile_key = api
        .engine
        .all_items()
        .await
        .into_iter()
        .find(|i| i["SK"].as_s().unwrap() == "PROFILE")
        .unwrap();
    api.engine
        .client
        .delete_item()
        .table_name(&api.engine.table)
        .key("PK", profile_key["PK"].clone())
        .key("SK", profile_key["SK"].clone())
        .send()
        .await
        .unwrap();

    api.list_contacts(&p).await.assert_problem(404);
    api.get_contact(&p, &cid).await.assert_problem(404);
    api.update_contact("PATCH", &p, &cid, json!({"external_id": "x"}))
        .await
        .assert_problem(404);
    api.delete_contact(&p, &cid).await.assert_problem(404);
    api.create_contact(&p, json!({"key": "email", "value": "new@example.com"}))
        .await
        .assert_problem(404);
    api.get(&p).await.assert_problem(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contacts_added_while_the_profile_is_deleted_are_never_orphaned() {
    for _ in 0..3 {
        let api = Arc::new(Api::start().await);
        let p = id_of(
            &api.created(json!({"name": "Racing", "contacts": emails(5)}))
                .await,
        );
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let (api, p) = (api.clone(), p.clone());
            tasks.spawn(async move {
                api.create_contact(
                    &p,
                    json!({"key": "email", "value": format!("late{i}@example.com")}),
                )
                .await
                .status
            });
        }
        let deleting = {
            let (api, p) = (api.clone(), p.clone());
            tokio::spawn(async move { api.delete(&p).await.status })
        };
        for status in tasks.join_all().await {
            assert!(status == 201 || status == 404, "{status}");
        }
        let deleted = deleting.await.unwrap();
        assert!(deleted == 204 || deleted == 409, "{deleted}");
        let items = api.engine.all_items().await;
        let has_profile = items.iter().any(|i| i["SK"].as_s().unwrap() == "PROFILE");
        if deleted == 204 {
            assert!(
                items.is_empty(),
                "{} items outlived the delete",
                items.len()
            );
        } else {
            assert!(has_profile, "contacts remain only with their profile");
        }
    }
}

#[tokio::test]
async fn another_tenants_contacts_are_404() {
    let api = Api::start().await;
    let p = profile(&api).await;
    let c = api
        .created_contact(&p, json!({"key": "email", "value": "a@example.com"}))
        .await;
    let cid = c["id"].as_str().unwrap();
    let other = api.as_caller("tenant-b", "user-1");
    other.list_contacts(&p).await.assert_problem(404);
    other.get_contact(&p, cid).await.assert_problem(404);
    other
        .create_contact(&p, json!({"key": "email", "value": "b@example.com"}))
        .await
        .assert_problem(404);
    other
        .update_contact("PATCH", &p, cid, json!({"external_id": "x"}))
        .await
        .assert_problem(404);
    other.delete_contact(&p, cid).await.assert_problem(404);
}
