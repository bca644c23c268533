//! The bench's tables, one function each, in the order they print.

use std::time::Instant;

use edge::handlers as h;
use serde_json::json;
use shared::config::env;

use crate::calls::{AUTHORIZER, BENCH_TENANT, Call};
use crate::cold::{self, Role, Subject, bench_function};
use crate::measure::{mb, ms, percentile, today, vm_hwm_kb, zip_size};
use crate::{BASELINE, Bench, Error};

/// The run's heading: date, mode, machine.
pub(crate) fn header(bench: &Bench) {
    println!(
        "## Profiles API bench ({}, {} mode)\n",
        today(),
        if bench.opts.quick { "quick" } else { "full" }
    );
    println!(
        "Machine: {} cores, {}. Host builds: release profile of the workspace. Engine: embedded dynoxide.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::ARCH
    );
}

/// Cold starts of the floor, the baseline and every function (with two rows that each take
/// one thing away), then get-profile and the baseline warm, invoked directly.
pub(crate) async fn cold_starts(bench: &Bench) -> Result<(), Error> {
    let subjects = subjects(bench);
    let environment = bench.environment();
    let setup = bench.setup(&environment);
    let runs = bench.opts.cold_runs;
    let cold = cold::cold_starts(&setup, &subjects, &bench.binaries, runs).await?;
    cold::print_cold(&cold, runs);
    let direct: Vec<Subject> = subjects
        .into_iter()
        .filter(|s| s.kind == Role::Baseline || s.label == "get-profile")
        .collect();
    cold::warm_direct(&setup, &direct, &bench.binaries, bench.opts.warm_requests).await
}

