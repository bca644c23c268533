//! The local runner's state directory (`.local/` in the repository unless `--state-dir`
//! says otherwise): the files `cargo run -p local-api` writes there and `keys --local` reads,
//! and the table the runner makes on its embedded engine. One home for each name, so the
//! writer and the reader cannot drift apart.

use std::path::Path;

/// The state directory, relative to the repository's root.
pub const DIR: &str = ".local";
/// The development API key (mode 0600), printed at every start.
pub const DEV_API_KEY: &str = "dev-api-key";
/// The embedded DynamoDB's URL while the runner runs.
pub const ENGINE_ENDPOINT: &str = "engine-endpoint";
/// The embedded API Gateway's management URL while the runner runs.
pub const APIGATEWAY_ENDPOINT: &str = "apigateway-endpoint";
/// The usage plan new API keys join (the template's `UsagePlanId` output).
pub const USAGE_PLAN_ID: &str = "usage-plan-id";
/// The embedded API Gateway's API keys and usage plan keys.
pub const APIGATEWAY_REGISTRY: &str = "apigateway.json";
/// The embedded DynamoDB's data (SQLite).
pub const DATA_FILE: &str = "profiles.db";
/// The embedded S3's objects, a folder per bucket.
pub const S3_DIR: &str = "s3";
/// Every event put on the embedded EventBridge's buses, a JSON line each, to `tail -f`.
pub const EVENTS_LOG: &str = "events.jsonl";
/// What the embedded EventBridge gave up delivering (a target's dead-letter queue).
pub const BUS_DEAD_LETTERS: &str = "bus-dead-letters.jsonl";
/// What a stream's event source mapping gave up on (its on-failure destination).
pub const STREAM_FAILURES: &str = "stream-failures.jsonl";
/// Where the delivery of the table's stream to a function got to (the function's logical id
/// follows).
pub const STREAM_POSITION_PREFIX: &str = "stream-position-";
/// The table the runner makes on its embedded engine.
pub const TABLE: &str = "profiles";

/// One of the runner's files in `dir`, trimmed; `None` when it is missing or empty.
pub fn read(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}
