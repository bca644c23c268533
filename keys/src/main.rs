//! `keys`: make, list and revoke the Profiles API's API keys (`shared::apikeys`), with each
//! key's usage key put in (and taken out of) the stack's usage plan (`keys::gateway`), and
//! run the upgrade backfill (`keys migrate`, `shared::store::backfill`), on the local runner
//! or on AWS. `cargo run -p keys -- --help` lists the commands and options.
// A command-line tool: its output is stdout.
#![allow(clippy::print_stdout)]

use shared::config::env;
use std::process::ExitCode;

use clap::Parser;

use shared::apikeys::{self, ApiKeyRecord};
use shared::auth::Scopes;
use shared::config::Config;
use shared::ids::{PrincipalId, TenantId};
use shared::localstate;
use shared::store::Store;

use keys::cli::{self, Args, Command};
use keys::gateway::{Gateway, key_name};

/// The table when neither `--table` nor `TABLE_NAME` names one.
const DEFAULT_TABLE: &str = "profiles";

/// A backfill cursor as the state file keeps it: the key's string attributes, as JSON.
fn cursor_to_json(cursor: &shared::store::Item) -> String {
    let map: serde_json::Map<String, serde_json::Value> = cursor
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), serde_json::Value::String(v.as_s().ok()?.clone()))))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn cursor_from_json(raw: &str) -> Option<shared::store::Item> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw).ok()?;
    map.into_iter()
        .map(|(k, v)| {
            let s = v.as_str()?.to_owned();
            Some((k, aws_sdk_dynamodb::types::AttributeValue::S(s)))
        })
        .collect()
}

/// `keys migrate`: the backfill from the state file's cursor (or the beginning), saving the
/// cursor after every page and removing the file when the table is done.
async fn migrate(
    store: &Store,
    rate: f64,
    page: i32,
    state: Option<&std::path::Path>,
) -> Result<(), Failure> {
    let start =
        match state.map(std::fs::read_to_string) {
            Some(Ok(raw)) => Some(cursor_from_json(&raw).ok_or_else(|| {
                Failure(format!("{}: not a cursor this command wrote", raw.trim()))
            })?),
            _ => None,
        };
    if start.is_some() {
        eprintln!("resuming from the cursor in the state file");
    }
    let mut saved: Result<(), Failure> = Ok(());
    let pace = shared::store::Pace {
        page,
        items_per_second: rate,
    };
    let total = store
        .backfill(start, pace, |p| {
            eprintln!(
                "scanned {}, rewritten {}, current {}",
                p.scanned, p.rewritten, p.current
            );
            if let (Some(file), Some(cursor)) = (state, &p.cursor) {
                saved = std::fs::write(file, cursor_to_json(cursor))
                    .map_err(|e| Failure(format!("{}: {e}", file.display())));
            }
            saved.is_ok()
        })
        .await
        .map_err(|e| Failure(e.to_string()))?;
    saved?;
    if total.cursor.is_none()
        && let Some(file) = state
    {
        let _ = std::fs::remove_file(file);
    }
    println!(
        "done: {} items scanned, {} profiles rewritten, {} already current",
        total.scanned, total.rewritten, total.current
    );
    Ok(())
}

/// A failure (exit 1); bad arguments exit 2 from clap.
struct Failure(String);

/// The core's errors (API keys', storage's) say what failed, in their own words.
impl From<apikeys::ApiKeyError> for Failure {
    fn from(e: apikeys::ApiKeyError) -> Self {
        Self(e.to_string())
    }
}

impl From<shared::store::StoreError> for Failure {
    fn from(e: shared::store::StoreError) -> Self {
        Self(e.to_string())
    }
}

/// The usage plan the connection names, if any: the runner's (from its files), the deployed
/// stack's (`--usage-plan`), or one at `--apigateway-endpoint`.
fn gateway(args: &Args, config: &Config) -> Result<Option<Gateway>, Failure> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let plan = args.usage_plan.clone().or_else(|| env("USAGE_PLAN_ID"));
    if let Some(dir) = &args.local {
        let read = |name: &str| localstate::read(dir, name);
        return match (
            read(localstate::APIGATEWAY_ENDPOINT),
            read(localstate::USAGE_PLAN_ID),
        ) {
            (Some(url), Some(plan)) => Ok(Some(Gateway::new(config, Some(&url), &plan))),
            _ => Err(Failure(format!(
                "cannot read {} and {} in {}. Is the local runner running (cargo run -p local-api)?",
                localstate::APIGATEWAY_ENDPOINT,
                localstate::USAGE_PLAN_ID,
                dir.display()
            ))),
        };
    }
    if args.deployed {
        let plan = plan.ok_or_else(|| {
            Failure(
                "--deployed needs the usage plan: --usage-plan ID or env USAGE_PLAN_ID (the stack's UsagePlanId output)".into(),
            )
        })?;
        return Ok(Some(Gateway::new(config, None, &plan)));
    }
    Ok(match (&args.apigateway_endpoint, plan) {
        (Some(url), Some(plan)) => Some(Gateway::new(config, Some(url), &plan)),
        _ => None,
    })
}

