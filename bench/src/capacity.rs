//! What each operation costs in DynamoDB capacity: every call of one operation goes through
//! the capacity meter (`local_api::meter`), which asks the engine for the units consumed on
//! the table and on each index. Units are counted, not timed: the same on every machine.

use std::collections::BTreeMap;

use local_api::meter::{Capacity, Meter, TABLE};
use serde_json::{Value, json};
use shared::app::App;
use shared::config::env;

use crate::Error;
use crate::calls::{Call, handle, json_of};

/// On-demand prices (us-east-1, per million request units): what a unit costs.
const WRITE_UNIT_PRICE: f64 = 0.625;
const READ_UNIT_PRICE: f64 = 0.125;

/// One operation's measured units.
struct Row {
    operation: String,
    capacity: Capacity,
}

/// A ~2 KB profile: the size the storage goals are stated for.
fn two_kb_profile(n: usize, email: bool) -> Value {
    let mut body = json!({
        "first_name": format!("Ann{n:04}"),
        "middle_name": "Q",
        "last_name": format!("Example{}", 9999 - n),
        "title": "Head of Platform",
        "company": "Acme Corp",
        "bio": "x".repeat(900),
        "tags": ["blue", if n.is_multiple_of(10) { "tenth" } else { "green" }],
        "lists": ["customers"],
        "country_numeric_code": "840",
    });
    if email {
        body["email"] = json!(format!("ann{n}@example.com"));
    }
    body
}

/// The capacity table: writes (create with and without email, a PATCH of a plain field, a
/// PATCH that changes a sort key, PUT, contact create and delete, delete) and reads (GET, a
/// list page in every order, a filtered page), each with its units on the table and on each
/// index, the total, the ratio to the table alone, and its price per million.
pub(crate) async fn table(engine: &local_api::engine::Engine) -> Result<(), Error> {
    let meter = Meter::start(&engine.endpoint).await?;
    let config = shared::config::Config::from_lookup(|k| match k {
        env::TABLE_NAME => Some(engine.table.clone()),
        env::DYNAMODB_ENDPOINT => Some(meter.endpoint.clone()),
        _ => None,
    })?;
    let app = App::new(config);
    let tenant = format!("capacity-{}", uuid::Uuid::now_v7().simple());
    let mut rows = Vec::new();
    // A tenant of 25 profiles, so a page of 20 is full and has a next one.
    let mut ids = Vec::new();
    for n in 0..25 {
        ids.push(
            call(
                &app,
                &tenant,
                Call::new("create-profile", "POST").body(two_kb_profile(n, true)),
            )
            .await?["id"]
                .clone(),
        );
    }
    meter.take();
    let id = |i: usize| ids[i].as_str().unwrap_or_default().to_owned();
    let writes = [
        (
            "create (with email)",
            Call::new("create-profile", "POST").body(two_kb_profile(100, true)),
        ),
        (
            "create (no email)",
            Call::new("create-profile", "POST").body(two_kb_profile(101, false)),
        ),
        (
            "PATCH a plain field (title)",
            patch(&id(0), json!({"title": "CTO"})),
        ),
        (
            "PATCH a sort key (last_name)",
            patch(&id(1), json!({"last_name": "Renamed"})),
        ),
        (
            "PUT",
            Call::new("replace-profile", "PUT")
                .param("profile_id", &id(2))
                .body(two_kb_profile(102, true)),
        ),
        (
            "contact create",
            Call::new("create-contact", "POST")
                .param("profile_id", &id(3))
                .body(json!({"key": "phone", "value": "+14155552671"})),
        ),
    ];
    for (name, c) in writes {
        call(&app, &tenant, c).await?;
        rows.push(Row {
            operation: name.to_owned(),
            capacity: meter.take(),
        });
    }
    let contact = call(
        &app,
        &tenant,
        Call::new("list-contacts", "GET").param("profile_id", &id(3)),
    )
    .await?["data"][0]["id"]
        .clone();
    meter.take();
    let contact = contact.as_str().unwrap_or_default().to_owned();
    for (name, c) in [
        (
            "contact delete",
            Call::new("delete-contact", "DELETE")
                .param("profile_id", &id(3))
                .param("contact_id", &contact),
        ),
        (
            "delete",
            Call::new("delete-profile", "DELETE").param("profile_id", &id(4)),
        ),
        (
            "GET",
            Call::new("get-profile", "GET").param("profile_id", &id(5)),
        ),
    ] {
        call(&app, &tenant, c).await?;
        rows.push(Row {
            operation: name.to_owned(),
            capacity: meter.take(),
        });
    }
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
        let mut c = Call::new("list-profiles", "GET");
        c.query = vec![("sort_by", sort.to_owned()), ("limit", "20".to_owned())];
        call(&app, &tenant, c).await?;
        rows.push(Row {
            operation: format!("list page of 20, sort_by={sort}"),
            capacity: meter.take(),
        });
    }
    let mut c = Call::new("list-profiles", "GET");
    c.query = vec![
        ("filter[tag]", "tenth".to_owned()),
        ("limit", "20".to_owned()),
    ];
    call(&app, &tenant, c).await?;
    rows.push(Row {
        operation: "filtered page (filter[tag], 1 in 10 match)".into(),
        capacity: meter.take(),
    });
    print(&rows);
    Ok(())
}

fn patch(id: &str, body: Value) -> Call {
    Call::new("update-profile", "PATCH")
        .param("profile_id", id)
        .body(body)
}

/// Runs `c` in-process as `tenant`; its answer's body, or an error naming a failed status.
async fn call(app: &App, tenant: &str, mut c: Call) -> Result<Value, Error> {
    c.tenant = Some(tenant.to_owned());
    let binary = c.binary.clone();
    let r = handle(app, &binary, c.request()?).await?;
    if !r.status().is_success() {
        return Err(format!("{binary}: {} {}", r.status(), json_of(&r)).into());
    }
    Ok(json_of(&r))
}

fn print(rows: &[Row]) {
    println!(
        "\n### DynamoDB capacity per operation (a ~2 KB profile; units as the engine reports them with ReturnConsumedCapacity INDEXES)\n"
    );
    println!(
        "| operation | table WCU | index WCU (by index) | total WCU | total / table | RCU (by table or index) | $ per million |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        let c = &row.capacity;
        let by = |m: &BTreeMap<String, f64>, skip_table: bool| {
            let parts: Vec<String> = m
                .iter()
                .filter(|(k, v)| **v > 0.0 && !(skip_table && *k == TABLE))
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            if parts.is_empty() {
                "—".to_owned()
            } else {
                parts.join(", ")
            }
        };
        // `+ 0.0`: a sum of nothing is -0.0 in Rust's float addition.
        let table = c.table_writes() + 0.0;
        let total = c.total_writes() + 0.0;
        let ratio = if table > 0.0 {
            format!("{:.2}×", total / table)
        } else {
            "—".into()
        };
        let dollars = total * WRITE_UNIT_PRICE + c.total_reads() * READ_UNIT_PRICE;
        println!(
            "| {} | {table} | {} | {total} | {ratio} | {} | {dollars:.2} |",
            row.operation,
            by(&c.write, true),
            if c.total_reads() > 0.0 {
                format!("{} ({})", c.total_reads(), by(&c.read, false))
            } else {
                "—".into()
            },
        );
    }
}
