//! Photos: `POST /profiles/{profile_id}/photo` grants a presigned upload; process-photo takes
//! each upload S3 reports, checks its bytes and makes it the profile's photo, or deletes it.

use std::time::SystemTime;

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use lambda_http::Request;
use serde_json::{Value, json};

use super::{conditional_write, idempotency_claim, profile_id, replay};
use crate::app::App;
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::http::{self, Reply, WriteConditions};
use crate::model::{Photo, Profile, Timestamp};
use crate::photo::presign::{self, Target};
use crate::photo::{self, Kind, Refused, Upload};
use crate::store::{Idempotent, PrimaryMark, StoreError, StoredProfile};

/// How clients and the photo distribution may cache a photo: for a year, since a photo's
/// object never changes (a new photo gets a new key).
pub const PHOTO_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

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
        201,
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
fn upload_kind(body: &serde_json::Map<String, Value>) -> Result<Kind, ApiError> {
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
            .and_then(Kind::parse)
            .ok_or_else(|| ApiError::bad_field("content_type", "must be image/jpeg or image/png")),
    }
}

/// What became of one upload S3 reported.
#[derive(Debug, PartialEq, Eq)]
pub enum Processed {
    /// Now the profile's photo (`photo_url`), at this profile version.
    Accepted { photo: Photo, version: u64 },
    /// Not a JPEG or PNG photo: the upload is deleted, nothing else changed.
    Refused(Refused),
    /// The upload is gone: this event was delivered before and processed then.
    AlreadyProcessed,
    /// The profile has this photo or a newer one (an upload granted later): this upload is
    /// deleted, the photo in place stays.
    Superseded,
    /// The profile was deleted meanwhile: the upload (and any copy of it) is deleted.
    ProfileGone,
    /// An object whose key no grant makes: deleted when it is under `uploads/`, else left.
    NotAnUpload,
}

/// process-photo: every record of an S3 event, in order. A record that fails for a reason
/// that may pass (S3 or DynamoDB unavailable) fails the invocation, which Lambda retries
/// (S3 invokes asynchronously): every step is safe to repeat, and the upload stays until
/// its outcome is written.
pub async fn process_photos(app: &App, event: S3Event) -> Result<Vec<Processed>, ApiError> {
    let mut outcomes = Vec::with_capacity(event.records.len());
    for record in &event.records {
        let key = object_key(record);
        let outcome = process_upload(app, &key, record.s3.object.size).await;
        match &outcome {
            Ok(done) => tracing::info!(key = %key, outcome = ?done, "photo upload processed"),
            Err(e) => tracing::warn!(key = %key, error = %e, "photo upload not processed"),
        }
        outcomes.push(outcome?);
    }
    Ok(outcomes)
}

/// A record's object key, decoded (S3 events carry it URL-encoded, `+` for a space).
fn object_key(record: &S3EventRecord) -> String {
    let raw = record.s3.object.key.as_deref().unwrap_or_default();
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

async fn process_upload(app: &App, key: &str, size: Option<i64>) -> Result<Processed, ApiError> {
    let bucket = app.bucket()?;
    let Some(upload) = Upload::parse(key) else {
        // Only what lands under uploads/ is process-photo's to delete (the template's event
        // filter says the same; a wider filter must not make it delete photos).
        if key.starts_with(photo::UPLOADS) {
            bucket.delete(key).await?;
        }
        return Ok(Processed::NotAnUpload);
    };
    // The event's size says "too large" without reading 5 MB more.
    if let Some(size) = size.and_then(|s| u64::try_from(s).ok())
        && !(1..=photo::MAX_BYTES).contains(&size)
    {
        bucket.delete(key).await?;
        return Ok(Processed::Refused(Refused::Size(size)));
    }
    let Some(bytes) = bucket.get(key).await? else {
        return Ok(Processed::AlreadyProcessed);
    };
    let checked = match photo::check(&bytes) {
        Ok(c) => c,
        Err(refused) => {
            bucket.delete(key).await?;
            return Ok(Processed::Refused(refused));
        }
    };
    let base_url = app
        .config
        .photo_base_url
        .as_deref()
        .ok_or_else(|| ApiError::internal("configuration", "PHOTO_BASE_URL is not set"))?;
    let photo = upload.photo(checked.kind, base_url);
    bucket
        .put(
            &photo.key,
            bytes,
            checked.kind.content_type(),
            PHOTO_CACHE_CONTROL,
        )
        .await?;
    let (tenant, id, upload) = (&upload.tenant, &upload.profile, &upload);
    let outcome = conditional_write(
        &WriteConditions::default(),
        || async move { Ok(app.store.get(tenant, id).await?) },
        |current: &Option<StoredProfile>| current.as_ref().map_or(0, |s| s.profile.version),
        |current: Option<StoredProfile>| set_photo(app, upload, current, photo.clone()),
    )
    .await?;
    // The upload goes last: until the outcome is written, a retry can still redo the work.
    match &outcome {
        Processed::Accepted { .. } => {}
        // The copy is nobody's photo (a profile showing this very upload is `Accepted`).
        Processed::Superseded | Processed::ProfileGone => bucket.delete(&photo.key).await?,
        _ => {}
    }
    bucket.delete(key).await?;
    Ok(outcome)
}

/// Makes `photo` the photo of the profile as read (`current`), if it is newer than the one
/// the profile has; deletes the photo it replaces.
async fn set_photo(
    app: &App,
    upload: &Upload,
    current: Option<StoredProfile>,
    photo: Photo,
) -> Result<Processed, super::Attempt> {
    let Some(stored) = current else {
        return Ok(Processed::ProfileGone);
    };
    let previous = stored.profile.photo.clone();
    match &previous {
        Some(p) if p.upload == upload.id => {
            return Ok(Processed::Accepted {
                photo,
                version: stored.profile.version,
            });
        }
        Some(p) if p.upload > upload.id => return Ok(Processed::Superseded),
        _ => {}
    }
    let current = &stored.profile;
    let next = Profile {
        photo: Some(photo.clone()),
        updated_at: Timestamp::now_after(current.updated_at),
        version: current.version + 1,
        ..current.clone()
    };
    let saved = app
        .store
        .write_profile(
            &upload.tenant,
            Some(&stored),
            next,
            &[],
            PrimaryMark::Keep,
            None,
        )
        .await?;
    if let Some(old) = previous {
        app.bucket()?.delete(&old.key).await?;
    }
    Ok(Processed::Accepted {
        photo,
        version: saved.version,
    })
}
