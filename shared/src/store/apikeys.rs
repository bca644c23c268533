//! API key records in the table (`crate::apikeys` makes and checks the keys): two items per
//! key, written and revoked in one transaction, one addressed by the key's hash (what the
//! authorizer reads) and one in its tenant's partition (to list and revoke by id).

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::schema::{self, Item};
use super::{Store, StoreError, TxError, from_item, to_item};
use crate::auth::{ApiKeyRecord, Scopes};
use crate::ids::{PrincipalId, TenantId};
use crate::model::Timestamp;

/// How many times a revoke retries a transaction that collided with another.
const REVOKE_ATTEMPTS: usize = 4;

/// Both items' attributes (the tenant item also holds `key_hash`).
#[derive(Serialize, Deserialize)]
struct ApiKeyItem {
    key_id: String,
    tenant_id: String,
    principal_id: String,
    /// Space-separated scope names.
    scopes: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    created_at: Timestamp,
    revoked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<Timestamp>,
    usage_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_hash: Option<String>,
}

impl ApiKeyItem {
    fn of(record: &ApiKeyRecord, key_hash: Option<&str>) -> Self {
        Self {
            key_id: record.key_id.clone(),
            tenant_id: record.tenant.to_string(),
            principal_id: record.principal.to_string(),
            scopes: record.scopes.to_string(),
            name: record.name.clone(),
            created_at: record.created_at,
            revoked: record.revoked,
            revoked_at: record.revoked_at,
            usage_key: record.usage_key.clone(),
            key_hash: key_hash.map(str::to_owned),
        }
    }

    fn into_record(self) -> Result<ApiKeyRecord, StoreError> {
        let corrupt = |what: &str, why: String| {
            StoreError::backend("read API key", format!("key {}: {what} {why}", self.key_id))
        };
        let tenant = TenantId::new(&self.tenant_id).map_err(|e| corrupt("tenant_id", e))?;
        let principal =
            PrincipalId::new(&self.principal_id).map_err(|e| corrupt("principal_id", e))?;
        Ok(ApiKeyRecord {
            scopes: Scopes::from_names(self.scopes.split(' ')),
            key_id: self.key_id,
            tenant,
            principal,
            name: self.name,
            created_at: self.created_at,
            revoked: self.revoked,
            revoked_at: self.revoked_at,
            usage_key: self.usage_key,
        })
    }
}

/// What revoking a key by its id found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// The tenant has the key, and it is revoked now (or already was).
    Yes,
    /// The tenant has no key by that id.
    NoSuchKey,
}

impl Store {
    /// Stores a new key's two items, under the key's hash (lowercase hex SHA-256) and in its
    /// tenant's list. `false` when either is taken already (nothing is written then).
    pub async fn insert_api_key(
        &self,
        record: &ApiKeyRecord,
        hash: &str,
    ) -> Result<bool, StoreError> {
        let by_hash = to_item(
            "serialize API key",
            &ApiKeyItem::of(record, None),
            schema::api_key_by_hash(hash),
        )?;
        let in_tenant = to_item(
            "serialize API key",
            &ApiKeyItem::of(record, Some(hash)),
            schema::api_key_in_tenant(&record.tenant, &record.key_id),
        )?;
        let items = vec![
            self.put(by_hash, Some(schema::IS_NEW))?,
            self.put(in_tenant, Some(schema::IS_NEW))?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(reasons))
                if reasons.failed(Some(0)) || reasons.failed(Some(1)) || reasons.conflict() =>
            {
                Ok(false)
            }
            Err(TxError::Cancelled(reasons)) => Err(reasons.unexpected("insert API key")),
            Err(TxError::Failed(e)) => Err(e),
        }
    }

    /// The record stored under `hash`, with the hash its item is keyed by (for the caller to
    /// compare in constant time).
    pub async fn api_key_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<(String, ApiKeyRecord)>, StoreError> {
        let Some(item) = self.get_item(schema::api_key_by_hash(hash)).await? else {
            return Ok(None);
        };
        let stored_hash = match item.get(schema::PK) {
            Some(AttributeValue::S(pk)) => schema::api_key_hash_of(pk).unwrap_or_default(),
            _ => "",
        }
        .to_owned();
        let stored: ApiKeyItem = from_item("read API key", item)?;
        Ok(Some((stored_hash, stored.into_record()?)))
    }

    /// Every key record of `tenant` (revoked ones too), oldest first.
    pub async fn api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let items = self
            .partition_items(schema::api_keys_partition(tenant))
            .await?;
        let mut records = items
            .into_iter()
            .map(|item| from_item::<ApiKeyItem>("read API key", item)?.into_record())
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by(|a, b| (a.created_at, &a.key_id).cmp(&(b.created_at, &b.key_id)));
        Ok(records)
    }

    /// Marks `tenant`'s key `key_id` revoked in both its items; revoking again changes
    /// nothing, not even `revoked_at`.
    pub async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        key_id: &str,
    ) -> Result<Revoked, StoreError> {
        let conflict = |e: &TxError| matches!(e, TxError::Cancelled(r) if r.conflict());
        let attempt = || self.revoke_once(tenant, key_id);
        match crate::retry::retrying(REVOKE_ATTEMPTS, conflict, attempt).await {
            Ok(revoked) => Ok(revoked),
            Err(TxError::Cancelled(reasons)) if reasons.conflict() => Err(StoreError::unavailable(
                format!("revoke API key {key_id}: kept colliding with other writes"),
            )),
            // Items are never deleted, so a failed condition means a damaged pair: say so.
            Err(TxError::Cancelled(reasons))
                if reasons.failed(Some(0)) || reasons.failed(Some(1)) =>
            {
                let cause = format!("key {key_id}: one of its two items is missing");
                Err(StoreError::backend("revoke API key", cause))
            }
            Err(TxError::Cancelled(reasons)) => Err(reasons.unexpected("revoke API key")),
            Err(TxError::Failed(e)) => Err(e),
        }
    }

    /// One attempt of [`Store::revoke_api_key`]: read the key, revoke both its items.
    async fn revoke_once(&self, tenant: &TenantId, key_id: &str) -> Result<Revoked, TxError> {
        let in_tenant = schema::api_key_in_tenant(tenant, key_id);
        let Some(item) = self
            .get_item(in_tenant.clone())
            .await
            .map_err(TxError::Failed)?
        else {
            return Ok(Revoked::NoSuchKey);
        };
        let stored: ApiKeyItem = from_item("read API key", item).map_err(TxError::Failed)?;
        let Some(hash) = stored.key_hash.as_deref() else {
            let cause = format!("key {key_id} has no key_hash");
            return Err(TxError::Failed(StoreError::backend(
                "revoke API key",
                cause,
            )));
        };
        let now = Timestamp::now();
        let items = vec![
            self.revoke_update(in_tenant, &now)
                .map_err(TxError::Failed)?,
            self.revoke_update(schema::api_key_by_hash(hash), &now)
                .map_err(TxError::Failed)?,
        ];
        self.transact(items).await.map(|()| Revoked::Yes)
    }

    fn revoke_update(&self, key: Item, now: &Timestamp) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("SET #revoked = :yes, #at = if_not_exists(#at, :now)")
            .condition_expression(schema::EXISTS)
            .expression_attribute_names("#revoked", schema::REVOKED)
            .expression_attribute_names("#at", schema::REVOKED_AT)
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":now", AttributeValue::S(now.to_string()))
            .build()
            .map_err(|e| StoreError::backend("build update", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}
