//! The `keys` command line (`cargo run -p keys -- --help`), in the library so that a test can
//! parse every command line the docs show with clap's own parser.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use shared::apikeys;
use shared::auth::Scopes;
use shared::ids::{PrincipalId, TenantId};

/// The local runner's state directory (`cargo run -p local-api`), where it writes the files
/// `shared::localstate` names.
pub const DEFAULT_STATE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.local");
pub const AFTER_HELP: &str = "\
scopes: profiles.create profiles.read profiles.lists profiles.update profiles.delete

where (one of):
  --local [DIR]    the local runner: its engine, table `profiles`, and its embedded API
                   Gateway's usage plan (from the files it writes in DIR, default .local/)
  --deployed       AWS: the table --table NAME (or env TABLE_NAME; default profiles), and the
                   usage plan --usage-plan ID (or env USAGE_PLAN_ID): the stack's outputs
                   TableName and UsagePlanId. Credentials and region from the environment
                   (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION)
  --endpoint URL   a DynamoDB-compatible engine (or env DYNAMODB_ENDPOINT) and --table; no
                   usage plan unless --apigateway-endpoint URL and --usage-plan ID name one

exit status: 0 done, 1 failed (engine, AWS, no such key), 2 bad arguments";

/// Make, list and revoke the Profiles API's API keys, on a local engine or on AWS.
#[derive(Parser)]
#[command(
    name = "keys",
    about,
    help_template = "{about}\n\nusage: {usage}\n\n{all-args}\n{after-help}",
    after_help = AFTER_HELP
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    /// The local runner (`cargo run -p local-api`): its engine from DIR/engine-endpoint (DIR
    /// defaults to .local/ in the repo), table `profiles`, its usage plan from
    /// DIR/apigateway-endpoint and DIR/usage-plan-id
    #[arg(long, global = true, value_name = "DIR", num_args = 0..=1, require_equals = true,
        default_missing_value = DEFAULT_STATE_DIR,
        conflicts_with_all = ["endpoint", "table", "deployed", "apigateway_endpoint", "usage_plan"])]
    pub local: Option<PathBuf>,
    /// The deployed stack on AWS (credentials and region from the environment)
    #[arg(long, global = true, conflicts_with_all = ["endpoint", "apigateway_endpoint"])]
    pub deployed: bool,
    /// A DynamoDB-compatible engine at URL (or env DYNAMODB_ENDPOINT)
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,
    /// The table (or env TABLE_NAME; default profiles)
    #[arg(long, global = true, value_name = "NAME")]
    pub table: Option<String>,
    /// The usage plan API keys join (or env USAGE_PLAN_ID): the stack's UsagePlanId output
    #[arg(long, global = true, value_name = "ID")]
    pub usage_plan: Option<String>,
    /// An API Gateway endpoint at URL holding --usage-plan (with --endpoint)
    #[arg(long, global = true, value_name = "URL", requires = "usage_plan")]
    pub apigateway_endpoint: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Make a key for a principal in a tenant, and put its usage key in the usage plan. The
    /// key is the first line of stdout, shown this once (only its hash is stored)
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
    /// Revoke a key: the authorizer refuses it from now on, and its usage key leaves the plan
    Revoke {
        #[arg(long, value_parser = tenant)]
        tenant: TenantId,
        key_id: String,
    },
    /// Put a key's usage key in the usage plan (again): finishes a `create` whose
    /// registration failed, or registers keys made before `create` did (idempotent)
    Register {
        #[arg(long, value_parser = tenant)]
        tenant: TenantId,
        key_id: String,
    },
    /// A tenant's list shards: shows how many it has; with --count, moves it to that many,
    /// online (a tenant past ~1,000 profile writes a second needs more than one; each list
    /// page reads every shard). Resumes a move that was interrupted
    Shards {
        #[arg(long, value_parser = tenant)]
        tenant: TenantId,
        /// The shard count to move to (1 to 64)
        #[arg(long, value_name = "N",
            value_parser = clap::value_parser!(u32).range(1..=i64::from(shared::store::MAX_SHARDS)))]
        count: Option<u32>,
        /// Seconds between marking the move and rewriting: every function instance must have
        /// read the new layout by then (they keep it a minute)
        #[arg(long, value_name = "SECONDS", default_value_t = 65)]
        settle: u64,
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
}

fn positive(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok(n),
        _ => Err(format!("{raw:?} is not a positive number")),
    }
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

/// A command line (program name first), with `--local DIR` (the directory as the next word) spelled
/// `--local=DIR` for clap, which takes `--local`'s optional value only after `=` so that a
/// bare `--local` never swallows the command or key id after it.
pub fn spelled_for_clap(mut args: Vec<String>) -> Vec<String> {
    let commands = ["create", "list", "revoke", "register", "migrate", "shards"];
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
