//! A tenant's list spread over shards (docs/listing.md): a page merges every shard's
//! partition by sort key, so paging through any order and filter gives exactly the order of
//! one partition, whatever the shard count; and moving a live tenant to another count never
//! shows a page with a duplicate or a gap.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use profiles_tests::{Api, id_of, json};
use serde_json::Value;
use shared::ids::{ProfileId, TenantId};
use shared::listing::Sort;
use shared::model::Profile;
use shared::store::MovePace;

/// The tenant of the fixtures' caller.
fn tenant() -> TenantId {
    TenantId::new("tenant-a").unwrap()
}

/// No wait, small pages: the test's one store sees each change at once.
const NOW: MovePace = MovePace {
    settle: Duration::ZERO,
    page: 5,
};

/// A deterministic stream of small numbers (an LCG): the same data every run.
struct Draw(u64);

impl Draw {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }

    fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
        of[self.next(of.len() as u64) as usize]
    }
}

/// `n` profiles with ties, absences and mixed case in every field a list sorts or filters
/// by, some by another principal, some changed after creation (so `updated_at` differs).
async fn random_profiles(api: &Api, n: usize, seed: u64) -> Vec<ProfileId> {
    let mut draw = Draw(seed);
    let names = [
        "Ann", "ann", "Anna", "Bob", "bob", "Zoë", "Émile", "al", "Al B",
    ];
    let mut ids = Vec::new();
    let colleague = api.as_caller("tenant-a", "user-2");
    for i in 0..n {
        let mut body = json!({});
        if draw.next(4) > 0 {
            body["name"] = json!(draw.pick(&names));
        }
        if draw.next(3) > 0 {
            body["first_name"] = json!(draw.pick(&names));
        }
        if draw.next(2) > 0 {
            body["last_name"] = json!(draw.pick(&["Smith", "smith", "Jones", "Adams"]));
        }
        if draw.next(3) == 0 {
            body["middle_name"] = json!(draw.pick(&["Q", "q", "X"]));
        }
        if draw.next(3) == 0 {
            body["enabled"] = json!(false);
        }
        if draw.next(2) == 0 {
            body["email"] = json!(format!(
                "{}{i}@Example.com",
                draw.pick(&["ann", "Ann", "bo"])
            ));
        }
        body["tags"] = json!([draw.pick(&["red", "blue"])]);
        let who = if draw.next(4) == 0 { &colleague } else { api };
        let created = who.created(body).await;
        if draw.next(3) == 0 {
            let r = who
                .patch(&id_of(&created), json!({"comment": "touched"}))
                .await;
            assert_eq!(r.status, 200);
        }
        ids.push(id_of(&created).parse().unwrap());
    }
    ids
}

/// The profiles as stored.
async fn stored(api: &Api, ids: &[ProfileId]) -> Vec<Profile> {
    let mut out = Vec::new();
    for id in ids {
        out.push(
            api.app
                .store
                .get(&tenant(), id)
                .await
                .unwrap()
                .unwrap()
                .profile,
        );
    }
    out
}

/// The order a query must give: the profiles its filters admit, by the sort key of the
/// order its index reads in (what one unsharded partition gives), reversed for `desc`.
fn expected(profiles: &[Profile], query: &[(&str, &str)]) -> Vec<String> {
    let pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let key = shared::config::Secret::new("local-development-cursor-key-not-secret".into());
    let parsed = shared::listing::ListQuery::parse(&pairs, &tenant(), &key, None).unwrap();
    let q = parsed.query;
    let sort = q.reads_in();
    let mut admitted: Vec<&Profile> = profiles
        .iter()
        .filter(|p| q.filters.iter().all(|f| f.matches(p)))
        .filter(|p| sort != Sort::Email || p.fields.email.is_some())
        .collect();
    admitted.sort_by_key(|p| sort.value(p));
    if q.order == shared::listing::SortOrder::Desc {
        admitted.reverse();
    }
    admitted.iter().map(|p| p.id.to_string()).collect()
}

