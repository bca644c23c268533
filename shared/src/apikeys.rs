//! API keys: made, hashed, stored, looked up and revoked.
//!
//! A key is `prof_` and 43 characters of base64url: 32 bytes from the operating system's
//! CSPRNG. The prefix tells a key from a JWT in `Authorization: Bearer` and makes a leaked key
//! easy to recognise (secret scanners). The key is shown once, when made; the table holds only
//! its SHA-256 hash (a 256-bit random key needs no slow password hash: there is nothing to
//! guess). Each key has two items ([`crate::keys`]): one addressed by the hash, which the
//! authorizer reads with one GetItem, and one in its tenant's partition, to list the tenant's
//! keys and revoke one by its id. Both are written, and revoked, in one transaction.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::{PrincipalId, Scopes, TenantId};
use crate::config::Secret;
use crate::error::ApiError;
use crate::keys::{self, Item};
use crate::model::Timestamp;
use crate::store::Store;

/// What every API key starts with.
pub const PREFIX: &str = "prof_";
/// Random bytes in a key.
const SECRET_BYTES: usize = 32;
/// A key's length: the prefix and 32 bytes in unpadded base64 (43 characters).
pub const KEY_LEN: usize = PREFIX.len() + (SECRET_BYTES * 4).div_ceil(3);
/// Random bytes in a key id (shown as twice as many hex digits).
const KEY_ID_BYTES: usize = 8;
/// A usage key is this and the key id: 22 characters, as API Gateway wants 20 or more.
const USAGE_KEY_PREFIX: &str = "usage-";
/// The longest name (label) of a key, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// How many fresh keys `create` tries when an id or hash is taken (never expected).
const CREATE_ATTEMPTS: usize = 3;
/// How many times `revoke` retries a transaction that collided with another.
const REVOKE_ATTEMPTS: usize = 4;

/// An API key's record: everything about a key but the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// A short random id (16 hex digits), shown in lists and used to revoke; not secret.
    pub key_id: String,
    pub tenant: TenantId,
    pub principal: PrincipalId,
    pub scopes: Scopes,
    /// An optional label (who or what the key is for).
    pub name: Option<String>,
    pub created_at: Timestamp,
    pub revoked: bool,
    pub revoked_at: Option<Timestamp>,
    /// The key's identifier in API Gateway's usage plan (`usageIdentifierKey`): requests are
    /// throttled per usage key. Not secret: callers cannot present it, the authorizer names it.
    pub usage_key: String,
}

/// Both items' attributes (the tenant item also holds `key_hash`).
#[derive(Serialize, Deserialize)]
struct Stored {
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

impl Stored {
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

