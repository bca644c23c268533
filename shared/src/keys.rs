//! The table's key scheme: every `PK`/`SK`/GSI key format lives here and nowhere else.
//!
//! | item | PK | SK | GSI1PK / GSI1SK |
//! |---|---|---|---|
//! | profile | `T#<tenant>#P#<id>` | `PROFILE` | `T#<tenant>#PROFILES` / `<created_at>#<id>` |
//! | contact | `T#<tenant>#P#<id>` | `CONTACT#<contact_id>` | — |
//! | slug guard | `T#<tenant>#SLUG#<slug>` | `GUARD` | — |
//! | external id guard | `T#<tenant>#EXT#<external_id>` | `GUARD` | — |
//!
//! A profile and its contacts share one partition, so one Query reads them all and a
//! delete finds everything to remove. GSI1 is sparse (only profiles carry its keys) and
//! partitioned by tenant: listing is a Query, never a Scan. Further sort orders get
//! further indexes (`GSI2`, ...) with the same partition key and their own sort key.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::auth::TenantId;
use crate::model::{Profile, ProfileId};
use crate::validate::{Name, Slug};

pub type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
/// The attribute of a guard that names the profile holding the unique value.
pub const GUARD_OWNER: &str = "profile_id";

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

/// The list index's sort key of a profile: creation time, tie-broken by id.
pub fn list_sort_key(profile: &Profile) -> String {
    format!("{}#{}", profile.created_at, profile.id)
}

/// Every key attribute a profile item carries: its primary key and its index keys.
pub fn profile_item_keys(tenant: &TenantId, profile: &Profile) -> Item {
    let mut keys = profile_key(tenant, &profile.id);
    keys.insert(GSI1PK.to_owned(), list_partition(tenant));
    keys.insert(GSI1SK.to_owned(), s(list_sort_key(profile)));
    keys
}

/// The exclusive start key of a list page that resumes after `id` at `sort_key`.
pub fn list_start_key(tenant: &TenantId, id: &ProfileId, sort_key: &str) -> Item {
    let mut keys = profile_key(tenant, id);
    keys.insert(GSI1PK.to_owned(), list_partition(tenant));
    keys.insert(GSI1SK.to_owned(), s(sort_key.to_owned()));
    keys
}

/// The primary key of a contact item.
pub fn contact_key(tenant: &TenantId, profile: &ProfileId, contact: &uuid::Uuid) -> Item {
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

/// The key of the guard that keeps a slug unique within a tenant.
pub fn slug_guard(tenant: &TenantId, slug: &Slug) -> Item {
    HashMap::from([
        (
            PK.to_owned(),
            s(format!("T#{tenant}#SLUG#{}", slug.as_str())),
        ),
        (SK.to_owned(), s(GUARD_SK.to_owned())),
    ])
}

/// The key of the guard that keeps an external id unique within a tenant.
pub fn external_id_guard(tenant: &TenantId, external_id: &Name) -> Item {
    HashMap::from([
        (
            PK.to_owned(),
            s(format!("T#{tenant}#EXT#{}", external_id.as_str())),
        ),
        (SK.to_owned(), s(GUARD_SK.to_owned())),
    ])
}
