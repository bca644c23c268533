//! `keys`: make, list and revoke the Profiles API's API keys (`shared::apikeys`), on a local
//! engine or on AWS. `cargo run -p keys -- --help` lists the commands and options.
// A command-line tool: its output is stdout.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use shared::apikeys::{self, ApiKeyRecord};
use shared::auth::{PrincipalId, Scopes, TenantId};
use shared::config::Config;
use shared::store::Store;

const USAGE: &str = "\
usage: keys [connection] <command>

commands:
  create --tenant T --principal P --scopes S1,S2 [--name N]
        make a key for principal P in tenant T. The key is the first line of stdout, shown
        this once (only its hash is stored); then its id, its usage key and the two
        `aws apigateway` commands that put the usage key in the stack's usage plan.
  list --tenant T
        the tenant's keys: id, principal, scopes, name, created, revoked
  revoke --tenant T KEY_ID
        revoke a key: the authorizer refuses it from now on
  jwt-usage-key --issuer ISS --tenant T --principal SUB
        the usage key of a JWT caller (its issuer, tenant claim and sub) and the two
        `aws apigateway` commands that register it (no table is read)

scopes: profiles.create profiles.read profiles.lists profiles.update profiles.delete

connection (default: AWS, with the table TABLE_NAME or `profiles`):
  --local [DIR]     the local runner's engine (`cargo run -p local-api`): its URL from
                    DIR/engine-endpoint (DIR defaults to .local/ in the repo), table profiles
  --endpoint URL    a DynamoDB-compatible engine at URL (or env DYNAMODB_ENDPOINT)
  --table NAME      the table (or env TABLE_NAME; default profiles)
  AWS: credentials and region from the environment (AWS_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION); no profile files.

exit status: 0 done, 1 failed (engine, AWS, no such key), 2 bad arguments";

const COMMANDS: [&str; 4] = ["create", "list", "revoke", "jwt-usage-key"];

/// The table the local runner makes (local-api's `TABLE`).
const LOCAL_TABLE: &str = "profiles";
/// The table when neither `--table` nor `TABLE_NAME` names one.
const DEFAULT_TABLE: &str = "profiles";

enum Command {
    Create {
        tenant: TenantId,
        principal: PrincipalId,
        scopes: Scopes,
        name: Option<String>,
    },
    List {
        tenant: TenantId,
    },
    Revoke {
        tenant: TenantId,
        key_id: String,
    },
    JwtUsageKey {
        issuer: String,
        tenant: TenantId,
        principal: PrincipalId,
    },
}

struct Args {
    command: Command,
    endpoint: Option<String>,
    table: Option<String>,
    local: Option<PathBuf>,
}

/// A bad command line (exit 2) or a failure (exit 1).
enum Failure {
    Usage(String),
    Failed(String),
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".local")
}

