//! `GET /profiles` at scale: every sort order from its own index in both directions, every
//! filter, signed cursors bound to the query, a read budget for sparse filters, and never a
//! Scan. Handlers fed real API Gateway events, on a real engine.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

use profiles_tests::{Api, id_of, json, repo_path};
use serde_json::Value;

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(id_of).collect()
}

/// Profiles with ties and absences in every sortable field.
async fn seed(api: &Api) -> Vec<Value> {
    let bodies = [
        json!({"name": "bob", "first_name": "Zed", "last_name": "Smith", "enabled": false}),
        json!({"name": "Alice", "first_name": "amy", "middle_name": "Q", "last_name": "smith"}),
        json!({"name": "alice", "first_name": "Amy", "last_name": "Jones"}),
        json!({"first_name": "Bob", "middle_name": "q", "enabled": false}),
        json!({}),
        json!({"name": "Carol", "last_name": "Adams", "enabled": true}),
        json!({"name": "Bob"}),
        json!({"last_name": "SMITH"}),
    ];
    let mut created = Vec::new();
    for b in bodies {
        created.push(api.created(b).await);
    }
    // updated_at now differs from creation order.
    for i in [3, 0, 5] {
        let id = id_of(&created[i]);
        let r = api.patch(&id, json!({"comment": "touched"})).await;
        assert_eq!(r.status, 200);
        created[i] = r.body.clone();
    }
    created
}

/// The order the contract promises: text case-insensitively with absent values last
/// (ascending), ties by id; the whole order reversed for `desc`.
fn expected(items: &[Value], sort: &str, desc: bool) -> Vec<String> {
    let text_key = |v: &Value| match v.as_str() {
        Some(s) => (0, s.to_lowercase()),
        None => (1, String::new()),
    };
    let mut sorted = items.to_vec();
    sorted.sort_by(|a, b| {
        let by = match sort {
            "created_at" | "updated_at" => a[sort].as_str().cmp(&b[sort].as_str()),
            "enabled" => a["enabled"].as_bool().cmp(&b["enabled"].as_bool()),
            "id" => Ordering::Equal,
            _ => text_key(&a[sort]).cmp(&text_key(&b[sort])),
        };
        by.then_with(|| a["id"].as_str().cmp(&b["id"].as_str()))
    });
    if desc {
        sorted.reverse();
    }
    ids(&sorted)
}

#[tokio::test]
async fn every_sort_order_in_both_directions_breaks_ties_by_id() {
    let api = Api::start().await;
    let data = seed(&api).await;
    for sort in [
        "created_at",
        "updated_at",
        "name",
        "first_name",
        "middle_name",
        "last_name",
        "enabled",
        "id",
    ] {
        for order in ["asc", "desc"] {
            let (items, pages) = api
                .walk(&[("sort_by", sort), ("sort_order", order), ("limit", "3")])
                .await;
            assert_eq!(pages, 3, "{sort} {order}");
            assert_eq!(
                ids(&items),
                expected(&data, sort, order == "desc"),
                "sort_by={sort} sort_order={order}"
            );
        }
    }
    // The default is created_at, newest first.
    let (items, _) = api.walk(&[]).await;
    assert_eq!(ids(&items), expected(&data, "created_at", true));
}

