//! `cargo run -p bench --release [-- --quick]`: measures what the product exists for and
//! prints markdown tables. Everything runs in one process and one run, against baselines
//! measured in the same run, so ratios hold on a noisy machine:
//!
//! 1. cold start of every function (process exec → first `/next` → first invocation
//!    answered, doing its real DynamoDB work) through the local runner's Runtime API, beside
//!    an empty `lambda_runtime` function built with the same profile (the floor);
//! 2. warm latency p50/p99 of every route over HTTP through the runner, and the handlers' own
//!    time beside raw SDK calls doing the same DynamoDB work on the same engine;
//! 3. binary sizes (host release, and arm64 `bootstrap` cross-built by cargo lambda when it
//!    is installed) and their zips;
//! 4. peak RSS of every function after its warm load;
//! 5. list-page time at 1k, 10k and (not in `--quick`) 100k profiles in one tenant.
//!
//! Nothing here asserts a time: CI runs `--quick` so the bench cannot rot.
#![allow(clippy::print_stdout, clippy::print_stderr)] // the bench's output is its tables

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use local_api::runtime::{Environment, Outcome, Pool};
use local_api::template::{Function, Template};
use local_api::{Options, Server, Storage};
use serde_json::json;
use shared::app::App;
use shared::handlers as h;

mod calls;
mod measure;

use calls::{
    AUTHORIZER, BENCH_TENANT, Call, Fixtures, allows, authorizer_event, json_of, proxy_status,
};
use measure::{arm64_sizes, mb, ms, percentile, seed, spread, today, vm_hwm_kb, zip_size};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Opts {
    quick: bool,
    cold_runs: usize,
    warm_requests: usize,
    scales: Vec<usize>,
    arm64: bool,
}

/// The bench's command line.
#[derive(clap::Parser)]
#[command(name = "bench", about)]
struct Cli {
    /// 3 cold runs, 20 requests per route, 1k and 10k profiles, no arm64 build
    #[arg(long)]
    quick: bool,
    /// Skip the arm64 cross-build (cargo lambda)
    #[arg(long)]
    no_arm64: bool,
}

