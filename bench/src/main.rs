//! `cargo run -p bench --release [-- --quick]`: measures what the product exists for and
//! prints markdown tables. Everything runs in one process and one run, against baselines
//! measured in the same run, so ratios hold on a noisy machine:
//!
//! 1. cold start of every function (process exec → first `/next` → first invocation
//!    answered, doing its real DynamoDB work, and the CPU time used to that answer) through
//!    the local runner's Runtime API, beside an empty `lambda_runtime` function built with the
//!    same profile (the floor) and get-profile's work written as AWS's examples write a
//!    function (`bench/baseline`, its own workspace and default release profile); then
//!    get-profile and the baseline warm, invoked directly;
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
use std::time::Instant;

use edge::handlers as h;
use local_api::runtime::Environment;
use local_api::template::{Function, Template};
use local_api::{Options, Server, Storage};
use serde_json::json;
use shared::app::App;

mod calls;
mod cold;
mod measure;

use calls::{AUTHORIZER, BENCH_TENANT, Call, Fixtures, json_of};
use cold::{Kind, Setup, Subject, bench_function};
use measure::{arm64_sizes, mb, ms, percentile, seed, today, vm_hwm_kb, zip_size};

/// The baseline's binary (bench/baseline).
pub(crate) const BASELINE: &str = "bench-baseline";

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Opts {
    quick: bool,
    cold_runs: usize,
    warm_requests: usize,
    scales: Vec<usize>,
    arm64: bool,
}

/// The options (bad arguments: clap prints why, with a suggestion, and exits 2).
fn opts() -> Opts {
    let cli = <bench::cli::Cli as clap::Parser>::parse();
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
    let mut binaries = local_api::binaries::build(&repo(), &selection, true)?;
    eprintln!("bench: building the baseline (bench/baseline: its own workspace, default profile)");
    let (baseline_dir, baseline_target) = measure::baseline_dirs();
    binaries.extend(local_api::binaries::build(
        &baseline_dir,
        &[
            "--locked",
            "--target-dir",
            &baseline_target.to_string_lossy(),
        ],
        true,
    )?);
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
    // As Lambda gives every function: the role's credentials in the environment (the
    // baseline's default credential chain finds them first, as it does on Lambda).
    let environment = Environment {
        region: "us-east-1".into(),
        vars: vec![
            ("DYNAMODB_ENDPOINT".into(), server.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID".into(), "ASIABENCHFUNCTIONROLE".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "bench-secret".into()),
            ("AWS_SESSION_TOKEN".into(), "bench-session".into()),
        ],
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

    // 1. Cold starts: the floor, the baseline, then ours.
    let baseline_fn = bench_function(
        BASELINE,
        vec![
            ("TABLE_NAME".into(), server.table.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB".into(), server.endpoint.clone()),
        ],
    );
    let mut subjects = vec![
        Subject {
            label: "bench-floor".into(),
            function: bench_function("bench-floor", Vec::new()),
            kind: Kind::Floor,
            call: None,
        },
        Subject {
            label: "bench-baseline (get-profile as the docs write it)".into(),
            function: baseline_fn,
            kind: Kind::Baseline,
            call: None,
        },
    ];
    for f in &functions {
        subjects.push(Subject {
            label: f.binary.clone(),
            function: f.clone(),
            kind: Kind::Function,
            call: None,
        });
        // The same create without a phone number: what parsing the first one costs.
        if f.binary == "create-profile" {
            subjects.push(Subject {
                label: "create-profile, no phone number".into(),
                function: f.clone(),
                kind: Kind::Function,
                call: Some(|| {
                    Call::new("create-profile", "POST").body(json!({
                        "first_name": "Mary",
                        "last_name": format!("Smith {}", uuid::Uuid::now_v7()),
                        "title": "CTO", "company": "Acme", "email": "Mary@Example.COM",
                        "country_numeric_code": "840", "tags": ["blue", "green"],
                    }))
                }),
            });
        }
        // The same binary trusting the platform's ~145 roots too, as every function did
        // before it trusted only the five AWS's endpoints chain to: the root store's cost.
        if f.binary == "get-profile" {
            let mut before = f.clone();
            before
                .env
                .push(("TLS_PLATFORM_ROOTS".into(), "true".into()));
            subjects.push(Subject {
                label: "get-profile, platform roots".into(),
                function: before,
                kind: Kind::Function,
                call: None,
            });
        }
    }
    let setup = Setup {
        fixtures: &fixtures,
        ids: &shared_ids,
        environment: &environment,
        dev_key: server.dev_api_key.expose(),
    };
    let cold = cold::cold_starts(&setup, &subjects, &binaries, opts.cold_runs).await?;
    cold::print_cold(&cold, opts.cold_runs);
    let direct: Vec<Subject> = subjects
        .into_iter()
        .filter(|s| s.kind == Kind::Baseline || s.label == "get-profile")
        .collect();
    cold::warm_direct(&setup, &direct, &binaries, opts.warm_requests).await?;

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
            let r = edge::lambda::respond(&req, h::get_profile(app, &req)).await;
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
            let r = edge::lambda::respond(&req, h::list_profiles(app, &req)).await;
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
                let r = edge::lambda::respond(&req, h::create_profile(app, &req)).await;
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
        "| function | host ({}) binary | host zip | arm64 bootstrap | arm64 zip | size / baseline's (arm64 when both built, else host) |\n|---|---|---|---|---|---|",
        std::env::consts::ARCH
    );
    // Both arm64 when both were cross-built, else both host.
    let host_size = |name: &str| std::fs::metadata(binaries.get(name)?).ok().map(|m| m.len());
    let arm64_size = |name: &str| arm64.as_ref()?.get(name).map(|(s, _)| *s);
    let ratio_to_baseline = |name: &str| {
        let (s, b) = match (arm64_size(name), arm64_size(BASELINE)) {
            (Some(s), Some(b)) => (s, b),
            _ => (host_size(name)?, host_size(BASELINE)?),
        };
        (b > 0).then(|| s as f64 / b as f64)
    };
    let mut all = vec!["bench-floor".to_owned(), BASELINE.to_owned()];
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
        let ratio = ratio_to_baseline(name).map_or("n/a".into(), |r| format!("{r:.2}×"));
        println!(
            "| {name} | {} | {} | {a} | {az} | {ratio} |",
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
                let r = edge::lambda::respond(&req, h::list_profiles(&scale_app, &req)).await;
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
