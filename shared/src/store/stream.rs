//! The table's stream read back: what an item image of a stream record holds, in the model's
//! terms (a tenant's profile, or one of its contacts), and nothing for every other item
//! (guards, primary pointers, idempotency records, rate limits, layouts, API keys). The key
//! scheme stays in `schema`; this is its one reader for images.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::schema::{self, Item, PartitionItem};
use super::{StoreError, from_item, profiles};
use crate::ids::{ProfileId, TenantId};
use crate::model::{Contact, Profile};

/// What an item image is, when it is a profile or a contact.
#[derive(Clone, Debug, PartialEq)]
pub enum Stored {
    Profile(Box<Profile>),
    Contact {
        profile: ProfileId,
        contact: Contact,
    },
}

/// A profile or contact image, with its tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub tenant: TenantId,
    pub stored: Stored,
}

impl Image {
    /// The profile the image belongs to: itself, or the contact's.
    pub fn profile_id(&self) -> ProfileId {
        match &self.stored {
            Stored::Profile(p) => p.id,
            Stored::Contact { profile, .. } => *profile,
        }
    }
}

/// Whether a record with these keys is about a profile or a contact: the rest make no event
/// and need no decoding.
pub fn is_profile_or_contact(keys: &Item) -> bool {
    !matches!(schema::classify(keys), PartitionItem::Other) && partition_of(keys).is_some()
}

/// The tenant and profile whose partition the item's `PK` names (`T#<tenant>#P#<id>`).
fn partition_of(item: &Item) -> Option<(TenantId, ProfileId)> {
    let pk = item.get(schema::PK)?.as_s().ok()?;
    let (tenant, id) = pk.strip_prefix("T#")?.rsplit_once("#P#")?;
    let parsed = (TenantId::new(tenant).ok()?, ProfileId::parse(id)?);
    (schema::profile_partition(&parsed.0, &parsed.1)
        .as_s()
        .ok()?
        == pk)
        .then_some(parsed)
}

/// The profile or contact an image holds; `None` for any other item. An image that is a
/// profile's or a contact's by its keys but does not decode is an error: the stream holds
/// something the API never wrote.
pub fn image_of(item: Item) -> Result<Option<Image>, StoreError> {
    let Some((tenant, profile)) = partition_of(&item) else {
        return Ok(None);
    };
    let stored = match schema::classify(&item) {
        PartitionItem::Profile => Stored::Profile(Box::new(profiles::decode(item)?.profile)),
        PartitionItem::Contact => Stored::Contact {
            profile,
            contact: from_item("decode contact image", item)?,
        },
        PartitionItem::Other => return Ok(None),
    };
    Ok(Some(Image { tenant, stored }))
}

/// An item image in the stream's JSON form (`{"S": "..."}` per attribute, as Lambda passes
/// it), as the SDK's item.
pub fn item_of_json(image: serde_json::Value) -> Result<Item, StoreError> {
    let item: serde_dynamo::Item =
        serde_json::from_value(image).map_err(|e| StoreError::backend("decode stream image", e))?;
    let item: HashMap<String, AttributeValue> = item.into();
    Ok(item)
}
