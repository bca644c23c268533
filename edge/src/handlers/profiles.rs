//! The profile endpoints: create, read (by id and `/profiles/me`), list, PATCH, PUT, DELETE.

use lambda_http::Request;
use lambda_http::http::StatusCode;
use lambda_http::http::header;
use serde_json::{Value, json};

use super::{
    WRITE_ATTEMPTS, conditional_write, idempotency_claim, kept_changing, profile_id, replay,
};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::http::{self, Reply};
use shared::app::App;
use shared::auth::Scope;
use shared::ids::ProfileId;
use shared::listing::ListQuery;
use shared::model::{self, BodyKind, Contact, Profile, ProfileFields, ProfileInput, Timestamp};
use shared::retry::retrying;
use shared::store::{Idempotent, PrimaryMark, ProfilePartition, StoreError, StoredProfile};

fn with_etag(reply: Reply, profile: &Profile) -> Reply {
    reply.header(header::ETAG, profile.etag())
}

/// `POST /profiles` (alias `POST /profiles/create`).
pub async fn create_profile(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Create)?;
    let body = http::json_object(req, false)?;
    let input = ProfileInput::parse(&body, BodyKind::Create)?;
    let claim = idempotency_claim(app, req, &caller, "create-profile", "/profiles", &body)?;
    let base = http::base_path(req);
    let mut fields = ProfileFields::default();
    model::apply_patch(&mut fields, input.patch)?;
    // Made with the id: creation order is id order (one list index serves both).
    let profile = Profile::new(ProfileId::generate(), fields, caller.principal.clone());
    let now = profile.created_at;
    let contacts: Vec<Contact> = input
        .contacts
        .into_iter()
        .map(|c| Contact::new(c, now))
        .collect();
    let store = &app.store;
    let tenant = &caller.tenant;
    // With Idempotency-Key, the answer is recorded in the create's own transaction.
    let answer = |p: &Profile| {
        created(&base, p, &contacts)
            .map(|r| r.stored())
            .map_err(|e| e.to_string())
    };
    let idem = claim.as_ref().map(|claim| Idempotent {
        claim,
        answer: &answer,
    });
    let plain = |profile: Profile| {
        store.write_profile(tenant, None, profile, &contacts, PrimaryMark::Keep, idem)
    };
    let claimed = |previous: Option<ProfileId>| {
        let profile = Profile {
            is_primary: true,
            ..profile.clone()
        };
        let mark = PrimaryMark::Claim { previous };
        store.write_profile(tenant, None, profile, &contacts, mark, idem)
    };
    let written = match input.primary {
        // Not primary, even as the principal's first profile.
        Some(false) => plain(profile.clone()).await,
        // The principal's primary, the mark taken from the one that holds it, in the same
        // transaction; re-read while another move wins the race.
        Some(true) => {
            let (claimed, principal) = (&claimed, &caller.principal);
            let attempt = || async move {
                let previous = store.primary_of(tenant, principal).await?;
                claimed(previous).await
            };
            let lost = |e: &StoreError| matches!(e, StoreError::VersionChanged);
            match retrying(WRITE_ATTEMPTS, lost, attempt).await {
                Err(StoreError::VersionChanged) => Err(kept_changing("the primary mark"))?,
                other => other,
            }
        }
        // A principal's first profile takes the free primary mark. If another create of
        // theirs claims it first, this one is written without it.
        None => match store.primary_of(tenant, &caller.principal).await? {
            Some(_) => plain(profile.clone()).await,
            None => match claimed(None).await {
                Err(StoreError::VersionChanged) => plain(profile.clone()).await,
                other => other,
            },
        },
    };
    match (written, &claim) {
        (Ok(profile), _) => created(&base, &profile, &contacts),
        (Err(StoreError::KeyUsed(used)), Some(claim)) => replay(claim, used),
        (Err(e), _) => Err(e.into()),
    }
}

/// The answer to a create: 201, the profile with its contacts, `Location` and `ETag`.
fn created(base: &str, profile: &Profile, contacts: &[Contact]) -> Result<Reply, ApiError> {
    let reply = Reply::json(StatusCode::CREATED, profile.to_json(Some(contacts))?)
        .header(header::LOCATION, format!("{base}/profiles/{}", profile.id));
    Ok(with_etag(reply, profile))
}

/// `GET /profiles/{profile_id}`: the profile with its contacts.
pub async fn get_profile(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Read)?;
    let id = profile_id(req)?;
    read_profile(app, req, &caller, id).await
}

/// `GET /profiles/me`: the caller's primary profile, with its contacts.
pub async fn get_primary_profile(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Read)?;
    let id = app
        .store
        .primary_of(&caller.tenant, &caller.principal)
        .await?
        .ok_or(ApiError::NotFound("primary profile"))?;
    read_profile(app, req, &caller, id).await
}

async fn read_profile(
    app: &App,
    req: &Request,
    caller: &Caller,
    id: ProfileId,
) -> Result<Reply, ApiError> {
    let if_none_match = http::if_none_match(req)?;
    let read = app
        .store
        .partition(&caller.tenant, &id)
        .await?
        .ok_or(ApiError::NotFound("profile"))?;
    let profile = &read.profile;
    if if_none_match.is_some_and(|p| p.matches_weak(profile.version)) {
        return Ok(with_etag(Reply::empty(StatusCode::NOT_MODIFIED), profile));
    }
    Ok(with_etag(
        Reply::json(StatusCode::OK, profile.to_json(Some(&read.contacts))?),
        profile,
    ))
}

