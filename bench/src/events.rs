//! Change events: how long from a write committed to its event at a webhook, through the
//! runner's whole path (the table's stream read as Lambda's event source mapping reads it,
//! publish-events through its Runtime API, the embedded bus, the rule, the API destination's
//! POST). The bench's runner is started with its webhook on [`Receiver`], filtered to
//! [`EVENTS_TENANT`], so the other tables' writes send it nothing.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::Bench;
use crate::Error;
use crate::calls::{Call, handle, json_of};
use crate::measure::{ms, percentile};

/// The tenant whose events the bench's webhook rule passes.
pub(crate) const EVENTS_TENANT: &str = "bench-events";

/// The longest an event may take before the run is called broken.
const EVENT_TIMEOUT: Duration = Duration::from_secs(15);

/// The webhook's parameters for the bench's runner, its URL `url`.
pub(crate) fn parameters(url: &str) -> Vec<(String, String)> {
    [
        ("WebhookUrl", url),
        ("WebhookSecret", "bench-webhook-secret-0123456789abcdef"),
        ("WebhookTenant", EVENTS_TENANT),
        ("WebhookRateLimit", "300"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// Creates and then renames `writes` profiles one after the other, each after a pause that
/// walks through the stream's poll interval (so the samples do not all land at one phase of
/// it), and prints write committed → event received, p50, p99 and max, per type.
pub(crate) async fn latency(bench: &Bench) -> Result<(), Error> {
    let writes = if bench.opts.quick { 10 } else { 100 };
    let receiver = &bench.receiver;
    let mut created = Vec::new();
    let mut updated = Vec::new();
    for i in 0..writes {
        tokio::time::sleep(Duration::from_millis((i as u64 * 37) % 250)).await;
        let mut call = Call::new("create-profile", "POST")
            .body(json!({"name": format!("Event {i}"), "tags": ["bench"]}));
        call.tenant = Some(EVENTS_TENANT.to_owned());
        let (id, at) = commit(bench, call, 201).await?;
        created.push(ms(arrival(receiver, &id, "profile.created").await? - at));

        tokio::time::sleep(Duration::from_millis((i as u64 * 53) % 250)).await;
        let mut call = Call::new("update-profile", "PATCH")
            .param("profile_id", &id)
            .body(json!({"title": format!("Title {i}")}));
        call.tenant = Some(EVENTS_TENANT.to_owned());
        let (_, at) = commit(bench, call, 200).await?;
        updated.push(ms(arrival(receiver, &id, "profile.updated").await? - at));
    }
    println!(
        "\n### Change events: write committed → event POSTed to a local webhook ({writes} of each; the runner's stream, publish-events, bus and API destination; ms)\n"
    );
    println!("| event | p50 | p99 | max |\n|---|---|---|---|");
    for (kind, samples) in [("profile.created", &created), ("profile.updated", &updated)] {
        let max = samples.iter().copied().fold(0.0, f64::max);
        println!(
            "| {kind} | {:.0} | {:.0} | {max:.0} |",
            percentile(samples, 50.0),
            percentile(samples, 99.0)
        );
    }
    Ok(())
}

/// Runs `call` in process; the profile's id and when the write was committed (the
/// handler's answer).
async fn commit(bench: &Bench, call: Call, status: u16) -> Result<(String, Instant), Error> {
    let binary = call.binary.clone();
    let r = handle(&bench.fixtures.app, &binary, call.request()?).await?;
    let at = Instant::now();
    let body = json_of(&r);
    match body["id"].as_str() {
        Some(id) if r.status() == status => Ok((id.to_owned(), at)),
        _ => Err(format!("{binary} answered {}: {body}", r.status()).into()),
    }
}

/// When the receiver took the event of `kind` about profile `id`.
async fn arrival(
    receiver: &local_api::receiver::Receiver,
    id: &str,
    kind: &str,
) -> Result<Instant, Error> {
    let find = |all: &[local_api::receiver::Received]| {
        all.iter()
            .find(|r| r.body["subject"] == id && r.body["type"] == kind)
            .map(|r| r.at)
    };
    let (all, _) = receiver
        .wait_until(EVENT_TIMEOUT, |all| find(all).is_some())
        .await;
    find(&all).ok_or_else(|| format!("no {kind} for {id} within {EVENT_TIMEOUT:?}").into())
}
