//! Profiles in the table: the stored record (the domain [`Profile`] with its contact index and
//! index keys), reads of a profile and its partition, the create/update transaction with its
//! unique-value guards, the cascading delete, and the owner's primary pointer.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::schema::{self, Item, PartitionItem};
use super::{
    Idempotent, MAX_ITEM_BYTES, Reasons, Store, StoreError, TxError, Unique, from_item, to_item,
};
use crate::ids::{ContactId, PrincipalId, ProfileId, TenantId};
use crate::model::{Contact, Profile};
use crate::validate::{Name, Slug};

/// How many slugs are tried for a derived slug before giving up.
const SLUG_ATTEMPTS: u32 = 20;

/// A profile's contacts by [`crate::model::ContactValue::fingerprint`]: the record that keeps
/// contact values unique and their number bounded, in the item every contact write updates
/// (and so versions). Stored, never shown.
type ContactIndex = BTreeMap<String, ContactId>;

/// A profile item's attributes besides its keys.
#[derive(Serialize, Deserialize)]
struct ProfileRecord {
    #[serde(flatten)]
    profile: Profile,
    #[serde(default)]
    contact_index: ContactIndex,
}

/// A profile as read from the table, with what the store keeps beside it. A write computed
/// from it takes it back as its `old`, so what is stored but not shown carries over.
#[derive(Clone, Debug)]
pub struct StoredProfile {
    pub profile: Profile,
    contact_index: ContactIndex,
}

/// A profile's whole partition, read in one Query: the profile, its contacts, and the keys
/// of every other item there (what a delete removes with it).
#[derive(Debug)]
pub struct ProfilePartition {
    pub profile: Profile,
    pub contacts: Vec<Contact>,
    others: Vec<Item>,
}

/// What a profile write does to its owner's primary mark (`/profiles/me`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrimaryMark {
    /// Leave the mark where it is.
    Keep,
    /// Make the profile written its owner's primary, taking the mark from `previous` (the
    /// profile the pointer names now, as read), or claiming a free mark when `None`. If the
    /// pointer changed since it was read, the write fails with `VersionChanged`.
    Claim { previous: Option<ProfileId> },
}

/// Positions, in one transaction, of the writes whose condition can fail.
#[derive(Default)]
struct Plan {
    items: Vec<TransactWriteItem>,
    profile: usize,
    slug: Option<usize>,
    external_id: Option<usize>,
    primary: Option<usize>,
    idempotency: Option<usize>,
}

/// The profile id a guard or pointer item names.
pub(super) fn guard_owner(guard: &Item) -> Option<ProfileId> {
    guard
        .get(schema::GUARD_OWNER)
        .and_then(|v| v.as_s().ok())
        .and_then(|id| ProfileId::parse(id))
}

impl StoredProfile {
    /// What the store keeps beside the profile: its contacts' values.
    pub(super) fn contact_index(&self) -> &ContactIndex {
        &self.contact_index
    }

    /// Whether the profile has a contact of this value.
    pub fn has_contact(&self, value: &crate::model::ContactValue) -> bool {
        self.contact_index.contains_key(&value.fingerprint())
    }
}

pub(super) fn decode(item: Item) -> Result<StoredProfile, StoreError> {
    let record: ProfileRecord = from_item("decode profile", item)?;
    Ok(StoredProfile {
        profile: record.profile,
        contact_index: record.contact_index,
    })
}

/// A contact index of new contacts.
fn index_of(contacts: &[Contact]) -> ContactIndex {
    contacts
        .iter()
        .map(|c| (c.value.fingerprint(), c.id))
        .collect()
}

impl Store {
    /// The item a new profile without contacts is stored as in a list of `count` shards,
    /// for writing many at once (the bench seeds its large tenants with BatchWriteItem): the
    /// one stored shape.
    pub fn new_profile_item(
        &self,
        tenant: &TenantId,
        profile: &Profile,
        count: schema::ShardCount,
    ) -> Result<Item, StoreError> {
        self.profile_item(tenant, profile, ContactIndex::new(), count)
    }

    /// A profile item in a list of `count` shards: the record and every key it carries,
    /// within [`MAX_ITEM_BYTES`].
    pub(super) fn profile_item(
        &self,
        tenant: &TenantId,
        profile: &Profile,
        contact_index: ContactIndex,
        count: schema::ShardCount,
    ) -> Result<Item, StoreError> {
        let record = ProfileRecord {
            profile: profile.clone(),
            contact_index,
        };
        let keys = schema::profile_item_keys(tenant, profile, count);
        let item = to_item("serialize profile", &record, keys)?;
        if super::item_size(&item) > MAX_ITEM_BYTES {
            return Err(StoreError::TooLarge);
        }
        Ok(item)
    }

