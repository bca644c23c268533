//! Test support: a real DynamoDB-compatible engine per test, the table made from
//! `template.yaml`'s own definition, and real API Gateway events from `events/`.
//!
//! The engine is dynoxide embedded in the test process (one in-memory server per test).
//! Set `PROFILES_TEST_DYNAMODB_ENDPOINT` to run the same suite against another engine,
//! such as AWS's DynamoDB Local (`scripts/test-dynamodb-local.sh`); each test then gets a
//! table of its own there.
//!
//! A module per part, everything re-exported here: `engine` (the engine and its table),
//! `events` (API Gateway events), `handlers` (the handlers fed those events, and their
//! answers), `runner` (the local runner over HTTP), `iam` (AWS calls as IAM sees them),
//! `photos` (images and an embedded S3), `fault_proxy` and `openapi`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;

mod engine;
mod events;
pub mod fault_proxy;
mod handlers;
mod iam;
pub mod openapi;
mod photos;
mod runner;

pub use engine::{ENGINE_ENV, Engine, config_for, create_table_from_template};
pub use events::Event;
pub use handlers::{Api, OperationCounter, Reply, TestCaller, id_of};
pub use iam::{IamRecorder, table_arn};
pub use photos::{QuietS3, jpeg, png};
pub use runner::{Runner, binaries, client_with_key};
pub use serde_json::json;

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}