/// Puts `record`'s usage key in the plan, saying what it did.
async fn register(gateway: &Gateway, record: &ApiKeyRecord) -> Result<(), Failure> {
    let name = key_name(&record.key_id);
    let done = gateway.register(&name, &record.usage_key).await.map_err(|e| {
        Failure(format!(
            "{e}\nthe key is made, but API Gateway will refuse it until its usage key is in the \
             plan: run `keys register --tenant {} {}` with the same connection",
            record.tenant, record.key_id
        ))
    })?;
    println!(
        "usage plan: {} API key {} ({}){}",
        if done.joined_plan {
            "joined as"
        } else {
            "already holds"
        },
        name,
        done.api_key_id,
        if done.created_key {
            ""
        } else {
            ", which was there"
        }
    );
    Ok(())
}

/// The configuration: the connection from the arguments, the rest (credentials, region) from
/// the environment. Settings the CLI does not use (JWT, cursor key) are not read.
fn config(args: &Args) -> Result<Config, Failure> {
    if args.local.is_none() && !args.deployed && args.endpoint.is_none() {
        let from_env = std::env::var(env::DYNAMODB_ENDPOINT).is_ok_and(|v| !v.trim().is_empty());
        if !from_env {
            return Err(Failure(
                "say where the keys live: --local (the local runner), --deployed (AWS), or --endpoint URL".into(),
            ));
        }
    }
    let (endpoint, table) = match &args.local {
        Some(dir) => {
            let file = dir.join(localstate::ENGINE_ENDPOINT);
            let url = std::fs::read_to_string(&file).map_err(|e| {
                Failure(format!(
                    "cannot read {}: {e}. Is the local runner running (cargo run -p local-api)?",
                    file.display()
                ))
            })?;
            let url = url.trim().to_owned();
            if url.is_empty() {
                return Err(Failure(format!("{} is empty", file.display())));
            }
            (Some(url), Some(localstate::TABLE.to_owned()))
        }
        None => (args.endpoint.clone(), args.table.clone()),
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let endpoint = endpoint.or_else(|| env(env::DYNAMODB_ENDPOINT));
    let table = table
        .or_else(|| env(env::TABLE_NAME))
        .unwrap_or_else(|| DEFAULT_TABLE.to_owned());
    Config::from_lookup(|k| match k {
        env::TABLE_NAME => Some(table.clone()),
        env::DYNAMODB_ENDPOINT => endpoint.clone(),
        k if k.starts_with("AWS_") => env(k),
        _ => None,
    })
    .map_err(|e| Failure(e.to_string()))
}

fn created_text(record: &ApiKeyRecord) -> String {
    record.created_at.to_string()
}

fn print_list(records: &[ApiKeyRecord]) {
    let rows: Vec<[String; 6]> = records
        .iter()
        .map(|r| {
            [
                r.key_id.clone(),
                r.principal.to_string(),
                r.scopes.to_string(),
                r.name.clone().unwrap_or_else(|| "-".into()),
                created_text(r),
                match (r.revoked, r.revoked_at) {
                    (false, _) => "no".into(),
                    (true, Some(at)) => at.to_string(),
                    (true, None) => "yes".into(),
                },
            ]
        })
        .collect();
    let header = [
        "KEY ID",
        "PRINCIPAL",
        "SCOPES",
        "NAME",
        "CREATED",
        "REVOKED",
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

async fn run(args: Args) -> Result<(), Failure> {
    let config = config(&args)?;
    let store = Store::from_config(&config);
    // Only a key's making, revoking and registering touch the usage plan.
    let gateway = match args.command {
        Command::Create { .. } | Command::Revoke { .. } | Command::Register { .. } => {
            gateway(&args, &config)?
        }
        Command::List { .. } | Command::Migrate { .. } | Command::Shards { .. } => None,
    };
    let gateway = gateway.as_ref();
    match args.command {
        Command::Create {
            tenant,
            principal,
            scopes,
            name,
        } => {
            create(
                &store,
                gateway,
                &tenant,
                &principal,
                scopes,
                name.as_deref(),
            )
            .await
        }
        Command::List { tenant } => list(&store, &tenant).await,
        Command::Register { tenant, key_id } => {
            register_again(&store, gateway, &tenant, &key_id).await
        }
        Command::Migrate { rate, page, state } => {
            migrate(&store, rate, page, state.as_deref()).await
        }
        Command::Revoke { tenant, key_id } => revoke(&store, gateway, &tenant, &key_id).await,
        Command::Shards {
            tenant,
            count,
            settle,
        } => shards(&store, &tenant, count, settle).await,
    }
}

/// `keys create`: the key (printed once), its record, and its usage key in the plan.
async fn create(
    store: &Store,
    gateway: Option<&Gateway>,
    tenant: &TenantId,
    principal: &PrincipalId,
    scopes: Scopes,
    name: Option<&str>,
) -> Result<(), Failure> {
    let (key, record) = apikeys::create(store, tenant, principal, scopes, name).await?;
    println!("{}", key.expose());
    println!();
    println!("The line above is the API key, shown this once: only its hash is stored.");
    println!("Send it as `Authorization: Bearer <key>` or `x-api-key: <key>`.");
    println!("key id:     {}", record.key_id);
    println!("tenant:     {}", record.tenant);
    println!("principal:  {}", record.principal);
    println!("scopes:     {}", record.scopes);
    if let Some(name) = &record.name {
        println!("name:       {name}");
    }
    println!("usage key:  {}", record.usage_key);
    match gateway {
        Some(gateway) => register(gateway, &record).await,
        None => {
            println!(
                "usage plan: none named (--endpoint): API Gateway refuses this key until \
                 `keys register` puts its usage key in the stack's plan"
            );
            Ok(())
        }
    }
}

/// `keys list`: the tenant's keys, one line each.
async fn list(store: &Store, tenant: &TenantId) -> Result<(), Failure> {
    let records = apikeys::list(store, tenant).await?;
    if records.is_empty() {
        eprintln!("tenant {tenant} has no API keys");
    } else {
        print_list(&records);
    }
    Ok(())
}

/// `keys register`: a key's usage key in the plan again (idempotent).
async fn register_again(
    store: &Store,
    gateway: Option<&Gateway>,
    tenant: &TenantId,
    key_id: &str,
) -> Result<(), Failure> {
    let Some(gateway) = gateway else {
        return Err(Failure(
            "register needs a usage plan: --local, --deployed, or --apigateway-endpoint with --usage-plan".into(),
        ));
    };
    let records = apikeys::list(store, tenant).await?;
    let Some(record) = records.iter().find(|r| r.key_id == key_id) else {
        return Err(no_such_key(tenant, key_id));
    };
    if record.revoked {
        return Err(Failure(format!(
            "{key_id} is revoked: it is not registered again"
        )));
    }
    register(gateway, record).await
}

/// `keys revoke`: the authorizer refuses the key from now on, and its usage key leaves the
/// plan.
async fn revoke(
    store: &Store,
    gateway: Option<&Gateway>,
    tenant: &TenantId,
    key_id: &str,
) -> Result<(), Failure> {
    if !apikeys::revoke(store, tenant, key_id).await? {
        return Err(no_such_key(tenant, key_id));
    }
    println!("revoked {key_id} (tenant {tenant})");
    let Some(gateway) = gateway else {
        return Ok(());
    };
    let name = key_name(key_id);
    let removed = gateway.unregister(&name).await.map_err(|e| {
        Failure(format!(
            "{e}\nthe key is revoked (the authorizer refuses it); its usage key is \
             still in the plan: run this revoke again to take it out"
        ))
    })?;
    println!(
        "usage plan: {}",
        if removed {
            format!("{name} taken out and deleted")
        } else {
            format!("held no {name}")
        }
    );
    Ok(())
}

/// `keys shards`: the tenant's list layout; with `count`, moved there (waiting `settle` s
/// after marking the move, so every instance lists both layouts before anything moves).
async fn shards(
    store: &Store,
    tenant: &TenantId,
    count: Option<u32>,
    settle: u64,
) -> Result<(), Failure> {
    let layout = store.layout(tenant).await?;
    match layout.next {
        Some(next) => println!("tenant {tenant}: {} shards, moving to {next}", layout.count),
        None => println!("tenant {tenant}: {} shards", layout.count),
    }
    let Some(to) = count else {
        return Ok(());
    };
    if settle < shared::store::LAYOUT_TTL.as_secs() {
        eprintln!(
            "warning: --settle {settle} is shorter than the functions keep a layout ({} s): a \
             list read by an instance that has not seen the move may miss profiles meanwhile",
            shared::store::LAYOUT_TTL.as_secs()
        );
    }
    eprintln!("moving to {to} shards: marking the move, then waiting {settle} s before rewriting");
    let pace = shared::store::MovePace {
        settle: std::time::Duration::from_secs(settle),
        page: 100,
    };
    let moved = store
        .relayout(tenant, to, pace, |m| {
            eprintln!("read {}, rewritten {}", m.read, m.rewritten)
        })
        .await?;
    println!(
        "done: tenant {tenant} has {to} shards ({} profiles rewritten)",
        moved.rewritten
    );
    Ok(())
}

fn no_such_key(tenant: &TenantId, key_id: &str) -> Failure {
    Failure(format!(
        "tenant {tenant} has no API key {key_id:?} (see `keys list --tenant {tenant}`)"
    ))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // Bad arguments: clap prints why (with a suggestion for a misspelt flag) and exits 2.
    let args = Args::parse_from(cli::spelled_for_clap(std::env::args().collect()));
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("keys: {message}");
            ExitCode::from(1)
        }
    }
}
