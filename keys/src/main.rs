//! `keys`: make, list and revoke the Profiles API's API keys (`shared::apikeys`), and run the
//! upgrade backfill (`keys migrate`, `shared::store::backfill`), on a local engine or on AWS.
//! `cargo run -p keys -- --help` lists the commands and options.
// A command-line tool: its output is stdout.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use shared::apikeys::{self, ApiKeyRecord};
use shared::auth::{PrincipalId, Scopes, TenantId};
use shared::config::Config;
use shared::store::Store;

/// The local runner's state directory (`cargo run -p local-api`), where it writes
/// `engine-endpoint`.
const DEFAULT_STATE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.local");

/// The table the local runner makes (local-api's `TABLE`).
const LOCAL_TABLE: &str = "profiles";
/// The table when neither `--table` nor `TABLE_NAME` names one.
const DEFAULT_TABLE: &str = "profiles";

const AFTER_HELP: &str = "\
scopes: profiles.create profiles.read profiles.lists profiles.update profiles.delete

connection (default: AWS, with the table TABLE_NAME or `profiles`): --local [DIR], or
--endpoint URL (or env DYNAMODB_ENDPOINT) and --table NAME (or env TABLE_NAME). On AWS:
credentials and region from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_REGION); no profile files.

exit status: 0 done, 1 failed (engine, AWS, no such key), 2 bad arguments";

/// Make, list and revoke the Profiles API's API keys, on a local engine or on AWS.
#[derive(Parser)]
#[command(
    name = "keys",
    about,
    help_template = "{about}\n\nusage: {usage}\n\n{all-args}\n{after-help}",
    after_help = AFTER_HELP
)]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// The local runner's engine (`cargo run -p local-api`): its URL from DIR/engine-endpoint
    /// (DIR defaults to .local/ in the repo), table `profiles`
    #[arg(long, global = true, value_name = "DIR", num_args = 0..=1, require_equals = true,
        default_missing_value = DEFAULT_STATE_DIR, conflicts_with_all = ["endpoint", "table"])]
    local: Option<PathBuf>,
    /// A DynamoDB-compatible engine at URL (or env DYNAMODB_ENDPOINT)
    #[arg(long, global = true, value_name = "URL")]
    endpoint: Option<String>,
    /// The table (or env TABLE_NAME; default profiles)
    #[arg(long, global = true, value_name = "NAME")]
    table: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Make a key for a principal in a tenant. The key is the first line of stdout, shown
    /// this once (only its hash is stored); then its id, its usage key and the two
    /// `aws apigateway` commands that put the usage key in the stack's usage plan.
    Create {
        #[arg(long, value_parser = tenant)]
        tenant: TenantId,
        #[arg(long, value_parser = principal)]
        principal: PrincipalId,
        /// Scope names, separated by commas or spaces
        #[arg(long, value_parser = scopes)]
        scopes: Scopes,
        /// A label: who or what the key is for
        #[arg(long)]
        name: Option<String>,
    },
    /// The tenant's keys: id, principal, scopes, name, created, revoked
    List {
        #[arg(long, value_parser = tenant)]
        tenant: TenantId,
    },
    /// Revoke a key: the authorizer refuses it from now on
    Revoke {
        #[arg(long, value_parser = tenant)]
        tenant: TenantId,
        key_id: String,
    },
    /// The upgrade backfill: rewrite every profile stored before the current key scheme (an
    /// index added since) with the attributes it gives them now. Rewrites nothing the second
    /// time; resumes from --state; reads at most --rate items a second
    Migrate {
        /// Items read per second at most
        #[arg(long, value_name = "N", default_value_t = 100.0,
            value_parser = positive)]
        rate: f64,
        /// Items read per Scan page
        #[arg(long, value_name = "N", default_value_t = 100,
            value_parser = clap::value_parser!(i32).range(1..=1000))]
        page: i32,
        /// Keep the cursor in FILE after every page, and start from it when it is there
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
    /// The usage key of a JWT caller (its issuer, tenant claim and sub) and the two
    /// `aws apigateway` commands that register it (no table is read)
    JwtUsageKey {
        #[arg(long)]
        issuer: String,
        #[arg(long, value_parser = tenant)]
        tenant: TenantId,
        /// The token's `sub`
        #[arg(long, value_parser = principal)]
        principal: PrincipalId,
    },
}

fn positive(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok(n),
        _ => Err(format!("{raw:?} is not a positive number")),
    }
}

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

fn tenant(raw: &str) -> Result<TenantId, String> {
    TenantId::new(raw)
}

fn principal(raw: &str) -> Result<PrincipalId, String> {
    PrincipalId::new(raw)
}