/// Every order both ways, and filters the indexes narrow to and ones they do not.
fn queries() -> Vec<Vec<(&'static str, &'static str)>> {
    let mut out = Vec::new();
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
            out.push(vec![
                ("sort_by", sort),
                ("sort_order", order),
                ("limit", "7"),
            ]);
        }
    }
    out.push(vec![("filter[tag]", "red"), ("limit", "4")]);
    out.push(vec![("filter[owner_id]", "user-2"), ("limit", "3")]);
    out.push(vec![
        ("filter[enabled]", "false"),
        ("sort_by", "last_name"),
        ("limit", "5"),
    ]);
    out.push(vec![("filter[name_prefix]", "an"), ("limit", "4")]);
    out.push(vec![
        ("filter[name_prefix]", "AL"),
        ("sort_order", "desc"),
        ("limit", "2"),
    ]);
    out.push(vec![("filter[email_prefix]", "ANN"), ("limit", "3")]);
    out
}

/// Property: for every shard count from 1 to 16, paging through every order and filter
/// gives exactly the unsharded order: each profile once, in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_any_order_over_1_to_16_shards_gives_the_unsharded_order() {
    let api = Api::start().await;
    let ids = random_profiles(&api, 40, 7).await;
    let profiles = stored(&api, &ids).await;
    for count in 1..=16 {
        api.app
            .store
            .relayout(&tenant(), count, NOW, |_| {})
            .await
            .unwrap();
        assert_eq!(api.app.store.layout(&tenant()).await.unwrap().count, count);
        for q in queries() {
            let (got, _) = api.walk(&q).await;
            assert_eq!(
                got.iter().map(id_of).collect::<Vec<_>>(),
                expected(&profiles, &q),
                "{count} shards, {q:?}"
            );
        }
    }
}

/// Moving a live tenant from 1 to 8 shards while a client walks its list in name order:
/// every page is read while some profiles are in the old layout and some in the new, and the
/// walk still holds every profile exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_walk_during_a_move_to_more_shards_never_repeats_or_skips() {
    let api = Arc::new(Api::start().await);
    let ids = random_profiles(&api, 45, 11).await;
    let profiles = stored(&api, &ids).await;
    let query = [("sort_by", "name"), ("limit", "4")];
    let want = expected(&profiles, &query);

    // The move pauses after each page of 5 profiles until the walker has read a page.
    let (moved_tx, moved_rx) = std::sync::mpsc::channel::<u64>();
    let (read_tx, read_rx) = std::sync::mpsc::channel::<()>();
    let mover = {
        let api = api.clone();
        tokio::task::spawn_blocking(move || {
            tokio::runtime::Handle::current().block_on(api.app.store.relayout(
                &tenant(),
                8,
                NOW,
                |m| {
                    let _ = moved_tx.send(m.rewritten);
                    let _ = read_rx.recv_timeout(Duration::from_secs(10));
                },
            ))
        })
    };
    let mut got: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut mixed = 0;
    loop {
        let moved = moved_rx.recv_timeout(Duration::from_millis(200)).ok();
        let mut q: Vec<(&str, &str)> = query.to_vec();
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let r = api.list(&q).await;
        assert_eq!(r.status, 200, "{}", r.raw_body);
        got.extend(r.body["data"].as_array().unwrap().iter().map(id_of));
        if moved.is_some_and(|n| n > 0 && n < ids.len() as u64) {
            mixed += 1;
            // Mid-move, a whole walk from the start is exact too.
            let (all, _) = api.walk(&query).await;
            assert_eq!(all.iter().map(id_of).collect::<Vec<_>>(), want, "mid-move");
        }
        let _ = read_tx.send(());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    drop(read_tx);
    let done = mover.await.unwrap().unwrap();
    assert_eq!(done.rewritten, ids.len() as u64, "every profile moved once");
    assert!(mixed > 0, "some pages were read mid-move");
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "no profile twice");
    assert_eq!(got, want, "no profile skipped, each in place");
    let layout = api.app.store.layout(&tenant()).await.unwrap();
    assert_eq!((layout.count, layout.next), (8, None));
    // Run again, it finds nothing to do.
    let again = api
        .app
        .store
        .relayout(&tenant(), 8, NOW, |_| {})
        .await
        .unwrap();
    assert_eq!(again.rewritten, 0);
}

