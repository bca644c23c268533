//! API keys: made, hashed, stored, looked up and revoked.
//!
//! A key is `prof_` and 43 characters of base64url: 32 bytes from the operating system's
//! CSPRNG. The prefix tells a key from a JWT in `Authorization: Bearer` and makes a leaked key
//! easy to recognise (secret scanners). The key is shown once, when made; the table holds only
//! its SHA-256 hash (a 256-bit random key needs no slow password hash: there is nothing to
//! guess). The store keeps each record twice (`crate::store::schema`): under the hash, which
//! the authorizer reads with one GetItem, and in its tenant's partition, to list the tenant's
//! keys and revoke one by its id. Both are written, and revoked, in one transaction.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use crate::auth::ApiKeyRecord;
use crate::auth::Scopes;
use crate::config::Secret;
use crate::ids::{PrincipalId, TenantId};
use crate::model::Timestamp;
use crate::store::StoreError;
use crate::store::{Revoked, Store};
use crate::validate::Invalid;

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

/// Why an API key operation failed, in the keys' own terms.
#[derive(Debug)]
pub enum ApiKeyError {
    /// The name or the scopes asked for are not acceptable: each field says why.
    Invalid(Invalid),
    /// The operating system gave no randomness.
    NoRandomness(String),
    /// Every fresh key id drawn was taken ([`CREATE_ATTEMPTS`] times; never expected).
    NoFreeId,
    /// The table's own failure.
    Store(StoreError),
}

impl From<StoreError> for ApiKeyError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl std::fmt::Display for ApiKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(invalid) => invalid.fmt(f),
            Self::NoRandomness(cause) => write!(f, "the OS random generator failed: {cause}"),
            Self::NoFreeId => f.write_str("no free key id after several attempts"),
            Self::Store(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for ApiKeyError {}

fn random_bytes<const N: usize>() -> Result<[u8; N], ApiKeyError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| ApiKeyError::NoRandomness(e.to_string()))?;
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

/// The name of a key's API key in API Gateway, which holds its usage key in the usage plan
/// (the `keys` command registers it; the local runner registers its development key so).
pub fn gateway_key_name(key_id: &str) -> String {
    format!("profiles-{key_id}")
}

/// Whether `key_id` has a key id's form (16 lowercase hex digits).
pub fn is_key_id(key_id: &str) -> bool {
    key_id.len() == KEY_ID_BYTES * 2
        && key_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_name(name: Option<&str>) -> Result<Option<String>, ApiKeyError> {
    let Some(name) = name.map(str::trim) else {
        return Ok(None);
    };
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiKeyError::Invalid(Invalid::field(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} characters, none of them control characters"),
        )));
    }
    Ok(Some(name.to_owned()))
}

/// Makes an API key for `principal` in `tenant` with `scopes` (at least one) and an optional
/// `name`, and stores its record. Returns the key, which exists nowhere else: show it once.
pub async fn create(
    store: &Store,
    tenant: &TenantId,
    principal: &PrincipalId,
    scopes: Scopes,
    name: Option<&str>,
) -> Result<(Secret, ApiKeyRecord), ApiKeyError> {
    if scopes.is_empty() {
        return Err(ApiKeyError::Invalid(Invalid::field(
            "scopes",
            format!("a key needs at least one scope of {}", Scopes::all()),
        )));
    }
    let name = check_name(name)?;
    let name = &name;
    // A key id already used in this tenant (1 in 2^64): draw again.
    let attempt = || async move {
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
        if !store.insert_api_key(&record, &hash_hex(&key)).await? {
            return Err(ApiKeyError::NoFreeId);
        }
        Ok((Secret::new(key), record))
    };
    let taken = |e: &ApiKeyError| matches!(e, ApiKeyError::NoFreeId);
    let (key, record) = crate::retry::retrying(CREATE_ATTEMPTS, taken, attempt).await?;
    tracing::info!(key_id = %record.key_id, tenant = %tenant, principal = %principal,
        scopes = %scopes, "API key created");
    Ok((key, record))
}

/// The record of the key `presented_key`, revoked or not (the caller decides), or `None` when
/// it is no key of ours. A malformed key is `None` without reading the table.
pub async fn lookup(
    store: &Store,
    presented_key: &str,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    if !is_well_formed(presented_key) {
        return Ok(None);
    }
    let hash = hash_hex(presented_key);
    let Some((stored_hash, record)) = store.api_key_by_hash(&hash).await? else {
        return Ok(None);
    };
    // The engine found the item by this hash; check it anyway, in constant time, so the
    // answer never depends on how much of a stored hash a guess matched.
    if !bool::from(stored_hash.as_bytes().ct_eq(hash.as_bytes())) {
        return Ok(None);
    }
    Ok(Some(record))
}

/// Every key of `tenant` (revoked ones too), oldest first. Records only: never a key or hash.
pub async fn list(store: &Store, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
    store.api_keys(tenant).await
}

/// Revokes `tenant`'s key `key_id`: from now on the authorizer refuses it. `true` when the
/// tenant has that key (now revoked; revoking again changes nothing, not even `revoked_at`),
/// `false` when it has none by that id.
pub async fn revoke(store: &Store, tenant: &TenantId, key_id: &str) -> Result<bool, StoreError> {
    if !is_key_id(key_id) {
        return Ok(false);
    }
    match store.revoke_api_key(tenant, key_id).await? {
        Revoked::Yes => {
            tracing::info!(key_id, tenant = %tenant, "API key revoked");
            Ok(true)
        }
        Revoked::NoSuchKey => Ok(false),
    }
}