#[tokio::test]
async fn every_filter_matches_exactly() {
    let api = Api::start().await;
    let a = api
        .created(json!({
            "name": "Acme", "first_name": "Ann", "middle_name": "B", "last_name": "Cole",
            "email": "ann@Example.COM", "external_id": "ext-a", "organization_id": "org-1",
            "tags": ["blue", "green"], "lists": ["vip"], "enabled": false
        }))
        .await;
    let b = api
        .created(json!({
            "first_name": "Ann", "last_name": "Dole", "email": "bob@example.com",
            "organization_id": "org-1", "tags": ["green"], "lists": ["vip", "new"]
        }))
        .await;
    let c = api
        .created(json!({"name": "Ann Dole", "email": "ann@example.com", "tags": ["bluegreen"]}))
        .await;
    let (a, b, c) = (id_of(&a), id_of(&b), id_of(&c));
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a String>);
    let cases: Vec<Case> = vec![
        (vec![("filter[enabled]", "false")], vec![&a]),
        (vec![("filter[enabled]", "true")], vec![&c, &b]),
        (vec![("filter[name]", "Ann Dole")], vec![&c, &b]),
        (vec![("filter[name]", "ann dole")], vec![]),
        (vec![("filter[first_name]", "Ann")], vec![&b, &a]),
        (vec![("filter[middle_name]", "B")], vec![&a]),
        (vec![("filter[last_name]", "Dole")], vec![&b]),
        (vec![("filter[email]", "ann@example.com")], vec![&c, &a]),
        (vec![("filter[email]", "ann@EXAMPLE.com")], vec![&c, &a]),
        (vec![("filter[email]", "ANN@example.com")], vec![]),
        (vec![("filter[external_id]", "ext-a")], vec![&a]),
        (vec![("filter[external_id]", "ext-zzz")], vec![]),
        (vec![("filter[organization_id]", "org-1")], vec![&b, &a]),
        (vec![("filter[slug]", "acme")], vec![&a]),
        (vec![("filter[slug]", "ann-dole")], vec![&b]),
        (vec![("filter[tag]", "green")], vec![&b, &a]),
        (vec![("filter[tag]", "blue")], vec![&a]),
        (vec![("filter[list]", "vip")], vec![&b, &a]),
        (vec![("filter[list]", "new")], vec![&b]),
        (vec![("filter[owner_id]", "user-1")], vec![&c, &b, &a]),
        (vec![("filter[owner_id]", "user-2")], vec![]),
        // Combined, and with another sort (email then filters the name index).
        (
            vec![
                ("filter[first_name]", "Ann"),
                ("filter[tag]", "green"),
                ("filter[enabled]", "true"),
            ],
            vec![&b],
        ),
        (
            vec![
                ("filter[email]", "ann@example.com"),
                ("sort_by", "name"),
                ("sort_order", "asc"),
            ],
            vec![&a, &c],
        ),
        (
            vec![
                ("filter[external_id]", "ext-a"),
                ("filter[enabled]", "true"),
            ],
            vec![],
        ),
    ];
    for (query, want) in cases {
        let mut q = query.clone();
        q.push(("limit", "1"));
        let (items, _) = api.walk(&q).await;
        let want: Vec<String> = want.into_iter().cloned().collect();
        assert_eq!(ids(&items), want, "{query:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn walking_250_profiles_returns_each_exactly_once_in_order() {
    let api = Arc::new(Api::start().await);
    // Ten names, so the name order is full of ties.
    let bodies = (0..250)
        .map(|i| json!({"name": format!("Name {}", i % 10)}))
        .collect();
    let data = api.created_many(bodies).await;
    for (sort, order) in [
        ("created_at", "desc"),
        ("created_at", "asc"),
        ("name", "asc"),
        ("name", "desc"),
    ] {
        let (items, pages) = api
            .walk(&[("sort_by", sort), ("sort_order", order), ("limit", "7")])
            .await;
        assert_eq!(pages, 36, "250 / 7 rounded up");
        let got = ids(&items);
        let unique: HashSet<&String> = got.iter().collect();
        assert_eq!(unique.len(), 250, "each exactly once");
        assert_eq!(
            got,
            expected(&data, sort, order == "desc"),
            "{sort} {order}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_while_paging_never_duplicate_or_skip_an_item() {
    let api = Arc::new(Api::start().await);
    let mut before = Vec::new();
    for i in 0..60 {
        before.push(id_of(
            &api.created(json!({"name": format!("Old {i}")})).await,
        ));
    }
    let writer = {
        let (api, before) = (api.clone(), before.clone());
        tokio::spawn(async move {
            for (i, old) in before.iter().take(40).enumerate() {
                api.created(json!({"name": format!("New {i}")})).await;
                let r = api.patch(old, json!({"comment": "changed"})).await;
                assert_eq!(r.status, 200);
            }
        })
    };
    let (items, _) = api.walk(&[("limit", "4")]).await;
    writer.await.unwrap();
    let got = ids(&items);
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "no item twice");
    for id in &before {
        assert!(
            unique.contains(id),
            "{id}, there before the walk began, was skipped"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sparse_filter_answers_a_short_page_with_a_cursor_within_its_read_budget() {
    let api = Arc::new(Api::start().await);
    // The rare one is the oldest: newest first, it lies past the first request's budget.
    api.created(json!({"name": "rare", "tags": ["rare"]})).await;
    api.created_many(vec![json!({}); shared::store::READ_BUDGET + 50])
        .await;
    let (counting, ops) = api.counting();
    let r = counting.list(&[("filter[tag]", "rare")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["data"],
        json!([]),
        "nothing matched within the budget"
    );
    let cursor = r.body["next_cursor"].as_str().expect("more may follow");
    let reads = ops.take();
    assert!(
        reads
            .iter()
            .all(|o| o == "Query" || o == "BatchGetItem" || o == "GetItem"),
        "{reads:?}"
    );
    let r = counting
        .list(&[("filter[tag]", "rare"), ("cursor", cursor)])
        .await;
    assert_eq!(r.body["data"][0]["name"], "rare");
    assert_eq!(r.body["next_cursor"], Value::Null);
}

#[tokio::test]
async fn a_cursor_replayed_with_other_parameters_is_400() {
    let api = Api::start().await;
    for i in 0..3 {
        api.created(json!({"name": format!("n{i}"), "tags": ["t"]}))
            .await;
    }
    let first = api
        .list(&[("limit", "1"), ("sort_by", "name"), ("filter[tag]", "t")])
        .await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let ok = api
        .list(&[
            ("limit", "2"),
            ("sort_by", "name"),
            ("filter[tag]", "t"),
            ("cursor", &cursor),
        ])
        .await;
    assert_eq!(ok.status, 200, "the page size may change: {}", ok.raw_body);
    for other in [
        vec![("sort_by", "first_name"), ("filter[tag]", "t")],
        vec![("sort_by", "name"), ("filter[tag]", "u")],
        vec![("sort_by", "name")],
        vec![
            ("sort_by", "name"),
            ("filter[tag]", "t"),
            ("sort_order", "asc"),
        ],
        vec![
            ("sort_by", "name"),
            ("filter[tag]", "t"),
            ("filter[enabled]", "true"),
        ],
    ] {
        let mut q = other.clone();
        q.push(("cursor", &cursor));
        let r = api.list(&q).await;
        r.assert_problem(400);
        assert_eq!(r.error_fields(), ["cursor"], "{other:?}");
    }
    // A cursor with its position edited and the old signature.
    let (payload, tag) = cursor.split_once('.').unwrap();
    let forged = format!("{}x.{tag}", &payload[..payload.len() - 1]);
    let r = api
        .list(&[
            ("sort_by", "name"),
            ("filter[tag]", "t"),
            ("cursor", &forged),
        ])
        .await;
    assert_eq!(r.error_fields(), ["cursor"]);
}

#[tokio::test]
async fn bad_sorts_filters_and_values_are_400_naming_them() {
    let api = Api::start().await;
    for (query, field) in [
        (vec![("sort_by", "shoe_size")], "sort_by"),
        (vec![("filter[shoe_size]", "9")], "filter[shoe_size]"),
        (vec![("filter[enabled]", "yes")], "filter[enabled]"),
        (vec![("filter[email]", "not-an-address")], "filter[email]"),
        (vec![("filter[slug]", "Not A Slug")], "filter[slug]"),
        (vec![("filter[name]", "")], "filter[name]"),
        (
            vec![("filter[tag]", "a"), ("filter[tag]", "b")],
            "filter[tag]",
        ),
        (vec![("offset", "20")], "offset"),
    ] {
        let r = api.list(&query).await;
        r.assert_problem(400);
        assert_eq!(r.error_fields(), vec![field], "{query:?}: {}", r.raw_body);
    }
}

#[tokio::test]
async fn listing_never_scans() {
    // By IAM: no function of the template may Scan (only the operator's `keys migrate` does,
    // under KeysOperatorPolicy), and no policy grants a wildcard.
    let raw = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    assert!(
        !raw.contains("dynamodb:*"),
        "a wildcard permission in template.yaml"
    );
    let template = local_api::template::Template::load(&repo_path("template.yaml"))
        .unwrap()
        .with_local("us-east-1", Some("http://127.0.0.1:9"));
    let table = profiles_tests::table_arn("profiles");
    let functions = template.functions("profiles").unwrap();
    assert_eq!(functions.len(), 18);
    for f in &functions {
        let policy = template.policies(&f.id, "profiles").unwrap();
        assert!(
            !policy.iter().any(|s| s.allows("dynamodb:Scan", &table)),
            "{}: its policy allows a Scan",
            f.id
        );
        assert!(!policy.is_empty(), "{}: the check read its policy", f.id);
    }
    // The same check finds the one Scan the template grants: the operator's.
    let operator = template.policies("KeysOperatorPolicy", "profiles").unwrap();
    assert!(operator.iter().any(|s| s.allows("dynamodb:Scan", &table)));
    // By behaviour: every kind of list sends Queries and a BatchGetItem of the page (and
    // GetItems: the tenant's layout, and unique lookups).
    let api = Api::start().await;
    api.created(json!({"name": "x", "external_id": "e", "email": "x@example.com", "tags": ["t"]}))
        .await;
    let (counting, ops) = api.counting();
    for q in [
        vec![],
        vec![("sort_by", "name")],
        vec![("sort_by", "updated_at"), ("sort_order", "asc")],
        vec![("filter[email]", "x@example.com")],
        vec![("filter[tag]", "t"), ("sort_by", "last_name")],
        vec![("filter[external_id]", "e")],
        vec![("filter[slug]", "x")],
    ] {
        let r = counting.list(&q).await;
        assert_eq!(r.body["data"].as_array().unwrap().len(), 1, "{q:?}");
    }
    let sent = ops.take();
    assert!(!sent.is_empty());
    assert!(
        sent.iter()
            .all(|o| o == "Query" || o == "GetItem" || o == "BatchGetItem"),
        "{sent:?}"
    );
}
