//! Cold starts as Lambda sees them: the functions reach the engine through a local TLS
//! endpoint ([`crate::tls`]), so the first DynamoDB call pays a real TLS 1.3 handshake, with
//! the connection opened during init and without; each cold start split where init ends
//! (init, then the first request, each with its CPU) and followed by warm requests. Then
//! the same CPU modelled as wall time at Lambda's memory sizes, what a million requests
//! cost at each, and the goals read against the baseline under the same TLS.

use shared::config::env;

use crate::calls::AUTHORIZER;
use crate::cold::{self, Role, Split, Subject, bench_function};
use crate::measure::spread;
use crate::tls::TlsFront;
use crate::{BASELINE, Bench, Error};

/// The functions measured here: the authorizer (every request's first call) and the
/// read, write and list a caller meets first.
const MEASURED: [&str; 4] = [AUTHORIZER, "get-profile", "create-profile", "list-profiles"];

/// Lambda's proportional CPU: at 1,769 MB a function has one vCPU's worth of time, and
/// below it a share in proportion to its memory (Lambda's documentation, "Memory and
/// computing power"). A model: the CPU time measured here, taken as one Graviton core's.
const ONE_VCPU_MB: f64 = 1769.0;

/// The memory sizes the model is shown at.
const MODEL_MB: [f64; 3] = [128.0, 256.0, 512.0];

/// The sizes the cost is compared at.
const COST_MB: [f64; 5] = [128.0, 256.0, 512.0, 1024.0, 1769.0];

/// arm64 Lambda in us-east-1 (aws.amazon.com/lambda/pricing): per GB-second of billed
/// duration (1 ms granularity; init billed too), and per request.
const PRICE_GB_SECOND: f64 = 0.000_013_333_4;
const PRICE_REQUEST: f64 = 0.000_000_2;

/// What an invocation waits on the network rather than computes: one DynamoDB call in a
/// region (single-digit ms; assumed, not measured here), the same at every memory size.
const WAIT_MS: f64 = 3.0;

/// What opening the connection at init waits: three round trips (TCP, TLS 1.3, the health
/// check) of about 1 ms in a region (assumed).
const CONNECT_WAIT_MS: f64 = 3.0;

/// The labels' suffixes, one per way a function is measured.
const PLAIN: &str = "plain HTTP";
const TLS: &str = "TLS";
const TLS_INIT: &str = "TLS, connected at init";
const TLS_PLATFORM: &str = "TLS, platform roots";

pub(crate) async fn table(bench: &Bench) -> Result<(), Error> {
    let front = TlsFront::start(&bench.server.engine.endpoint).await?;
    let subjects = subjects(bench, &front);
    let environment = bench.environment();
    let setup = bench.setup(&environment);
    let runs = bench.opts.cold_runs;
    let split = cold::split_starts(&setup, &subjects, &bench.binaries, runs).await?;
    print_measured(&split, runs, &front);
    print_goals(&split);
    print_model(&split);
    print_cost(&split);
    Ok(())
}

fn subjects(bench: &Bench, front: &TlsFront) -> Vec<Subject> {
    let engine = &bench.server.engine;
    let subject = |label: String, function, kind, env: Vec<(&str, &str)>| Subject {
        label,
        function,
        kind,
        call: None,
        env: env
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    };
    let baseline = bench_function(
        BASELINE,
        vec![(env::TABLE_NAME.into(), engine.table.clone())],
    );
    let bundle = front.bundle_file.to_string_lossy().into_owned();
    let ca = front.ca_file.to_string_lossy().into_owned();
    let mut subjects = vec![
        subject(
            "bench-floor".into(),
            bench_function("bench-floor", Vec::new()),
            Role::Floor,
            Vec::new(),
        ),
        subject(
            format!("bench-baseline, {PLAIN}"),
            baseline.clone(),
            Role::Baseline,
            vec![("AWS_ENDPOINT_URL_DYNAMODB", &engine.endpoint)],
        ),
        subject(
            format!("bench-baseline, {TLS}"),
            baseline,
            Role::Baseline,
            vec![
                ("AWS_ENDPOINT_URL_DYNAMODB", &front.url),
                ("SSL_CERT_FILE", &bundle),
            ],
        ),
    ];
    let tls = |connect: &'static str| {
        vec![
            (env::DYNAMODB_ENDPOINT, front.url.as_str()),
            (env::TEST_ONLY_TLS_CA_FILE, ca.as_str()),
            (env::CONNECT_AT_INIT, connect),
        ]
    };
    for name in MEASURED {
        let Some(f) = bench.functions.iter().find(|f| f.binary == name) else {
            continue;
        };
        let mut each = vec![
            (PLAIN, vec![(env::CONNECT_AT_INIT, "false")]),
            (TLS, tls("false")),
            (TLS_INIT, tls("true")),
        ];
        if name == "get-profile" {
            let mut platform = tls("false");
            platform.push((env::TLS_PLATFORM_ROOTS, "true"));
            each.push((TLS_PLATFORM, platform));
        }
        for (how, vars) in each {
            subjects.push(subject(
                format!("{name}, {how}"),
                f.clone(),
                Role::Function,
                vars,
            ));
        }
    }
    subjects
}

