//! `cargo run -p bench --release [-- --quick]`: measures what the product exists for and
//! prints markdown tables. Everything runs in one process and one run, against baselines
//! measured in the same run, so ratios hold on a noisy machine:
//!
//! 1. cold start of every function (process exec → first `/next` → first invocation
//!    answered, doing its real DynamoDB work, and the CPU time used to that answer) through
//!    the local runner's Runtime API, beside an empty `lambda_runtime` function built with the
//!    same profile (the floor) and get-profile's work written as AWS's examples write a
//!    function (`bench/baseline`, its own workspace and default release profile); then
//!    get-profile and the baseline warm, invoked directly; then the same cold starts over a
//!    local TLS endpoint (`tls`), split where init ends, with the connection opened during
//!    init and without, modelled at Lambda's memory sizes and priced (`handshake`);
//! 2. warm latency p50/p99 of every route over HTTP through the runner;
//! 3. peak RSS of every function after its warm load;
//! 4. the handlers' own time beside raw SDK calls doing the same DynamoDB work on the same
//!    engine, and what `Idempotency-Key` costs a create;
//! 5. binary sizes (host release, and arm64 `bootstrap` cross-built by cargo lambda when it
//!    is installed) and their zips;
//! 6. list-page time at 1k, 10k and (not in `--quick`) 100k profiles in one tenant, and
//!    what a tenant's shard count costs a page (on an engine of their own: no stream runs
//!    behind them);
//! 7. change events: a write committed → its event at a local webhook, p50 and p99;
//! 8. bulk jobs: one import worker's lines per second and CPU a line, the units a line
//!    costs, an upsert run again and an export; the model for 1 and 10 million lines.
//!
//! `tables` has one function per table, called in the order they print.
//!
//! Nothing here asserts a time: CI runs `--quick` so the bench cannot rot.
#![allow(clippy::print_stdout, clippy::print_stderr)] // the bench's output is its tables

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use local_api::runtime::Environment;
use local_api::template::{Function, Template};
use local_api::{Options, Server, Storage};
use shared::app::App;
use shared::config::env;

mod bulk;
mod calls;
mod capacity;
mod cold;
mod events;
mod handshake;
mod measure;
mod scale;
mod tables;
mod tls;

use calls::{AUTHORIZER, Fixtures};
use measure::arm64_sizes;

/// The baseline's binary (bench/baseline).
pub(crate) const BASELINE: &str = "bench-baseline";

type Error = Box<dyn std::error::Error + Send + Sync>;

pub(crate) struct Opts {
    pub(crate) quick: bool,
    pub(crate) cold_runs: usize,
    pub(crate) warm_requests: usize,
    pub(crate) scales: Vec<usize>,
    pub(crate) arm64: bool,
}

/// The options from the command line (bad arguments: clap prints why, with a suggestion, and
/// exits 2).
fn opts(cli: &bench::cli::Cli) -> Opts {
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

/// `--only TABLE`: that table on an embedded engine, no function built.
fn only_table(only: bench::cli::Only) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let template = Template::load(&repo().join("template.yaml"))?;
        // A million profiles go to a file (the page cache holds what is hot), not to memory.
        let file =
            std::env::temp_dir().join(format!("profiles-bench-{}.sqlite", std::process::id()));
        let storage = match only {
            bench::cli::Only::Scale => Storage::File(file.clone()),
            bench::cli::Only::Capacity | bench::cli::Only::Bulk => Storage::Memory,
        };
        let mut engine = local_api::engine::Engine::start(&storage, None).await?;
        let config = engine.config("us-east-1")?;
        engine.ensure_table(&template, &config).await?;
        match only {
            bench::cli::Only::Capacity => capacity::table(&engine).await?,
            bench::cli::Only::Bulk => {
                scale::without_stream(&engine).await?;
                bulk::table(&engine, 100_000).await?;
            }
            bench::cli::Only::Scale => {
                scale::without_stream(&engine).await?;
                scale::shard_cost(&engine, 20_000).await?;
                scale::growth(&engine, &[10_000, 100_000, 1_000_000], &[1, 8]).await?;
            }
        }
        engine.stop().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
        Ok(())
    })
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn main() -> Result<(), Error> {
    let cli = <bench::cli::Cli as clap::Parser>::parse();
    if let Some(only) = cli.only {
        return only_table(only);
    }
    let opts = opts(&cli);
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
    let bench = Bench::start(opts, &template, names, binaries, arm64).await?;
    tables::header(&bench);
    // First, while nothing else has been written: the other tables' writes feed the stream too.
    events::latency(&bench).await?;
    capacity::table(&bench.server.engine).await?;
    tables::cold_starts(&bench).await?;
    handshake::table(&bench).await?;
    tables::warm_over_http(&bench).await?;
    tables::peak_rss(&bench);
    tables::handler_vs_raw(&bench).await?;
    tables::idempotency(&bench).await?;
    tables::sizes(&bench);
    // The scale tables seed their tenants on an engine of their own, with the runner stopped:
    // on the runner's, every seeded profile would go down its stream to publish-events and
    // the bus while they measure.
    bench.server.stop().await;
    let mut engine = local_api::engine::Engine::start(&Storage::Memory, None).await?;
    let config = engine.config("us-east-1")?;
    engine.ensure_table(&template, &config).await?;
    scale::without_stream(&engine).await?;
    scale::growth(&engine, &bench.opts.scales, &[1]).await?;
    let size = if bench.opts.quick { 2_000 } else { 20_000 };
    scale::shard_cost(&engine, size).await?;
    let lines = if bench.opts.quick { 2_000 } else { 100_000 };
    bulk::table(&engine, lines).await?;
    engine.stop().await;
    Ok(())
}