    fn into_record(self) -> Result<ApiKeyRecord, ApiError> {
        let corrupt = |what: &str, why: String| {
            ApiError::internal("read API key", format!("key {}: {what} {why}", self.key_id))
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

fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal("OS random generator", e))?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The lowercase hex SHA-256 of a key: what the table holds instead of the key.
fn hash_hex(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Whether `key` has an API key's form: the prefix, then exactly 43 characters of canonical
/// unpadded base64url (32 bytes). Anything else is refused before the table is read.
pub fn is_well_formed(key: &str) -> bool {
    key.len() == KEY_LEN
        && key
            .strip_prefix(PREFIX)
            .and_then(|body| URL_SAFE_NO_PAD.decode(body).ok())
            .is_some_and(|bytes| bytes.len() == SECRET_BYTES)
}

/// Whether `key_id` has a key id's form (16 lowercase hex digits).
pub fn is_key_id(key_id: &str) -> bool {
    key_id.len() == KEY_ID_BYTES * 2
        && key_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_name(name: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(name) = name.map(str::trim) else {
        return Ok(None);
    };
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::bad_field(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} characters, none of them control characters"),
        ));
    }
    Ok(Some(name.to_owned()))
}

fn put_new(store: &Store, item: Item) -> Result<TransactWriteItem, ApiError> {
    let put = Put::builder()
        .table_name(store.table())
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(PK)")
        .build()
        .map_err(|e| ApiError::internal("build put", e))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn to_item(stored: &Stored, key: Item) -> Result<Item, ApiError> {
    let mut item: Item =
        serde_dynamo::to_item(stored).map_err(|e| ApiError::internal("serialize API key", e))?;
    item.extend(key);
    Ok(item)
}

/// The outcome of a transaction.
enum Tx {
    Done,
    /// A condition failed (the item exists, or does not).
    ConditionFailed,
    /// Another transaction on the same items won: worth retrying.
    Conflict,
}

async fn transact(store: &Store, items: Vec<TransactWriteItem>) -> Result<Tx, ApiError> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    let err = match store
        .client()
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
    {
        Ok(_) => return Ok(Tx::Done),
        Err(err) => err,
    };
    let context = DisplayErrorContext(&err).to_string();
    match err.into_service_error() {
        E::TransactionCanceledException(c) => {
            let codes: Vec<&str> = c
                .cancellation_reasons()
                .iter()
                .filter_map(|r| r.code())
                .collect();
            if codes.contains(&"ConditionalCheckFailed") {
                Ok(Tx::ConditionFailed)
            } else if codes.contains(&"TransactionConflict") {
                Ok(Tx::Conflict)
            } else {
                Err(ApiError::internal(
                    "API key transaction",
                    format!("cancelled: {codes:?}"),
                ))
            }
        }
        _ => Err(ApiError::internal("API key transaction", context)),
    }
}

/// Makes an API key for `principal` in `tenant` with `scopes` (at least one) and an optional
/// `name`, and stores its record. Returns the key, which exists nowhere else: show it once.
pub async fn create(
    store: &Store,
    tenant: &TenantId,
    principal: &PrincipalId,
    scopes: Scopes,
    name: Option<&str>,
) -> Result<(Secret, ApiKeyRecord), ApiError> {
    if scopes.is_empty() {
        return Err(ApiError::bad_field(
            "scopes",
            format!("a key needs at least one scope of {}", Scopes::all()),
        ));
    }
    let name = check_name(name)?;
    for _ in 0..CREATE_ATTEMPTS {
        let key = format!(
            "{PREFIX}{}",
            URL_SAFE_NO_PAD.encode(random_bytes::<SECRET_BYTES>()?)
        );
        let key_id = hex(&random_bytes::<KEY_ID_BYTES>()?);
        let record = ApiKeyRecord {
            usage_key: format!("{USAGE_KEY_PREFIX}{key_id}"),
            key_id,
            tenant: tenant.clone(),
            principal: principal.clone(),
            scopes,
            name: name.clone(),
            created_at: Timestamp::now(),
            revoked: false,
            revoked_at: None,
        };
        let hash = hash_hex(&key);
        let by_hash = to_item(&Stored::of(&record, None), keys::api_key_by_hash(&hash))?;
        let in_tenant = to_item(
            &Stored::of(&record, Some(&hash)),
            keys::api_key_in_tenant(tenant, &record.key_id),
        )?;
        let items = vec![put_new(store, by_hash)?, put_new(store, in_tenant)?];
        match transact(store, items).await? {
            Tx::Done => {
                tracing::info!(key_id = %record.key_id, tenant = %tenant, principal = %principal,
                    scopes = %scopes, "API key created");
                return Ok((Secret::new(key), record));
            }
            // A key id already used in this tenant (1 in 2^64): draw again.
            Tx::ConditionFailed | Tx::Conflict => continue,
        }
    }
    Err(ApiError::internal(
        "create API key",
        "no free key id after several attempts",
    ))
}

/// The record of the key `presented_key`, revoked or not (the caller decides), or `None` when
/// it is no key of ours. A malformed key is `None` without reading the table.
pub async fn lookup(store: &Store, presented_key: &str) -> Result<Option<ApiKeyRecord>, ApiError> {
    if !is_well_formed(presented_key) {
        return Ok(None);
    }
    let hash = hash_hex(presented_key);
    let Some(item) = store.get_item(keys::api_key_by_hash(&hash)).await? else {
        return Ok(None);
    };
    // The engine found the item by this hash; check it anyway, in constant time, so the
    // answer never depends on how much of a stored hash a guess matched.
    let stored_hash = match item.get(keys::PK) {
        Some(AttributeValue::S(pk)) => keys::api_key_hash_of(pk).unwrap_or_default(),
        _ => "",
    };
    if !bool::from(stored_hash.as_bytes().ct_eq(hash.as_bytes())) {
        return Ok(None);
    }
    let stored: Stored =
        serde_dynamo::from_item(item).map_err(|e| ApiError::internal("read API key", e))?;
    stored.into_record().map(Some)
}

async fn tenant_item(
    store: &Store,
    tenant: &TenantId,
    key_id: &str,
) -> Result<Option<Stored>, ApiError> {
    store
        .get_item(keys::api_key_in_tenant(tenant, key_id))
        .await?
        .map(|item| {
            serde_dynamo::from_item(item).map_err(|e| ApiError::internal("read API key", e))
        })
        .transpose()
}

/// Every key of `tenant` (revoked ones too), oldest first. Records only: never a key or hash.
pub async fn list(store: &Store, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, ApiError> {
    let mut records = Vec::new();
    let mut start = None;
    loop {
        let out = store
            .client()
            .query()
            .table_name(store.table())
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", keys::api_keys_partition(tenant))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| ApiError::internal("list API keys", DisplayErrorContext(&e)))?;
        for item in out.items.unwrap_or_default() {
            let stored: Stored =
                serde_dynamo::from_item(item).map_err(|e| ApiError::internal("read API key", e))?;
            records.push(stored.into_record()?);
        }
        start = out.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    records.sort_by(|a, b| (a.created_at, &a.key_id).cmp(&(b.created_at, &b.key_id)));
    Ok(records)
}

fn revoke_update(store: &Store, key: Item, now: &Timestamp) -> Result<TransactWriteItem, ApiError> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(key))
        .update_expression("SET revoked = :yes, revoked_at = if_not_exists(revoked_at, :now)")
        .condition_expression("attribute_exists(PK)")
        .expression_attribute_values(":yes", AttributeValue::Bool(true))
        .expression_attribute_values(":now", AttributeValue::S(now.to_string()))
        .build()
        .map_err(|e| ApiError::internal("build update", e))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Revokes `tenant`'s key `key_id`: from now on the authorizer refuses it. `true` when the
/// tenant has that key (now revoked; revoking again changes nothing, not even `revoked_at`),
/// `false` when it has none by that id.
pub async fn revoke(store: &Store, tenant: &TenantId, key_id: &str) -> Result<bool, ApiError> {
    if !is_key_id(key_id) {
        return Ok(false);
    }
    for _ in 0..REVOKE_ATTEMPTS {
        let Some(stored) = tenant_item(store, tenant, key_id).await? else {
            return Ok(false);
        };
        let Some(hash) = stored.key_hash.as_deref() else {
            return Err(ApiError::internal(
                "revoke API key",
                format!("key {key_id} has no key_hash"),
            ));
        };
        let now = Timestamp::now();
        let items = vec![
            revoke_update(store, keys::api_key_in_tenant(tenant, key_id), &now)?,
            revoke_update(store, keys::api_key_by_hash(hash), &now)?,
        ];
        match transact(store, items).await? {
            Tx::Done => {
                tracing::info!(key_id, tenant = %tenant, "API key revoked");
                return Ok(true);
            }
            // Items are never deleted, so this means a damaged pair: say so.
            Tx::ConditionFailed => {
                return Err(ApiError::internal(
                    "revoke API key",
                    format!("key {key_id}: one of its two items is missing"),
                ));
            }
            Tx::Conflict => continue,
        }
    }
    Err(ApiError::internal(
        "revoke API key",
        format!("key {key_id}: kept colliding with other writes"),
    ))
}
