//! The table's schema: every key format (`PK`/`SK`, the indexes' keys) and every attribute
//! name an expression spells lives here and nowhere else.
//!
//! | item | PK | SK | GSI1PK / GSI1SK |
//! |---|---|---|---|
//! | profile | `T#<tenant>#P#<id>` | `PROFILE` | `T#<tenant>#PROFILES` / `<created_at>#<id>` |
//! | contact | `T#<tenant>#P#<id>` | `CONTACT#<contact_id>` | — |
//! | slug guard | `T#<tenant>#SLUG#<slug>` | `GUARD` | — |
//! | external id guard | `T#<tenant>#EXT#<external_id>` | `GUARD` | — |
//! | primary-profile pointer | `T#<tenant>#OWNER#<principal>` | `PRIMARY` | — |
//! | idempotency record | `T#<tenant>#IDEM#<scope digest>` | `IDEMPOTENCY` | — |
//! | a JWT caller's rate limit | `T#<tenant>#RATE#<caller digest>` | `RATE` | — |
//!
//! A profile and its contacts share one partition, so one Query reads them all and a
//! delete finds everything to remove. The list indexes are sparse (only profiles carry their
//! keys) and partitioned by tenant: listing is a Query, never a Scan. Every sort order has
//! its own index on the same partition key (`GSI1PK`) with its own sort key attribute
//! ([`sort_index`], [`sort_attribute`]), always ending in the id so ties have one order; `ByEmail` finds a tenant's
//! profiles with one email address, `ByOwner` one principal's (`/profiles/all`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::ids::{ContactId, PrincipalId, ProfileId, TenantId};
use crate::listing::Sort;
use crate::model::Profile;
use crate::validate::{Name, Slug};

pub type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
/// The attribute of a guard that names the profile holding the unique value.
pub const GUARD_OWNER: &str = "profile_id";
/// A profile's and a contact's version (the `ETag`), which conditional writes hold to.
pub const VERSION: &str = "version";
/// A profile's primary mark.
pub const IS_PRIMARY: &str = "is_primary";
/// A profile's contact index: contact fingerprint → contact id.
pub const CONTACT_INDEX: &str = "contact_index";

/// An API key item's revocation flag and time.
pub const REVOKED: &str = "revoked";
pub const REVOKED_AT: &str = "revoked_at";

/// The condition of a write that creates its item.
pub const IS_NEW: &str = "attribute_not_exists(PK)";
/// An idempotency record's expiry (seconds since the epoch): the table's TTL attribute.
pub const EXPIRES_AT: &str = "expires_at";
/// The condition of a write of an idempotency record: none yet, or one whose expiry
/// (`:now` and later) has passed. TTL deletes expired items lazily, so the condition does
/// not rely on it.
pub const IS_NEW_OR_EXPIRED: &str = "attribute_not_exists(PK) OR expires_at < :now";

/// The condition of a write to an item that must exist.
pub const EXISTS: &str = "attribute_exists(PK)";
/// The condition of a write that holds to the version in `:expected`.
pub const VERSION_IS_EXPECTED: &str = "version = :expected";

const PROFILE_SK: &str = "PROFILE";
const CONTACT_SK_PREFIX: &str = "CONTACT#";
const GUARD_SK: &str = "GUARD";

fn s(v: String) -> AttributeValue {
    AttributeValue::S(v)
}

/// The partition of one profile: the profile item and its contacts.
pub fn profile_partition(tenant: &TenantId, id: &ProfileId) -> AttributeValue {
    s(format!("T#{tenant}#P#{id}"))
}

/// The tenant and profile a profile item's key names, when `item` is a profile item.
pub fn profile_of(item: &Item) -> Option<(TenantId, ProfileId)> {
    if item.get(SK)?.as_s().ok()? != PROFILE_SK {
        return None;
    }
    let pk = item.get(PK)?.as_s().ok()?;
    let (tenant, id) = pk.strip_prefix("T#")?.rsplit_once("#P#")?;
    let parsed = (TenantId::new(tenant).ok()?, ProfileId::parse(id)?);
    // Only the canonical spelling is ours.
    (profile_partition(&parsed.0, &parsed.1).as_s().ok()? == pk).then_some(parsed)
}

/// The primary key of a profile item.
pub fn profile_key(tenant: &TenantId, id: &ProfileId) -> Item {
    HashMap::from([
        (PK.to_owned(), profile_partition(tenant, id)),
        (SK.to_owned(), s(PROFILE_SK.to_owned())),
    ])
}

/// The partition key of a tenant's list index.
pub fn list_partition(tenant: &TenantId) -> AttributeValue {
    s(format!("T#{tenant}#PROFILES"))
}

