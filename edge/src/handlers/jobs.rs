//! Bulk jobs (docs/bulk.md): `POST /imports` makes an import and grants the presigned upload
//! of its file (the upload starts it), `POST /exports` makes an export and starts it; `GET
//! /imports/{job_id}` and `GET /exports/{job_id}` show one with its counts and, once there is
//! one, a short-lived URL of its result. The work is run-jobs' (`shared::bulk`).

use std::time::SystemTime;

use lambda_http::Request;
use lambda_http::http::{StatusCode, header};
use serde_json::{Map, Value, json};
use shared::app::App;
use shared::auth::Scope;
use shared::bulk::{DOWNLOAD_TTL, JSONL, Keys};
use shared::ids::JobId;
use shared::model::Timestamp;
use shared::model::job::{Job, JobKind, Mode, Status};
use shared::photo::presign::{self, Object, Target};
use shared::store::{Idempotent, StoreError};

use super::{idempotency_claim, replay};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::http::{self, Reply};

/// The bulk-jobs function's four routes: `POST /imports`, `POST /exports`, and `GET` of
/// either's `{job_id}`. One function serves them (one binary fewer to build and deploy;
/// each route still checks its own scope).
pub async fn bulk_jobs(app: &App, req: &Request) -> Result<Reply, ApiError> {
    match (req.method().as_str(), http::resource(req)) {
        ("POST", Some("/imports")) => create_import(app, req).await,
        ("POST", Some("/exports")) => create_export(app, req).await,
        ("GET", _) => get_job(app, req).await,
        _ => Err(ApiError::NotFound("route")),
    }
}

/// `POST /imports` (scopes create and update): a queued import in the body's `mode`
/// (`create` unless given), 201 with the job and `upload`: the presigned S3 POST of its
/// file (`url`, `fields`, `expires_at`, `max_bytes`).
pub async fn create_import(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Create)?;
    let caller = Caller::with_scope(req, Scope::Update).map(|_| caller)?;
    let body = optional_object(req)?;
    let mode = import_mode(&body)?;
    let claim = idempotency_claim(app, req, &caller, "create-import", "/imports", &body)?;
    let bucket = app.config.jobs_bucket()?;
    let job = Job::import(mode, caller.principal.clone());
    let keys = Keys {
        tenant: &caller.tenant,
        job: &job.id,
    };
    let file = keys.file();
    let target = Target {
        bucket,
        region: &app.config.region,
        endpoint: app.config.s3_endpoint.as_deref(),
    };
    let object = Object {
        key: &file,
        content_type: JSONL,
        max_bytes: app.config.import_max_bytes,
    };
    let form = presign::form(&target, &app.config.credentials, &object, SystemTime::now());
    let base = http::base_path(req);
    let answer = |job: &Job| {
        let mut body = job.to_json(None);
        body["upload"] = json!({
            "url": form.upload_url,
            "fields": form.fields,
            "expires_at": Timestamp::from(form.expires_at).to_string(),
            "max_bytes": object.max_bytes,
        });
        Reply::json(StatusCode::CREATED, body)
            .header(header::LOCATION, format!("{base}/imports/{}", job.id))
    };
    let stored = |job: &Job| Ok(answer(job).stored());
    let idem = claim.as_ref().map(|claim| Idempotent {
        claim,
        answer: &stored,
    });
    match (
        app.store.insert_job(&caller.tenant, &job, idem).await,
        &claim,
    ) {
        (Ok(()), _) => Ok(answer(&job)),
        (Err(StoreError::KeyUsed(used)), Some(claim)) => replay(claim, used),
        (Err(e), _) => Err(e.into()),
    }
}