fn parse_args(args: Vec<String>) -> Result<Args, Failure> {
    let usage = |m: String| Failure::Usage(m);
    let mut command = None;
    let mut endpoint = None;
    let mut table = None;
    let mut local = None;
    let mut tenant = None;
    let mut principal = None;
    let mut scopes = None;
    let mut name = None;
    let mut issuer = None;
    let mut positional = Vec::new();
    let mut it = args.into_iter().peekable();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| match inline.clone() {
            Some(v) => Ok(v),
            None => it
                .next()
                .ok_or_else(|| usage(format!("{name} needs a value"))),
        };
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--endpoint" => endpoint = Some(value("--endpoint")?),
            "--table" => table = Some(value("--table")?),
            "--tenant" => tenant = Some(value("--tenant")?),
            "--principal" => principal = Some(value("--principal")?),
            "--scopes" => scopes = Some(value("--scopes")?),
            "--name" => name = Some(value("--name")?),
            "--issuer" => issuer = Some(value("--issuer")?),
            "--local" => {
                // The directory is optional: take the next word unless it is a flag, a
                // command, or a key id (`revoke --tenant T --local KEY_ID`).
                let dir = match inline {
                    Some(v) => Some(v),
                    None => it.next_if(|next| {
                        !next.starts_with('-')
                            && !COMMANDS.contains(&next.as_str())
                            && !apikeys::is_key_id(next)
                    }),
                };
                local = Some(dir.map_or_else(default_state_dir, PathBuf::from));
            }
            f if f.starts_with('-') => {
                return Err(usage(format!("unknown option {f:?} (try --help)")));
            }
            c if COMMANDS.contains(&c) && command.is_none() => command = Some(arg),
            _ => positional.push(arg),
        }
    }
    let Some(command) = command else {
        return Err(usage(
            "no command: create, list, revoke or jwt-usage-key (try --help)".into(),
        ));
    };
    let tenant = TenantId::new(&tenant.ok_or_else(|| usage(format!("{command} needs --tenant")))?)
        .map_err(|e| usage(format!("--tenant {e}")))?;
    let only = |allowed: &[(&str, bool)]| {
        allowed
            .iter()
            .find(|(_, given)| *given)
            .map_or(Ok(()), |(flag, _)| {
                Err(usage(format!("{command} takes no {flag}")))
            })
    };
    let command = match command.as_str() {
        "create" => {
            if let Some(extra) = positional.first() {
                return Err(usage(format!("create takes no argument {extra:?}")));
            }
            only(&[("--issuer", issuer.is_some())])?;
            let principal = principal_arg(&command, principal)?;
            let scopes = scopes.ok_or_else(|| usage("create needs --scopes".into()))?;
            let scopes =
                Scopes::parse_strict(&scopes).map_err(|e| usage(format!("--scopes: {e}")))?;
            if scopes.is_empty() {
                return Err(usage("--scopes names no scope".into()));
            }
            Command::Create {
                tenant,
                principal,
                scopes,
                name,
            }
        }
        "list" => {
            only(&[
                ("--principal", principal.is_some()),
                ("--scopes", scopes.is_some()),
                ("--name", name.is_some()),
                ("--issuer", issuer.is_some()),
            ])?;
            if let Some(extra) = positional.first() {
                return Err(usage(format!("list takes no argument {extra:?}")));
            }
            Command::List { tenant }
        }
        "jwt-usage-key" => {
            only(&[("--scopes", scopes.is_some()), ("--name", name.is_some())])?;
            if let Some(extra) = positional.first() {
                return Err(usage(format!("jwt-usage-key takes no argument {extra:?}")));
            }
            let issuer = issuer.ok_or_else(|| usage("jwt-usage-key needs --issuer".into()))?;
            Command::JwtUsageKey {
                issuer,
                tenant,
                principal: principal_arg(&command, principal)?,
            }
        }
        _ => {
            only(&[
                ("--principal", principal.is_some()),
                ("--scopes", scopes.is_some()),
                ("--name", name.is_some()),
                ("--issuer", issuer.is_some()),
            ])?;
            let [key_id] = &positional[..] else {
                return Err(usage("revoke needs exactly one KEY_ID".into()));
            };
            Command::Revoke {
                tenant,
                key_id: key_id.clone(),
            }
        }
    };
    if local.is_some() && (endpoint.is_some() || table.is_some()) {
        return Err(usage(
            "--local names its own endpoint and table: drop --endpoint and --table".into(),
        ));
    }
    Ok(Args {
        command,
        endpoint,
        table,
        local,
    })
}

fn principal_arg(command: &str, principal: Option<String>) -> Result<PrincipalId, Failure> {
    let principal =
        principal.ok_or_else(|| Failure::Usage(format!("{command} needs --principal")))?;
    PrincipalId::new(&principal).map_err(|e| Failure::Usage(format!("--principal {e}")))
}

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
                Failure::Failed(format!(
                    "cannot read {}: {e}. Is the local runner running (cargo run -p local-api)?",
                    file.display()
                ))
            })?;
            let url = url.trim().to_owned();
            if url.is_empty() {
                return Err(Failure::Failed(format!("{} is empty", file.display())));
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
    .map_err(|e| Failure::Failed(e.to_string()))
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
    let failed = |e: shared::error::ApiError| Failure::Failed(e.to_string());
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
        Command::Revoke { tenant, key_id } => {
            if !apikeys::revoke(&store, &tenant, &key_id)
                .await
                .map_err(failed)?
            {
                return Err(Failure::Failed(format!(
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
    let result = match parse_args(std::env::args().skip(1).collect()) {
        Ok(args) => run(args).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("keys: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("keys: {message}");
            ExitCode::from(1)
        }
    }
}
