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
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use lambda_http::{Body, Request, Response};
use local_api::runtime::{Environment, Outcome, Pool};
use local_api::template::{Function, Template};
use local_api::{Options, Server, Storage};
use serde_json::{Value, json};
use shared::app::App;
use shared::handlers as h;

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

/// Median, min and max.
fn spread(samples: &[f64]) -> (f64, f64, f64) {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (median, s[0], s[n - 1])
}

fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mb(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / 1_000_000.0)
}

/// One request to one route, as data: turned into an API Gateway event (cold starts,
/// in-process handlers) or an HTTP request (warm latency through the runner).
#[derive(Clone, Debug)]
struct Call {
    binary: String,
    method: &'static str,
    params: Vec<(&'static str, String)>,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    /// The tenant the authorizer's context names ([`BENCH_TENANT`] by default).
    tenant: Option<String>,
}

impl Call {
    fn new(binary: &str, method: &'static str) -> Self {
        Self {
            binary: binary.to_owned(),
            method,
            params: Vec::new(),
            query: Vec::new(),
            body: None,
            tenant: None,
        }
    }

    fn param(mut self, k: &'static str, v: &str) -> Self {
        self.params.push((k, v.to_owned()));
        self
    }

    fn body(mut self, b: Value) -> Self {
        self.body = Some(b);
        self
    }

    fn template_event(&self) -> Result<Value, Error> {
        let path = repo().join(format!("events/{}.json", self.binary));
        Ok(serde_json::from_str(&std::fs::read_to_string(&path)?)?)
    }

    fn path(&self, event: &Value) -> String {
        let mut path = event["resource"].as_str().unwrap_or("/").to_owned();
        for (k, v) in &self.params {
            path = path.replace(&format!("{{{k}}}"), v);
        }
        path
    }

    fn media_type(&self) -> &'static str {
        if self.method == "PATCH" {
            "application/merge-patch+json"
        } else {
            "application/json"
        }
    }

    fn event(&self) -> Result<Value, Error> {
        let mut e = self.template_event()?;
        let path = self.path(&e);
        e["path"] = json!(path);
        e["httpMethod"] = json!(self.method);
        e["requestContext"]["httpMethod"] = json!(self.method);
        e["requestContext"]["requestId"] = json!(uuid::Uuid::new_v4().to_string());
        // The development key's caller, so the fixtures made in-process are the ones the
        // HTTP requests (authorized with that key) reach.
        let auth = &mut e["requestContext"]["authorizer"];
        auth["tenant_id"] = json!(self.tenant.as_deref().unwrap_or(BENCH_TENANT));
        auth["principal_id"] = json!(BENCH_PRINCIPAL);
        auth["principalId"] = json!(BENCH_PRINCIPAL);
        e["pathParameters"] = if self.params.is_empty() {
            Value::Null
        } else {
            Value::Object(
                self.params
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), json!(v)))
                    .collect(),
            )
        };
        let q: serde_json::Map<String, Value> = self
            .query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        e["multiValueQueryStringParameters"] = if q.is_empty() {
            Value::Null
        } else {
            Value::Object(q.iter().map(|(k, v)| (k.clone(), json!([v]))).collect())
        };
        e["queryStringParameters"] = if q.is_empty() {
            Value::Null
        } else {
            Value::Object(q)
        };
        e["body"] = match &self.body {
            Some(b) => json!(b.to_string()),
            None => Value::Null,
        };
        e["headers"]["Content-Type"] = json!(self.media_type());
        e["multiValueHeaders"]["Content-Type"] = json!([self.media_type()]);
        Ok(e)
    }

    fn request(&self) -> Result<Request, Error> {
        Ok(lambda_http::request::from_str(&self.event()?.to_string())?)
    }

    fn http(&self, client: &reqwest::Client, base: &str) -> Result<reqwest::RequestBuilder, Error> {
        let path = self.path(&self.template_event()?);
        let method = reqwest::Method::from_bytes(self.method.as_bytes())?;
        let mut url = reqwest::Url::parse(&format!("{base}{path}"))?;
        for (k, v) in &self.query {
            url.query_pairs_mut().append_pair(k, v);
        }
        let mut r = client.request(method, url);
        if let Some(b) = &self.body {
            r = r
                .header("content-type", self.media_type())
                .body(b.to_string());
        }
        Ok(r)
    }
}

/// The caller of every in-process call: the local runner's development key's tenant and
/// principal (local-api's `devkey`), which the HTTP requests present.
const BENCH_TENANT: &str = "default";
const BENCH_PRINCIPAL: &str = "developer";

/// The authorizer's binary: invoked with its own event, not a proxy event.
const AUTHORIZER: &str = "authorizer";

