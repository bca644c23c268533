//! Bulk imports and exports: one worker's pace (run-jobs' own work, `shared::bulk::work`, in
//! process on a multi-threaded runtime of its own, as run-jobs', against an engine without a
//! stream and the embedded S3), the CPU its threads spend a line, and the units a line costs in DynamoDB (through the
//! capacity meter); then the time and cost of 1 and 10 million lines on Lambda, modelled from
//! those measurements. The run checks what it measures: exact counts, an error report naming
//! every bad line, an upsert run twice that creates nothing, an export of every profile.

use std::time::{Duration, Instant, SystemTime};

use local_api::engine::Engine;
use local_api::meter::Meter;
use serde_json::json;
use shared::app::App;
use shared::bulk::{Budget, Keys, Worked, work};
use shared::config::{Config, env};
use shared::ids::{PrincipalId, TenantId};
use shared::model::job::{Job, JobKind, Mode, Status};

use crate::Error;

/// On-demand prices (us-east-1): per million write and read request units, Lambda per
/// GB-second (arm64) and per million requests.
const WRITE_UNIT_PRICE: f64 = 0.625;
const READ_UNIT_PRICE: f64 = 0.125;
const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;

/// run-jobs' memory in the template: 1,769 MB buys one vCPU, so 7,076 four.
const WORKER_MB: f64 = 7076.0;

/// A created line's write latency on DynamoDB (one TransactWriteItems): an assumption, not
/// measured here; with `IN_FLIGHT` lines at once it bounds a worker's pace too.
const LINE_LATENCY_S: f64 = 0.020;

/// The worker's runtime threads (as run-jobs' multi-threaded runtime has one per vCPU).
const WORKER_THREADS: usize = 2;

/// A table's default on-demand throughput quota (write request units a second).
const TABLE_WRITE_QUOTA: f64 = 40_000.0;

/// One bad line in this many: a few hundred in 100,000.
const BAD_EVERY: usize = 331;

/// The bench's jobs bucket.
const BUCKET: &str = "bench-jobs";

/// Line `i` of the bench's file: a ~600-byte profile with a contact, or (every
/// [`BAD_EVERY`]th) a bad line of one of three kinds.
fn line(i: usize) -> String {
    if i.is_multiple_of(BAD_EVERY) {
        return match (i / BAD_EVERY) % 3 {
            0 => format!("{{\"name\": \"Broken {i}\", \"external_id\": \"b-{i}\""),
            1 => json!({"name": format!("Bad {i}"), "external_id": format!("b-{i}"), "email": "no-at-sign"})
                .to_string(),
            _ => json!({"name": format!("Odd {i}"), "external_id": format!("b-{i}"), "colour": "blue"})
                .to_string(),
        };
    }
    json!({
        "first_name": format!("Ann{i}"),
        "last_name": "Example",
        "external_id": format!("b-{i}"),
        "email": format!("ann{i}@example.com"),
        "company": "Acme Corp",
        "title": "Head of Platform",
        "bio": "x".repeat(300),
        "tags": ["imported", if i.is_multiple_of(10) { "tenth" } else { "other" }],
        "contacts": [{"key": "email", "value": format!("ann{i}@example.com")}],
    })
    .to_string()
}

/// What one run of the worker did.
struct Run {
    job: Job,
    wall: Duration,
    /// CPU of the worker's own thread: parsing, validation, the SDK's requests.
    cpu: Duration,
}

/// The CPU time so far of this process's threads named `name` (`/proc/self/task/*/stat`'s
/// name, `schedstat`'s ns on the CPU).
fn threads_cpu(name: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            stat.split_whitespace().next()?.parse::<u64>().ok()
        })
        .map(Duration::from_nanos)
        .sum()
}

/// The worker's threads' name.
const WORKER_THREAD: &str = "bulk-worker";

/// The worker on `key` to its end, on a multi-threaded runtime of its own (as run-jobs'),
/// whose threads' CPU is counted apart from the engine's.
fn run_worker(config: Config, key: String) -> Result<(Worked, Duration, Duration), Error> {
    std::thread::Builder::new()
        .name(WORKER_THREAD.into())
        .spawn(move || -> Result<(Worked, Duration, Duration), Error> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKER_THREADS)
                .thread_name(WORKER_THREAD)
                .enable_all()
                .build()?;
            let app = App::new(config);
            let (start, cpu) = (Instant::now(), threads_cpu(WORKER_THREAD));
            let budget = Budget {
                deadline: SystemTime::now() + Duration::from_secs(3600),
            };
            let worked = rt.block_on(work(&app, &key, budget))?;
            let used = threads_cpu(WORKER_THREAD) - cpu;
            Ok((worked, start.elapsed(), used))
        })?
        .join()
        .map_err(|_| "the worker's thread panicked")?
}

