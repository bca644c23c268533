//! What writes and pages cost in DynamoDB capacity, counted by the engine through the
//! capacity meter (`local_api::meter`): units are deterministic, so the storage goals hold
//! here as rules (docs/listing.md; the bench prints the whole table, docs/performance.md).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use local_api::meter::{Capacity, Meter};
use profiles_tests::{Api, Engine, id_of, json};
use serde_json::Value;

/// A profile of about 2 KB stored: the size the goals are stated for.
fn two_kb(n: usize) -> Value {
    json!({
        "first_name": format!("Ann{n}"), "last_name": "Example", "title": "Head of Platform",
        "company": "Acme Corp", "bio": "x".repeat(900), "tags": ["blue"],
        "email": format!("ann{n}@example.com"), "country_numeric_code": "840",
    })
}

struct Metered {
    api: Api,
    meter: Meter,
}

async fn metered() -> Metered {
    let engine = Engine::start().await;
    let meter = Meter::start(&engine.endpoint).await.unwrap();
    let api = Api::on_endpoint(&engine, &meter.endpoint);
    Metered { api, meter }
}

fn ratio(c: &Capacity) -> f64 {
    c.total_writes() / c.table_writes()
}

#[tokio::test]
async fn a_patch_of_a_plain_field_and_a_contact_write_cost_at_most_two_and_a_half_times_the_table()
{
    let m = metered().await;
    let profile = m.api.created(two_kb(1)).await;
    let id = id_of(&profile);
    m.meter.take();
    assert_eq!(m.api.patch(&id, json!({"title": "CTO"})).await.status, 200);
    let patch = m.meter.take();
    assert!(ratio(&patch) <= 2.5, "PATCH: {patch:?}");
    assert!(
        patch.table_writes() <= 2.0,
        "one PutItem of a 2 KB item: {patch:?}"
    );
    let contact = m
        .api
        .created_contact(&id, json!({"key": "phone", "value": "+14155552671"}))
        .await;
    let create = m.meter.take();
    assert!(ratio(&create) <= 2.5, "contact create: {create:?}");
    assert_eq!(
        create.total_writes(),
        create.table_writes(),
        "no list index: {create:?}"
    );
    assert_eq!(
        m.api
            .delete_contact(&id, contact["id"].as_str().unwrap())
            .await
            .status,
        204
    );
    let delete = m.meter.take();
    assert!(ratio(&delete) <= 2.5, "contact delete: {delete:?}");
}

#[tokio::test]
async fn a_create_writes_no_full_copy_of_the_profile_beyond_the_table() {
    let m = metered().await;
    m.api.created(two_kb(2)).await;
    let create = m.meter.take();
    let indexes: Vec<(&String, &f64)> = create
        .write
        .iter()
        .filter(|(k, _)| *k != local_api::meter::TABLE)
        .collect();
    assert_eq!(
        indexes.len(),
        9,
        "every list index has its entry: {create:?}"
    );
    for (index, units) in indexes {
        assert!(*units <= 1.0, "{index} holds keys only: {create:?}");
    }
}

#[tokio::test]
async fn a_list_page_in_any_order_is_two_round_trips() {
    let m = metered().await;
    for n in 0..25 {
        m.api.created(two_kb(n)).await;
    }
    m.api.list(&[]).await;
    m.meter.take();
    for sort in [
        "created_at",
        "updated_at",
        "name",
        "last_name",
        "enabled",
        "id",
    ] {
        let r = m.api.list(&[("sort_by", sort), ("limit", "20")]).await;
        assert_eq!(r.body["data"].as_array().unwrap().len(), 20);
        let page = m.meter.take();
        assert_eq!(page.calls, ["Query", "BatchGetItem"], "{sort}: {page:?}");
        assert_eq!(page.total_writes(), 0.0);
    }
}
