//! The endpoints: one `async fn(&App, Request) -> Response` each, the whole of what a
//! function does. Each answers every outcome, errors included, as an HTTP response.

use lambda_http::http::header;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

use crate::auth::{Caller, Scope};
use crate::config::{Config, ConfigError};
use crate::error::ApiError;
use crate::http::{self, Precondition, Reply};
use crate::listing::ListQuery;
use crate::model::{
    self, BodyKind, Contact, NewContact, Profile, ProfileFields, ProfileId, ProfileInput, Timestamp,
};
use crate::store::{ContactWrite, PrimaryMark, Store};

/// What outlives an invocation: built once per execution environment, at init.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub store: Store,
}

impl App {
    pub fn new(config: Config) -> Self {
        let store = Store::from_config(&config);
        Self { config, store }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Config::from_env().map(Self::new)
    }
}

/// The handler of the function whose binary is `binary`, called in-process: what that
/// function's `main.rs` wires, for the test suite and the bench. `None` for an unknown name.
/// (The functions themselves never call this, so release builds drop it.)
pub async fn by_binary(binary: &str, app: &App, req: Request) -> Option<Response<Body>> {
    Some(match binary {
        "create-profile" => create_profile(app, req).await,
        "get-profile" => get_profile(app, req).await,
        "get-primary-profile" => get_primary_profile(app, req).await,
        "list-profiles" => list_profiles(app, req).await,
        "update-profile" => update_profile(app, req).await,
        "replace-profile" => replace_profile(app, req).await,
        "delete-profile" => delete_profile(app, req).await,
        "list-contacts" => list_contacts(app, req).await,
        "create-contact" => create_contact(app, req).await,
        "get-contact" => get_contact(app, req).await,
        "update-contact" => update_contact(app, req).await,
        "delete-contact" => delete_contact(app, req).await,
        _ => return None,
    })
}

/// How many times a write is recomputed when a concurrent write to the same profile wins.
const WRITE_ATTEMPTS: usize = 3;

fn profile_id(req: &Request) -> Result<ProfileId, ApiError> {
    // An id that is not a UUID names nothing: the same 404 as an unknown one.
    http::path_param(req, "profile_id")
        .and_then(model::parse_id)
        .ok_or(ApiError::NotFound("profile"))
}

fn with_etag(reply: Reply, profile: &Profile) -> Reply {
    reply.header(header::ETAG, profile.etag())
}

/// `POST /profiles` (alias `POST /profiles/create`).
pub async fn create_profile(app: &App, req: Request) -> Response<Body> {
    let trace = http::trace_id(&req);
    let outcome = create(app, &req).await;
    http::finish(&req, &trace, outcome)
}

async fn create(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Create)?;
    let body = http::json_object(req, false)?;
    let input = ProfileInput::parse(&body, BodyKind::Create)?;
    let mut fields = ProfileFields::default();
    model::apply_patch(&mut fields, input.patch)?;
    let now = Timestamp::now();
    let profile = Profile {
        id: uuid::Uuid::now_v7(),
        fields,
        photo_url: None,
        owner_id: caller.principal.as_str().to_owned(),
        created_at: now,
        updated_at: now,
        version: 1,
        is_primary: false,
        contact_index: Default::default(),
    };
    let contacts: Vec<Contact> = input
        .contacts
        .into_iter()
        .map(|c| Contact::new(c, now))
        .collect();
    let profile = Profile {
        contact_index: model::contact_index(&contacts),
        ..profile
    };
    // A principal's first profile takes the free primary mark. If another create of theirs
    // claims it first, this one is written without it.
    let first = app
        .store
        .primary_of(&caller.tenant, &caller.principal)
        .await?
        .is_none();
    let store = &app.store;
    let profile = if first {
        let claimed = Profile {
            is_primary: true,
            ..profile.clone()
        };
        let claim = PrimaryMark::Claim { previous: None };
        match store
            .write_profile(&caller.tenant, None, claimed, &contacts, claim)
            .await
        {
            Err(ApiError::PreconditionFailed) => {
                store
                    .write_profile(&caller.tenant, None, profile, &contacts, PrimaryMark::Keep)
                    .await?
            }
            other => other?,
        }
    } else {
        store
            .write_profile(&caller.tenant, None, profile, &contacts, PrimaryMark::Keep)
            .await?
    };
    let reply = Reply::json(201, profile.to_json(Some(&contacts))?)
        .header(header::LOCATION, format!("/profiles/{}", profile.id));
    Ok(with_etag(reply, &profile))
}

