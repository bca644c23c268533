//! `cargo run -p local-api [-- --port N] [--memory] [--state-dir DIR]`: the whole API on
//! localhost, on an embedded DynamoDB whose data persists under the state directory.

use std::path::PathBuf;
use std::sync::Arc;

use local_api::template::{Error, Template};
use local_api::{Server, Storage};

struct Args {
    port: u16,
    memory: bool,
    state_dir: PathBuf,
    template: PathBuf,
}

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn parse_args() -> Result<Args, Error> {
    let mut args = Args {
        port: 3000,
        memory: false,
        state_dir: repo_file(".local"),
        template: repo_file("template.yaml"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--port" => {
                args.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--memory" => args.memory = true,
            "--state-dir" => args.state_dir = PathBuf::from(value("--state-dir")?),
            "--template" => args.template = PathBuf::from(value("--template")?),
            "-h" | "--help" => {
                eprintln!(
                    "usage: local-api [--port N] [--memory] [--state-dir DIR] [--template FILE]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let args = parse_args()?;
    let template = Template::load(&args.template)?;

    let storage = if args.memory {
        Storage::Memory
    } else {
        Storage::File(args.state_dir.join("profiles.db"))
    };
    let (server, created) = Server::start(&template, &storage).await?;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let mut lines = vec![format!("Profiles API on {url}")];
    lines.push(if args.memory {
        "data: in memory (gone when this stops)".to_owned()
    } else {
        format!(
            "data: {} ({})",
            args.state_dir.join("profiles.db").display(),
            if created { "new" } else { "kept" }
        )
    });
    for r in &server.routes {
        lines.push(format!("  {:<7} {:<40} {}", r.method, r.resource, r.binary));
    }
    lines.push(format!(
        "try: curl -s -X POST {url}/profiles -H 'content-type: application/json' -d '{{\"name\":\"Acme Corp\"}}'"
    ));
    tracing::info!("\n{}", lines.join("\n"));

    let server = Arc::new(server);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stopping");
    };
    server.serve(listener, shutdown).await?;
    Ok(())
}