/// The options (bad arguments: clap prints why, with a suggestion, and exits 2).
fn opts() -> Opts {
    let cli = <Cli as clap::Parser>::parse();
    let quick = cli.quick;
    Opts {
        quick,
        cold_runs: if quick { 3 } else { 15 },
        warm_requests: if quick { 20 } else { 300 },
        scales: if quick {
            vec![1_000, 10_000]
        } else {
            vec![1_000, 10_000, 100_000]
        },
        arm64: !quick && !cli.no_arm64,
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn main() -> Result<(), Error> {
    let opts = opts();
    let template = Template::load(&repo().join("template.yaml"))?;
    // Every function the runner runs (process-photo included: the runner starts a pool for
    // each), built; measured, the functions a request reaches (process-photo answers S3's
    // events, not requests: the photo tests run it end to end).
    let served = template.served_binaries()?;
    let routed = template.routes()?;
    let names: Vec<String> = served
        .iter()
        .filter(|n| *n == AUTHORIZER || routed.iter().any(|r| r.binary == **n))
        .cloned()
        .collect();
    // The functions alone (and the floor): the feature set `cargo lambda build` compiles.
    eprintln!(
        "bench: building release binaries of {} functions and the floor",
        served.len()
    );
    let mut selection = vec!["-p", "bench-floor"];
    for n in &served {
        selection.extend(["-p", n.as_str()]);
    }
    let binaries = local_api::binaries::build(&repo(), &selection, true)?;
    let arm64 = if opts.arm64 {
        arm64_sizes(&names)
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(opts, template, names, binaries, arm64))
}

async fn run(
    opts: Opts,
    template: Template,
    names: Vec<String>,
    binaries: local_api::binaries::Binaries,
    arm64: Option<HashMap<String, (u64, Option<u64>)>>,
) -> Result<(), Error> {
    let mut server = Server::start(
        &template,
        Options {
            storage: Storage::Memory,
            binaries: binaries.clone(),
            concurrency: 1,
            region: "us-east-1".into(),
            ..Options::default()
        },
    )
    .await?;
    let config = shared::config::Config::from_lookup(|k| match k {
        "TABLE_NAME" => Some(server.table.clone()),
        "DYNAMODB_ENDPOINT" => Some(server.endpoint.clone()),
        _ => None,
    })?;
    let fixtures = Fixtures {
        app: App::new(config.clone()),
    };
    let shared_profile = fixtures.profile(5).await?;
    let shared_contact = fixtures.contact(&shared_profile).await?;
    let shared_ids = (shared_profile.clone(), shared_contact.clone());
    let environment = Environment {
        region: "us-east-1".into(),
        vars: vec![("DYNAMODB_ENDPOINT".into(), server.endpoint.clone())],
    };
    let functions: Vec<Function> = template
        .clone()
        .with_local("us-east-1", Some(&server.s3_endpoint))
        .functions(&server.table)?
        .into_iter()
        .filter(|f| names.contains(&f.binary))
        .collect();
    let now = today();
    println!(
        "## Profiles API bench ({now}, {} mode)\n",
        if opts.quick { "quick" } else { "full" }
    );
    println!(
        "Machine: {} cores, {}. Host builds: release profile of the workspace. Engine: embedded dynoxide.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::ARCH
    );

    // 1. Cold starts.
    let floor_fn = Function {
        id: "FloorFunction".into(),
        binary: "bench-floor".into(),
        timeout: Duration::from_secs(10),
        memory_mb: 128,
        env: Vec::new(),
        log_format: None,
        log_level: None,
    };
    let mut cold: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    // (label, function, whether it is the floor)
    let mut subjects: Vec<(String, Function, bool)> =
        vec![(floor_fn.binary.clone(), floor_fn, true)];
    for f in &functions {
        subjects.push((f.binary.clone(), f.clone(), false));
        // The same binary trusting the platform's ~145 roots too, as every function did
        // before it trusted only the five AWS's endpoints chain to: the root store's cost.
        if f.binary == "get-profile" {
            let mut before = f.clone();
            before
                .env
                .push(("TLS_PLATFORM_ROOTS".into(), "true".into()));
            subjects.push(("get-profile, platform roots".into(), before, false));
        }
    }
    for (label, function, is_floor) in &subjects {
        let Some(binary) = binaries.get(&function.binary) else {
            return Err(format!("no binary {}", function.binary).into());
        };
        let (mut totals, mut inits) = (Vec::new(), Vec::new());
        for _ in 0..opts.cold_runs {
            let event = if *is_floor {
                json!({})
            } else if function.binary == AUTHORIZER {
                authorizer_event(server.dev_api_key.expose())?
            } else {
                fixtures
                    .call(&function.binary, &shared_ids)
                    .await?
                    .event()?
            };
            let pool = Pool::new(function.clone(), binary.clone(), environment.clone(), 1);
            let started = Instant::now();
            let invoked = pool
                .invoke(
                    uuid::Uuid::new_v4().to_string(),
                    "Root=1-0-0".into(),
                    event.to_string().into_bytes(),
                )
                .await;
            let total = started.elapsed();
            match &invoked.outcome {
                Outcome::Response(p)
                    if function.binary == AUTHORIZER && allows(p)
                        || (200..300).contains(&proxy_status(p)) => {}
                other => {
                    return Err(
                        format!("{}: cold invocation failed: {other:?}", function.binary).into(),
                    );
                }
            }
            totals.push(ms(total));
            inits.push(invoked.cold.map_or(f64::NAN, ms));
            pool.stop();
        }
        cold.push((label.clone(), inits, totals));
    }
    let floor = spread(&cold[0].2).0;
    println!(
        "### Cold start: exec → runtime ready (init) → first invocation answered ({} runs; median [min–max] ms)\n",
        opts.cold_runs
    );
    println!("| function | init | exec → answered | ratio to floor |\n|---|---|---|---|");
    for (name, inits, totals) in &cold {
        let (im, imin, imax) = spread(inits);
        let (tm, tmin, tmax) = spread(totals);
        println!(
            "| {name} | {im:.1} [{imin:.1}–{imax:.1}] | {tm:.1} [{tmin:.1}–{tmax:.1}] | {:.2}× |",
            tm / floor
        );
    }

    // 2a. Warm latency over HTTP through the runner, each request authorized by the
    // authorizer function (uncached, as the template says) with the development key. The
    // usage plan's throttle (10/s burst) is lifted: this measures latency, not the limit.
    for api in server.apis.values_mut() {
        for plan in &mut api.plans {
            plan.throttle = None;
        }
    }
    let bearer = format!("Bearer {}", server.dev_api_key.expose());
    let server = std::sync::Arc::new(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = server.api_url(&format!("http://{}", listener.local_addr()?));
    tokio::spawn(server.clone().serve(listener, std::future::pending()));
    let client = reqwest::Client::new();
    println!(
        "\n### Warm latency over HTTP through the runner, the authorizer run on each request ({} requests per route, one warm instance each; ms)\n",
        opts.warm_requests
    );
    println!("| route | function | p50 | p99 |\n|---|---|---|---|");
    for f in functions.iter().filter(|f| f.binary != AUTHORIZER) {
        let mut samples = Vec::new();
        for i in 0..(opts.warm_requests + 3) {
            let call = fixtures.call(&f.binary, &shared_ids).await?;
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
        let call = fixtures.call(&f.binary, &shared_ids).await?;
        let route = format!(
            "{} {}",
            call.method,
            call.template_event()?["resource"].as_str().unwrap_or("")
        );
        println!(
            "| {route} | {} | {:.2} | {:.2} |",
            f.binary,
            percentile(&samples, 50.0),
            percentile(&samples, 99.0)
        );
    }

    // 4. Peak memory, after the warm load.
    println!("\n### Peak RSS (VmHWM) of each function's instance after its warm load\n");
    println!("| function | peak RSS MB |\n|---|---|");
    for f in &functions {
        let pids = server
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

    // 2b. Handler time beside the raw SDK call doing the same DynamoDB work.
    let app = &fixtures.app;
    let client_db = shared::store::dynamodb_client(&config);
    let tenant = shared::auth::TenantId::new(BENCH_TENANT).map_err(|e| e.to_string())?;
    let n = opts.warm_requests.max(20);
    let mut rows = Vec::new();
    {
        let call = Call::new("get-profile", "GET").param("profile_id", &shared_profile);
        let (mut handler, mut raw) = (Vec::new(), Vec::new());
        let id = shared::model::parse_id(&shared_profile).ok_or("bad id")?;
        for _ in 0..n {
            let req = call.request()?;
            let t = Instant::now();
            let r = shared::lambda::respond(&req, h::get_profile(app, &req)).await;
            handler.push(ms(t.elapsed()));
            if r.status() != 200 {
                return Err("get-profile failed in-process".into());
            }
            let t = Instant::now();
            client_db
                .query()
                .table_name(&config.table_name)
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
        rows.push(("GET /profiles/{id}: the partition Query", handler, raw));
    }
    {
        let call = Call::new("list-profiles", "GET");
        let (mut handler, mut raw) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let req = call.request()?;
            let t = Instant::now();
            let r = shared::lambda::respond(&req, h::list_profiles(app, &req)).await;
            handler.push(ms(t.elapsed()));
            if r.status() != 200 {
                return Err("list-profiles failed in-process".into());
            }
            let t = Instant::now();
            client_db
                .query()
                .table_name(&config.table_name)
                .index_name(shared::store::schema::GSI1)
                .key_condition_expression("GSI1PK = :pk")
                .expression_attribute_values(":pk", shared::store::schema::list_partition(&tenant))
                .scan_index_forward(false)
                .limit(21)
                .send()
                .await?;
            raw.push(ms(t.elapsed()));
        }
        rows.push(("GET /profiles: a GSI1 page of 21", handler, raw));
    }
    println!(
        "\n### Handler vs the raw SDK call doing the same DynamoDB work (in-process, {n} each; p50 ms)\n"
    );
    println!("| operation | handler | raw SDK call | ratio |\n|---|---|---|---|");
    for (name, handler, raw) in rows {
        let (hp, rp) = (percentile(&handler, 50.0), percentile(&raw, 50.0));
        println!("| {name} | {hp:.3} | {rp:.3} | {:.2}× |", hp / rp);
    }

    // 2c. What Idempotency-Key costs a create: its record written in the same transaction,
    // and what a replay (the transaction refused, the record read back) costs.
    {
        let run = uuid::Uuid::now_v7().simple().to_string();
        let create = |name: String| {
            let mut call = Call::new("create-profile", "POST").body(json!({ "name": name }));
            call.tenant = Some(format!("bench-idempotency-{run}"));
            call
        };
        let (mut plain, mut keyed, mut replayed) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            for (call, times, status) in [
                (create(format!("Plain {i}")), &mut plain, 201),
                (
                    create(format!("Keyed {i}")).header("Idempotency-Key", &format!("k{i}")),
                    &mut keyed,
                    201,
                ),
                (
                    create(format!("Keyed {i}")).header("Idempotency-Key", &format!("k{i}")),
                    &mut replayed,
                    201,
                ),
            ] {
                let req = call.request()?;
                let t = Instant::now();
                let r = shared::lambda::respond(&req, h::create_profile(app, &req)).await;
                times.push(ms(t.elapsed()));
                if r.status() != status {
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
    }

    // 3. Sizes.
    println!("\n### Binary size (MB; zip -9 of the binary named bootstrap)\n");
    println!(
        "| function | host ({}) binary | host zip | arm64 bootstrap | arm64 zip |\n|---|---|---|---|---|",
        std::env::consts::ARCH
    );
    let mut all = vec!["bench-floor".to_owned()];
    all.extend(names.iter().cloned());
    for name in &all {
        let Some(path) = binaries.get(name) else {
            continue;
        };
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let (a, az) = match arm64.as_ref().and_then(|m| m.get(name)) {
            Some((s, z)) => (mb(*s), z.map_or("n/a".into(), mb)),
            None => ("not built".into(), "—".into()),
        };
        println!(
            "| {name} | {} | {} | {a} | {az} |",
            mb(size),
            zip_size(path).map_or("n/a".into(), mb)
        );
    }

    // 5. Scaling.
    println!(
        "\n### List page (limit 20) vs profiles in one tenant (in-process handler; p50 ms over 30 pages)\n"
    );
    println!(
        "| profiles | sort_by=created_at | sort_by=name | filter[tag] (1 in 10 match) |\n|---|---|---|---|"
    );
    let scale_tenant = shared::auth::TenantId::new("scale").map_err(|e| e.to_string())?;
    let scale_app = App::new(config.clone());
    let mut seeded = 0;
    for &target in &opts.scales {
        seed(
            &client_db,
            &config.table_name,
            &scale_tenant,
            seeded,
            target,
        )
        .await?;
        seeded = target;
        let mut cols = Vec::new();
        for query in [
            vec![],
            vec![("sort_by", "name")],
            vec![("filter[tag]", "tenth")],
        ] {
            let mut samples = Vec::new();
            for _ in 0..30 {
                let mut call = Call::new("list-profiles", "GET");
                call.tenant = Some(scale_tenant.to_string());
                call.query = query.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
                let req = call.request()?;
                let t = Instant::now();
                let r = shared::lambda::respond(&req, h::list_profiles(&scale_app, &req)).await;
                samples.push(ms(t.elapsed()));
                if r.status() != 200 {
                    return Err(format!("list at {target}: {}", json_of(&r)).into());
                }
            }
            cols.push(percentile(&samples, 50.0));
        }
        println!(
            "| {target} | {:.2} | {:.2} | {:.2} |",
            cols[0], cols[1], cols[2]
        );
    }
    server.stop().await;
    Ok(())
}