fn median(v: &[f64]) -> f64 {
    spread(v).0
}

fn find<'a>(split: &'a [Split], label: &str) -> Option<&'a Split> {
    split.iter().find(|s| s.label == label)
}

/// CPU to the first answer: init's and the first request's, run by run.
fn to_answer(s: &Split) -> Vec<f64> {
    s.init_cpu
        .iter()
        .zip(&s.first_cpu)
        .map(|(a, b)| a + b)
        .collect()
}

fn print_measured(split: &[Split], runs: usize, front: &TlsFront) {
    let baseline_tls =
        find(split, &format!("bench-baseline, {TLS}")).map_or(f64::NAN, |b| median(&to_answer(b)));
    println!(
        "\n### Cold start over TLS: init, then the first request, then {} warm requests ({runs} runs; median ms, CPU to first answer [min–max])\n",
        cold::WARM_AFTER
    );
    println!(
        "TLS 1.3, X25519, TLS_AES_128_GCM_SHA256; an RSA-2048 leaf and intermediate under a throwaway RSA-2048 root; pinned roots: the five in shared/src/store, platform roots: the {} of this machine's bundle.\n",
        front.platform_roots
    );
    println!(
        "| function | init | init CPU | first request | first request CPU | CPU to first answer | CPU to answer / baseline's (TLS) | warm request CPU | first / warm CPU |\n|---|---|---|---|---|---|---|---|---|"
    );
    for s in split {
        let (answer, amin, amax) = spread(&to_answer(s));
        let warm = median(&s.warm_cpu);
        let first_cpu = median(&s.first_cpu);
        let warm_cells = if s.kind == Role::Floor {
            "– | –".to_owned()
        } else {
            format!("{warm:.2} | {:.1}×", first_cpu / warm)
        };
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {first_cpu:.2} | {answer:.1} [{amin:.1}–{amax:.1}] | {:.2}× | {warm_cells} |",
            s.label,
            median(&s.init),
            median(&s.init_cpu),
            median(&s.first),
            answer / baseline_tls,
        );
    }
}

fn print_goals(split: &[Split]) {
    let floor_init = find(split, "bench-floor").map_or(f64::NAN, |f| median(&f.init));
    let baseline =
        find(split, &format!("bench-baseline, {TLS}")).map_or(f64::NAN, |b| median(&to_answer(b)));
    let verdict = |met: bool| if met { "met" } else { "**not met**" };
    println!("\nGoals, over TLS, in this run:\n");
    for name in MEASURED {
        let (Some(tls), Some(init)) = (
            find(split, &format!("{name}, {TLS}")),
            find(split, &format!("{name}, {TLS_INIT}")),
        ) else {
            continue;
        };
        let answer = median(&to_answer(init)) / baseline;
        let first = median(&init.first_cpu) / median(&init.warm_cpu);
        let bare = median(&tls.init) / floor_init;
        let with = median(&init.init) / floor_init;
        println!(
            "- {name}: CPU to first answer (connected at init) {answer:.2}× the baseline's (≤ 0.5: {}); first request's CPU {first:.2}× a warm one's (≤ 1.5: {}); init without the connection {bare:.2}× the floor's (≤ 1.3: {}), with it {with:.2}×.",
            verdict(answer <= 0.5),
            verdict(first <= 1.5),
            verdict(bare <= 1.3),
        );
    }
}