/// `events/authorizer.json` presenting `key`.
fn authorizer_event(key: &str) -> Result<Value, Error> {
    let text = std::fs::read_to_string(repo().join("events/authorizer.json"))?;
    let mut e: Value = serde_json::from_str(&text)?;
    e["headers"]["Authorization"] = json!(format!("Bearer {key}"));
    e["multiValueHeaders"]["Authorization"] = json!([format!("Bearer {key}")]);
    Ok(e)
}

/// Whether an authorizer's answer allows (an Allow statement in its policy).
fn allows(payload: &[u8]) -> bool {
    serde_json::from_slice::<Value>(payload).is_ok_and(|v| {
        v["policyDocument"]["Statement"]
            .as_array()
            .is_some_and(|s| s.iter().any(|st| st["Effect"] == "Allow"))
    })
}

/// Runs a handler in-process, as its function would.
async fn handle(app: &App, binary: &str, req: Request) -> Result<Response<Body>, Error> {
    h::by_binary(binary, app, req)
        .await
        .ok_or_else(|| format!("no function {binary}").into())
}

fn json_of(r: &Response<Body>) -> Value {
    match r.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// Creates fixtures through the handlers themselves.
struct Fixtures {
    app: App,
}

impl Fixtures {
    async fn profile(&self, contacts: usize) -> Result<String, Error> {
        let contacts: Vec<Value> = (0..contacts)
            .map(|i| json!({"key": "email", "value": format!("c{i}@example.com")}))
            .collect();
        let call = Call::new("create-profile", "POST").body(json!({
            "name": format!("Bench {}", uuid::Uuid::now_v7()),
            "title": "CTO", "company": "Acme", "country_numeric_code": "840",
            "tags": ["bench"], "contacts": contacts,
        }));
        let r = handle(&self.app, "create-profile", call.request()?).await?;
        let body = json_of(&r);
        match body["id"].as_str() {
            Some(id) if r.status() == 201 => Ok(id.to_owned()),
            _ => Err(format!("seeding a profile failed: {body}").into()),
        }
    }

    async fn contact(&self, profile: &str) -> Result<String, Error> {
        let call = Call::new("create-contact", "POST")
            .param("profile_id", profile)
            .body(
                json!({"key": "email", "value": format!("{}@example.com", uuid::Uuid::now_v7())}),
            );
        let r = handle(&self.app, "create-contact", call.request()?).await?;
        let body = json_of(&r);
        match body["id"].as_str() {
            Some(id) if r.status() == 201 => Ok(id.to_owned()),
            _ => Err(format!("seeding a contact failed: {body}").into()),
        }
    }

    /// A call to `binary` that does its real work, with fresh fixtures where it consumes
    /// them (deletes) or would collide (creates).
    async fn call(&self, binary: &str, shared: &(String, String)) -> Result<Call, Error> {
        let (p, c) = shared;
        Ok(match binary {
            "create-profile" => Call::new(binary, "POST").body(json!({
                "first_name": "Mary", "last_name": format!("Smith {}", uuid::Uuid::now_v7()),
                "title": "CTO", "company": "Acme", "email": "Mary@Example.COM",
                "country_numeric_code": "840", "tags": ["blue", "green"],
                "contacts": [{"key": "phone", "value": "+1 415 555 2671"}],
            })),
            "get-profile" => Call::new(binary, "GET").param("profile_id", p),
            // The fixtures' principal's first profile is their primary.
            "get-primary-profile" => Call::new(binary, "GET"),
            "list-profiles" => Call::new(binary, "GET"),
            "update-profile" => Call::new(binary, "PATCH")
                .param("profile_id", p)
                .body(json!({"title": "CEO", "custom_properties": {"clicks": uuid::Uuid::now_v7().to_string()}})),
            "replace-profile" => Call::new(binary, "PUT")
                .param("profile_id", p)
                .body(json!({"name": "Acme Corp", "website_url": "https://acme.com"})),
            "delete-profile" => Call::new(binary, "DELETE").param("profile_id", &self.profile(3).await?),
            "list-contacts" => Call::new(binary, "GET").param("profile_id", p),
            "create-contact" => Call::new(binary, "POST")
                .param("profile_id", &self.profile(0).await?)
                .body(json!({"key": "phone", "value": "+1 (415) 555-2671"})),
            "get-contact" => Call::new(binary, "GET")
                .param("profile_id", p)
                .param("contact_id", c),
            "update-contact" => Call::new(binary, "PATCH")
                .param("profile_id", p)
                .param("contact_id", c)
                .body(json!({"external_id": uuid::Uuid::now_v7().to_string()})),
            "delete-contact" => {
                let fresh = self.profile(0).await?;
                let contact = self.contact(&fresh).await?;
                Call::new(binary, "DELETE")
                    .param("profile_id", &fresh)
                    .param("contact_id", &contact)
            }
            other => return Err(format!("no call for {other}").into()),
        })
    }
}

fn proxy_status(payload: &[u8]) -> u64 {
    serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|v| v["statusCode"].as_u64())
        .unwrap_or(0)
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn zip_size(file: &Path) -> Option<u64> {
    let dir = std::env::temp_dir().join(format!("bench-zip-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).ok()?;
    let bootstrap = dir.join("bootstrap");
    std::fs::copy(file, &bootstrap).ok()?;
    let zip = dir.join("f.zip");
    let ok = std::process::Command::new("zip")
        .args(["-q", "-9", "-j"])
        .arg(&zip)
        .arg(&bootstrap)
        .status()
        .ok()?
        .success();
    let size = if ok {
        std::fs::metadata(&zip).ok().map(|m| m.len())
    } else {
        None
    };
    let _ = std::fs::remove_dir_all(&dir);
    size
}

fn main() -> Result<(), Error> {
    let opts = opts();
    let template = Template::load(&repo().join("template.yaml"))?;
    // Every function the API serves, its authorizer included.
    let names = template.served_binaries()?;
    // The functions alone (and the floor): the feature set `cargo lambda build` compiles.
    eprintln!(
        "bench: building release binaries of {} functions and the floor",
        names.len()
    );
    let mut selection = vec!["-p", "bench-floor"];
    for n in &names {
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

/// `cargo lambda build --release --arm64` and each bootstrap's size, when cargo lambda is here.
fn arm64_sizes(names: &[String]) -> Option<HashMap<String, (u64, Option<u64>)>> {
    eprintln!("bench: cross-building arm64 bootstraps with cargo lambda (slow)");
    let status = std::process::Command::new("cargo")
        .current_dir(repo())
        .args(["lambda", "build", "--release", "--arm64"])
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("bench: cargo lambda is not available; arm64 sizes skipped");
        return None;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    Some(
        names
            .iter()
            .filter_map(|n| {
                let file = target.join("lambda").join(n).join("bootstrap");
                let size = std::fs::metadata(&file).ok()?.len();
                Some((n.clone(), (size, zip_size(&file))))
            })
            .collect(),
    )
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
    // (function, whether it is the floor)
    let mut subjects: Vec<(Function, bool)> = vec![(floor_fn, true)];
    for f in &functions {
        subjects.push((f.clone(), false));
    }
    for (function, is_floor) in &subjects {
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
        cold.push((function.binary.clone(), inits, totals));
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
        api.throttle = None;
    }
    let bearer = format!("Bearer {}", server.dev_api_key.expose());
    let server = std::sync::Arc::new(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
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

/// Writes profiles `from..to` of the scale tenant with BatchWriteItem, items built by the
/// store itself.
async fn seed(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    tenant: &shared::auth::TenantId,
    from: usize,
    to: usize,
) -> Result<(), Error> {
    eprintln!("bench: seeding profiles {from}..{to}");
    let store = shared::store::Store::new(client.clone(), table);
    let mut requests = Vec::new();
    for i in from..to {
        let mut body = json!({
            "id": uuid::Uuid::now_v7(), "name": format!("Person {:06}", (i * 7919) % 1_000_003),
            "owner_id": "bench", "created_at": shared::model::Timestamp::now().to_string(),
            "updated_at": shared::model::Timestamp::now().to_string(), "version": 1,
        });
        if i % 10 == 0 {
            body["tags"] = json!(["tenth"]);
        }
        let profile: shared::model::Profile = serde_json::from_value(body)?;
        let item = store.new_profile_item(tenant, &profile)?;
        requests.push(
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build()?)
                .build(),
        );
    }
    let mut tasks = tokio::task::JoinSet::new();
    let mut chunks = requests.chunks(25).map(<[WriteRequest]>::to_vec);
    loop {
        while tasks.len() < 8 {
            let Some(chunk) = chunks.next() else { break };
            let (client, table) = (client.clone(), table.to_owned());
            tasks.spawn(async move {
                let mut pending = chunk;
                while !pending.is_empty() {
                    let out = client
                        .batch_write_item()
                        .request_items(&table, pending)
                        .send()
                        .await?;
                    pending = out
                        .unprocessed_items
                        .and_then(|mut m| m.remove(&table))
                        .unwrap_or_default();
                }
                Ok::<_, Error>(())
            });
        }
        match tasks.join_next().await {
            Some(done) => done??,
            None => return Ok(()),
        }
    }
}

/// Today's date (UTC).
fn today() -> String {
    shared::model::Timestamp::now().to_string()[..10].to_owned()
}