/// Every key attribute a profile item carries: its primary key and its index keys (one per
/// sort order, and its email's).
pub fn profile_item_keys(tenant: &TenantId, profile: &Profile) -> Item {
    let mut keys = profile_key(tenant, &profile.id);
    keys.insert(GSI1PK.to_owned(), list_partition(tenant));
    for sort in Sort::ALL {
        keys.insert(sort_attribute(sort).to_owned(), s(sort.value(profile)));
    }
    if let Some(email) = &profile.fields.email {
        keys.insert(EMAIL_PK.to_owned(), email_partition(tenant, email.as_str()));
    }
    keys.insert(
        OWNER_PK.to_owned(),
        owner_partition(tenant, &profile.owner_id),
    );
    keys
}

/// The index that gives `sort`'s order.
pub fn sort_index(sort: Sort) -> &'static str {
    match sort {
        Sort::CreatedAt => GSI1,
        Sort::UpdatedAt => "ByUpdatedAt",
        Sort::Name => "ByName",
        Sort::FirstName => "ByFirstName",
        Sort::MiddleName => "ByMiddleName",
        Sort::LastName => "ByLastName",
        Sort::Enabled => "ByEnabled",
        Sort::Id => "ById",
    }
}

/// The sort key attribute of [`sort_index`]`(sort)`.
pub fn sort_attribute(sort: Sort) -> &'static str {
    match sort {
        Sort::CreatedAt => GSI1SK,
        Sort::UpdatedAt => "S_updated_at",
        Sort::Name => "S_name",
        Sort::FirstName => "S_first_name",
        Sort::MiddleName => "S_middle_name",
        Sort::LastName => "S_last_name",
        Sort::Enabled => "S_enabled",
        Sort::Id => "S_id",
    }
}

/// The index of profiles by email address.
pub const BY_EMAIL: &str = "ByEmail";
pub const EMAIL_PK: &str = "EMAILPK";

/// The `ByEmail` partition of one address in a tenant.
pub fn email_partition(tenant: &TenantId, email: &str) -> AttributeValue {
    s(format!("T#{tenant}#EMAIL#{email}"))
}

/// The exclusive start key of a page of the `sort` index that resumes after profile `id`
/// whose sort key there is `sort_value`.
pub fn list_start_key(tenant: &TenantId, sort: Sort, id: &ProfileId, sort_value: &str) -> Item {
    let mut keys = profile_key(tenant, id);
    keys.insert(GSI1PK.to_owned(), list_partition(tenant));
    keys.insert(sort_attribute(sort).to_owned(), s(sort_value.to_owned()));
    keys
}

/// The index of profiles by owner (the principal that created them).
pub const BY_OWNER: &str = "ByOwner";
pub const OWNER_PK: &str = "OWNERPK";

/// The `ByOwner` partition of one principal's profiles in a tenant. (A tenant id has no `#`,
/// so whatever the principal holds, the tenant part cannot be confused.)
pub fn owner_partition(tenant: &TenantId, owner: &PrincipalId) -> AttributeValue {
    s(format!("T#{tenant}#OWNER#{owner}"))
}

/// The exclusive start key of a page of a partition of `ByEmail` or `ByOwner` (both sorted
/// by creation): `pk_name` is that index's partition key attribute, `pk` its value.
pub fn created_start_key(
    tenant: &TenantId,
    pk_name: &str,
    pk: AttributeValue,
    id: &ProfileId,
    sort_value: &str,
) -> Item {
    let mut keys = profile_key(tenant, id);
    keys.insert(pk_name.to_owned(), pk);
    keys.insert(GSI1SK.to_owned(), s(sort_value.to_owned()));
    keys
}

/// The item that names a principal's primary profile (`/profiles/me`), in its attribute
/// [`GUARD_OWNER`]. It lives outside every profile's partition, so moving the mark is one
/// transaction over the pointer and the two profiles.
pub fn primary_pointer(tenant: &TenantId, owner: &PrincipalId) -> Item {
    HashMap::from([
        (PK.to_owned(), owner_partition(tenant, owner)),
        (SK.to_owned(), s(PRIMARY_SK.to_owned())),
    ])
}

const PRIMARY_SK: &str = "PRIMARY";

/// The idempotency record of a key, by its scope's digest (`idempotency::Claim::scope`).
pub fn idempotency_record(tenant: &TenantId, scope: &str) -> Item {
    HashMap::from([
        (PK.to_owned(), s(format!("T#{tenant}#IDEM#{scope}"))),
        (SK.to_owned(), s(IDEMPOTENCY_SK.to_owned())),
    ])
}

const IDEMPOTENCY_SK: &str = "IDEMPOTENCY";