/// `POST /exports` (scopes lists and read: the file holds every profile with its
/// contacts, which a list does not show): an export of every profile of the tenant, started
/// at once; 201 with the job.
pub async fn create_export(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Lists)?;
    let caller = Caller::with_scope(req, Scope::Read).map(|_| caller)?;
    let body = optional_object(req)?;
    if let Some(other) = body.keys().next() {
        return Err(ApiError::bad_field(
            other.as_str(),
            "unknown field: an export takes no options",
        ));
    }
    let claim = idempotency_claim(app, req, &caller, "create-export", "/exports", &body)?;
    let bucket = app.jobs_bucket()?;
    let job = Job::export(caller.principal.clone());
    let base = http::base_path(req);
    let answer = |job: &Job| {
        Reply::json(StatusCode::CREATED, job.to_json(None))
            .header(header::LOCATION, format!("{base}/exports/{}", job.id))
    };
    let stored = |job: &Job| Ok(answer(job).stored());
    let idem = claim.as_ref().map(|claim| Idempotent {
        claim,
        answer: &stored,
    });
    let tenant = &caller.tenant;
    let wake = |id: JobId| async move {
        let keys = Keys { tenant, job: &id };
        let key = keys.wake();
        bucket
            .put(&key, Vec::new(), "application/octet-stream", "no-store")
            .await
    };
    match (
        app.store.insert_job(&caller.tenant, &job, idem).await,
        &claim,
    ) {
        (Ok(()), _) => {}
        (Err(StoreError::KeyUsed(used)), Some(claim)) => {
            // The same request again, perhaps because its wake object was never written:
            // an export still queued is woken again (a second worker on it stops at its
            // start, which is conditional on the job's version).
            let first: Option<JobId> = serde_json::from_str::<Value>(&used.answer.body)
                .ok()
                .and_then(|b| b["id"].as_str().and_then(JobId::parse));
            if used.fingerprint == claim.fingerprint
                && let Some(id) = first
                && let Some(queued) = app.store.job(&caller.tenant, &id).await?
                && queued.status == Status::Queued
            {
                wake(id).await?;
            }
            return replay(claim, used);
        }
        (Err(e), _) => return Err(e.into()),
    }
    // Its worker starts on this object's event. Should this fail, the job stays queued,
    // and the caller's retry with its Idempotency-Key wakes it (above).
    wake(job.id).await?;
    Ok(answer(&job))
}

/// `GET /imports/{job_id}` (scope read) and `GET /exports/{job_id}` (scopes lists and
/// read, as its `POST`): the job,
/// with a download URL of its result once there is one. Another tenant's job, or one of the
/// other kind, is a 404.
pub async fn get_job(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let export = http::resource(req).is_some_and(|r| r.starts_with("/exports"));
    let (scope, what) = if export {
        (Scope::Lists, "export")
    } else {
        (Scope::Read, "import")
    };
    let caller = Caller::with_scope(req, scope)?;
    let caller = Caller::with_scope(req, Scope::Read).map(|_| caller)?;
    let id = http::path_param(req, "job_id")
        .and_then(JobId::parse)
        .ok_or(ApiError::NotFound(what))?;
    let job = app
        .store
        .job(&caller.tenant, &id)
        .await?
        .filter(|job| matches!(job.kind, JobKind::Export { .. }) == export)
        .ok_or(ApiError::NotFound(what))?;
    let download = match (&job.result_key, job.status) {
        (Some(key), Status::Completed | Status::Failed) => {
            let url = app.jobs_bucket()?.presigned_get(key, DOWNLOAD_TTL).await?;
            let expires = time::OffsetDateTime::now_utc() + DOWNLOAD_TTL;
            Some((url, Timestamp::from(expires)))
        }
        _ => None,
    };
    let body = job.to_json(download.as_ref().map(|(url, at)| (url.as_str(), *at)));
    Ok(Reply::json(StatusCode::OK, body))
}

/// A POST body that may be left out: none, or a JSON object.
fn optional_object(req: &Request) -> Result<Map<String, Value>, ApiError> {
    let empty = match req.body() {
        lambda_http::Body::Empty => true,
        lambda_http::Body::Text(t) => t.trim().is_empty(),
        lambda_http::Body::Binary(b) => b.iter().all(u8::is_ascii_whitespace),
        _ => true,
    };
    if empty {
        return Ok(Map::new());
    }
    http::json_object(req, false)
}

/// An import's options: `mode`, `create` (the default) or `upsert`; nothing else.
fn import_mode(body: &Map<String, Value>) -> Result<Mode, ApiError> {
    if let Some(other) = body.keys().find(|k| *k != "mode") {
        return Err(ApiError::bad_field(
            other.as_str(),
            "unknown field: an import takes only mode",
        ));
    }
    match body.get("mode") {
        None => Ok(Mode::Create),
        Some(v) => v
            .as_str()
            .and_then(Mode::parse)
            .ok_or_else(|| ApiError::bad_field("mode", "must be create or upsert")),
    }
}