/// What the cold-start table measures: the floor, the baseline, every function, and the
/// rows that take one thing away (no phone number; the platform's root certificates).
fn subjects(bench: &Bench) -> Vec<Subject> {
    let engine = &bench.server.engine;
    let baseline = bench_function(
        BASELINE,
        vec![
            (env::TABLE_NAME.into(), engine.table.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB".into(), engine.endpoint.clone()),
        ],
    );
    let mut subjects = vec![
        Subject {
            label: "bench-floor".into(),
            function: bench_function("bench-floor", Vec::new()),
            kind: Role::Floor,
            call: None,
            env: Vec::new(),
        },
        Subject {
            label: "bench-baseline (get-profile as the docs write it)".into(),
            function: baseline,
            kind: Role::Baseline,
            call: None,
            env: Vec::new(),
        },
    ];
    for f in &bench.functions {
        subjects.push(Subject {
            label: f.binary.clone(),
            function: f.clone(),
            kind: Role::Function,
            call: None,
            env: Vec::new(),
        });
        // The same create without a phone number: what parsing the first one costs.
        if f.binary == "create-profile" {
            subjects.push(Subject {
                label: "create-profile, no phone number".into(),
                function: f.clone(),
                kind: Role::Function,
                call: Some(|| {
                    Call::new("create-profile", "POST").body(json!({
                        "first_name": "Mary",
                        "last_name": format!("Smith {}", uuid::Uuid::now_v7()),
                        "title": "CTO", "company": "Acme", "email": "Mary@Example.COM",
                        "country_numeric_code": "840", "tags": ["blue", "green"],
                    }))
                }),
                env: Vec::new(),
            });
        }
        // The same binary trusting the platform's ~145 roots too: the root store's cost.
        if f.binary == "get-profile" {
            let mut platform = f.clone();
            platform
                .env
                .push((env::TLS_PLATFORM_ROOTS.into(), "true".into()));
            subjects.push(Subject {
                label: "get-profile, platform roots".into(),
                function: platform,
                kind: Role::Function,
                call: None,
                env: Vec::new(),
            });
        }
    }
    subjects
}

/// Every route's warm latency over HTTP through the runner, each request authorized by the
/// authorizer function (uncached, as the template says) with the development key.
pub(crate) async fn warm_over_http(bench: &Bench) -> Result<(), Error> {
    let bearer = format!("Bearer {}", bench.server.dev_api_key.expose());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = bench
        .server
        .api_url(&format!("http://{}", listener.local_addr()?));
    tokio::spawn(bench.server.clone().serve(listener, std::future::pending()));
    let client = reqwest::Client::new();
    let n = bench.opts.warm_requests;
    println!(
        "\n### Warm latency over HTTP through the runner, the authorizer run on each request ({n} requests per route, one warm instance each; ms)\n"
    );
    println!("| route | function | p50 | p99 |\n|---|---|---|---|");
    for f in bench.functions.iter().filter(|f| f.binary != AUTHORIZER) {
        let mut samples = Vec::new();
        // Three first requests warm the instance (and the authorizer's) up, unmeasured.
        for i in 0..(n + 3) {
            let call = bench.fixtures.call(&f.binary, &bench.ids).await?;
            let started = Instant::now();
            let r = call
                .http(&client, &base)?
                .header("authorization", &bearer)
                .send()
                .await?;
            let status = r.status();
            let _ = r.bytes().await?;
            let took = started.elapsed();
            if !status.is_success() {
                return Err(format!("{}: {} over HTTP", f.binary, status).into());
            }
            if i >= 3 {
                samples.push(ms(took));
            }
        }
        let call = bench.fixtures.call(&f.binary, &bench.ids).await?;
        let resource = call.template_event()?["resource"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        println!(
            "| {} {resource} | {} | {:.2} | {:.2} |",
            call.method,
            f.binary,
            percentile(&samples, 50.0),
            percentile(&samples, 99.0)
        );
    }
    Ok(())
}

/// Every function's peak memory after its warm load.
pub(crate) fn peak_rss(bench: &Bench) {
    println!("\n### Peak RSS (VmHWM) of each function's instance after its warm load\n");
    println!("| function | peak RSS MB |\n|---|---|");
    for f in &bench.functions {
        let pids = bench
            .server
            .pools
            .get(&f.id)
            .map(|p| p.idle_pids())
            .unwrap_or_default();
        let peak = pids.iter().filter_map(|p| vm_hwm_kb(*p)).max();
        println!(
            "| {} | {} |",
            f.binary,
            peak.map_or("n/a".into(), |kb| format!("{:.1}", kb as f64 / 1024.0))
        );
    }
}

/// The handler's time beside the raw SDK call doing the same DynamoDB work, for one
/// profile's Query and one list page.
pub(crate) async fn handler_vs_raw(bench: &Bench) -> Result<(), Error> {
    let n = bench.opts.warm_requests.max(20);
    let rows = [
        (
            "GET /profiles/{id}: the partition Query",
            get_beside_raw(bench, n).await?,
        ),
        (
            "GET /profiles: a page (Query of 21 entries, BatchGetItem of them)",
            list_beside_raw(bench, n).await?,
        ),
    ];
    println!(
        "\n### Handler vs the raw SDK call doing the same DynamoDB work (in-process, {n} each; p50 ms)\n"
    );
    println!("| operation | handler | raw SDK call | ratio |\n|---|---|---|---|");
    for (name, (handler, raw)) in rows {
        let (hp, rp) = (percentile(&handler, 50.0), percentile(&raw, 50.0));
        println!("| {name} | {hp:.3} | {rp:.3} | {:.2}× |", hp / rp);
    }
    Ok(())
}

/// `n` get-profile handler calls and `n` raw partition Queries, in ms.
async fn get_beside_raw(bench: &Bench, n: usize) -> Result<(Vec<f64>, Vec<f64>), Error> {
    let app = &bench.fixtures.app;
    let db = shared::store::dynamodb_client(&bench.config);
    let tenant = shared::ids::TenantId::new(BENCH_TENANT).map_err(|e| e.to_string())?;
    let id = shared::ids::ProfileId::parse(&bench.ids.0).ok_or("bad id")?;
    let call = Call::new("get-profile", "GET").param("profile_id", &bench.ids.0);
    let (mut handler, mut raw) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let req = call.request()?;
        let t = Instant::now();
        let r = edge::lambda::respond(&req, h::get_profile(app, &req)).await;
        handler.push(ms(t.elapsed()));
        if r.status() != 200 {
            return Err("get-profile failed in-process".into());
        }
        let t = Instant::now();
        db.query()
            .table_name(&bench.config.table_name)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(
                ":pk",
                shared::store::schema::profile_partition(&tenant, &id),
            )
            .consistent_read(true)
            .send()
            .await?;
        raw.push(ms(t.elapsed()));
    }
    Ok((handler, raw))
}

/// `n` list-profiles handler calls and `n` of the raw calls a page of 20 makes (the index
/// Query of 21 entries, then one BatchGetItem of them), in ms.
async fn list_beside_raw(bench: &Bench, n: usize) -> Result<(Vec<f64>, Vec<f64>), Error> {
    let app = &bench.fixtures.app;
    let db = shared::store::dynamodb_client(&bench.config);
    let tenant = shared::ids::TenantId::new(BENCH_TENANT).map_err(|e| e.to_string())?;
    let call = Call::new("list-profiles", "GET");
    let (mut handler, mut raw) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let req = call.request()?;
        let t = Instant::now();
        let r = edge::lambda::respond(&req, h::list_profiles(app, &req)).await;
        handler.push(ms(t.elapsed()));
        if r.status() != 200 {
            return Err("list-profiles failed in-process".into());
        }
        let t = Instant::now();
        let schema = |s| shared::store::schema::sort_index(s);
        let page = db
            .query()
            .table_name(&bench.config.table_name)
            .index_name(schema(shared::listing::Sort::CreatedAt))
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", shared::store::schema::LIST_PK)
            .expression_attribute_values(
                ":pk",
                shared::store::schema::list_partition(&tenant, 1, 0),
            )
            .scan_index_forward(false)
            .limit(21)
            .send()
            .await?;
        let keys: Vec<_> = page
            .items()
            .iter()
            .map(shared::store::schema::key_of)
            .collect();
        db.batch_get_item()
            .request_items(
                &bench.config.table_name,
                aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .build()?,
            )
            .send()
            .await?;
        raw.push(ms(t.elapsed()));
    }
    Ok((handler, raw))
}