    fn guard(&self, key: Item, profile: &ProfileId) -> Result<TransactWriteItem, StoreError> {
        let mut item = key;
        item.insert(
            schema::GUARD_OWNER.to_owned(),
            AttributeValue::S(profile.to_string()),
        );
        self.put(item, Some(schema::IS_NEW))
    }

    /// Moves a unique value's guard when the value changed (`old` and `new` are the guards'
    /// keys, if any): deletes the old guard and claims the new one for `profile`. The new
    /// guard's position in `items`, when there is one.
    fn move_guard(
        &self,
        items: &mut Vec<TransactWriteItem>,
        old: Option<Item>,
        new: Option<Item>,
        profile: &ProfileId,
    ) -> Result<Option<usize>, StoreError> {
        if old == new {
            return Ok(None);
        }
        if let Some(key) = old {
            items.push(self.delete(key, None)?);
        }
        let Some(key) = new else {
            return Ok(None);
        };
        items.push(self.guard(key, profile)?);
        Ok(Some(items.len() - 1))
    }

    /// The transaction that writes `new` over `old` (or creates it) in a list of `count`
    /// shards, with its guards.
    fn plan(
        &self,
        tenant: &TenantId,
        old: Option<&StoredProfile>,
        new: &Profile,
        contacts: &[Contact],
        mark: PrimaryMark,
        count: schema::ShardCount,
    ) -> Result<Plan, StoreError> {
        let mut plan = Plan::default();
        let index = old.map_or_else(|| index_of(contacts), |o| o.contact_index.clone());
        let item = self.profile_item(tenant, new, index, count)?;
        plan.items.push(match old {
            None => self.put(item, Some(schema::IS_NEW))?,
            Some(old) => self.put_over(item, old.profile.version)?,
        });

        let old_fields = old.map(|o| &o.profile.fields);
        let slug_guard = |s: &Slug| schema::slug_guard(tenant, s);
        plan.slug = self.move_guard(
            &mut plan.items,
            old_fields.and_then(|f| f.slug.as_ref()).map(slug_guard),
            new.fields.slug.as_ref().map(slug_guard),
            &new.id,
        )?;
        let ext_guard = |e: &Name| schema::external_id_guard(tenant, e);
        plan.external_id = self.move_guard(
            &mut plan.items,
            old_fields
                .and_then(|f| f.external_id.as_ref())
                .map(ext_guard),
            new.fields.external_id.as_ref().map(ext_guard),
            &new.id,
        )?;
        for contact in contacts {
            let item = self.contact_item(tenant, &new.id, contact)?;
            plan.items.push(self.put(item, Some(schema::IS_NEW))?);
        }
        if let PrimaryMark::Claim { previous } = mark {
            plan.primary = Some(plan.items.len());
            plan.items.push(self.claim_primary(tenant, new, previous)?);
            if let Some(prev) = previous.filter(|p| *p != new.id) {
                plan.items.push(self.unmark_primary(tenant, &prev)?);
            }
        }
        Ok(plan)
    }