/// Wall time at `mb` of memory for `cpu` ms of CPU: Lambda's proportional share.
fn at(cpu: f64, mb: f64) -> f64 {
    cpu * (ONE_VCPU_MB / mb).max(1.0)
}

fn print_model(split: &[Split]) {
    println!(
        "\n### Modelled at Lambda's memory sizes: CPU × 1,769 / MB (the CPU above; a model, not a measurement; network waits not included)\n"
    );
    println!(
        "| function | init CPU | init at 128 / 256 / 512 MB | first request CPU | first request at 128 / 256 / 512 MB |\n|---|---|---|---|---|"
    );
    for s in split {
        let (init, first) = (median(&s.init_cpu), median(&s.first_cpu));
        let cells = |cpu: f64| {
            MODEL_MB
                .iter()
                .map(|mb| format!("{:.0}", at(cpu, *mb)))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        println!(
            "| {} | {init:.1} | {} | {first:.2} | {} |",
            s.label,
            cells(init),
            cells(first)
        );
    }
}

/// What one invocation costs at `mb`: its billed ms (rounded up) and dollars.
fn cost(cpu: f64, wait: f64, mb: f64) -> (f64, f64) {
    let billed = (at(cpu, mb) + wait).ceil();
    (
        billed,
        billed / 1000.0 * mb / 1024.0 * PRICE_GB_SECOND + PRICE_REQUEST,
    )
}

fn print_cost(split: &[Split]) {
    let pair: Vec<&Split> = [AUTHORIZER, "get-profile"]
        .iter()
        .filter_map(|n| find(split, &format!("{n}, {TLS_INIT}")))
        .collect();
    if pair.len() != 2 {
        return;
    }
    println!(
        "\n### What a million reads cost at each memory size (authorizer + get-profile, over TLS, connected at init; arm64 us-east-1 prices)\n"
    );
    println!(
        "Per invocation: billed ms = ⌈CPU × 1,769 / MB (× 1 from 1,769 MB up) + {WAIT_MS} ms waiting on DynamoDB⌉; cold = init (billed since August 2025: ⌈init CPU modelled + {CONNECT_WAIT_MS} ms of connecting⌉) + the first request; $ = billed ms / 1000 × MB / 1024 × ${PRICE_GB_SECOND} + ${PRICE_REQUEST} a request.\n"
    );
    println!(
        "| MemorySize | warm: billed ms (authorizer + get-profile) | $ per million warm | cold: billed ms | $ per million cold |\n|---|---|---|---|---|"
    );
    let mut cheapest = (f64::INFINITY, 0.0, f64::INFINITY, 0.0);
    for mb in COST_MB {
        let (mut warm_ms, mut warm_usd, mut cold_ms, mut cold_usd) = (0.0, 0.0, 0.0, 0.0);
        for s in &pair {
            let (b, d) = cost(median(&s.warm_cpu), WAIT_MS, mb);
            warm_ms += b;
            warm_usd += d;
            let (bi, di) = cost(median(&s.init_cpu), CONNECT_WAIT_MS, mb);
            let (bf, df) = cost(median(&s.first_cpu), WAIT_MS, mb);
            cold_ms += bi + bf;
            // One request: init is billed with it, not as a request of its own.
            cold_usd += di + df - PRICE_REQUEST;
        }
        println!(
            "| {mb:.0} MB | {warm_ms:.0} | {:.2} | {cold_ms:.0} | {:.2} |",
            warm_usd * 1e6,
            cold_usd * 1e6
        );
        if warm_usd < cheapest.0 {
            (cheapest.0, cheapest.1) = (warm_usd, mb);
        }
        if cold_usd < cheapest.2 {
            (cheapest.2, cheapest.3) = (cold_usd, mb);
        }
    }
    println!(
        "\nLowest cost: {:.0} MB for warm reads, {:.0} MB for cold ones.",
        cheapest.1, cheapest.3
    );
}
