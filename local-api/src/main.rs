//! `cargo run -p local-api [-- options]`: the whole API on localhost. Builds the functions the
//! template names (the authorizer included), runs each as its own process under the Lambda
//! Runtime API, on an embedded DynamoDB whose data persists under the state directory, and
//! prints a development API key. `--help` lists the options.

use shared::config::env;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Parser;
use local_api::cli::Cli;
use local_api::template::{Error, Template};
use local_api::{Options, Server, Storage, binaries};

struct Args {
    root: bool,
    port: u16,
    s3_port: u16,
    apigateway_port: u16,
    storage: Storage,
    state_dir: PathBuf,
    parameter_overrides: Vec<(String, String)>,
    concurrency: usize,
    template: PathBuf,
    release: bool,
    bin_dir: Option<PathBuf>,
}

fn repo_file(rel: &str) -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // local-api/ is a directory of the repository, so it has a parent.
    crate_dir.parent().unwrap_or(crate_dir).join(rel)
}

/// The command line (bad arguments: clap prints why, with a suggestion, and exits 2).
fn parse_args() -> Args {
    let cli = Cli::parse();
    let state_dir = cli
        .state_dir
        .unwrap_or_else(|| repo_file(shared::localstate::DIR));
    let storage = match (cli.dynamodb_endpoint, cli.memory) {
        (Some(url), _) => Storage::Endpoint {
            url,
            table: cli.table,
        },
        (None, true) => Storage::Memory,
        (None, false) => Storage::File(state_dir.join(shared::localstate::DATA_FILE)),
    };
    Args {
        root: cli.root,
        port: cli.port,
        s3_port: cli.s3_port.unwrap_or(if cli.port == 0 {
            0
        } else {
            cli.port.saturating_add(1)
        }),
        apigateway_port: cli.apigateway_port.unwrap_or(if cli.port == 0 {
            0
        } else {
            cli.port.saturating_add(2)
        }),
        storage,
        state_dir,
        parameter_overrides: cli.parameter_overrides,
        concurrency: usize::from(cli.concurrency),
        template: cli.template.unwrap_or_else(|| repo_file("template.yaml")),
        release: cli.release,
        bin_dir: cli.bin_dir,
    }
}

fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,aws_config=warn,aws_smithy_runtime=warn".into()),
        )
        .with_target(false)
        .init();
    let args = parse_args();
    let template =
        Template::load(&args.template)?.with_parameter_overrides(&args.parameter_overrides)?;
    let names = template.served_binaries()?;
    // The port first: taken, it fails now rather than after the build and the engine.
    let listener = std::net::TcpListener::bind(("127.0.0.1", args.port))
        .map_err(|e| format!("127.0.0.1:{}: {e}", args.port))?;
    listener.set_nonblocking(true)?;

    // Build before the runtime starts: cargo runs in the foreground, its progress on stderr.
    let binaries = match &args.bin_dir {
        Some(dir) => binaries::in_dir(dir, &names)?,
        None => {
            tracing::info!("building the functions: {}", names.join(", "));
            // `-p local-api` as well: the same feature set as `cargo run -p local-api`, so
            // the shared dependencies are built once.
            let mut selection = vec!["-p", "local-api"];
            for n in &names {
                selection.extend(["-p", n.as_str()]);
            }
            let workspace = args
                .template
                .parent()
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_file(""));
            binaries::build(&workspace, &selection, args.release)?
        }
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args, template, binaries, listener))
}

async fn run(
    args: Args,
    template: Template,
    binaries: binaries::Binaries,
    listener: std::net::TcpListener,
) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let region = std::env::var(env::AWS_REGION).unwrap_or_else(|_| "us-east-1".into());
    let storage = args.storage.clone();
    let server = Server::start(
        &template,
        Options {
            storage: args.storage.clone(),
            binaries,
            concurrency: args.concurrency,
            region,
            parameter_overrides: args.parameter_overrides.clone(),
            state_dir: Some(args.state_dir.clone()),
            log: None,
            s3_port: args.s3_port,
            apigateway_port: args.apigateway_port,
            mount: if args.root {
                local_api::Mount::Root
            } else {
                local_api::Mount::Stage
            },
        },
    )
    .await?;

    let url = server.api_url(&format!("http://{}", listener.local_addr()?));
    let lines = banner(&server, &url, &storage, &args);
    tracing::info!("\n{}", lines.join("\n"));

    let server = Arc::new(server);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stopping: answering requests in flight, then the functions and the engine");
    };
    server.clone().serve(listener, shutdown).await?;
    server.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// What the runner says at start: where the API is, where the data, S3, the engine and the
/// API Gateway are, every route, and the development key with a first curl line.
fn banner(server: &Server, url: &str, storage: &Storage, args: &Args) -> Vec<String> {
    let mut lines = vec![format!("Profiles API on {url}")];
    let state = if server.engine.created_table {
        "new"
    } else {
        "kept"
    };
    lines.push(match storage {
        Storage::Memory => "data: in memory (gone when this stops)".to_owned(),
        Storage::File(f) => format!("data: {} ({state})", f.display()),
        Storage::Endpoint { url, table } => format!("data: table {table} at {url} ({state})"),
    });
    lines.push(format!(
        "S3: {} (objects in {})",
        server.s3.endpoint,
        server.s3.root.display()
    ));
    if let Some(file) = &server.engine.endpoint_file {
        lines.push(format!(
            "engine: {} (in {}, for `cargo run -p keys -- --local ...`)",
            server.engine.endpoint,
            file.display()
        ));
    }
    lines.push(format!(
        "API Gateway: {} (API keys and usage plans; a usage key outside plan {} is refused with 403)",
        server.gateway.endpoint,
        server.gateway.usage_plan.as_deref().unwrap_or("-")
    ));
    if let Some(bus) = &server.bus {
        let events = args.state_dir.join(shared::localstate::EVENTS_LOG);
        lines.push(format!(
            "EventBridge: {} (the table's stream → its function → the bus; every event in {})",
            bus.endpoint,
            events.display()
        ));
        for delivery in &bus.deliveries {
            lines.push(format!("  {delivery}"));
        }
    }
    lines.push(format!(
        "functions: their own binaries under the Lambda Runtime API, at most {} instances each \
         (fewer where a function's reserved concurrency is lower)",
        args.concurrency
    ));
    for r in &server.routes {
        let auth = match (&r.authorizer, r.api_key_required) {
            (Some(a), true) => format!("{a}, usage key"),
            (Some(a), false) => a.clone(),
            (None, true) => "usage key".into(),
            (None, false) => "open".into(),
        };
        lines.push(format!(
            "  {:<7} {:<45} {:<20} {auth}",
            r.method, r.resource, r.binary
        ));
    }
    let key = server.dev_api_key.expose();
    lines.push(format!("API key (all scopes, tenant default): {key}"));
    let kept = args.state_dir.join(shared::localstate::DEV_API_KEY);
    let set_key = if matches!(storage, Storage::Memory) {
        format!("KEY={key}")
    } else {
        format!("KEY=$(cat {})", kept.display())
    };
    lines.push(
        "  send it as -H \"Authorization: Bearer $KEY\" or -H \"x-api-key: $KEY\"; more keys: \
         cargo run -p keys -- --local create --tenant T --principal P --scopes S1,S2"
            .to_owned(),
    );
    lines.push(format!(
        "try: {set_key}; curl -s -X POST {url}/profiles -H \"Authorization: Bearer $KEY\" -H 'content-type: application/json' -d '{{\"name\":\"Acme Corp\"}}'"
    ));
    lines.push("Ctrl-C stops it.".to_owned());
    lines
}