/// A move interrupted after its mark resumes: the next run finishes it.
#[tokio::test]
async fn an_interrupted_move_is_finished_by_the_next_run() {
    let api = Api::start().await;
    random_profiles(&api, 12, 3).await;
    let store = &api.app.store;
    // A run that stops after its first page (its future dropped mid-move).
    let first = tokio::time::timeout(Duration::from_millis(500), async {
        store
            .relayout(
                &tenant(),
                4,
                MovePace {
                    settle: Duration::from_secs(5),
                    page: 2,
                },
                |_| {},
            )
            .await
    })
    .await;
    assert!(first.is_err(), "stopped while waiting out the settle time");
    let marked = store.layout(&tenant()).await.unwrap();
    assert_eq!(
        (marked.count, marked.next),
        (1, Some(4)),
        "the move is marked"
    );
    let (listed, _) = api.walk(&[("limit", "5")]).await;
    assert_eq!(listed.len(), 12, "listed whole while marked");
    store.relayout(&tenant(), 4, NOW, |_| {}).await.unwrap();
    let done = store.layout(&tenant()).await.unwrap();
    assert_eq!((done.count, done.next), (4, None));
    let (listed, _) = api.walk(&[("limit", "5")]).await;
    assert_eq!(listed.len(), 12);
}

/// A new profile during a move goes to the new layout, and a list finds it.
#[tokio::test]
async fn a_profile_written_mid_move_is_listed_once() {
    let api = Api::start().await;
    random_profiles(&api, 6, 5).await;
    let store = &api.app.store;
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        store
            .relayout(
                &tenant(),
                3,
                MovePace {
                    settle: Duration::from_secs(5),
                    page: 2,
                },
                |_| {},
            )
            .await
    })
    .await;
    let fresh: Value = api.created(json!({"name": "Fresh"})).await;
    let item = api.engine.all_items().await.into_iter().find(|i| {
        i.get("PK")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|pk| pk.ends_with(&id_of(&fresh)))
            && i.get("SK").and_then(|v| v.as_s().ok()) == Some(&"PROFILE".to_owned())
    });
    let lpk = item.unwrap()["LPK"].as_s().unwrap().clone();
    assert!(
        lpk.contains("#L#3#"),
        "written in the layout moved to: {lpk}"
    );
    let (listed, _) = api.walk(&[("limit", "4"), ("sort_by", "name")]).await;
    assert_eq!(listed.len(), 7);
    assert_eq!(listed.iter().filter(|p| p["name"] == "Fresh").count(), 1);
}

/// `keys shards`: shows the layout, and with `--count` moves the tenant there from the
/// command line (a short settle time warns).
#[tokio::test]
async fn keys_shards_shows_and_moves_a_tenants_layout() {
    let api = Api::start().await;
    random_profiles(&api, 8, 13).await;
    let bin = profiles_tests::binaries()
        .get("keys")
        .expect("the keys binary");
    let keys = |args: &[&str]| {
        let mut c = tokio::process::Command::new(bin);
        c.args([
            "--endpoint",
            &api.engine.endpoint,
            "--table",
            &api.engine.table,
        ])
        .args(args)
        .env_remove(shared::config::env::DYNAMODB_ENDPOINT)
        .env_remove(shared::config::env::TABLE_NAME)
        .kill_on_drop(true);
        c.output()
    };
    let out = keys(&["shards", "--tenant", "tenant-a"]).await.unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "tenant tenant-a: 1 shards"
    );
    let out = keys(&[
        "shards", "--tenant", "tenant-a", "--count", "5", "--settle", "0",
    ])
    .await
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("done: tenant tenant-a has 5 shards (8 profiles rewritten)"),
        "{stdout}"
    );
    assert!(stderr.contains("warning: --settle 0"), "{stderr}");
    let fresh = Api::on(api.engine.clone());
    assert_eq!(fresh.app.store.layout(&tenant()).await.unwrap().count, 5);
    let (listed, _) = fresh.walk(&[("limit", "3")]).await;
    assert_eq!(listed.len(), 8);
    let out = keys(&["shards", "--tenant", "tenant-a", "--count", "65"])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "more than 64 shards is refused");
}
