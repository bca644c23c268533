//! process-photo's work: every upload S3 reports is checked (`crate::photo::check`), made the
//! profile's photo when it is a real JPEG or PNG and the newest upload, or deleted. Every
//! step is safe to repeat: S3 invokes asynchronously and Lambda retries a failed invocation.

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};

use super::{Refused, Upload};
use crate::app::App;
use crate::config::ConfigError;
use crate::model::{Photo, Profile, Timestamp};
use crate::photo;
use crate::retry::{WRITE_ATTEMPTS, retrying};
use crate::store::{PrimaryMark, StoreError, StoredProfile};

/// How clients and the photo distribution may cache a photo: for a year, since a photo's
/// object never changes (a new photo gets a new key).
pub const PHOTO_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// Why an upload could not be processed now. Lambda retries the invocation.
#[derive(Debug)]
pub enum ProcessError {
    /// A setting the deployment should give (the bucket, the photo base URL): our mistake.
    Config(ConfigError),
    /// S3 or DynamoDB: an outage that may pass ([`StoreError::Unavailable`]) or a failure.
    Store(StoreError),
}

impl ProcessError {
    /// Whether the cause may pass by itself (an outage), as opposed to our bug.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Store(StoreError::Unavailable { .. }))
    }
}

impl From<ConfigError> for ProcessError {
    fn from(err: ConfigError) -> Self {
        Self::Config(err)
    }
}

impl From<StoreError> for ProcessError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl std::fmt::Display for ProcessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(e) => e.fmt(f),
            Self::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ProcessError {}

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
pub async fn process_photos(app: &App, event: S3Event) -> Result<Vec<Processed>, ProcessError> {
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

async fn process_upload(
    app: &App,
    key: &str,
    size: Option<i64>,
) -> Result<Processed, ProcessError> {
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
    let base_url = app.config.photo_base_url()?;
    let photo = upload.photo(checked.image_type, base_url);
    bucket
        .put(
            &photo.key,
            bytes,
            checked.image_type.content_type(),
            PHOTO_CACHE_CONTROL,
        )
        .await?;
    // Read, then write conditional on the version read; a write that loses its race to a
    // concurrent one is made again on the new state.
    let (upload, photo_ref) = (&upload, &photo);
    let lost = |e: &ProcessError| matches!(e, ProcessError::Store(StoreError::VersionChanged));
    let attempt = || async move {
        let current = app.store.get(&upload.tenant, &upload.profile).await?;
        set_photo(app, upload, current, photo_ref.clone()).await
    };
    let outcome = match retrying(WRITE_ATTEMPTS, lost, attempt).await {
        Err(ProcessError::Store(StoreError::VersionChanged)) => Err(StoreError::unavailable(
            format!("the profile kept changing: {WRITE_ATTEMPTS} writes lost their race"),
        )
        .into()),
        other => other,
    }?;
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
) -> Result<Processed, ProcessError> {
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
