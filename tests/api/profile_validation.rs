//! What a profile's create accepts and refuses, through the handler on real events: every bad
//! field named at once, unknown and read-only fields, nested values, phone numbers of every
//! region, malformed or missing bodies, media types and size limits.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use profiles_tests::{Api, Event, id_of, json};

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
    for (field, message) in [("nickname", "unknown field"), ("id", "is read-only")] {
        let found = &r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["field"] == field)
            .unwrap()["message"];
        assert_eq!(found, message);
    }
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

/// Each value is refused by the API exactly when docs/openapi.yaml's `ProfileCreate` refuses
/// it, at the edges where trimming could make them differ: lengths counted as sent, control
/// characters that are also white space, a URL with white space, a contact key with spaces
/// around it, a phone number's surrounding white space, `null` for a custom property and for
/// the contacts. What the API accepts keeps what the document says it does.
#[tokio::test]
async fn a_value_is_accepted_exactly_when_the_document_accepts_it() {
    let api = Api::start().await;
    // 254 characters: the most an address may have.
    let email = format!(
        "{}@{}.{}.{}",
        "a".repeat(64),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61)
    );
    assert_eq!(email.len(), 254);
    let long_phone = format!("{}+14155552671", " ".repeat(53));
    let cases: Vec<(serde_json::Value, bool)> = vec![
        (json!({"website_url": "https://acme.com/about"}), true),
        (json!({"website_url": " https://acme.com"}), false),
        (json!({"website_url": "https://acme.com/a b"}), false),
        (json!({"website_url": "https://acme.com/a\\b"}), false),
        (
            json!({"social_links": [{"platform": "x", "url": "https://x.com/\tacme"}]}),
            false,
        ),
        (json!({"email": email}), true),
        (json!({"email": format!(" {email}")}), false),
        (json!({"email": " ann@example.com"}), false),
        (json!({"website_url": "https://acme.com/caf\u{e9}"}), false),
        (json!({"website_url": "https://acme.com/a|b"}), false),
        (json!({"website_url": "https://acme.com/%zz"}), false),
        (
            json!({"website_url": "https://acme.com/caf%C3%A9?q=a+b#top"}),
            true,
        ),
        (json!({"mobile_phone_number": "+14155552671\t"}), true),
        (
            json!({"mobile_phone_number": " tel: +1 415 555 2671 "}),
            true,
        ),
        (json!({"mobile_phone_number": long_phone}), false),
        (json!({"mobile_phone_number": long_phone[1..]}), true),
        (json!({"name": "Ann\u{b}"}), false),
        (json!({"name": "\u{85}Ann"}), false),
        (json!({"name": format!(" {} ", "a".repeat(253))}), true),
        (json!({"name": format!(" {} ", "a".repeat(254))}), false),
        (
            json!({"custom_properties": {"gone": null, "kept": "x"}}),
            true,
        ),
        (json!({"contacts": null}), true),
        (
            json!({"contacts": [{"key": " email ", "value": "ann@example.com"}]}),
            false,
        ),
        (
            json!({"contacts": [{"key": "email", "value": "ann@example.com"}]}),
            true,
        ),
    ];
    for (body, accepted) in cases {
        let documented = profiles_tests::openapi::check_schema("ProfileCreate", &body);
        assert_eq!(documented.is_ok(), accepted, "the document: {documented:?}");
        let r = api.create(body.clone()).await;
        let field = body.as_object().unwrap().keys().next().unwrap().clone();
        if accepted {
            assert_eq!(r.status, 201, "{body}: {}", r.raw_body);
        } else {
            assert_eq!(r.status, 400, "{body}: {}", r.raw_body);
            assert!(
                r.error_fields().iter().all(|f| f.starts_with(&field)),
                "{body}: {:?}",
                r.error_fields()
            );
        }
    }
    // A null custom property on create is the same as leaving it out.
    let p = api
        .created(json!({"custom_properties": {"gone": null, "kept": "x"}}))
        .await;
    assert_eq!(p["custom_properties"], json!({"kept": "x"}));
}
