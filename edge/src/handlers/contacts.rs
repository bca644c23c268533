//! The contact endpoints of `/profiles/{profile_id}/contacts`: list, add, read, PUT/PATCH,
//! DELETE. A contact is only ever reached through its profile's partition.

use lambda_http::Request;
use lambda_http::http::StatusCode;
use lambda_http::http::header;
use serde_json::{Value, json};

use super::{conditional_write, idempotency_claim, profile_id, replay};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::http::{self, Reply};
use shared::app::App;
use shared::auth::Scope;
use shared::ids::{ContactId, ProfileId};
use shared::model::{BodyKind, Contact, NewContact, Timestamp};
use shared::store::{ContactWrite, Idempotent, StoreError};
use shared::validate::FieldErrors;

fn contact_ids(req: &Request) -> Result<(ProfileId, ContactId), ApiError> {
    let profile = profile_id(req)?;
    let contact = http::path_param(req, "contact_id")
        .and_then(ContactId::parse)
        .ok_or(ApiError::NotFound("contact"))?;
    Ok((profile, contact))
}

fn contact_reply(status: StatusCode, contact: &Contact) -> Result<Reply, ApiError> {
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
        .partition(&caller.tenant, profile)
        .await?
        .map(|read| read.contacts)
        .ok_or(ApiError::NotFound("profile"))
}

async fn current_contact(
    app: &App,
    caller: &Caller,
    (profile, contact): (ProfileId, ContactId),
) -> Result<Contact, ApiError> {
    contacts_of(app, caller, &profile)
        .await?
        .into_iter()
        .find(|c| c.id == contact)
        .ok_or(ApiError::NotFound("contact"))
}

/// `GET /profiles/{profile_id}/contacts`: every contact of the profile (at most 50), oldest
/// first.
pub async fn list_contacts(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Read)?;
    let profile = profile_id(req)?;
    if let Some((name, _)) = http::query_pairs(req).first() {
        let mut errors = FieldErrors::default();
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
        StatusCode::OK,
        json!({ "data": data, "next_cursor": null }),
    ))
}

/// `POST /profiles/{profile_id}/contacts`: adds a contact.
pub async fn create_contact(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Update)?;
    let profile = profile_id(req)?;
    let body = http::json_object(req, false)?;
    let input = NewContact::from_body(&body, BodyKind::Create, None)?;
    let path = format!("/profiles/{profile}/contacts");
    let claim = idempotency_claim(app, req, &caller, "create-contact", &path, &body)?;
    let contact = Contact::new(input, Timestamp::now());
    let created = |c: &Contact| -> Result<Reply, ApiError> {
        let location = format!("{}{path}/{}", http::base_path(req), c.id);
        Ok(contact_reply(StatusCode::CREATED, c)?.header(header::LOCATION, location))
    };
    // With Idempotency-Key, the answer is recorded in the write's own transaction.
    let answer = |c: &Contact| created(c).map(|r| r.stored()).map_err(|e| e.to_string());
    let idem = claim.as_ref().map(|claim| Idempotent {
        claim,
        answer: &answer,
    });
    let written = app
        .store
        .write_contact(
            &caller.tenant,
            &profile,
            ContactWrite::Create(&contact, idem),
        )
        .await;
    match (written, &claim) {
        (Ok(()), _) => created(&contact),
        (Err(StoreError::KeyUsed(used)), Some(claim)) => replay(claim, used),
        (Err(e), _) => Err(e.into()),
    }
}

/// `GET /profiles/{profile_id}/contacts/{contact_id}`.
pub async fn get_contact(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Read)?;
    let ids = contact_ids(req)?;
    let if_none_match = http::if_none_match(req)?;
    let contact = current_contact(app, &caller, ids).await?;
    if if_none_match.is_some_and(|p| p.matches_weak(contact.version)) {
        return Ok(Reply::empty(StatusCode::NOT_MODIFIED).header(header::ETAG, contact.etag()));
    }
    contact_reply(StatusCode::OK, &contact)
}

/// `PUT` (the whole contact) and `PATCH` (a merge patch) of
/// `/profiles/{profile_id}/contacts/{contact_id}`.
pub async fn update_contact(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Update)?;
    let ids = contact_ids(req)?;
    let kind = if req.method() == lambda_http::http::Method::PATCH {
        BodyKind::Patch
    } else {
        BodyKind::Replace
    };
    let conditions = http::WriteConditions::of(req)?;
    let body = http::json_object(req, kind == BodyKind::Patch)?;
    let (caller, body) = (&caller, &body);
    conditional_write(
        &conditions,
        || current_contact(app, caller, ids),
        |current: &Contact| current.version,
        |current: Contact| async move {
            let next = current.changed(NewContact::from_body(body, kind, Some(&current))?);
            let write = ContactWrite::Update {
                old: &current,
                new: &next,
            };
            app.store
                .write_contact(&caller.tenant, &ids.0, write)
                .await?;
            if http::prefers_minimal(req) {
                Ok(Reply::empty(StatusCode::NO_CONTENT).header(header::ETAG, next.etag()))
            } else {
                Ok(contact_reply(StatusCode::OK, &next)?)
            }
        },
    )
    .await
}

/// `DELETE /profiles/{profile_id}/contacts/{contact_id}`.
pub async fn delete_contact(app: &App, req: &Request) -> Result<Reply, ApiError> {
    let caller = Caller::with_scope(req, Scope::Update)?;
    let ids = contact_ids(req)?;
    let conditions = http::WriteConditions::of(req)?;
    let caller = &caller;
    conditional_write(
        &conditions,
        || current_contact(app, caller, ids),
        |current: &Contact| current.version,
        |current: Contact| async move {
            let write = ContactWrite::Delete(&current);
            app.store
                .write_contact(&caller.tenant, &ids.0, write)
                .await?;
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        },
    )
    .await
}