/// A job of `tenant` made, its file put (imports), and its worker run to the end.
async fn run(
    config: &Config,
    tenant: &TenantId,
    job: Job,
    file: Option<&[u8]>,
) -> Result<Run, Error> {
    let app = App::new(config.clone());
    app.store.insert_job(tenant, &job, None).await?;
    let keys = Keys {
        tenant,
        job: &job.id,
    };
    let key = match file {
        Some(bytes) => {
            let key = keys.file();
            app.jobs_bucket()?
                .put(&key, bytes.to_vec(), "application/x-ndjson", "no-store")
                .await?;
            key
        }
        None => keys.wake(),
    };
    let (worked, wall, cpu) = {
        let (config, key) = (config.clone(), key.clone());
        tokio::task::spawn_blocking(move || run_worker(config, key)).await??
    };
    if worked != Worked::Done {
        return Err(format!("the worker stopped at {worked:?}").into());
    }
    let job = app
        .store
        .job(tenant, &job.id)
        .await?
        .ok_or("the job is gone")?;
    if job.status != Status::Completed {
        return Err(format!("the job did not complete: {:?}", job.failure).into());
    }
    Ok(Run { job, wall, cpu })
}

fn counts(job: &Job) -> (u64, u64, u64, u64) {
    match &job.kind {
        JobKind::Import { counts, .. } => {
            (counts.read, counts.created, counts.updated, counts.failed)
        }
        JobKind::Export { count } => (*count, 0, 0, 0),
    }
}

/// The config of a function on `dynamodb` (the engine or the meter) and `s3`.
fn config(engine: &Engine, dynamodb: &str, s3: &str) -> Result<Config, Error> {
    let vars = [
        (env::TABLE_NAME, engine.table.clone()),
        (env::DYNAMODB_ENDPOINT, dynamodb.to_owned()),
        (env::S3_ENDPOINT, s3.to_owned()),
        (env::AWS_ACCESS_KEY_ID, "bench".to_owned()),
        (env::AWS_SECRET_ACCESS_KEY, "bench-secret".to_owned()),
        (env::JOBS_BUCKET, BUCKET.to_owned()),
        // The worker's own Timeout: the store's per-call timeouts are cut from it.
        (env::FUNCTION_TIMEOUT_SECONDS, "28".to_owned()),
    ];
    Ok(Config::from_lookup(|k| {
        vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })?)
}

