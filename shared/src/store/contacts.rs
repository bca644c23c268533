//! Contacts in the table: each contact write is one transaction with its profile's contact
//! index, so uniqueness of values and the per-profile limit hold under any race.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure, Update};

use super::schema::{self, Item};
use super::{Idempotent, Store, StoreError, TxError, to_item};
use crate::ids::{ProfileId, TenantId};
use crate::model::{Contact, ContactValue, MAX_CONTACTS};

/// A change to one contact of a profile.
#[derive(Clone, Copy)]
pub enum ContactWrite<'a> {
    /// A new contact; with `idem`, its idempotency record commits in the same transaction.
    Create(&'a Contact, Option<Idempotent<'a, Contact>>),
    Update {
        old: &'a Contact,
        new: &'a Contact,
    },
    Delete(&'a Contact),
}

impl Store {
    /// A contact item: the contact and its key in its profile's partition.
    pub(super) fn contact_item(
        &self,
        tenant: &TenantId,
        profile: &ProfileId,
        contact: &Contact,
    ) -> Result<Item, StoreError> {
        let key = schema::contact_key(tenant, profile, &contact.id);
        to_item("serialize contact", contact, key)
    }

    /// Writes one contact change in one transaction with its profile's contact index:
    /// the index entry of its value is added, moved or removed, and the profile's version
    /// bumped, on the conditions that the profile exists, the value is not already another
    /// contact's, and (for a new one) the profile has fewer than [`MAX_CONTACTS`]. Concurrent
    /// writes to one profile's contacts serialise on that item, so neither rule can be beaten
    /// by a race, and a contact can never be written next to a deleted profile.
    ///
    /// An update or delete holds to `old.version`: `VersionChanged` when it has changed.
    pub async fn write_contact(
        &self,
        tenant: &TenantId,
        profile: &ProfileId,
        write: ContactWrite<'_>,
    ) -> Result<(), StoreError> {
        let (add, remove) = match write {
            ContactWrite::Create(c, _) => (Some(c), None),
            ContactWrite::Update { old, new } if old.value != new.value => (Some(new), Some(old)),
            ContactWrite::Update { .. } => (None, None),
            ContactWrite::Delete(c) => (None, Some(c)),
        };
        let index_update = self.index_update(
            tenant,
            profile,
            add,
            remove,
            matches!(write, ContactWrite::Create(..)),
        )?;
        let contact_op = match write {
            ContactWrite::Create(c, _) => {
                self.put(self.contact_item(tenant, profile, c)?, Some(schema::IS_NEW))?
            }
            ContactWrite::Update { old, new } => {
                self.put_over(self.contact_item(tenant, profile, new)?, old.version)?
            }
            ContactWrite::Delete(old) => self.delete(
                schema::contact_key(tenant, profile, &old.id),
                Some(old.version),
            )?,
        };
        let mut items = vec![index_update, contact_op];
        let idem = match write {
            ContactWrite::Create(c, Some(idem)) => {
                items.push(self.idempotency_put(tenant, idem, c)?);
                Some(idem)
            }
            _ => None,
        };
        let reasons = match self.transact_retrying(items).await {
            Ok(()) => return Ok(()),
            Err(TxError::Failed(e)) => return Err(e),
            Err(TxError::Cancelled(reasons)) => reasons,
        };
        // A used key first: the value may be "taken" only because that request committed.
        if let Some(idem) = idem
            && reasons.failed(Some(2))
        {
            return Err(self.used_key(tenant, idem.claim, &reasons, 2).await);
        }
        if reasons.failed(Some(0)) {
            let stored = match reasons.item(0) {
                Some(item) => Some(item.clone()),
                None => self.get_item(schema::profile_key(tenant, profile)).await?,
            };
            return Err(index_failure(stored.as_ref(), add.map(|c| &c.value)));
        }
        if reasons.failed(Some(1)) {
            return Err(StoreError::VersionChanged);
        }
        Err(reasons.unexpected("write contact"))
    }

    /// The UpdateItem of a profile that adds `add`'s and removes `remove`'s index entry and
    /// bumps its version; `create` also holds the profile under [`MAX_CONTACTS`].
    fn index_update(
        &self,
        tenant: &TenantId,
        profile: &ProfileId,
        add: Option<&Contact>,
        remove: Option<&Contact>,
        create: bool,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(schema::profile_key(tenant, profile)))
            .expression_attribute_names("#version", schema::VERSION)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let mut set = vec!["#version = #version + :one".to_owned()];
        let mut condition = vec![schema::EXISTS.to_owned()];
        let mut removes = Vec::new();
        if add.is_some() || remove.is_some() {
            update = update.expression_attribute_names("#ci", schema::CONTACT_INDEX);
        }
        if let Some(c) = add {
            update = update
                .expression_attribute_names("#new", c.value.fingerprint())
                .expression_attribute_values(":cid", AttributeValue::S(c.id.to_string()));
            set.push("#ci.#new = :cid".into());
            condition.push("attribute_not_exists(#ci.#new)".into());
        }
        if create {
            update = update
                .expression_attribute_values(":max", AttributeValue::N(MAX_CONTACTS.to_string()));
            condition.push("size(#ci) < :max".into());
        }
        if let Some(c) = remove {
            update = update.expression_attribute_names("#old", c.value.fingerprint());
            removes.push("#ci.#old");
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let update = update
            .update_expression(expression)
            .condition_expression(condition.join(" AND "))
            .build()
            .map_err(|e| StoreError::backend("build update", e))?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .update(update)
            .build())
    }
}

/// Why a contact write's condition on its profile failed, from the profile item as stored.
fn index_failure(profile: Option<&Item>, adding: Option<&ContactValue>) -> StoreError {
    let Some(profile) = profile else {
        return StoreError::ProfileMissing;
    };
    let index = profile
        .get(schema::CONTACT_INDEX)
        .and_then(|v| v.as_m().ok());
    if let Some(value) = adding {
        let holder = index
            .and_then(|m| m.get(&value.fingerprint()))
            .and_then(|v| v.as_s().ok());
        if let Some(holder) = holder {
            return StoreError::ContactExists {
                holder: holder.clone(),
            };
        }
    }
    StoreError::TooManyContacts
}