/// What `Idempotency-Key` costs a create: its record written in the same transaction, and
/// what a replay (the transaction refused, the record read back) costs.
pub(crate) async fn idempotency(bench: &Bench) -> Result<(), Error> {
    let app = &bench.fixtures.app;
    let n = bench.opts.warm_requests.max(20);
    let run = uuid::Uuid::now_v7().simple().to_string();
    let create = |name: String| {
        let mut call = Call::new("create-profile", "POST").body(json!({ "name": name }));
        call.tenant = Some(format!("bench-idempotency-{run}"));
        call
    };
    let (mut plain, mut keyed, mut replayed) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let key = format!("k{i}");
        for (call, times) in [
            (create(format!("Plain {i}")), &mut plain),
            (
                create(format!("Keyed {i}")).header("Idempotency-Key", &key),
                &mut keyed,
            ),
            (
                create(format!("Keyed {i}")).header("Idempotency-Key", &key),
                &mut replayed,
            ),
        ] {
            let req = call.request()?;
            let t = Instant::now();
            let r = edge::lambda::respond(&req, h::create_profile(app, &req)).await;
            times.push(ms(t.elapsed()));
            if r.status() != 201 {
                return Err(format!("create-profile answered {} in-process", r.status()).into());
            }
        }
    }
    println!("\n### Idempotency-Key on a create (in-process, {n} each; p50 ms)\n");
    println!("| create | p50 | vs plain |\n|---|---|---|");
    let base = percentile(&plain, 50.0);
    for (name, times) in [
        ("plain", &plain),
        (
            "with a new Idempotency-Key (its record in the same transaction)",
            &keyed,
        ),
        (
            "replayed (same key and body: the transaction refused, the record returned)",
            &replayed,
        ),
    ] {
        let p = percentile(times, 50.0);
        println!(
            "| {name} | {p:.3} | {:+.3} ms ({:.2}×) |",
            p - base,
            p / base
        );
    }
    Ok(())
}

/// Every binary's size, host and (when cross-built) arm64, zipped, and its ratio to the
/// baseline's.
pub(crate) fn sizes(bench: &Bench) {
    println!("\n### Binary size (MB; zip -9 of the binary named bootstrap)\n");
    println!(
        "| function | host ({}) binary | host zip | arm64 bootstrap | arm64 zip | size / baseline's (arm64 when both built, else host) |\n|---|---|---|---|---|---|",
        std::env::consts::ARCH
    );
    let binaries = &bench.binaries;
    let arm64 = bench.arm64.as_ref();
    // Both arm64 when both were cross-built, else both host.
    let host_size = |name: &str| std::fs::metadata(binaries.get(name)?).ok().map(|m| m.len());
    let arm64_size = |name: &str| arm64?.get(name).map(|(s, _)| *s);
    let ratio_to_baseline = |name: &str| {
        let (s, b) = match (arm64_size(name), arm64_size(BASELINE)) {
            (Some(s), Some(b)) => (s, b),
            _ => (host_size(name)?, host_size(BASELINE)?),
        };
        (b > 0).then(|| s as f64 / b as f64)
    };
    let mut all = vec!["bench-floor".to_owned(), BASELINE.to_owned()];
    all.extend(bench.names.iter().cloned());
    for name in &all {
        let Some(path) = binaries.get(name) else {
            continue;
        };
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let (a, az) = match arm64.and_then(|m| m.get(name)) {
            Some((s, z)) => (mb(*s), z.map_or("n/a".into(), mb)),
            None => ("not built".into(), "—".into()),
        };
        let ratio = ratio_to_baseline(name).map_or("n/a".into(), |r| format!("{r:.2}×"));
        println!(
            "| {name} | {} | {} | {a} | {az} | {ratio} |",
            mb(size),
            zip_size(path).map_or("n/a".into(), mb)
        );
    }
}
