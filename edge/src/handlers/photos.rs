//! Photos: `POST /profiles/{profile_id}/photo` grants a presigned upload (process-photo, which
//! takes each upload S3 reports, is the core's `shared::photo::process`).

use std::time::SystemTime;

use lambda_http::Request;
use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use shared::app::App;
use shared::auth::Scope;
use shared::model::Timestamp;
use shared::photo::presign::{self, Target};
use shared::photo::{self, ImageType, Upload};
use shared::store::{Idempotent, StoreError};

use super::{idempotency_claim, profile_id, replay};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::http::{self, Reply};

/// `POST /profiles/{profile_id}/photo`: a presigned S3 POST for one photo of the media type
/// the body states (`{"content_type": "image/jpeg" | "image/png"}`), 201 with `upload_url`,
/// `fields` and `expires_at`. The photo appears as `photo_url` once process-photo accepts it.
pub async fn create_photo_upload(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Update)?;
    let id = profile_id(req)?;
    let body = http::json_object(req, false)?;
    let kind = upload_kind(&body)?;
    let path = format!("/profiles/{id}/photo");
    let claim = idempotency_claim(app, req, &caller, "create-photo-upload", &path, &body)?;
    let bucket = app.config.photo_bucket()?;
    let tenant = &caller.tenant;
    if app.store.get(tenant, &id).await?.is_none() {
        return Err(ApiError::NotFound("profile"));
    }
    let upload = Upload::new(tenant.clone(), id);
    let target = Target {
        bucket,
        region: &app.config.region,
        endpoint: app.config.s3_endpoint.as_deref(),
    };
    let form = presign::post_form(
        &target,
        &app.config.credentials,
        &upload.key(),
        kind,
        SystemTime::now(),
    );
    let reply = Reply::json(
        StatusCode::CREATED,
        json!({
            "upload_url": form.upload_url,
            "fields": form.fields,
            "expires_at": Timestamp::from(form.expires_at).to_string(),
            "max_bytes": photo::MAX_BYTES,
        }),
    );
    let Some(claim) = &claim else {
        return Ok(reply);
    };
    // With Idempotency-Key the grant is recorded, and a retry gets this same form.
    let answer = |r: &Reply| Ok(r.stored());
    let idem = Idempotent {
        claim,
        answer: &answer,
    };
    match app.store.remember(tenant, idem, &reply).await {
        Ok(()) => Ok(reply),
        Err(StoreError::KeyUsed(used)) => replay(claim, used),
        Err(e) => Err(e.into()),
    }
}

/// The body of a photo upload request: exactly `content_type`, `image/jpeg` or `image/png`.
fn upload_kind(body: &serde_json::Map<String, Value>) -> Result<ImageType, ApiError> {
    if let Some(other) = body.keys().find(|k| *k != "content_type") {
        return Err(ApiError::bad_field(
            other.as_str(),
            "unknown field: the body has only content_type",
        ));
    }
    match body.get("content_type") {
        None => Err(ApiError::bad_field(
            "content_type",
            "required: image/jpeg or image/png",
        )),
        Some(v) => v
            .as_str()
            .and_then(ImageType::parse)
            .ok_or_else(|| ApiError::bad_field("content_type", "must be image/jpeg or image/png")),
    }
}
