//! The profile endpoints, each test feeding real API Gateway events through the function's
//! handler, on a real DynamoDB engine. Test names state the contract rule they prove.
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
    let p = api.created(json!({"company": "Acme"})).await;
    assert_eq!(p["headline"], "Acme");
    let p = api.created(json!({"title": "Founder"})).await;
    assert_eq!(p["headline"], "Founder");
    let p = api
        .created(json!({"title": "Founder", "company": "Acme", "headline": "Builds things"}))
        .await;
    assert_eq!(p["headline"], "Builds things");
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
    let a = api.created(json!({"name": "Acme Corp"})).await;
    let b = api.created(json!({"name": "Acme Corp"})).await;
    let c = api.created(json!({"name": "ACME corp!"})).await;
    assert_eq!(a["slug"], "acme-corp");
    assert_eq!(b["slug"], "acme-corp-2");
    assert_eq!(c["slug"], "acme-corp-3");
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

// ---------------------------------------------------------------- validation

#[tokio::test]
async fn every_bad_field_is_reported_at_once() {
    let api = Api::start().await;
    let r = api
        .create(json!({
            "email": "not-an-email",
            "mobile_phone_number": "12345",
            "website_url": "ftp://example.com",
            "country_numeric_code": "999",
            "first_name": "x".repeat(256),
            "bio": "b".repeat(10_001),
            "enabled": "yes",
            "tags": ["ok", "", 7],
            "slug": "Not A Slug",
            "social_links": [{"platform": "x"}],
            "work_experiences": [{"title": "CTO", "company": "Acme", "start_date": "2020-13"}],
            "education": [{"school": "MIT", "start_date": "2020-01", "end_date": "2019-05"}],
            "custom_properties": {"bad key!": "v", "n": 5},
        }))
        .await;
    assert_eq!(r.assert_problem(400), "validation_failed");
    let mut fields = r.error_fields();
    fields.sort();
    let mut expected = vec![
        "bio",
        "country_numeric_code",
        "custom_properties.bad key!",
        "custom_properties.n",
        "education[0].end_date",
        "email",
        "enabled",
        "first_name",
        "mobile_phone_number",
        "slug",
        "social_links[0].url",
        "tags[1]",
        "tags[2]",
        "website_url",
        "work_experiences[0].start_date",
    ];
    expected.sort();
    assert_eq!(fields, expected, "{}", r.raw_body);
    assert!(api.engine.all_items().await.is_empty(), "nothing written");
}

#[tokio::test]
async fn unknown_and_read_only_fields_are_rejected_by_name() {
    let api = Api::start().await;
    let r = api
        .create(
            json!({"name": "A", "nickname": "x", "id": "abc", "version": 3, "created_at": "x",
                       "owner_id": "me", "country": {}, "photo_url": "https://x.io/a.png"}),
        )
        .await;
    r.assert_problem(400);
    let mut fields = r.error_fields();
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "country",
            "created_at",
            "id",
            "nickname",
            "owner_id",
            "photo_url",
            "version"
        ]
    );
    let nickname = &r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == "nickname")
        .unwrap()["message"];
    assert_eq!(nickname, "unknown field");
    let id = &r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == "id")
        .unwrap()["message"];
    assert_eq!(id, "is read-only");
}

#[tokio::test]
async fn nested_objects_reject_unknown_members_and_require_theirs() {
    let api = Api::start().await;
    let r = api
        .create(json!({
            "social_links": [{"platform": "x", "url": "https://x.com/a", "followers": 3}],
            "work_experiences": [{"title": "CTO"}],
            "contacts": [{"key": "fax", "value": "1"}, {"key": "email", "value": "bad"}],
        }))
        .await;
    r.assert_problem(400);
    let mut fields = r.error_fields();
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "contacts[0].key",
            "contacts[1].value",
            "social_links[0].followers",
            "work_experiences[0].company",
            "work_experiences[0].start_date",
        ]
    );
}

#[tokio::test]
async fn valid_nested_values_are_stored_and_shown() {
    let api = Api::start().await;
    let p = api
        .created(json!({
            "social_links": [{"platform": "LinkedIn", "url": "https://linkedin.com/in/mary"}],
            "work_experiences": [{"title": "CTO", "company": "Acme", "start_date": "2020-01", "end_date": "2024-06-30"}],
            "education": [{"school": "MIT", "degree": "BSc"}],
            "skills": ["Rust", "  DynamoDB  "],
            "custom_properties": {"clicker": "1", "plan.tier": "gold"},
            "website_url": "https://acme.com",
        }))
        .await;
    assert_eq!(p["social_links"][0]["url"], "https://linkedin.com/in/mary");
    assert_eq!(p["work_experiences"][0]["end_date"], "2024-06-30");
    assert_eq!(p["education"][0], json!({"school": "MIT", "degree": "BSc"}));
    assert_eq!(
        p["skills"],
        json!(["Rust", "DynamoDB"]),
        "items are trimmed"
    );
    assert_eq!(
        p["custom_properties"],
        json!({"clicker": "1", "plan.tier": "gold"})
    );
    assert_eq!(
        p["website_url"], "https://acme.com",
        "as the caller sent it"
    );
}

#[tokio::test]
async fn contract_example_phone_and_email_are_normalized() {
    let api = Api::start().await;
    let p = api
        .created(json!({"mobile_phone_number": "+49 6582 45684", "email": "john@EXAMPLE.com"}))
        .await;
    assert_eq!(p["mobile_phone_number"], "+49658245684");
    assert_eq!(p["email"], "john@example.com");
}

