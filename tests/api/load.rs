//! Load with many credentials through the runner: 20 clients, each with its own API key,
//! 2,000 requests in all, mixing create, read, patch and list, against the functions'
//! concurrency limit and each key's usage-plan bucket. Nothing fails but the throttle's 429s
//! (which a client waits out and resends), and afterwards every profile made is there with
//! exactly the writes it was sent.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use local_api::Storage;
use profiles_tests::{Runner, client_with_key, json};
use serde_json::Value;
use shared::auth::Scopes;

use crate::local_api::{template_with, yaml};

const CLIENTS: usize = 20;
const REQUESTS_PER_CLIENT: usize = 100;
/// Each client starts with this many requests at once: twice the bucket's burst of 10, so
/// the throttle is met even when a slow machine spreads the burst over the refill of a few
/// tokens (the bucket refills at 10/s).
const OPENING_BURST: usize = 20;

/// What one client saw: its profiles (id → the title of its last accepted patch and the
/// version it should be at), every request's final status, and how many 429s it met.
#[derive(Default)]
struct Seen {
    /// The client's number: its key is the `n`th, its principal `client-<n>`.
    n: usize,
    profiles: HashMap<String, (Option<String>, u64)>,
    throttled: usize,
    statuses: Vec<u16>,
}

/// Sends `request` until the gateway lets it through, waiting out each 429's `Retry-After`;
/// the answer's status and body.
async fn send(seen: &mut Seen, request: reqwest::RequestBuilder) -> (u16, Value) {
    loop {
        let r = request.try_clone().unwrap().send().await.unwrap();
        let status = r.status().as_u16();
        if status == 429 {
            seen.throttled += 1;
            let wait: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        seen.statuses.push(status);
        let body = r.json().await.unwrap_or(Value::Null);
        return (status, body);
    }
}

async fn client(runner: Arc<Runner>, key: String, n: usize) -> Seen {
    let http = client_with_key(&key);
    let url = |p: &str| runner.url(p);
    let mut seen = Seen {
        n,
        ..Seen::default()
    };
    // The opening burst: lists, all at once.
    let burst = (0..OPENING_BURST).map(|_| http.get(url("/profiles?limit=5")).send());
    for r in futures_join_all(burst).await {
        // A 429 here is the answer (the burst's extra requests are not resent).
        let status = r.status().as_u16();
        seen.throttled += usize::from(status == 429);
        seen.statuses.push(status);
    }
    let mut ids: Vec<String> = Vec::new();
    for j in OPENING_BURST..REQUESTS_PER_CLIENT {
        let pick = (j * 7 + n) % ids.len().max(1);
        match (j % 4, ids.get(pick).cloned()) {
            (1, Some(id)) => {
                let (status, body) =
                    send(&mut seen, http.get(url(&format!("/profiles/{id}")))).await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(
                    body["version"], seen.profiles[&id].1,
                    "read what was written"
                );
            }
            (2, Some(id)) => {
                let title = format!("T{j}");
                let request = http
                    .patch(url(&format!("/profiles/{id}")))
                    .json(&json!({"title": title}));
                let (status, body) = send(&mut seen, request).await;
                assert_eq!(status, 200, "{body}");
                let entry = seen.profiles.get_mut(&id).unwrap();
                *entry = (Some(title), entry.1 + 1);
            }
            (3, _) => {
                let (status, body) = send(&mut seen, http.get(url("/profiles?limit=10"))).await;
                assert_eq!(status, 200, "{body}");
            }
            _ => {
                let request = http
                    .post(url("/profiles"))
                    .json(&json!({"name": format!("Load {n}-{j}")}));
                let (status, body) = send(&mut seen, request).await;
                assert_eq!(status, 201, "{body}");
                let id = body["id"].as_str().unwrap().to_owned();
                seen.profiles.insert(id.clone(), (None, 1));
                ids.push(id);
            }
        }
    }
    seen
}

/// `futures::future::join_all` without the crate: every future, run together.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<reqwest::Response>
where
    F: std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, f) in futures.enumerate() {
        set.spawn(async move { (i, f.await.unwrap()) });
    }
    let mut out: Vec<(usize, reqwest::Response)> = set.join_all().await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_keys_and_two_thousand_mixed_requests_lose_nothing_and_fail_only_by_throttle() {
    // The contract's burst of 10 per key; a steady rate of 10/s (the contract's is 2.5/s),
    // so the run takes seconds, not a minute, and still meets the throttle.
    let template = template_with(|doc| {
        doc["Resources"]["ProfilesUsagePlan"]["Properties"]["Throttle"] =
            yaml(json!({"BurstLimit": 10, "RateLimit": 10}));
    });
    let runner = Arc::new(Runner::start(&template, Storage::Memory, 4).await);
    let mut keys = Vec::new();
    for n in 0..CLIENTS {
        keys.push(
            runner
                .create_key("load", &format!("client-{n}"), Scopes::all())
                .await,
        );
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (n, key) in keys.iter().cloned().enumerate() {
        tasks.spawn(client(runner.clone(), key, n));
    }
    let seen: Vec<Seen> = tasks.join_all().await;
    let took = started.elapsed();

    let sent: usize = seen.iter().map(|s| s.statuses.len()).sum();
    let throttled: usize = seen.iter().map(|s| s.throttled).sum();
    assert_eq!(
        sent,
        CLIENTS * REQUESTS_PER_CLIENT,
        "every request was answered"
    );
    let failed: Vec<u16> = seen
        .iter()
        .flat_map(|s| s.statuses.iter().copied())
        .filter(|s| !(200..300).contains(s) && *s != 429)
        .collect();
    assert_eq!(
        failed,
        Vec::<u16>::new(),
        "nothing failed but by the throttle"
    );
    assert!(throttled > 0, "the opening bursts met the per-key throttle");
    eprintln!(
        "load: {sent} requests from {CLIENTS} keys in {:.1} s, {throttled} throttled and resent",
        took.as_secs_f64()
    );

    // Every profile made is there, at the version its accepted patches give, with the last
    // title sent; and the tenant holds exactly those.
    // Each key checks its own profiles, the keys at once (each has its own bucket).
    let mut checks = tokio::task::JoinSet::new();
    for s in &seen {
        let (n, profiles) = (s.n, s.profiles.clone());
        let (runner, http) = (runner.clone(), client_with_key(&keys[n]));
        checks.spawn(async move {
            for (id, (title, version)) in &profiles {
                let request = http.get(runner.url(&format!("/profiles/{id}")));
                let (status, body) = send(&mut Seen::default(), request).await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["version"], *version, "{id}");
                assert_eq!(body["title"], json!(title), "{id}");
                assert_eq!(body["owner_id"], format!("client-{n}"));
            }
            profiles.len()
        });
    }
    let made: usize = checks.join_all().await.into_iter().sum();
    let mut listed = 0;
    let mut path = "/profiles?limit=100".to_owned();
    let http = client_with_key(&keys[0]);
    loop {
        let (status, page) = send(&mut Seen::default(), http.get(runner.url(&path))).await;
        assert_eq!(status, 200, "{page}");
        listed += page["data"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/profiles?limit=100&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(listed, made, "the tenant lists exactly the profiles made");
}
