//! A function's log lines: set up once, at the start of `main`, before the configuration (a
//! configuration error is itself a log line).

/// Sets up the process's log lines as lambda_http's `init_default_subscriber` does (Lambda's
/// advanced logging controls: `AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines,
/// `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO), with a level filter instead of its
/// `EnvFilter`: per-target directives (`RUST_LOG=shared=debug`) are not read, and a function
/// no longer links the regex engine that parses them (docs/performance.md has what that
/// saves). A level that does not parse is INFO, as there.
pub fn init() {
    use tracing_subscriber::filter::LevelFilter;

    use crate::config::env;
    let level = std::env::var(env::AWS_LAMBDA_LOG_LEVEL)
        .or_else(|_| std::env::var(env::RUST_LOG))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let json =
        std::env::var(env::AWS_LAMBDA_LOG_FORMAT).is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let lines = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_max_level(level);
    if json {
        lines.json().init();
    } else {
        lines.init();
    }
}