/// `PATCH /profiles/{profile_id}`: a JSON Merge Patch.
pub async fn update_profile(app: &App, req: &Request) -> Result<Reply, ApiError> {
    write_existing(app, req, BodyKind::Patch).await
}

/// `PUT /profiles/{profile_id}`: replaces every writable field.
pub async fn replace_profile(app: &App, req: &Request) -> Result<Reply, ApiError> {
    write_existing(app, req, BodyKind::Replace).await
}

async fn write_existing(app: &App, req: &Request, kind: BodyKind) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Update)?;
    let id = profile_id(req)?;
    let conditions = http::WriteConditions::of(req)?;
    let body = http::json_object(req, kind == BodyKind::Patch)?;
    let input = ProfileInput::parse(&body, kind)?;
    let (tenant, caller, input) = (&caller.tenant, &caller, &input);
    conditional_write(
        &conditions,
        || async move { (app.store.get(tenant, &id).await?).ok_or(ApiError::NotFound("profile")) },
        |current: &StoredProfile| current.profile.version,
        |stored: StoredProfile| async move {
            let current = &stored.profile;
            let mut fields = match kind {
                BodyKind::Patch => current.fields.clone(),
                _ => ProfileFields::default(),
            };
            model::apply_patch(&mut fields, input.patch.clone())?;
            let mark = match input.primary {
                Some(true) => primary_claim(app, caller, current).await?,
                // A well-formed request that this profile's state refuses: a 409.
                Some(false) if current.is_primary => {
                    return Err(ApiError::Conflict {
                        code: "primary_mark_stays",
                        detail: "is_primary: this is its owner's primary profile; the mark \
                                 moves when another profile is made primary (is_primary: true \
                                 there)"
                            .into(),
                        field: Some("is_primary".into()),
                    }
                    .into());
                }
                // false on a profile that is not primary: as it is.
                Some(false) | None => PrimaryMark::Keep,
            };
            let next = Profile {
                fields,
                updated_at: Timestamp::now_after(current.updated_at),
                version: current.version + 1,
                is_primary: current.is_primary || input.primary == Some(true),
                ..current.clone()
            };
            let saved = app
                .store
                .write_profile(tenant, Some(&stored), next, &[], mark, None)
                .await?;
            let reply = if http::prefers_minimal(req) {
                Reply::empty(StatusCode::NO_CONTENT)
            } else {
                Reply::json(StatusCode::OK, saved.to_json(None)?)
            };
            Ok(with_etag(reply, &saved))
        },
    )
    .await
}

/// The mark move that makes `profile` its owner's primary (none if it is already): only the
/// owner may ask, since the mark is theirs (`/profiles/me`).
async fn primary_claim(
    app: &App,
    caller: &Caller,
    profile: &Profile,
) -> Result<PrimaryMark, ApiError> {
    if profile.owner_id != caller.principal {
        return Err(ApiError::Forbidden {
            code: "not_owner",
            detail: "is_primary: only the profile's owner can make it their primary profile".into(),
        });
    }
    if profile.is_primary {
        return Ok(PrimaryMark::Keep);
    }
    let previous = app
        .store
        .primary_of(&caller.tenant, &caller.principal)
        .await?;
    Ok(PrimaryMark::Claim { previous })
}

/// `DELETE /profiles/{profile_id}`: the profile, its contacts, its unique values and its photo.
pub async fn delete_profile(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Delete)?;
    let id = profile_id(req)?;
    let conditions = http::WriteConditions::of(req)?;
    let tenant = &caller.tenant;
    conditional_write(
        &conditions,
        || async move {
            (app.store.partition(tenant, &id).await?).ok_or(ApiError::NotFound("profile"))
        },
        |read: &ProfilePartition| read.profile.version,
        |read: ProfilePartition| async move {
            let photo = read.profile.photo.clone();
            app.store.delete_profile(tenant, read).await?;
            // Its photo goes with it. After the delete commits, so a failed delete leaves a
            // profile whose photo still shows; a photo this fails to delete is only logged
            // (the profile is gone, the answer stands) under the key to remove.
            if let Some(photo) = photo {
                let deleted = match app.bucket() {
                    Ok(bucket) => bucket.delete(&photo.key).await.map_err(ApiError::from),
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = deleted {
                    tracing::error!(key = %photo.key, error = %e, "deleted profile's photo left behind");
                }
            }
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        },
    )
    .await
}

/// `GET /profiles`: a page of the tenant's profiles, newest first by default; `GET
/// /profiles/all`: the same, of the caller's own profiles only.
pub async fn list_profiles(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Lists)?;
    let key = app.config.cursor_key()?;
    // `/profiles/all`: only the caller's own.
    let own = (http::resource(req) == Some("/profiles/all")).then_some(&caller.principal);
    let request = ListQuery::parse(&http::query_pairs(req), &caller.tenant, key, own)?;
    let query = &request.query;
    let page = app
        .store
        .list(&caller.tenant, query, request.after.as_ref())
        .await?;
    let data = page
        .profiles
        .iter()
        .map(|p| p.to_json(None))
        .collect::<Result<Vec<Value>, _>>()?;
    let next_cursor = page
        .next
        .as_ref()
        .map(|p| p.seal(query, &caller.tenant, key));
    let mut reply = Reply::json(
        StatusCode::OK,
        json!({ "data": data, "next_cursor": next_cursor }),
    );
    if let Some(cursor) = &next_cursor {
        let path = if own.is_some() {
            "/profiles/all"
        } else {
            "/profiles"
        };
        let base = http::base_path(req);
        let link = format!("<{base}{path}?{}>; rel=\"next\"", query.next_query(cursor));
        reply = reply.header(header::LINK, link);
    }
    Ok(reply)
}
