//! The table's schema: every key format (`PK`/`SK`, the indexes' keys) and every attribute
//! name an expression spells lives here and nowhere else.
//!
//! | item | PK | SK |
//! |---|---|---|
//! | profile | `T#<tenant>#P#<id>` | `PROFILE` |
//! | contact | `T#<tenant>#P#<id>` | `CONTACT#<contact_id>` |
//! | slug guard | `T#<tenant>#SLUG#<slug>` | `GUARD` |
//! | external id guard | `T#<tenant>#EXT#<external_id>` | `GUARD` |
//! | primary-profile pointer | `T#<tenant>#OWNER#<principal>` | `PRIMARY` |
//! | idempotency record | `T#<tenant>#IDEM#<scope digest>` | `IDEMPOTENCY` |
//! | a JWT caller's rate limit | `T#<tenant>#RATE#<caller digest>` | `RATE` |
//! | a tenant's list layout | `T#<tenant>#LAYOUT` | `LAYOUT` |
//! | a bulk import or export | `T#<tenant>#JOB#<id>` | `JOB` |
//!
//! A profile and its contacts share one partition, so one Query reads them all and a
//! delete finds everything to remove. The list indexes are sparse (only profiles carry their
//! keys), keys-only, and partitioned by tenant and shard: a profile carries `LPK` =
//! `T#<tenant>#L#<count>#<shard>` (its tenant's layout of `count` shards, `shard` =
//! [`shard_of`] its id) and `OPK` = `T#<tenant>#O#<owner>#<count>#<shard>`. Every sort order
//! has its index on `LPK` with its own sort key attribute ([`sort_index`],
//! [`sort_attribute`]), always ending in the id so ties have one order; `List_email` orders a
//! tenant's profiles by email (sparse: only those with one), `List_owner` one principal's by
//! creation (`/profiles/all`). Listing is a Query of each shard's partition and one
//! BatchGetItem of the page's profiles, never a Scan (docs/listing.md).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::ids::{ContactId, PrincipalId, ProfileId, TenantId};
use crate::listing::Sort;
use crate::model::Profile;
use crate::validate::{Name, Slug};

pub type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
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

/// A tenant's list layout: the profiles' index partitions are spread over `count` shards.
pub type ShardCount = u32;

/// The list index partition key attribute: `T#<tenant>#L#<count>#<shard>`.
pub const LIST_PK: &str = "LPK";
/// The owner index partition key attribute: `T#<tenant>#O#<owner>#<count>#<shard>`.
pub const OWNER_PK: &str = "OPK";
/// The email index's sort key attribute: the address lower-cased, then the id.
pub const EMAIL_SK: &str = "S_email";

/// The shard of a tenant's list that a profile's index entries go to, among `count`: from
/// the id's random bits (the low 32 of a UUID v7), so profiles spread evenly whatever their
/// creation order.
pub fn shard_of(id: &ProfileId, count: ShardCount) -> u32 {
    (id.as_uuid().as_u128() as u32) % count.max(1)
}

/// One shard's partition of a tenant's list in the layout of `count` shards.
pub fn list_partition(tenant: &TenantId, count: ShardCount, shard: u32) -> AttributeValue {
    s(format!("T#{tenant}#L#{count}#{shard}"))
}

/// One shard's partition of one principal's profiles in a tenant (`List_owner`). (A tenant id
/// has no `#`, so whatever the principal holds, the tenant part cannot be confused.)
pub fn owner_list_partition(
    tenant: &TenantId,
    owner: &PrincipalId,
    count: ShardCount,
    shard: u32,
) -> AttributeValue {
    s(format!("T#{tenant}#O#{owner}#{count}#{shard}"))
}

/// Every key attribute a profile item carries in a layout of `count` shards: its primary key,
/// its list and owner partitions, one sort key per order, and its email's when it has one.
pub fn profile_item_keys(tenant: &TenantId, profile: &Profile, count: ShardCount) -> Item {
    let shard = shard_of(&profile.id, count);
    let mut keys = profile_key(tenant, &profile.id);
    keys.insert(LIST_PK.to_owned(), list_partition(tenant, count, shard));
    keys.insert(
        OWNER_PK.to_owned(),
        owner_list_partition(tenant, &profile.owner_id, count, shard),
    );
    for sort in Sort::ALL {
        keys.insert(sort_attribute(sort).to_owned(), s(sort.value(profile)));
    }
    if profile.fields.email.is_some() {
        keys.insert(EMAIL_SK.to_owned(), s(Sort::Email.value(profile)));
    }
    keys
}

/// The index that gives `sort`'s order (created and id share one: ids are UUID v7, made with
/// the creation time).
pub fn sort_index(sort: Sort) -> &'static str {
    match sort {
        Sort::CreatedAt | Sort::Id => "List_created",
        Sort::UpdatedAt => "List_updated_at",
        Sort::Name => "List_name",
        Sort::FirstName => "List_first_name",
        Sort::MiddleName => "List_middle_name",
        Sort::LastName => "List_last_name",
        Sort::Enabled => "List_enabled",
        Sort::Email => BY_EMAIL,
    }
}

/// The sort key attribute of [`sort_index`]`(sort)`.
pub fn sort_attribute(sort: Sort) -> &'static str {
    match sort {
        Sort::CreatedAt | Sort::Id => CREATED_SK,
        Sort::UpdatedAt => "S_updated_at",
        Sort::Name => "S_name",
        Sort::FirstName => "S_first_name",
        Sort::MiddleName => "S_middle_name",
        Sort::LastName => "S_last_name",
        Sort::Enabled => "S_enabled",
        Sort::Email => EMAIL_SK,
    }
}

/// The creation order's sort key attribute: `<created_at>#<id>`.
pub const CREATED_SK: &str = "S_created";

/// The index of a tenant's profiles by email address (`filter[email]`, `filter[email_prefix]`).
pub const BY_EMAIL: &str = "List_email";

/// The index of one principal's profiles by creation (`filter[owner_id]`, `/profiles/all`).
pub const BY_OWNER: &str = "List_owner";

/// The exclusive start key, in the index partition `pk` (its attribute `pk_name`), of a page
/// that resumes after profile `id` whose sort key (attribute `sort_name`) is `sort_value`.
pub fn start_key(
    tenant: &TenantId,
    pk_name: &str,
    pk: AttributeValue,
    sort_name: &str,
    id: &ProfileId,
    sort_value: &str,
) -> Item {
    let mut keys = profile_key(tenant, id);
    keys.insert(pk_name.to_owned(), pk);
    keys.insert(sort_name.to_owned(), s(sort_value.to_owned()));
    keys
}

/// The item that holds a tenant's list layout: its shard count, and while it changes, the
/// count it is moving to (`crate::store::layout`).
pub fn layout_item(tenant: &TenantId) -> Item {
    HashMap::from([
        (PK.to_owned(), s(format!("T#{tenant}#LAYOUT"))),
        (SK.to_owned(), s("LAYOUT".to_owned())),
    ])
}

/// The primary pointer's partition: one principal's in a tenant.
fn owner_partition(tenant: &TenantId, owner: &PrincipalId) -> AttributeValue {
    s(format!("T#{tenant}#OWNER#{owner}"))
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

/// The key of a bulk import's or export's item.
pub fn job_key(tenant: &TenantId, id: &crate::ids::JobId) -> Item {
    HashMap::from([
        (PK.to_owned(), s(format!("T#{tenant}#JOB#{id}"))),
        (SK.to_owned(), s("JOB".to_owned())),
    ])
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