/// `GET /profiles/{profile_id}`: the profile with its contacts.
pub async fn get_profile(app: &App, req: Request) -> Response<Body> {
    let trace = http::trace_id(&req);
    let outcome = get(app, &req).await;
    http::finish(&req, &trace, outcome)
}

async fn get(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Read)?;
    let id = profile_id(req)?;
    read_profile(app, req, &caller, id).await
}

/// `GET /profiles/me`: the caller's primary profile, with its contacts.
pub async fn get_primary_profile(app: &App, req: Request) -> Response<Body> {
    let trace = http::trace_id(&req);
    let outcome = async {
        let caller = Caller::with_scope(&req, Scope::Read)?;
        let id = app
            .store
            .primary_of(&caller.tenant, &caller.principal)
            .await?
            .ok_or(ApiError::NotFound("primary profile"))?;
        read_profile(app, &req, &caller, id).await
    }
    .await;
    http::finish(&req, &trace, outcome)
}

async fn read_profile(
    app: &App,
    req: &Request,
    caller: &Caller,
    id: ProfileId,
) -> Result<Reply, ApiError> {
    let if_none_match = http::if_none_match(req)?;
    let (profile, contacts) = app
        .store
        .get_with_contacts(&caller.tenant, &id)
        .await?
        .ok_or(ApiError::NotFound("profile"))?;
    if if_none_match.is_some_and(|p| p.matches(profile.version)) {
        return Ok(with_etag(Reply::empty(304), &profile));
    }
    Ok(with_etag(
        Reply::json(200, profile.to_json(Some(&contacts))?),
        &profile,
    ))
}

/// `PATCH /profiles/{profile_id}`: a JSON Merge Patch.
pub async fn update_profile(app: &App, req: Request) -> Response<Body> {
    let trace = http::trace_id(&req);
    let outcome = write_existing(app, &req, BodyKind::Patch).await;
    http::finish(&req, &trace, outcome)
}

/// `PUT /profiles/{profile_id}`: replaces every writable field.
pub async fn replace_profile(app: &App, req: Request) -> Response<Body> {
    let trace = http::trace_id(&req);
    let outcome = write_existing(app, &req, BodyKind::Replace).await;
    http::finish(&req, &trace, outcome)
}

async fn write_existing(app: &App, req: &Request, kind: BodyKind) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Update)?;
    let id = profile_id(req)?;
    let if_match = http::if_match(req)?;
    let body = http::json_object(req, kind == BodyKind::Patch)?;
    let input = ProfileInput::parse(&body, kind)?;
    for _ in 0..WRITE_ATTEMPTS {
        let current = app
            .store
            .get(&caller.tenant, &id)
            .await?
            .ok_or(ApiError::NotFound("profile"))?;
        if if_match.is_some_and(|p| !p.matches(current.version)) {
            return Err(ApiError::PreconditionFailed);
        }
        let mut fields = match kind {
            BodyKind::Patch => current.fields.clone(),
            _ => ProfileFields::default(),
        };
        model::apply_patch(&mut fields, input.patch.clone())?;
        let mark = if input.make_primary {
            primary_claim(app, &caller, &current).await?
        } else {
            PrimaryMark::Keep
        };
        let next = Profile {
            fields,
            updated_at: Timestamp::now_after(current.updated_at),
            version: current.version + 1,
            is_primary: current.is_primary || input.make_primary,
            ..current.clone()
        };
        match app
            .store
            .write_profile(&caller.tenant, Some(&current), next, &[], mark)
            .await
        {
            Ok(saved) => {
                let reply = if http::prefers_minimal(req) {
                    Reply::empty(204)
                } else {
                    Reply::json(200, saved.to_json(None)?)
                };
                return Ok(with_etag(reply, &saved));
            }
            // A concurrent write won. Without a version to hold to, redo on the new one.
            Err(ApiError::PreconditionFailed)
                if if_match.and_then(Precondition::version).is_none() => {}
            Err(e) => return Err(e),
        }
    }
    Err(concurrent_write())
}

