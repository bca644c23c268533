//! Lists at scale: what a page costs (time and read units) as one tenant grows, and what its
//! shard count costs a page. `--only scale` grows a tenant to a million profiles at 1 and at 8
//! shards (a local run of about an hour, not CI's); the full and quick runs measure both on
//! smaller tenants.

use std::time::{Duration, Instant};

use edge::handlers as h;
use local_api::engine::Engine;
use local_api::meter::Meter;
use shared::app::App;
use shared::config::env;
use shared::ids::TenantId;
use shared::store::MovePace;

use crate::Error;
use crate::calls::{Call, json_of};
use crate::measure::{ms, percentile, seed};

/// The orders a page is measured in, with a filter the index does not apply.
const QUERIES: [(&str, &[(&str, &str)]); 5] = [
    ("created_at", &[]),
    ("name", &[("sort_by", "name")]),
    (
        "updated_at asc",
        &[("sort_by", "updated_at"), ("sort_order", "asc")],
    ),
    ("name prefix", &[("filter[name_prefix]", "person 00")]),
    ("filter[tag] (1 in 10)", &[("filter[tag]", "tenth")]),
];

/// Pages read per measurement.
const PAGES: usize = 20;

/// A store on `engine`, and one that reads through a capacity meter.
struct Clients {
    app: App,
    metered: App,
    meter: Meter,
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl Clients {
    async fn on(engine: &Engine) -> Result<Self, Error> {
        let meter = Meter::start(&engine.endpoint).await?;
        let config = |endpoint: &str| {
            shared::config::Config::from_lookup(|k| match k {
                env::TABLE_NAME => Some(engine.table.clone()),
                env::DYNAMODB_ENDPOINT => Some(endpoint.to_owned()),
                _ => None,
            })
        };
        let plain = config(&engine.endpoint)?;
        Ok(Self {
            db: shared::store::dynamodb_client(&plain),
            table: engine.table.clone(),
            app: App::new(plain),
            metered: App::new(config(&meter.endpoint)?),
            meter,
        })
    }

    /// A tenant laid out in `shards` shards, before any profile.
    async fn tenant(&self, name: &str, shards: u32) -> Result<TenantId, Error> {
        let tenant = TenantId::new(name).map_err(|e| e.to_string())?;
        let now = MovePace {
            settle: Duration::ZERO,
            page: 100,
        };
        self.app
            .store
            .relayout(&tenant, shards, now, |_| {})
            .await?;
        Ok(tenant)
    }

    /// The median time of [`PAGES`] first pages of `query`, and one page's read units.
    async fn page(
        &self,
        tenant: &TenantId,
        query: &[(&'static str, &str)],
    ) -> Result<(f64, f64), Error> {
        let mut call = Call::new("list-profiles", "GET");
        call.tenant = Some(tenant.to_string());
        call.query = query.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let mut samples = Vec::new();
        for _ in 0..PAGES {
            let req = call.request()?;
            let t = Instant::now();
            let r = edge::lambda::respond(&req, h::list_profiles(&self.app, &req)).await;
            samples.push(ms(t.elapsed()));
            if r.status() != 200 {
                return Err(format!("list: {}", json_of(&r)).into());
            }
        }
        // The same page through the meter (its layout read once before, as a warm instance has).
        let req = call.request()?;
        edge::lambda::respond(&req, h::list_profiles(&self.metered, &req)).await;
        self.meter.take();
        let req = call.request()?;
        edge::lambda::respond(&req, h::list_profiles(&self.metered, &req)).await;
        Ok((percentile(&samples, 50.0), self.meter.take().total_reads()))
    }
}

/// Turns the table's stream off on `engine`: the scale tables read no stream, and the
/// engine finds each stream record's sequence number by reading every record before it, so
/// with the stream on, seeding slows as it goes (20,000 profiles took minutes, a million
/// would take hours).
pub(crate) async fn without_stream(engine: &Engine) -> Result<(), Error> {
    let config = engine.config("us-east-1")?;
    shared::store::dynamodb_client(&config)
        .update_table()
        .table_name(&engine.table)
        .stream_specification(
            aws_sdk_dynamodb::types::StreamSpecification::builder()
                .stream_enabled(false)
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}

/// What a tenant's shard count costs a page: the same tenant of `size` profiles at 1, 8 and
/// 32 shards, each page reading every shard.
pub(crate) async fn shard_cost(engine: &Engine, size: usize) -> Result<(), Error> {
    let c = Clients::on(engine).await?;
    println!(
        "\n### A list page (limit 20) vs the tenant's shard count ({size} profiles; in-process handler, p50 ms over {PAGES} pages; read units of one page)\n"
    );
    println!("| shards | created_at | name | created_at RCU | name RCU |\n|---|---|---|---|---|");
    for shards in [1, 8, 32] {
        let tenant = c.tenant(&format!("shards-{shards}"), shards).await?;
        seed(&c.db, &c.table, &tenant, (0, size), shards).await?;
        let (created, created_rcu) = c.page(&tenant, QUERIES[0].1).await?;
        let (name, name_rcu) = c.page(&tenant, QUERIES[1].1).await?;
        println!("| {shards} | {created:.2} | {name:.2} | {created_rcu} | {name_rcu} |");
    }
    Ok(())
}

/// A list page as one tenant grows through `sizes`, for each of `shard_counts` (a tenant of
/// its own each): the normal run's growth table, and `--only scale`'s million.
pub(crate) async fn growth(
    engine: &Engine,
    sizes: &[usize],
    shard_counts: &[u32],
) -> Result<(), Error> {
    let c = Clients::on(engine).await?;
    println!(
        "\n### A list page (limit 20) as one tenant grows (in-process handler on the embedded engine; p50 ms over {PAGES} pages / read units of one page)\n"
    );
    let header: Vec<&str> = QUERIES.iter().map(|(name, _)| *name).collect();
    println!("| shards | profiles | {} |", header.join(" | "));
    println!("|---|---|{}", "---|".repeat(QUERIES.len()));
    for &shards in shard_counts {
        let tenant = c.tenant(&format!("growth-{shards}"), shards).await?;
        let mut seeded = 0;
        for &size in sizes {
            let started = Instant::now();
            seed(&c.db, &c.table, &tenant, (seeded, size), shards).await?;
            eprintln!(
                "bench: {shards} shards, {size} profiles seeded ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
            seeded = size;
            let mut cells = Vec::new();
            for (_, query) in QUERIES {
                let (p50, rcu) = c.page(&tenant, query).await?;
                cells.push(format!("{p50:.2} / {rcu}"));
            }
            println!("| {shards} | {size} | {} |", cells.join(" | "));
        }
    }
    Ok(())
}
