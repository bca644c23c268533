//! The bench's measurements and helpers: spreads and percentiles, peak RSS from `/proc`,
//! zipped and arm64 sizes, and the seeding of a large tenant.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use serde_json::json;

use crate::{BASELINE, Error, repo};

/// Median, min and max.
pub(crate) fn spread(samples: &[f64]) -> (f64, f64, f64) {
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

pub(crate) fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn mb(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / 1_000_000.0)
}

pub(crate) fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (ms) every thread of process `pid` has run: the first field of each thread's
/// `/proc/<pid>/task/<tid>/schedstat` (ns on the CPU), summed. None when not readable.
pub(crate) fn cpu_ms(pid: u32) -> Option<f64> {
    let mut ns: u64 = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e6)
}

/// The shared target directory (`CARGO_TARGET_DIR`, else the workspace's `target/`).
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
}

/// The baseline's workspace, and its target directory (inside the shared one).
pub(crate) fn baseline_dirs() -> (PathBuf, PathBuf) {
    (
        repo().join("bench").join("baseline"),
        target_dir().join("baseline"),
    )
}

pub(crate) fn zip_size(file: &Path) -> Option<u64> {
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

/// `cargo lambda build --release --arm64` of the functions, and of the baseline in its own
/// workspace, and each bootstrap's size, when cargo lambda is here.
pub(crate) fn arm64_sizes(names: &[String]) -> Option<HashMap<String, (u64, Option<u64>)>> {
    eprintln!("bench: cross-building arm64 bootstraps with cargo lambda (slow)");
    let target = target_dir();
    // Not the baseline's host target directory: cargo lambda rebuilds the host parts (build
    // scripts, proc macros) its own way, and the two would rebuild each other every run.
    let (baseline_dir, baseline_target) = baseline_dirs();
    let baseline_target = baseline_target.join("arm64");
    // cargo lambda takes no `--target-dir`: the baseline's goes in CARGO_TARGET_DIR.
    let build = |dir: PathBuf, target: &std::path::Path| {
        std::process::Command::new("cargo")
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", target)
            .args(["lambda", "build", "--release", "--arm64", "--locked"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !build(repo(), &target) {
        eprintln!("bench: cargo lambda is not available or failed; arm64 sizes skipped");
        return None;
    }
    if !build(baseline_dir, &baseline_target) {
        eprintln!("bench: the baseline's arm64 build failed; its arm64 size is left out");
    }
    let bootstrap = |n: &str| {
        let under = if n == BASELINE {
            &baseline_target
        } else {
            &target
        };
        under.join("lambda").join(n).join("bootstrap")
    };
    Some(
        names
            .iter()
            .map(String::as_str)
            .chain([BASELINE])
            .filter_map(|n| {
                let file = bootstrap(n);
                let size = std::fs::metadata(&file).ok()?.len();
                Some((n.to_owned(), (size, zip_size(&file))))
            })
            .collect(),
    )
}

/// Writes profiles `from..to` of the scale tenant, in a list of `shards` shards, with
/// BatchWriteItem, items built by the store itself.
pub(crate) async fn seed(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    tenant: &shared::ids::TenantId,
    (from, to): (usize, usize),
    shards: u32,
) -> Result<(), Error> {
    eprintln!("bench: seeding profiles {from}..{to}");
    // Not a function's 3 s budget: eight batches of 25 profiles go at once, and on a busy
    // machine one may wait its turn on the engine for seconds.
    let timeouts = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
        .operation_timeout(std::time::Duration::from_secs(120))
        .operation_attempt_timeout(std::time::Duration::from_secs(60))
        .build();
    let client = &aws_sdk_dynamodb::Client::from_conf(
        client
            .config()
            .to_builder()
            .timeout_config(timeouts)
            .build(),
    );
    let store = shared::store::Store::new(client.clone(), table);
    // One batch of 25 is made just before it is sent: a million profiles never sit in memory.
    let batch = |start: usize| -> Result<Vec<WriteRequest>, Error> {
        let mut requests = Vec::with_capacity(25);
        for i in start..(start + 25).min(to) {
            let id = shared::ids::ProfileId::generate();
            let created = shared::model::Timestamp::of_id(&id).to_string();
            let mut body = json!({
                "id": id, "name": format!("Person {:06}", (i * 7919) % 1_000_003),
                "owner_id": "bench", "created_at": created, "updated_at": created, "version": 1,
            });
            if i % 10 == 0 {
                body["tags"] = json!(["tenth"]);
            }
            let profile: shared::model::Profile = serde_json::from_value(body)?;
            let item = store.new_profile_item(tenant, &profile, shards)?;
            requests.push(
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item)).build()?)
                    .build(),
            );
        }
        Ok(requests)
    };
    let mut tasks = tokio::task::JoinSet::new();
    let mut starts = (from..to).step_by(25);
    loop {
        while tasks.len() < 8 {
            let Some(start) = starts.next() else { break };
            let chunk = batch(start)?;
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
pub(crate) fn today() -> String {
    shared::model::Timestamp::now().to_string()[..10].to_owned()
}