    /// Writes a new or changed profile (with a new profile's initial contacts), and moves
    /// its owner's primary mark as `mark` says. A profile without a slug gets one made from
    /// its name, with a numeric suffix while taken. An update whose `old` version is no
    /// longer current, or a claim of the mark that lost a race, is `VersionChanged`. With
    /// `idem`, its record commits in the same transaction; a key already used is `KeyUsed`.
    pub async fn write_profile(
        &self,
        tenant: &TenantId,
        old: Option<&StoredProfile>,
        mut new: Profile,
        contacts: &[Contact],
        mark: PrimaryMark,
        idem: Option<Idempotent<'_, Profile>>,
    ) -> Result<Profile, StoreError> {
        let derived = match new.fields.slug {
            Some(_) => None,
            None => new.derived_slug(),
        };
        let old_slug = old.and_then(|o| o.profile.fields.slug.clone());
        // Boxed: the SDK call's future would swell every write's own (debug builds
        // overflow a test thread's stack).
        let count = Box::pin(self.layout(tenant)).await?.writes();
        for attempt in 0..SLUG_ATTEMPTS {
            if let Some(base) = &derived {
                let candidate = match attempt {
                    0 => base.clone(),
                    1..10 => base.with_suffix(attempt + 1),
                    // Past the first few, sequential guesses keep colliding: jump at random.
                    _ => base.with_suffix(10 + (uuid::Uuid::now_v7().as_u128() % 999_990) as u32),
                };
                // A derived slug equal to the one the profile already holds is its own.
                new.fields.slug = Some(match &old_slug {
                    Some(s) if s.as_str() == base.as_str() => s.clone(),
                    _ => candidate,
                });
            }
            let mut plan = self.plan(tenant, old, &new, contacts, mark, count)?;
            if let Some(idem) = idem {
                plan.idempotency = Some(plan.items.len());
                plan.items.push(self.idempotency_put(tenant, idem, &new)?);
            }
            let reasons = match self.transact_retrying(plan.items).await {
                Ok(()) => return Ok(new),
                Err(TxError::Failed(e)) => return Err(e),
                Err(TxError::Cancelled(reasons)) => reasons,
            };
            // A used key explains the cancellation first: the other conditions may have
            // failed only because that first request committed.
            if let (Some(at), Some(idem)) = (plan.idempotency, idem)
                && reasons.failed(Some(at))
            {
                return Err(self.used_key(tenant, idem.claim, &reasons, at).await);
            }
            if reasons.failed(plan.primary) || (old.is_some() && reasons.failed(Some(plan.profile)))
            {
                return Err(StoreError::VersionChanged);
            }
            if reasons.failed(Some(plan.profile)) {
                return Err(StoreError::IdInUse);
            }
            if reasons.failed(plan.external_id) {
                let holder = self
                    .external_id_holder(tenant, &reasons, plan.external_id, &new)
                    .await?;
                return Err(StoreError::Taken {
                    what: Unique::ExternalId,
                    holder,
                });
            }
            if reasons.failed(plan.slug) {
                if derived.is_some() {
                    continue;
                }
                return Err(StoreError::Taken {
                    what: Unique::Slug,
                    holder: None,
                });
            }
            return Err(reasons.unexpected("write profile"));
        }
        Err(StoreError::NoFreeSlug)
    }

    /// The profile that holds `new`'s external id: from the failed guard as the cancellation
    /// returned it, else read.
    async fn external_id_holder(
        &self,
        tenant: &TenantId,
        reasons: &Reasons,
        at: Option<usize>,
        new: &Profile,
    ) -> Result<Option<ProfileId>, StoreError> {
        if let Some(holder) = at.and_then(|i| reasons.item(i)).and_then(guard_owner) {
            return Ok(Some(holder));
        }
        let Some(ext) = &new.fields.external_id else {
            return Ok(None);
        };
        self.external_id_holder_of(tenant, ext.as_str()).await
    }