/// The bulk table: an import of `lines` lines in upsert mode, again (nothing new), an
/// export of what it made; the units of a line; the model for 1 and 10 million lines.
pub(crate) async fn table(engine: &Engine, lines: usize) -> Result<(), Error> {
    let root = std::env::temp_dir().join(format!("bench-jobs-{}", uuid::Uuid::now_v7().simple()));
    let credentials = local_api::s3::Credentials {
        access_key_id: "bench".into(),
        secret_access_key: "bench-secret".into(),
    };
    let (mut s3, _created) =
        local_api::s3::EmbeddedS3::start(root, true, 0, &credentials, &[BUCKET.to_owned()], vec![])
            .await?;
    let plain = config(engine, &engine.endpoint, &s3.endpoint)?;
    let owner = PrincipalId::new("bench-importer")?;
    let tenant = TenantId::new(&format!("bulk-{}", uuid::Uuid::now_v7().simple()))?;
    eprintln!("bench: an import of {lines} lines");
    let mut file = Vec::new();
    for i in 1..=lines {
        file.extend(line(i).as_bytes());
        file.push(b'\n');
    }
    let bad = (1..=lines).filter(|i| i % BAD_EVERY == 0).count() as u64;
    let good = lines as u64 - bad;
    let first = run(
        &plain,
        &tenant,
        Job::import(Mode::Upsert, owner.clone()),
        Some(&file),
    )
    .await?;
    check(
        counts(&first.job) == (lines as u64, good, 0, bad),
        &first.job,
        "first upsert",
    )?;
    // The report names every bad line, in order.
    let report_key = first.job.result_key.clone().ok_or("no error report")?;
    let app = App::new(plain.clone());
    let report = app
        .jobs_bucket()?
        .get(&report_key)
        .await?
        .unwrap_or_default();
    let named: Vec<u64> = String::from_utf8(report)?
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).map(|v| v["line"].as_u64().unwrap_or(0))
        })
        .collect::<Result<_, _>>()?;
    let expected: Vec<u64> = (1..=lines as u64)
        .filter(|i| i % BAD_EVERY as u64 == 0)
        .collect();
    check(
        named == expected,
        &first.job,
        "the report names every bad line",
    )?;
    eprintln!("bench: the same file again");
    let second = run(
        &plain,
        &tenant,
        Job::import(Mode::Upsert, owner.clone()),
        Some(&file),
    )
    .await?;
    check(
        counts(&second.job) == (lines as u64, 0, good, bad),
        &second.job,
        "second upsert",
    )?;
    eprintln!("bench: an export of the tenant");
    let export = run(&plain, &tenant, Job::export(owner.clone()), None).await?;
    check(counts(&export.job).0 == good, &export.job, "export")?;

    // Units: a small import through the meter, a new tenant (created) then again (matched).
    let meter = Meter::start(&engine.endpoint).await?;
    let metered = config(engine, &meter.endpoint, &s3.endpoint)?;
    let sample = 500usize;
    let sample_file: Vec<u8> = (1..=sample)
        .map(|i| line(i * BAD_EVERY + 1) + "\n")
        .collect::<String>()
        .into_bytes();
    let metered_tenant = TenantId::new(&format!("bulk-units-{}", uuid::Uuid::now_v7().simple()))?;
    meter.take();
    run(
        &metered,
        &metered_tenant,
        Job::import(Mode::Upsert, owner.clone()),
        Some(&sample_file),
    )
    .await?;
    let created_units = meter.take();
    run(
        &metered,
        &metered_tenant,
        Job::import(Mode::Upsert, owner),
        Some(&sample_file),
    )
    .await?;
    let matched_units = meter.take();
    let per = |total: f64| total / sample as f64;
    let (create_w, create_r) = (
        per(created_units.total_writes()),
        per(created_units.total_reads()),
    );
    let (match_w, match_r) = (
        per(matched_units.total_writes()),
        per(matched_units.total_reads()),
    );

    println!(
        "\n### Bulk import and export (one worker, in process on a runtime of {WORKER_THREADS} threads; {lines} lines, {bad} bad; an engine without a stream, the embedded S3)\n"
    );
    println!(
        "| run | read | created | updated | failed | wall s | lines/s | worker CPU µs/line |\n|---|---|---|---|---|---|---|---|"
    );
    for (name, r) in [
        ("import, upsert (all new)", &first),
        ("the same file again (all matched)", &second),
        ("export of the tenant", &export),
    ] {
        let (read, created, updated, failed) = counts(&r.job);
        println!(
            "| {name} | {read} | {created} | {updated} | {failed} | {:.1} | {:.0} | {:.0} |",
            r.wall.as_secs_f64(),
            read as f64 / r.wall.as_secs_f64(),
            r.cpu.as_secs_f64() * 1e6 / read.max(1) as f64,
        );
    }
    println!(
        "\nUnits a line costs (capacity meter, {sample} lines): created {create_w:.1} WCU + {create_r:.1} RCU; matched and unchanged {match_w:.1} WCU + {match_r:.1} RCU."
    );
    // The model: three bounds on one import's pace, the least of them binding. The worker:
    // its measured CPU a line over the vCPUs WORKER_MB buys (its lines are tasks on each).
    // The table: its own on-demand write quota over the table's units a created line costs
    // (each index has a quota of its own). The tenant: a create writes one unit to each of
    // its list-index partitions of one shard, 1,000 units a second each (docs/listing.md).
    let cpu_per_line = first.cpu.as_secs_f64() / lines as f64;
    let vcpus = WORKER_MB / 1769.0;
    let cpu_pace = vcpus / cpu_per_line;
    let latency_pace = shared::bulk::import::IN_FLIGHT as f64 / LINE_LATENCY_S;
    let worker_pace = cpu_pace.min(latency_pace);
    let table_w = per(created_units.table_writes());
    let table_pace = TABLE_WRITE_QUOTA / table_w;
    println!(
        "\nModel (Lambda arm64 at {WORKER_MB:.0} MB = {vcpus:.0} vCPUs, the lines' CPU spread over them; {} lines in flight at an assumed {:.0} ms a write; an on-demand table at its default quota of {TABLE_WRITE_QUOTA:.0} write units a second, {table_w:.1} of a created line's on the table itself): one worker {worker_pace:.0} lines/s ({cpu_pace:.0} by its CPU, {latency_pace:.0} by latency), the table {table_pace:.0} creates/s, a tenant 1,000 creates/s a shard.\n",
        shared::bulk::import::IN_FLIGHT,
        LINE_LATENCY_S * 1000.0
    );
    println!(
        "| lines | tenant's shards | bound | time | write units | DynamoDB $ | Lambda $ | total $ |\n|---|---|---|---|---|---|---|---|"
    );
    for n in [1_000_000f64, 10_000_000f64] {
        for shards in [1.0, 4.0, 8.0] {
            let tenant_pace = 1000.0 * shards;
            let pace = worker_pace.min(table_pace).min(tenant_pace);
            let bound = if pace == worker_pace {
                "worker"
            } else if pace == table_pace {
                "table"
            } else {
                "tenant's shards"
            };
            let seconds = n / pace;
            let units = n * create_w;
            let dynamo = units / 1e6 * WRITE_UNIT_PRICE + n * create_r / 1e6 * READ_UNIT_PRICE;
            let lambda = seconds * WORKER_MB / 1024.0 * LAMBDA_GB_SECOND;
            println!(
                "| {n:.0} | {shards:.0} | {bound} ({pace:.0}/s) | {:.0} min | {:.1} M | {dynamo:.2} | {lambda:.2} | {:.2} |",
                seconds / 60.0,
                units / 1e6,
                dynamo + lambda,
            );
        }
    }
    s3.stop().await;
    Ok(())
}

fn check(ok: bool, job: &Job, what: &str) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: not as expected: {job:?}").into())
    }
}