/// The primary key of a contact item.
pub fn contact_key(tenant: &TenantId, profile: &ProfileId, contact: &ContactId) -> Item {
    HashMap::from([
        (PK.to_owned(), profile_partition(tenant, profile)),
        (SK.to_owned(), s(format!("{CONTACT_SK_PREFIX}{contact}"))),
    ])
}

/// What an item of a profile's partition is, by its sort key.
pub enum PartitionItem {
    Profile,
    Contact,
    Other,
}

pub fn classify(item: &Item) -> PartitionItem {
    match item.get(SK) {
        Some(AttributeValue::S(sk)) if sk == PROFILE_SK => PartitionItem::Profile,
        Some(AttributeValue::S(sk)) if sk.starts_with(CONTACT_SK_PREFIX) => PartitionItem::Contact,
        _ => PartitionItem::Other,
    }
}

/// The primary key (`PK`, `SK`) of an item.
pub fn key_of(item: &Item) -> Item {
    [PK, SK]
        .into_iter()
        .filter_map(|k| item.get(k).map(|v| (k.to_owned(), v.clone())))
        .collect()
}

/// The profile id in a profile partition key (`T#<tenant>#P#<id>`).
pub fn profile_id_of(pk: &str) -> Option<ProfileId> {
    pk.rsplit_once("#P#")
        .and_then(|(_, id)| ProfileId::parse(id))
}

/// The guard key of a slug given as text (a list filter).
pub fn slug_guard_of(tenant: &TenantId, slug: &str) -> Item {
    guard(format!("T#{tenant}#SLUG#{slug}"))
}

/// The guard key of an external id given as text (a list filter).
pub fn external_id_guard_of(tenant: &TenantId, external_id: &str) -> Item {
    guard(format!("T#{tenant}#EXT#{external_id}"))
}

fn guard(pk: String) -> Item {
    HashMap::from([
        (PK.to_owned(), s(pk)),
        (SK.to_owned(), s(GUARD_SK.to_owned())),
    ])
}

/// The key of the guard that keeps a slug unique within a tenant.
pub fn slug_guard(tenant: &TenantId, slug: &Slug) -> Item {
    slug_guard_of(tenant, slug.as_str())
}

/// The key of the guard that keeps an external id unique within a tenant.
pub fn external_id_guard(tenant: &TenantId, external_id: &Name) -> Item {
    external_id_guard_of(tenant, external_id.as_str())
}

// API keys (`crate::apikeys`, stored by `super::apikeys`). Two items per key, written and revoked together:
//
// | item | PK | SK |
// |---|---|---|
// | API key, by hash | `APIKEY#<hex SHA-256 of the key>` | `APIKEY` |
// | API key, in its tenant's list | `T#<tenant>#APIKEYS` | `<key_id>` |
//
// The first is what the authorizer reads (one GetItem by the presented key's hash); the
// second lists a tenant's keys and finds a key by id (it also holds the hash). Neither holds
// the key itself.

const API_KEY_HASH_PREFIX: &str = "APIKEY#";
const API_KEY_SK: &str = "APIKEY";

/// The item of an API key addressed by its hash (`hash_hex`: lowercase hex SHA-256).
pub fn api_key_by_hash(hash_hex: &str) -> Item {
    HashMap::from([
        (PK.to_owned(), s(format!("{API_KEY_HASH_PREFIX}{hash_hex}"))),
        (SK.to_owned(), s(API_KEY_SK.to_owned())),
    ])
}

/// The hash in the partition key of an [`api_key_by_hash`] item.
pub fn api_key_hash_of(pk: &str) -> Option<&str> {
    pk.strip_prefix(API_KEY_HASH_PREFIX)
}

/// The partition that lists a tenant's API keys.
pub fn api_keys_partition(tenant: &TenantId) -> AttributeValue {
    s(format!("T#{tenant}#APIKEYS"))
}

/// The item of one API key in its tenant's list.
pub fn api_key_in_tenant(tenant: &TenantId, key_id: &str) -> Item {
    HashMap::from([
        (PK.to_owned(), api_keys_partition(tenant)),
        (SK.to_owned(), s(key_id.to_owned())),
    ])
}

/// A rate limit's theoretical arrival time (ms since the epoch, `crate::store::ratelimit`).
pub const RATE_TAT: &str = "tat";

/// The item holding one caller's rate limit (`caller`: a digest naming the caller).
pub fn rate_limit(tenant: &TenantId, caller: &str) -> Item {
    HashMap::from([
        (PK.to_owned(), s(format!("T#{tenant}#RATE#{caller}"))),
        (SK.to_owned(), s("RATE".to_owned())),
    ])
}