    /// Writes `stored` again in a list of `count` shards (its index keys in that layout),
    /// conditional on its version: `VersionChanged` when the API wrote it meanwhile.
    pub(super) async fn rewrite(
        &self,
        tenant: &TenantId,
        stored: &StoredProfile,
        count: schema::ShardCount,
    ) -> Result<(), StoreError> {
        let item =
            self.profile_item(tenant, &stored.profile, stored.contact_index.clone(), count)?;
        let put = self.put_over(item, stored.profile.version)?;
        match self.transact(vec![put]).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(reasons)) if reasons.failed(Some(0)) => {
                Err(StoreError::VersionChanged)
            }
            Err(TxError::Cancelled(reasons)) => Err(reasons.unexpected("rewrite profile")),
            Err(TxError::Failed(e)) => Err(e),
        }
    }

    /// A profile alone, read consistently.
    pub async fn get(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
    ) -> Result<Option<StoredProfile>, StoreError> {
        self.get_item(schema::profile_key(tenant, id))
            .await?
            .map(decode)
            .transpose()
    }

    /// A profile with its contacts and the keys of its partition, in one Query.
    pub async fn partition(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
    ) -> Result<Option<ProfilePartition>, StoreError> {
        let mut profile = None;
        let mut contacts = Vec::new();
        let mut others = Vec::new();
        let items = self
            .partition_items(schema::profile_partition(tenant, id))
            .await?;
        for item in items {
            match schema::classify(&item) {
                PartitionItem::Profile => {
                    profile = Some(decode(item)?.profile);
                    continue;
                }
                PartitionItem::Contact => {
                    others.push(schema::key_of(&item));
                    contacts.push(from_item("decode contact", item)?);
                }
                PartitionItem::Other => others.push(schema::key_of(&item)),
            }
        }
        Ok(profile.map(|profile| ProfilePartition {
            profile,
            contacts,
            others,
        }))
    }

    /// Deletes a profile with everything in its partition, its guards and (when it is the
    /// primary) its owner's pointer, in one transaction conditional on the version read:
    /// `VersionChanged` when anything in the partition changed since.
    pub async fn delete_profile(
        &self,
        tenant: &TenantId,
        read: ProfilePartition,
    ) -> Result<(), StoreError> {
        let profile = &read.profile;
        let mut deletes = vec![self.delete(
            schema::profile_key(tenant, &profile.id),
            Some(profile.version),
        )?];
        for key in read.others.iter().cloned() {
            deletes.push(self.delete(key, None)?);
        }
        if let Some(s) = &profile.fields.slug {
            deletes.push(self.delete(schema::slug_guard(tenant, s), None)?);
        }
        if let Some(e) = &profile.fields.external_id {
            deletes.push(self.delete(schema::external_id_guard(tenant, e), None)?);
        }
        if profile.is_primary {
            // The owner has no primary until they mark another (or create their next one).
            let pointer = schema::primary_pointer(tenant, &profile.owner_id);
            deletes.push(self.delete(pointer, None)?);
        }
        match self.transact_retrying(deletes).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(reasons)) if reasons.failed(Some(0)) => {
                Err(StoreError::VersionChanged)
            }
            Err(TxError::Cancelled(reasons)) => Err(reasons.unexpected("delete profile")),
            Err(TxError::Failed(e)) => Err(e),
        }
    }

    /// The id of a principal's primary profile, from its pointer.
    pub async fn primary_of(
        &self,
        tenant: &TenantId,
        principal: &PrincipalId,
    ) -> Result<Option<ProfileId>, StoreError> {
        let pointer = schema::primary_pointer(tenant, principal);
        Ok(self.get_item(pointer).await?.as_ref().and_then(guard_owner))
    }

    /// Points the owner's primary pointer at `new`, on the condition that it still names
    /// `previous` (or does not exist yet).
    fn claim_primary(
        &self,
        tenant: &TenantId,
        new: &Profile,
        previous: Option<ProfileId>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = schema::primary_pointer(tenant, &new.owner_id);
        item.insert(
            schema::GUARD_OWNER.to_owned(),
            AttributeValue::S(new.id.to_string()),
        );
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = match previous {
            None => put.condition_expression(schema::IS_NEW),
            Some(prev) => put
                .condition_expression("#owner = :previous")
                .expression_attribute_names("#owner", schema::GUARD_OWNER)
                .expression_attribute_values(":previous", AttributeValue::S(prev.to_string())),
        };
        let put = put
            .build()
            .map_err(|e| StoreError::backend("build put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Takes the primary mark off a profile: its representation changes, so its version too.
    fn unmark_primary(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(schema::profile_key(tenant, id)))
            .update_expression("SET #primary = :no, #version = #version + :one")
            .condition_expression(schema::EXISTS)
            .expression_attribute_names("#primary", schema::IS_PRIMARY)
            .expression_attribute_names("#version", schema::VERSION)
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .map_err(|e| StoreError::backend("build update", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

    use super::*;
    use crate::model::Timestamp;

    /// The attribute names the store's expressions spell (`schema`) are the names the
    /// record serializes to: a rename on either side fails here, not in production.
    #[test]
    fn the_records_attributes_are_the_names_the_expressions_use() {
        let now = Timestamp::now();
        let record = ProfileRecord {
            profile: Profile {
                id: ProfileId::generate(),
                fields: Default::default(),
                photo: None,
                owner_id: PrincipalId::new("o").unwrap(),
                created_at: now,
                updated_at: now,
                version: 7,
                is_primary: true,
            },
            contact_index: [("email:a@b.co".to_owned(), uuid::Uuid::nil().into())].into(),
        };
        let item: Item = serde_dynamo::to_item(&record).unwrap();
        assert_eq!(item[schema::VERSION], AttributeValue::N("7".into()));
        assert_eq!(item[schema::IS_PRIMARY], AttributeValue::Bool(true));
        assert!(
            item[schema::CONTACT_INDEX]
                .as_m()
                .unwrap()
                .contains_key("email:a@b.co")
        );
        let back = decode(item).unwrap();
        assert_eq!(back.profile, record.profile);
        assert_eq!(back.contact_index, record.contact_index);
    }
}