/// The mark move that makes `profile` its owner's primary (none if it is already): only the
/// owner may ask, since the mark is theirs (`/profiles/me`).
async fn primary_claim(
    app: &App,
    caller: &Caller,
    profile: &Profile,
) -> Result<PrimaryMark, ApiError> {
    if profile.owner_id != caller.principal.as_str() {
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

fn concurrent_write() -> ApiError {
    ApiError::Conflict {
        code: "concurrent_update",
        detail: "the profile kept changing during this request; retry it".into(),
        field: None,
    }
}

/// `DELETE /profiles/{profile_id}`: the profile, its contacts and its unique values.
pub async fn delete_profile(app: &App, req: Request) -> Response<Body> {
    let trace = http::trace_id(&req);
    let outcome = delete(app, &req).await;
    http::finish(&req, &trace, outcome)
}

async fn delete(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Delete)?;
    let id = profile_id(req)?;
    let expected = http::if_match(req)?.and_then(Precondition::version);
    for _ in 0..WRITE_ATTEMPTS {
        match app
            .store
            .delete_profile(&caller.tenant, &id, expected)
            .await
        {
            Ok(true) => return Ok(Reply::empty(204)),
            Ok(false) => return Err(ApiError::NotFound("profile")),
            Err(ApiError::PreconditionFailed) if expected.is_none() => {}
            Err(e) => return Err(e),
        }
    }
    Err(concurrent_write())
}

/// `GET /profiles`: a page of the tenant's profiles, newest first by default; `GET
/// /profiles/all`: the same, of the caller's own profiles only.
pub async fn list_profiles(app: &App, req: Request) -> Response<Body> {
    let trace = http::trace_id(&req);
    let outcome = list(app, &req).await;
    http::finish(&req, &trace, outcome)
}

async fn list(app: &App, req: &Request) -> Result<Reply, ApiError> {
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
    let mut reply = Reply::json(200, json!({ "data": data, "next_cursor": next_cursor }));
    if let Some(cursor) = &next_cursor {
        reply = reply.header(
            header::LINK,
            format!(
                "<{}?{}>; rel=\"next\"",
                if own.is_some() {
                    "/profiles/all"
                } else {
                    "/profiles"
                },
                query.next_query(cursor)
            ),
        );
    }
    Ok(reply)
}

fn contact_ids(req: &Request) -> Result<(ProfileId, uuid::Uuid), ApiError> {
    let profile = profile_id(req)?;
    let contact = http::path_param(req, "contact_id")
        .and_then(model::parse_id)
        .ok_or(ApiError::NotFound("contact"))?;
    Ok((profile, contact))
}

fn contact_reply(status: u16, contact: &Contact) -> Result<Reply, ApiError> {
    Ok(Reply::json(status, contact.to_json()?).header(header::ETAG, contact.etag()))
}

/// A profile's contacts, read with the profile in one Query: a contact is only ever
/// reachable through a profile that exists.
async fn contacts_of(
    app: &App,
    caller: &Caller,
    profile: &ProfileId,
) -> Result<Vec<Contact>, ApiError> {
    app.store
        .get_with_contacts(&caller.tenant, profile)
        .await?
        .map(|(_, contacts)| contacts)
        .ok_or(ApiError::NotFound("profile"))
}

async fn current_contact(
    app: &App,
    caller: &Caller,
    (profile, contact): (ProfileId, uuid::Uuid),
) -> Result<Contact, ApiError> {
    contacts_of(app, caller, &profile)
        .await?
        .into_iter()
        .find(|c| c.id == contact)
        .ok_or(ApiError::NotFound("contact"))
}

/// `GET /profiles/{profile_id}/contacts`: every contact of the profile (at most 50), oldest
/// first.
pub async fn list_contacts(app: &App, req: Request) -> Response<Body> {
    let trace = http::trace_id(&req);
    let outcome = async {
        let caller = Caller::with_scope(&req, Scope::Read)?;
        let profile = profile_id(&req)?;
        if let Some((name, _)) = http::query_pairs(&req).first() {
            let mut errors = crate::error::FieldErrors::default();
            errors.push(
                name.as_str(),
                "unknown query parameter; a profile's contacts come in one page",
            );
            errors.into_result(())?;
        }
        let contacts = contacts_of(app, &caller, &profile).await?;
        let data = contacts
            .iter()
            .map(Contact::to_json)
            .collect::<Result<Vec<Value>, _>>()?;
        Ok(Reply::json(
            200,
            json!({ "data": data, "next_cursor": null }),
        ))
    }
    .await;
    http::finish(&req, &trace, outcome)
}

/// `POST /profiles/{profile_id}/contacts`: adds a contact.
pub async fn create_contact(app: &App, req: Request) -> Response<Body> {
    let trace = http::trace_id(&req);
    let outcome = async {
        let caller = Caller::with_scope(&req, Scope::Update)?;
        let profile = profile_id(&req)?;
        let body = http::json_object(&req, false)?;
        let input = NewContact::from_body(&body, BodyKind::Create, None)?;
        let contact = Contact::new(input, Timestamp::now());
        app.store
            .write_contact(&caller.tenant, &profile, ContactWrite::Create(&contact))
            .await?;
        Ok(contact_reply(201, &contact)?.header(
            header::LOCATION,
            format!("/profiles/{profile}/contacts/{}", contact.id),
        ))
    }
    .await;
    http::finish(&req, &trace, outcome)
}

/// `GET /profiles/{profile_id}/contacts/{contact_id}`.
pub async fn get_contact(app: &App, req: Request) -> Response<Body> {
    let trace = http::trace_id(&req);
    let outcome = async {
        let caller = Caller::with_scope(&req, Scope::Read)?;
        let ids = contact_ids(&req)?;
        let if_none_match = http::if_none_match(&req)?;
        let contact = current_contact(app, &caller, ids).await?;
        if if_none_match.is_some_and(|p| p.matches(contact.version)) {
            return Ok(Reply::empty(304).header(header::ETAG, contact.etag()));
        }
        contact_reply(200, &contact)
    }
    .await;
    http::finish(&req, &trace, outcome)
}

/// `PUT` (the whole contact) and `PATCH` (a merge patch) of
/// `/profiles/{profile_id}/contacts/{contact_id}`.
pub async fn update_contact(app: &App, req: Request) -> Response<Body> {
    let trace = http::trace_id(&req);
    let outcome = async {
        let caller = Caller::with_scope(&req, Scope::Update)?;
        let ids = contact_ids(&req)?;
        let kind = if req.method() == lambda_http::http::Method::PATCH {
            BodyKind::Patch
        } else {
            BodyKind::Replace
        };
        let if_match = http::if_match(&req)?;
        let body = http::json_object(&req, kind == BodyKind::Patch)?;
        for _ in 0..WRITE_ATTEMPTS {
            let current = current_contact(app, &caller, ids).await?;
            if if_match.is_some_and(|p| !p.matches(current.version)) {
                return Err(ApiError::PreconditionFailed);
            }
            let next = current.changed(NewContact::from_body(&body, kind, Some(&current))?);
            let write = ContactWrite::Update {
                old: &current,
                new: &next,
            };
            match app.store.write_contact(&caller.tenant, &ids.0, write).await {
                Ok(()) if http::prefers_minimal(&req) => {
                    return Ok(Reply::empty(204).header(header::ETAG, next.etag()));
                }
                Ok(()) => return contact_reply(200, &next),
                Err(ApiError::PreconditionFailed)
                    if if_match.and_then(Precondition::version).is_none() => {}
                Err(e) => return Err(e),
            }
        }
        Err(concurrent_write())
    }
    .await;
    http::finish(&req, &trace, outcome)
}

/// `DELETE /profiles/{profile_id}/contacts/{contact_id}`.
pub async fn delete_contact(app: &App, req: Request) -> Response<Body> {
    let trace = http::trace_id(&req);
    let outcome = async {
        let caller = Caller::with_scope(&req, Scope::Update)?;
        let ids = contact_ids(&req)?;
        let if_match = http::if_match(&req)?;
        for _ in 0..WRITE_ATTEMPTS {
            let current = current_contact(app, &caller, ids).await?;
            if if_match.is_some_and(|p| !p.matches(current.version)) {
                return Err(ApiError::PreconditionFailed);
            }
            match app
                .store
                .write_contact(&caller.tenant, &ids.0, ContactWrite::Delete(&current))
                .await
            {
                Ok(()) => return Ok(Reply::empty(204)),
                Err(ApiError::PreconditionFailed)
                    if if_match.and_then(Precondition::version).is_none() => {}
                Err(e) => return Err(e),
            }
        }
        Err(concurrent_write())
    }
    .await;
    http::finish(&req, &trace, outcome)
}
