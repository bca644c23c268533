//! The store and configuration below the handlers, on the same real engine.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aws_sdk_dynamodb::types::AttributeValue;
use profiles_tests::{Api, Engine, id_of, json};
use shared::config::Config;
use shared::config::env;
use shared::store::schema::Item;

#[tokio::test]
async fn a_profile_with_every_field_round_trips_through_the_table() {
    let api = Api::start().await;
    let body = json!({
        "name": "Acme Corp", "first_name": "Mary", "middle_name": "Jane", "last_name": "Smith",
        "slug": "acme", "title": "CTO", "company": "Acme", "location": "Berlin",
        "headline": "Builds", "bio": "Bio", "overview": "Overview", "products_and_services": "P&S",
        "website_url": "https://acme.com/", "email": "mary@acme.com",
        "mobile_phone_number": "+14155552671", "country_numeric_code": "276",
        "enabled": false, "is_public": true,
        "key_achievements": ["k"], "unique_value_propositions": ["u"], "industry": ["i"],
        "target_audience": ["t"], "tags": ["tag"], "lists": ["l"], "skills": ["s"],
        "social_links": [{"platform": "x", "url": "https://x.com/acme"}],
        "work_experiences": [{"title": "CTO", "company": "Acme", "start_date": "2020-01",
                              "end_date": "2021-02-03", "description": "d"}],
        "education": [{"school": "MIT", "degree": "BSc", "field": "CS",
                       "start_date": "2010", "end_date": "2014-06"}],
        "organization_id": "org-1", "external_id": "ext-1", "comment": "c",
        "custom_properties": {"a": "1"},
    });
    let r = api.create(body.clone()).await;
    // "2010" is not a date of the contract: the one bad field is named.
    assert_eq!(r.error_fields(), vec!["education[0].start_date"]);
    let mut body = body;
    body["education"][0]["start_date"] = json!("2010-09");
    let created = api.created(body.clone()).await;
    for (field, value) in body.as_object().unwrap() {
        assert_eq!(&created[field], value, "{field}");
    }
    assert_eq!(created["country"]["alpha3_code"], "DEU");
    assert_eq!(created["country"]["region_name"], "Western Europe");
    let read = api.get(&id_of(&created)).await;
    assert_eq!(read.body, created, "what is stored reads back exactly");
}

/// The store's size estimate must agree with the engine's 400 KB limit, or the 413 guard
/// would let a 500 through (or refuse what fits).
#[tokio::test]
async fn item_size_estimate_agrees_with_the_engine_limit() {
    let engine = Engine::start().await;
    let item = |pad: usize| -> Item {
        Item::from([
            ("PK".to_owned(), AttributeValue::S("p".into())),
            ("SK".to_owned(), AttributeValue::S("s".into())),
            ("blob".to_owned(), AttributeValue::S("x".repeat(pad))),
        ])
    };
    let limit = 400 * 1024;
    let fits = item(limit - 6 - 4);
    assert_eq!(shared::store::item_size(&fits), limit);
    let put = |i: Item| {
        engine
            .client
            .put_item()
            .table_name(&engine.table)
            .set_item(Some(i))
            .send()
    };
    assert!(
        put(fits).await.is_ok(),
        "an item of exactly 400 KB is accepted"
    );
    let over = item(limit - 6 - 4 + 1);
    assert_eq!(shared::store::item_size(&over), limit + 1);
    assert!(put(over).await.is_err(), "one byte more is refused");
}

fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    }
}

#[test]
fn config_needs_a_table_name() {
    let err = Config::from_lookup(lookup(&[(env::DYNAMODB_ENDPOINT, "http://x")])).unwrap_err();
    assert!(err.to_string().contains(env::TABLE_NAME), "{err}");
}

#[test]
fn config_outside_a_local_engine_needs_credentials_and_hides_them() {
    let err = Config::from_lookup(lookup(&[(env::TABLE_NAME, "t")])).unwrap_err();
    assert!(err.to_string().contains(env::AWS_ACCESS_KEY_ID), "{err}");
    let deployed = [
        (env::TABLE_NAME, "t"),
        (env::AWS_ACCESS_KEY_ID, "AKIDEXAMPLE"),
        (env::AWS_SECRET_ACCESS_KEY, "very-secret-value"),
        (env::AWS_SESSION_TOKEN, "session-token-value"),
        (env::AWS_REGION, "eu-west-1"),
    ];
    // Only list-profiles gets a cursor key; every other function loads without one.
    let config = Config::from_lookup(lookup(&deployed)).unwrap();
    assert!(config.cursor_key.is_none());
    let mut short = deployed.to_vec();
    short.push((env::PROFILES_CURSOR_KEY, "too-short"));
    let err = Config::from_lookup(lookup(&short)).unwrap_err();
    assert!(err.to_string().contains("at least 32"), "{err}");
    let mut full = deployed.to_vec();
    full.push((
        env::PROFILES_CURSOR_KEY,
        "cursor-key-0123456789-0123456789-abc",
    ));
    let config = Config::from_lookup(lookup(&full)).unwrap();
    assert_eq!(config.region, "eu-west-1");
    let debug = format!("{config:?}");
    for secret in [
        "very-secret-value",
        "session-token-value",
        "cursor-key-0123",
    ] {
        assert!(!debug.contains(secret), "{debug}");
    }
}
