//! The endpoints: one `async fn(&App, &Request) -> Result<Reply, ApiError>` each, the whole of
//! what a function does (`profiles`, `contacts`, `photos`, `jobs`); `crate::lambda::respond` turns its outcome
//! into the HTTP answer. This file holds what they share: path ids, and the one loop of
//! read → check `If-Match` → compute → conditional write.

mod contacts;
mod jobs;
mod photos;
mod profiles;

use lambda_http::{Body, Request, Response};
use serde_json::{Map, Value};

pub use contacts::{create_contact, delete_contact, get_contact, list_contacts, update_contact};
pub use jobs::{bulk_jobs, create_export, create_import, get_job};
pub use photos::create_photo_upload;
pub use profiles::{
    create_profile, delete_profile, get_primary_profile, get_profile, list_profiles,
    replace_profile, update_profile,
};

use crate::caller::Caller;
use crate::error::ApiError;
use crate::http::{self, Reply, WriteConditions};
use crate::lambda::respond;
use shared::app::App;
use shared::config::ConfigError;
use shared::idempotency::{Claim, UsedKey};
use shared::ids::ProfileId;
use shared::model::RenderError;
use shared::retry::{WRITE_ATTEMPTS, retrying};
use shared::store::StoreError;
use shared::validate::Invalid;

/// The handler of the function whose binary is `binary`, called in-process and answered as
/// the function answers: what that function's `main.rs` wires, for the test suite and the
/// bench. `None` for an unknown name. (The functions never call this, so release builds drop
/// it.)
pub async fn by_binary(binary: &str, app: &App, req: Request) -> Option<Response<Body>> {
    let req = &req;
    Some(match binary {
        "create-profile" => respond(req, create_profile(app, req)).await,
        "get-profile" => respond(req, get_profile(app, req)).await,
        "get-primary-profile" => respond(req, get_primary_profile(app, req)).await,
        "list-profiles" => respond(req, list_profiles(app, req)).await,
        "update-profile" => respond(req, update_profile(app, req)).await,
        "replace-profile" => respond(req, replace_profile(app, req)).await,
        "delete-profile" => respond(req, delete_profile(app, req)).await,
        "list-contacts" => respond(req, list_contacts(app, req)).await,
        "create-contact" => respond(req, create_contact(app, req)).await,
        "get-contact" => respond(req, get_contact(app, req)).await,
        "update-contact" => respond(req, update_contact(app, req)).await,
        "delete-contact" => respond(req, delete_contact(app, req)).await,
        "create-photo-upload" => respond(req, create_photo_upload(app, req)).await,
        "bulk-jobs" => respond(req, bulk_jobs(app, req)).await,
        _ => return None,
    })
}

/// The `{profile_id}` of the path.
fn profile_id(req: &Request) -> Result<ProfileId, ApiError> {
    // An id that is not a UUID names nothing: the same 404 as an unknown one.
    http::path_param(req, "profile_id")
        .and_then(ProfileId::parse)
        .ok_or(ApiError::NotFound("profile"))
}

/// The claim of an idempotent POST, when the request sends `Idempotency-Key`: the key of
/// this caller (tenant and principal) for `operation`, fingerprinted by the method, `path`
/// (one spelling per route: an alias is the route it stands for) and the parsed `body`.
fn idempotency_claim(
    app: &App,
    req: &Request,
    caller: &Caller,
    operation: &str,
    path: &str,
    body: &Map<String, Value>,
) -> Result<Option<Claim>, ApiError> {
    let Some(key) = http::idempotency_key(req)? else {
        return Ok(None);
    };
    Ok(Some(Claim::new(
        &key,
        &caller.tenant,
        &caller.principal,
        operation,
        req.method().as_str(),
        path,
        &Value::Object(body.clone()),
        app.clock.now(),
    )))
}

/// The answer to an idempotent POST whose key was used: the first answer again when this is
/// the same request, a 422 when it is another.
fn replay(claim: &Claim, used: UsedKey) -> Result<Reply, ApiError> {
    if used.fingerprint != claim.fingerprint {
        return Err(ApiError::IdempotencyKeyReused);
    }
    Reply::replay(used.answer)
}

/// Why one attempt of a conditional write did not finish.
enum Attempt {
    /// A concurrent write won (the store's `VersionChanged`): read again and recompute.
    Lost,
    /// Anything else: the request's answer.
    Failed(ApiError),
}

impl From<StoreError> for Attempt {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::VersionChanged => Self::Lost,
            other => Self::Failed(other.into()),
        }
    }
}

/// Every other error of the core fails the attempt with its answer.
macro_rules! fails_the_attempt {
    ($($error:ty),*) => {$(
        impl From<$error> for Attempt {
            fn from(err: $error) -> Self {
                Self::Failed(err.into())
            }
        }
    )*};
}

fails_the_attempt!(ApiError, Invalid, RenderError, ConfigError);

/// The one loop of a write to an existing item: `read` the current state (its errors, a 404
/// among them, are the answer), check it against the request's `If-Match` and
/// `If-None-Match` (412 when they do not hold), then `write` what is computed from it,
/// conditional on the version read. A write that loses a race to a concurrent one is
/// recomputed on the new state, at most [`WRITE_ATTEMPTS`] times (the core's one retry
/// loop; then a 503 with `Retry-After`: a collision that may pass, not the caller's fault);
/// with `If-Match` naming a version there is nothing to recompute against, so a lost race is
/// a 412.
///
/// The steps are closures returning futures (not async closures), so each future borrows only
/// what the handler lent it and the compiler can prove the whole answer `Send`.
async fn conditional_write<C, T, R, W>(
    conditions: &WriteConditions,
    read: impl Fn() -> R,
    version: impl Fn(&C) -> u64,
    write: impl Fn(C) -> W,
) -> Result<T, ApiError>
where
    R: Future<Output = Result<C, ApiError>>,
    W: Future<Output = Result<T, Attempt>>,
{
    let holds_to_version = conditions.holds_to_a_version();
    let (read, version, write) = (&read, &version, &write);
    let attempt = || async move {
        let current = read().await?;
        conditions.check(version(&current))?;
        write(current).await
    };
    let lost = |e: &Attempt| matches!(e, Attempt::Lost) && !holds_to_version;
    match retrying(WRITE_ATTEMPTS, lost, attempt).await {
        Ok(done) => Ok(done),
        Err(Attempt::Lost) if holds_to_version => Err(ApiError::PreconditionFailed),
        Err(Attempt::Lost) => Err(kept_changing("the item")),
        Err(Attempt::Failed(e)) => Err(e),
    }
}

/// A write that lost its race [`WRITE_ATTEMPTS`] times: a collision that may pass, so a 503
/// with `Retry-After`, not the caller's fault.
fn kept_changing(what: &str) -> ApiError {
    StoreError::unavailable(format!(
        "{what} kept changing: {WRITE_ATTEMPTS} writes lost their race"
    ))
    .into()
}