/// Every region's example numbers in libphonenumber's metadata, of every kind the region
/// has, are accepted and come back in E.164, whether written in E.164 or in the
/// international format. Checking a number's validity compiles its region's patterns, so
/// this proves they compile under regex-lite and match: rlibphonenumber panics on a pattern
/// that does not compile, and a function would abort on that region's numbers.
#[test]
fn every_regions_example_numbers_are_accepted() {
    use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneNumberFormat, PhoneNumberType};
    let util = &*PHONE_NUMBER_UTIL;
    let (mut checked, mut refused) = (0, Vec::new());
    let mut regions = 0;
    for region in util.get_supported_regions() {
        regions += 1;
        for kind in [
            PhoneNumberType::FixedLine,
            PhoneNumberType::Mobile,
            PhoneNumberType::TollFree,
            PhoneNumberType::PremiumRate,
            PhoneNumberType::SharedCost,
            PhoneNumberType::VoIP,
            PhoneNumberType::PersonalNumber,
            PhoneNumberType::Pager,
            PhoneNumberType::UAN,
            PhoneNumberType::VoiceMail,
        ] {
            let Ok(example) = util.get_example_number_for_type_and_region(region, kind) else {
                continue;
            };
            let e164 = util.format(&example, PhoneNumberFormat::E164).into_owned();
            let spaced = util
                .format(&example, PhoneNumberFormat::International)
                .into_owned();
            for written in [&e164, &spaced] {
                checked += 1;
                match shared::validate::Phone::new(written) {
                    Ok(p) if p.as_str() == e164 => {}
                    other => refused.push(format!("{region} {kind:?} {written}: {other:?}")),
                }
            }
        }
    }
    assert!(regions > 240, "{regions} regions");
    assert!(checked > 2_000, "{checked} numbers checked");
    assert!(
        refused.is_empty(),
        "{} refused: {refused:#?}",
        refused.len()
    );
}

#[tokio::test]
async fn duplicate_contacts_in_one_create_are_rejected() {
    let api = Api::start().await;
    let r = api
        .create(json!({"contacts": [
            {"key": "email", "value": "a@example.com"},
            {"key": "email", "value": "a@EXAMPLE.com"}
        ]}))
        .await;
    r.assert_problem(400);
    assert_eq!(r.error_fields(), vec!["contacts[1]"]);
}

#[tokio::test]
async fn too_many_items_in_a_list_is_400() {
    let api = Api::start().await;
    let tags: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
    let r = api.create(json!({"tags": tags})).await;
    r.assert_problem(400);
    assert_eq!(r.error_fields(), vec!["tags"]);
}

#[tokio::test]
async fn malformed_json_is_400() {
    let api = Api::start().await;
    let r = api
        .send(
            "create-profile",
            Event::load("create-profile").raw_body("{\"name\": "),
        )
        .await;
    assert_eq!(r.assert_problem(400), "malformed_json");
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_400() {
    let api = Api::start().await;
    let r = api
        .send(
            "create-profile",
            Event::load("create-profile").raw_body("[1, 2]"),
        )
        .await;
    assert_eq!(r.assert_problem(400), "invalid_body");
}

#[tokio::test]
async fn a_missing_body_is_400() {
    let api = Api::start().await;
    let r = api
        .send("create-profile", Event::load("create-profile").no_body())
        .await;
    assert_eq!(r.assert_problem(400), "missing_body");
}

#[tokio::test]
async fn a_non_json_media_type_is_415() {
    let api = Api::start().await;
    let event = Event::load("create-profile")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .raw_body("name=x");
    let r = api.send("create-profile", event).await;
    assert_eq!(r.assert_problem(415), "unsupported_media_type");
}

#[tokio::test]
async fn json_with_a_charset_is_accepted() {
    let api = Api::start().await;
    let event = Event::load("create-profile")
        .header("Content-Type", "application/json; charset=utf-8")
        .body(json!({"name": "Charset"}));
    assert_eq!(api.send("create-profile", event).await.status, 201);
}

#[tokio::test]
async fn a_body_over_400_kb_is_413() {
    let api = Api::start().await;
    let r = api.create(json!({"bio": "x".repeat(410 * 1024)})).await;
    assert_eq!(r.assert_problem(413), "payload_too_large");
    assert!(api.engine.all_items().await.is_empty());
}

#[tokio::test]
async fn a_profile_grown_past_the_item_limit_is_413_and_unchanged() {
    let api = Api::start().await;
    // Each 4-byte character counts once against the length limit, four times in storage.
    let big = |c: char| -> Vec<String> { (0..100).map(|_| c.to_string().repeat(255)).collect() };
    let p = api
        .created(json!({"tags": big('😀'), "lists": big('😁'), "skills": big('😂')}))
        .await;
    let id = id_of(&p);
    let r = api.patch(&id, json!({"industry": big('😃')})).await;
    assert_eq!(r.assert_problem(413), "payload_too_large");
    let got = api.get(&id).await;
    assert_eq!(got.body["version"], 1);
    assert_eq!(got.body["industry"], json!([]));
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
    let r = api.get(&uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(r.assert_problem(404), "not_found");
    let r = api.get("not-a-uuid").await;
    assert_eq!(r.assert_problem(404), "not_found");
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
                        "title": format!("{} ", long('t')), "company": "Acme"}))
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
    other.get(&id).await.assert_problem(404);
    other
        .patch(&id, json!({"name": "x"}))
        .await
        .assert_problem(404);
    other.put(&id, json!({})).await.assert_problem(404);
    other.delete(&id).await.assert_problem(404);
    assert_eq!(other.list(&[]).await.body["data"], json!([]));
}