/// What every table measures with: the runner (its engine and one pool per function), the
/// fixtures made on its engine, and the options.
pub(crate) struct Bench {
    pub(crate) opts: Opts,
    pub(crate) server: Arc<Server>,
    pub(crate) config: shared::config::Config,
    pub(crate) fixtures: Fixtures,
    /// A profile (with contacts) and one of its contacts, the ids the calls name.
    pub(crate) ids: (String, String),
    /// The functions measured, as the template defines them.
    pub(crate) functions: Vec<Function>,
    pub(crate) names: Vec<String>,
    pub(crate) binaries: local_api::binaries::Binaries,
    pub(crate) arm64: Option<HashMap<String, (u64, Option<u64>)>>,
    /// The webhook the runner's bus posts the events of [`events::EVENTS_TENANT`] to.
    pub(crate) receiver: local_api::receiver::Receiver,
}

impl Bench {
    /// Starts the runner in memory, one instance per function, and makes the fixtures. The
    /// usage plan's throttle is lifted: the bench measures latency, not the limit.
    async fn start(
        opts: Opts,
        template: &Template,
        names: Vec<String>,
        binaries: local_api::binaries::Binaries,
        arm64: Option<HashMap<String, (u64, Option<u64>)>>,
    ) -> Result<Self, Error> {
        let receiver = local_api::receiver::Receiver::start().await?;
        let options = Options {
            storage: Storage::Memory,
            binaries: binaries.clone(),
            concurrency: 1,
            region: "us-east-1".into(),
            parameter_overrides: events::parameters(&receiver.url),
            ..Options::default()
        };
        let mut server = Server::start(template, options).await?;
        for api in server.apis.values_mut() {
            for plan in &mut api.plans {
                plan.throttle = None;
            }
        }
        let config = server.engine.config("us-east-1")?;
        let fixtures = Fixtures {
            app: App::new(config.clone()),
        };
        let profile = fixtures.profile(5).await?;
        let contact = fixtures.contact(&profile).await?;
        let functions: Vec<Function> = template
            .clone()
            .with_local("us-east-1", Some(&server.s3.endpoint))
            .functions(&server.engine.table)?
            .into_iter()
            .filter(|f| names.contains(&f.binary))
            .collect();
        Ok(Self {
            opts,
            server: Arc::new(server),
            config,
            fixtures,
            ids: (profile, contact),
            functions,
            names,
            binaries,
            arm64,
            receiver,
        })
    }

    /// What the cold-start tables measure with: the fixtures, the ids, `environment` and
    /// the development key.
    pub(crate) fn setup<'a>(&'a self, environment: &'a Environment) -> cold::Setup<'a> {
        cold::Setup {
            fixtures: &self.fixtures,
            ids: &self.ids,
            environment,
            dev_key: self.server.dev_api_key.expose(),
        }
    }

    /// What Lambda gives every function: the role's credentials in the environment (the
    /// baseline's default credential chain finds them first, as it does on Lambda).
    pub(crate) fn environment(&self) -> Environment {
        Environment {
            region: "us-east-1".into(),
            vars: vec![
                (
                    env::DYNAMODB_ENDPOINT.into(),
                    self.server.engine.endpoint.clone(),
                ),
                (
                    env::AWS_ACCESS_KEY_ID.into(),
                    "ASIABENCHFUNCTIONROLE".into(),
                ),
                (env::AWS_SECRET_ACCESS_KEY.into(), "bench-secret".into()),
                (env::AWS_SESSION_TOKEN.into(), "bench-session".into()),
            ],
        }
    }
}
