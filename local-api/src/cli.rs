//! The runner's command line (`cargo run -p local-api -- --help`), in the library so that a
//! test can parse every command line the docs show with clap's own parser.

use std::path::PathBuf;

use clap::Parser;

/// The Profiles API on localhost: the template's routes, the functions' own binaries under
/// the Lambda Runtime API, the authorizer, and an embedded DynamoDB.
#[derive(Parser)]
#[command(name = "local-api", about)]
pub struct Cli {
    /// Listen on 127.0.0.1:N (0 picks a free port)
    #[arg(long, value_name = "N", default_value_t = 3000)]
    pub port: u16,
    /// The embedded S3 (photo uploads, and photo_url) on 127.0.0.1:N (default: the port
    /// after --port, or a free one with --port 0). A fixed port keeps kept photo URLs working
    /// across restarts
    #[arg(long, value_name = "N")]
    pub s3_port: Option<u16>,
    /// The embedded API Gateway's management API (API keys, usage plan keys: what `keys
    /// --local` calls) on 127.0.0.1:N (default: two after --port, or a free one with --port 0)
    #[arg(long, value_name = "N")]
    pub apigateway_port: Option<u16>,
    /// Keep the data in DIR/profiles.db (default .local/ in the repo), the development API
    /// key in DIR/dev-api-key and the engine's URL in DIR/engine-endpoint (for `cargo run -p
    /// keys -- --local`)
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Serve the API at the root of the host, as a custom domain with an empty base path
    /// does, instead of under /<stage> as API Gateway's default endpoint does
    #[arg(long)]
    pub root: bool,
    /// Keep the data in memory: gone when this stops (with a new development API key at
    /// every start)
    #[arg(long, conflicts_with = "dynamodb_endpoint")]
    pub memory: bool,
    /// Use another engine (DynamoDB Local, or AWS with credentials from the environment)
    /// instead of the embedded one
    #[arg(long, value_name = "URL")]
    pub dynamodb_endpoint: Option<String>,
    /// The table on that engine
    #[arg(long, value_name = "NAME", default_value = crate::TABLE)]
    pub table: String,
    /// Instances per function at most
    #[arg(long, value_name = "N", default_value_t = 4,
        value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// The SAM template (default template.yaml in the repo)
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// Build and run the functions with the release profile
    #[arg(long)]
    pub release: bool,
    /// Run binaries already built in DIR (e.g. target/lambda) instead of building them
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Template parameter values over their defaults, as with sam (e.g. JwtHs256Secret=...
    /// JwtIssuer=... JwtAudience=...); the form ParameterKey=K,ParameterValue=V is accepted too
    #[arg(long, value_name = "K=V", num_args = 1.., value_parser = parameter_override)]
    pub parameter_overrides: Vec<(String, String)>,
}

/// One `Key=Value` (or `ParameterKey=Key,ParameterValue=Value`) of `--parameter-overrides`.
pub fn parameter_override(raw: &str) -> Result<(String, String), String> {
    if let Some(rest) = raw.strip_prefix("ParameterKey=")
        && let Some((key, value)) = rest.split_once(",ParameterValue=")
    {
        return Ok((key.to_owned(), value.to_owned()));
    }
    match raw.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{raw:?} is not Key=Value")),
    }
}
