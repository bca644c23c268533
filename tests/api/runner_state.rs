//! The local runner's state and lifecycle: data and the development key kept in the state
//! directory across restarts, another engine by URL, and every function instance stopped
//! with the runner.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use local_api::template::Template;
use local_api::{Options, Storage};
use profiles_tests::{Runner, json, repo_path};
use serde_json::Value;

use crate::local_api::{pid, start_faulty};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_the_development_key_in_the_state_dir_survive_a_restart() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("profiles-state-{}", uuid::Uuid::now_v7()));
    let file = dir.join(shared::localstate::DATA_FILE);
    let template = Template::load(&repo_path("template.yaml")).unwrap();
    let options = || Options {
        storage: Storage::File(file.clone()),
        concurrency: 2,
        state_dir: Some(dir.clone()),
        ..Default::default()
    };
    let api = Runner::start_with(&template, options()).await;
    assert!(api.server.engine.created_table);
    let key = api.key().to_owned();
    assert!(key.starts_with("prof_"));
    let kept = dir.join(shared::localstate::DEV_API_KEY);
    assert_eq!(std::fs::read_to_string(&kept).unwrap().trim(), key);
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the key file is its owner's only");
    let endpoint = std::fs::read_to_string(dir.join(shared::localstate::ENGINE_ENDPOINT)).unwrap();
    assert_eq!(
        endpoint,
        format!("{}\n", api.server.engine.endpoint),
        "for the keys command"
    );
    let r = api
        .http
        .post(api.url("/profiles"))
        .json(&json!({"name": "Kept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    api.server.stop().await;
    assert!(
        !dir.join(shared::localstate::ENGINE_ENDPOINT).exists(),
        "a stopped engine's URL is removed"
    );

    let api = Runner::start_with(&template, options()).await;
    assert!(!api.server.engine.created_table, "the table is kept");
    assert_eq!(api.key(), key, "the same development key");
    let r = api.http.get(api.follow(&location)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "Kept");
    api.server.stop().await;

    // In memory, a key for this start only: the kept one is left alone.
    let memory = Options {
        storage: Storage::Memory,
        ..options()
    };
    let api = Runner::start_with(&template, memory).await;
    assert_ne!(api.key(), key);
    assert_eq!(std::fs::read_to_string(&kept).unwrap().trim(), key);
    let r = api.http.get(api.url("/profiles")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    api.server.stop().await;

    // A data file that lost the key (deleted, here) gets a new one, kept.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("profiles.db") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let api = Runner::start_with(&template, options()).await;
    assert!(api.server.engine.created_table);
    assert_ne!(api.key(), key);
    assert_eq!(std::fs::read_to_string(&kept).unwrap().trim(), api.key());
    let r = api.http.get(api.url("/profiles")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    api.server.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_engine_by_url_gets_the_table_and_the_data() {
    let engine = profiles_tests::Engine::start().await;
    let table = format!("other-{}", uuid::Uuid::now_v7().simple());
    let template = Template::load(&repo_path("template.yaml")).unwrap();
    let storage = Storage::Endpoint {
        url: engine.endpoint.clone(),
        table: table.clone(),
    };
    let api = Runner::start(&template, storage, 2).await;
    assert!(api.server.engine.created_table);
    let r = api
        .http
        .post(api.url("/profiles"))
        .json(&json!({"name": "Elsewhere"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let items = engine
        .client
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    assert!(
        items.count() >= 1,
        "the function wrote to the named engine and table"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_runner_stops_every_function_instance() {
    let api = start_faulty().await;
    let first = pid(&api).await;
    api.server.stop().await;
    let proc = format!("/proc/{first}");
    let deadline = Instant::now() + Duration::from_secs(5);
    // A killed child stays a zombie until reaped; its state line then says 'Z'.
    while std::fs::read_to_string(format!("{proc}/stat")).is_ok_and(|s| !s.contains(") Z "))
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let alive = std::fs::read_to_string(format!("{proc}/stat")).is_ok_and(|s| !s.contains(") Z "));
    assert!(!alive, "instance {first} still runs after stop");
}
