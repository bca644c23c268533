//! Prefix search (`filter[name_prefix]`, `filter[email_prefix]`): case-insensitive, read as a
//! key range of the name or email index (never a filter over the whole list), paged with the
//! same cursors, combinable with exact filters; a bad prefix or a combination no index
//! serves is a 400 naming the parameter.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use profiles_tests::{Api, json};
use serde_json::Value;

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn people(api: &Api) {
    for (name, email, tag) in [
        ("Ann Lee", "ann.lee@example.com", "red"),
        ("anna Ross", "Anna.Ross@Example.com", "blue"),
        ("ANNIKA Berg", "annika@example.org", "red"),
        ("Annabel", "bel@example.com", "red"),
        ("Bob Ann", "ann@example.net", "red"),
        ("Dan", "dan@example.com", "blue"),
    ] {
        api.created(json!({"name": name, "email": email, "tags": [tag]}))
            .await;
    }
    api.created(json!({"first_name": "Anne", "last_name": "Frank"}))
        .await;
}

#[tokio::test]
async fn a_name_prefix_finds_names_that_start_with_it_whatever_their_case_in_name_order() {
    let api = Api::start().await;
    people(&api).await;
    let (found, _) = api.walk(&[("filter[name_prefix]", "aNn")]).await;
    assert_eq!(
        names(&found),
        [
            "Ann Lee",
            "anna Ross",
            "Annabel",
            "Anne Frank",
            "ANNIKA Berg"
        ],
        "ascending by the folded name; the shown name joined from its parts counts"
    );
    let (desc, _) = api
        .walk(&[("filter[name_prefix]", "ann"), ("sort_order", "desc")])
        .await;
    assert_eq!(names(&desc)[0], "ANNIKA Berg");
    let (exact, _) = api
        .walk(&[("filter[name_prefix]", "Ann L"), ("sort_by", "name")])
        .await;
    assert_eq!(names(&exact), ["Ann Lee"]);
    let (none, _) = api.walk(&[("filter[name_prefix]", "Zed")]).await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn a_prefix_search_pages_with_cursors_and_combines_with_exact_filters() {
    let api = Api::start().await;
    people(&api).await;
    let (paged, pages) = api
        .walk(&[("filter[name_prefix]", "an"), ("limit", "2")])
        .await;
    assert_eq!(pages, 3, "five names, two a page");
    assert_eq!(names(&paged).len(), 5);
    let (red, _) = api
        .walk(&[
            ("filter[name_prefix]", "an"),
            ("filter[tag]", "red"),
            ("limit", "1"),
        ])
        .await;
    assert_eq!(names(&red), ["Ann Lee", "Annabel", "ANNIKA Berg"]);
    let (mail, _) = api
        .walk(&[("filter[email_prefix]", "ANN"), ("limit", "2")])
        .await;
    let emails: Vec<&str> = mail.iter().map(|p| p["email"].as_str().unwrap()).collect();
    assert_eq!(
        emails,
        [
            "ann.lee@example.com",
            "ann@example.net",
            "Anna.Ross@example.com",
            "annika@example.org"
        ],
        "by address, case-insensitive"
    );
    let (with_name, _) = api
        .walk(&[("filter[email_prefix]", "ann"), ("filter[name]", "Bob Ann")])
        .await;
    assert_eq!(names(&with_name), ["Bob Ann"]);
}

#[tokio::test]
async fn a_bad_prefix_or_a_combination_no_index_serves_is_a_400_naming_the_parameter() {
    let api = Api::start().await;
    let long = "a".repeat(256);
    let long_mail = "a".repeat(255);
    for (query, field) in [
        (vec![("filter[name_prefix]", "")], "filter[name_prefix]"),
        (vec![("filter[name_prefix]", "   ")], "filter[name_prefix]"),
        (
            vec![("filter[name_prefix]", long.as_str())],
            "filter[name_prefix]",
        ),
        (vec![("filter[email_prefix]", "")], "filter[email_prefix]"),
        (
            vec![("filter[email_prefix]", "a b")],
            "filter[email_prefix]",
        ),
        (
            vec![("filter[email_prefix]", long_mail.as_str())],
            "filter[email_prefix]",
        ),
        (
            vec![("filter[name_prefix]", "an"), ("sort_by", "created_at")],
            "filter[name_prefix]",
        ),
        (
            vec![("filter[email_prefix]", "an"), ("sort_by", "name")],
            "filter[email_prefix]",
        ),
        (
            vec![
                ("filter[name_prefix]", "an"),
                ("filter[email_prefix]", "an"),
            ],
            "filter[email_prefix]",
        ),
    ] {
        let r = api.list(&query).await;
        assert_eq!(r.status, 400, "{query:?}");
        assert_eq!(r.error_fields(), [field], "{query:?}");
    }
}

/// A search reads only its key range: a page of a tenant of 300 profiles reads a handful of
/// index entries, not the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_search_reads_its_key_range_not_the_list() {
    let api = std::sync::Arc::new(Api::start().await);
    api.created_many(
        (0..300)
            .map(|i| json!({"name": format!("Person {i:03}")}))
            .collect(),
    )
    .await;
    api.created(json!({"name": "Zoë Quinn"})).await;
    let meter = local_api::meter::Meter::start(&api.engine.endpoint)
        .await
        .unwrap();
    let metered = Api::on_endpoint(&api.engine, &meter.endpoint);
    let r = metered.list(&[("filter[name_prefix]", "zo")]).await;
    assert_eq!(names(r.body["data"].as_array().unwrap()), ["Zoë Quinn"]);
    let used = meter.take();
    assert_eq!(
        used.calls,
        ["GetItem", "Query", "BatchGetItem"],
        "the layout, the range, the page"
    );
    assert!(used.total_reads() <= 2.0, "{used:?}");
}
