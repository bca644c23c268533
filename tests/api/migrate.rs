//! The upgrade backfill (`keys migrate`, `shared::store::backfill`) on the embedded engine,
//! over an item set in the previous key scheme: profiles stored with one list partition per
//! tenant (`GSI1PK`, `GSI1SK`, `S_id`, `EMAILPK`, `OWNERPK`: the ALL-projected indexes), so
//! the keys-only, sharded list indexes do not list them until they are rewritten.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use shared::config::env;
use std::time::{Duration, Instant};

use profiles_tests::{Api, Engine};
use serde_json::json;
use shared::store::{Pace, schema};

/// 30 profiles through the API, 20 of them then put back in the previous key scheme's shape
/// (its index keys instead of today's), as a stack from before this version left them.
async fn old_shape() -> (Api, usize) {
    let api = Api::start().await;
    for i in 0..30 {
        api.created(json!({"name": format!("P{i:02}"), "email": format!("p{i}@example.com")}))
            .await;
    }
    let mut stripped = 0;
    for mut item in api.engine.all_items().await {
        if schema::profile_of(&item).is_none() || stripped == 20 {
            continue;
        }
        let text = |name: &str| item[name].as_s().unwrap().clone();
        let (pk, created) = (text("PK"), text(schema::CREATED_SK));
        let tenant = pk
            .strip_prefix("T#")
            .unwrap()
            .split('#')
            .next()
            .unwrap()
            .to_owned();
        let id = pk.rsplit_once("#P#").unwrap().1.to_owned();
        let s = |v: String| aws_sdk_dynamodb::types::AttributeValue::S(v);
        let owner = item["owner_id"].as_s().unwrap().clone();
        let email = item.get("email").and_then(|e| e.as_s().ok()).cloned();
        for new in [
            schema::LIST_PK,
            schema::OWNER_PK,
            schema::CREATED_SK,
            schema::EMAIL_SK,
        ] {
            item.remove(new);
        }
        item.insert("GSI1PK".into(), s(format!("T#{tenant}#PROFILES")));
        item.insert("GSI1SK".into(), s(created));
        item.insert("S_id".into(), s(id));
        item.insert("OWNERPK".into(), s(format!("T#{tenant}#OWNER#{owner}")));
        if let Some(email) = email {
            item.insert("EMAILPK".into(), s(format!("T#{tenant}#EMAIL#{email}")));
        }
        api.engine
            .client
            .put_item()
            .table_name(&api.engine.table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
        stripped += 1;
    }
    assert_eq!(stripped, 20);
    (api, 30)
}

fn listed(page: &profiles_tests::Reply) -> usize {
    page.body["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn the_backfill_lists_old_items_again_resumes_and_rewrites_nothing_twice() {
    let (api, total) = old_shape().await;
    let by_name = [("sort_by", "name"), ("limit", "100")];
    assert_eq!(
        listed(&api.list(&by_name).await),
        total - 20,
        "the old items are missing"
    );
    assert_eq!(listed(&api.list_own(&[("limit", "100")]).await), total - 20);

    let store = &api.app.store;
    let fast = Pace {
        page: 7,
        items_per_second: 10_000.0,
    };
    // Interrupted after its first page...
    let first = store.backfill(None, fast, |_| false).await.unwrap();
    assert!(first.cursor.is_some(), "stopped with the table not done");
    assert!(first.scanned <= 7 && first.rewritten <= first.scanned);
    // ...and resumed from its cursor: every old item is rewritten exactly once overall.
    let rest = store
        .backfill(first.cursor.clone(), fast, |_| true)
        .await
        .unwrap();
    assert_eq!(rest.cursor, None);
    assert_eq!(first.rewritten + rest.rewritten, 20);
    assert_eq!(first.current + rest.current, (total - 20) as u64);

    assert_eq!(
        listed(&api.list(&by_name).await),
        total,
        "listed again, in name order"
    );
    let names: Vec<String> = api.list(&by_name).await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(names, sorted, "in the index's order (desc by default)");
    assert_eq!(listed(&api.list_own(&[("limit", "100")]).await), total);

    // Rewritten whole: nothing of the previous scheme is left on any item.
    for item in api.engine.all_items().await {
        for old in ["GSI1PK", "GSI1SK", "S_id", "EMAILPK", "OWNERPK"] {
            assert!(!item.contains_key(old), "{old} left on {item:?}");
        }
    }
    assert_eq!(
        listed(&api.list(&[("filter[email]", "p3@example.com")]).await),
        1,
        "found by email again"
    );

    // Again: nothing to do, nothing written.
    let again = store.backfill(None, fast, |_| true).await.unwrap();
    assert_eq!((again.rewritten, again.current), (0, total as u64));
}

#[tokio::test]
async fn the_backfill_keeps_its_pace() {
    let (api, _) = old_shape().await;
    let pace = Pace {
        page: 10,
        items_per_second: 50.0,
    };
    let started = Instant::now();
    let mut last_page = 0;
    let total = api
        .app
        .store
        .backfill(None, pace, |p| {
            last_page = p.scanned;
            true
        })
        .await
        .unwrap();
    assert_eq!(total.rewritten, 20);
    // Every page but the last waited until its items were due at 50 a second.
    let due = (total.scanned.saturating_sub(10)) as f64 / 50.0;
    assert!(
        started.elapsed() >= Duration::from_secs_f64(due),
        "{:?} for {} items",
        started.elapsed(),
        total.scanned
    );
    assert!(last_page > 0);
}

/// `keys migrate` with a state file: interrupted runs resume, a finished run removes it.
#[tokio::test]
async fn keys_migrate_runs_the_backfill_from_the_command_line() {
    let (api, _) = old_shape().await;
    let engine: &Engine = &api.engine;
    let bin = profiles_tests::binaries()
        .get("keys")
        .expect("the keys binary");
    let state = std::env::temp_dir().join(format!("migrate-{}.json", uuid::Uuid::new_v4()));
    let out = tokio::process::Command::new(bin)
        .args([
            "--endpoint",
            &engine.endpoint,
            "--table",
            &engine.table,
            "migrate",
        ])
        .args(["--rate", "1000", "--page", "25", "--state"])
        .arg(&state)
        .env_remove(env::DYNAMODB_ENDPOINT)
        .env_remove(env::TABLE_NAME)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("20 profiles rewritten"), "{stdout}");
    assert!(!state.exists(), "a finished run leaves no state");
    let out = tokio::process::Command::new(bin)
        .args([
            "--endpoint",
            &engine.endpoint,
            "--table",
            &engine.table,
            "migrate",
        ])
        .args(["--rate", "0"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a rate of 0 is refused");
}
