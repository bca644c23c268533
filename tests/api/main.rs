//! The API's test suite in one binary (one link of the SDK, the runner and reqwest instead of
//! one per area), a module per area. Handler tests feed real API Gateway events to the
//! functions' handlers; `local_api` and the `runner_*` modules talk real HTTP to the local
//! runner; all on real engines. The authorizer's tests are their own binary
//! (`tests/authorizer/`): one of them installs a process-wide log subscriber to read every
//! line the process logs.

mod bulk;
mod caller;
mod capacity;
mod contacts;
mod cors;
mod docs;
mod events;
mod faults;
mod idempotency;
mod init_connection;
mod listing;
mod load;
mod local_api;
mod migrate;
mod openapi;
mod photos;
mod policies;
mod profile_updates;
mod profile_validation;
mod profiles;
mod runner_auth;
mod runner_faults;
mod runner_state;
mod runner_template;
mod search;
mod sharding;
mod store;
mod usage_keys;