fn scopes(raw: &str) -> Result<Scopes, String> {
    let scopes = Scopes::parse_strict(raw)?;
    if scopes.is_empty() {
        return Err("names no scope".into());
    }
    Ok(scopes)
}

/// The command line, with `--local DIR` (the directory as the next word) spelled
/// `--local=DIR` for clap, which takes `--local`'s optional value only after `=` so that a
/// bare `--local` never swallows the command or key id after it.
fn command_line() -> Vec<String> {
    let mut args: Vec<String> = std::env::args().collect();
    let commands = ["create", "list", "revoke", "jwt-usage-key"];
    let mut i = 1;
    while i + 1 < args.len() {
        let next = &args[i + 1];
        let is_dir = !next.starts_with('-')
            && !commands.contains(&next.as_str())
            && !apikeys::is_key_id(next);
        if args[i] == "--local" && is_dir {
            let dir = args.remove(i + 1);
            args[i] = format!("--local={dir}");
        }
        i += 1;
    }
    args
}

/// A failure (exit 1); bad arguments exit 2 from clap.
struct Failure(String);

/// The two `aws apigateway` commands that put `usage_key` in the stack's usage plan.
fn print_registration(name: &str, usage_key: &str) {
    println!("On AWS, put the usage key in the stack's usage plan (the UsagePlanId output);");
    println!("until then API Gateway answers this credential's requests with 403:");
    println!();
    println!(
        "  GATEWAY_KEY_ID=$(aws apigateway create-api-key --name {name} --value {usage_key} --enabled --query id --output text)"
    );
    println!(
        "  aws apigateway create-usage-plan-key --usage-plan-id <UsagePlanId output> --key-id \"$GATEWAY_KEY_ID\" --key-type API_KEY"
    );
}

/// The configuration: the connection from the arguments, the rest (credentials, region) from
/// the environment. Settings the CLI does not use (JWT, cursor key) are not read.
fn config(args: &Args) -> Result<Config, Failure> {
    let (endpoint, table) = match &args.local {
        Some(dir) => {
            let file = dir.join("engine-endpoint");
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
            (Some(url), Some(LOCAL_TABLE.to_owned()))
        }
        None => (args.endpoint.clone(), args.table.clone()),
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let endpoint = endpoint.or_else(|| env("DYNAMODB_ENDPOINT"));
    let table = table
        .or_else(|| env("TABLE_NAME"))
        .unwrap_or_else(|| DEFAULT_TABLE.to_owned());
    Config::from_lookup(|k| match k {
        "TABLE_NAME" => Some(table.clone()),
        "DYNAMODB_ENDPOINT" => endpoint.clone(),
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
    if let Command::JwtUsageKey {
        issuer,
        tenant,
        principal,
    } = &args.command
    {
        let usage_key = shared::authorizer::jwt_usage_key(issuer, tenant, principal);
        println!("{usage_key}");
        println!();
        println!("The usage key of JWTs from {issuer} for tenant {tenant}, sub {principal}.");
        print_registration(&format!("profiles-{usage_key}"), &usage_key);
        return Ok(());
    }
    let config = config(&args)?;
    let store = Store::from_config(&config);
    let failed = |e: shared::error::ApiError| Failure(e.to_string());
    match args.command {
        Command::Create {
            tenant,
            principal,
            scopes,
            name,
        } => {
            let (key, record) =
                apikeys::create(&store, &tenant, &principal, scopes, name.as_deref())
                    .await
                    .map_err(failed)?;
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
            println!();
            print_registration(&format!("profiles-{}", record.key_id), &record.usage_key);
        }
        Command::List { tenant } => {
            let records = apikeys::list(&store, &tenant).await.map_err(failed)?;
            if records.is_empty() {
                eprintln!("tenant {tenant} has no API keys");
            } else {
                print_list(&records);
            }
        }
        // Answered above, without a table.
        Command::JwtUsageKey { .. } => {}
        Command::Migrate { rate, page, state } => {
            migrate(&store, rate, page, state.as_deref()).await?;
        }
        Command::Revoke { tenant, key_id } => {
            if !apikeys::revoke(&store, &tenant, &key_id)
                .await
                .map_err(failed)?
            {
                return Err(Failure(format!(
                    "tenant {tenant} has no API key {key_id:?} (see `keys list --tenant {tenant}`)"
                )));
            }
            println!("revoked {key_id} (tenant {tenant})");
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // Bad arguments: clap prints why (with a suggestion for a misspelt flag) and exits 2.
    let args = Args::parse_from(command_line());
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("keys: {message}");
            ExitCode::from(1)
        }
    }
}
