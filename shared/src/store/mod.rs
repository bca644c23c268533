//! DynamoDB access: every read and write of the table, through aws-sdk-dynamodb and
//! serde_dynamo, and the store's own error type. This file holds what every aggregate shares
//! (the client, the one transaction call and its cancellation reasons, the put/delete/get
//! helpers, item size); each aggregate has its file: `profiles` (with the primary pointer),
//! `contacts`, `list`, `apikeys`; `bucket` is the photo bucket (S3); `client` builds the SDK
//! clients; `schema` is the key scheme and the attribute names.
//!
//! Uniqueness (slug, external id) and cascades are transactions, so a failure part-way leaves
//! nothing half-written; every write of an existing item is conditional on the version it was
//! computed from. The store speaks storage: what its errors mean to a caller over HTTP is
//! decided in one place, `impl From<StoreError> for ApiError` (`crate::http`).

mod apikeys;
mod backfill;
mod bucket;
mod client;
mod contacts;
mod idempotency;
mod jobs;
mod layout;
mod list;
mod profiles;
mod ratelimit;
pub mod schema;
pub mod stream;

use std::fmt;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Delete, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};

use crate::budget::RETRY_AFTER_SECONDS;
use crate::config::Config;

pub use apikeys::Revoked;
pub use backfill::{Pace, Progress};
pub use bucket::{Bucket, Parts};
pub use client::{
    Trust, credentials, dynamodb_client, eventbridge_client, https_client, https_client_for,
    is_https, s3_client,
};
pub use contacts::ContactWrite;
pub use idempotency::Idempotent;
pub use layout::{LAYOUT_TTL, Layout, MAX_SHARDS, MovePace, Moved};
pub use list::{Page, READ_BUDGET};
pub use profiles::{PrimaryMark, ProfilePartition, StoredProfile};
pub use ratelimit::{Admission, Rate};
pub use schema::Item;

/// The most keys one BatchGetItem takes.
const BATCH_GET_MOST: usize = 100;

/// How many more BatchGetItem rounds are made for keys the table left unprocessed before
/// the table is called unavailable.
const UNPROCESSED_ROUNDS: u32 = 3;

/// A profile item must stay well inside DynamoDB's 400 KB item limit (its list-index copy
/// has the same size, and keys and future attributes need room).
pub const MAX_ITEM_BYTES: usize = 350 * 1024;

/// Which unique value of a profile another profile holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unique {
    Slug,
    ExternalId,
}

/// Why a store operation failed, in the store's own terms.
#[derive(Debug)]
pub enum StoreError {
    /// The item changed since it was read (its version, or the primary pointer, moved on):
    /// read again and recompute, or give up.
    VersionChanged,
    /// A unique value is held by another profile (`holder`, when known).
    Taken {
        what: Unique,
        holder: Option<crate::ids::ProfileId>,
    },
    /// No free slug could be derived from the profile's name.
    NoFreeSlug,
    /// The profile already has a contact with this value: contact `holder`.
    ContactExists { holder: String },
    /// The profile has as many contacts as it may.
    TooManyContacts,
    /// The profile a contact write names does not exist (any more).
    ProfileMissing,
    /// The item would pass [`MAX_ITEM_BYTES`] (or DynamoDB's own item limit).
    TooLarge,
    /// A new profile's id is already stored. Ids are random, so only a write made again
    /// (a bulk import's line, whose profile id its job and line number make) meets it.
    IdInUse,
    /// An idempotent write's key already has a live record: this one. Nothing was written.
    KeyUsed(crate::idempotency::UsedKey),
    /// DynamoDB is unreachable, timing out or throttling: worth retrying after `retry_after`
    /// seconds.
    Unavailable { retry_after: u32, cause: String },
    /// Anything else: our bug or a damaged item. `context` says which operation.
    Backend {
        context: &'static str,
        cause: String,
    },
}

impl StoreError {
    /// An outage that may pass: worth retrying after [`RETRY_AFTER_SECONDS`].
    pub fn unavailable(cause: impl Into<String>) -> Self {
        Self::Unavailable {
            retry_after: RETRY_AFTER_SECONDS,
            cause: cause.into(),
        }
    }

    fn backend(context: &'static str, cause: impl fmt::Display) -> Self {
        Self::Backend {
            context,
            cause: cause.to_string(),
        }
    }

    /// An SDK call's failure: an outage, a timeout, a response cut off, or throttling is
    /// [`StoreError::Unavailable`], anything else [`StoreError::Backend`].
    pub(crate) fn sdk<E, R>(context: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        // A response cut off or garbled on the way (`ResponseError`) is the network's doing,
        // like a connection that failed or timed out.
        let transient = match &err {
            SdkError::DispatchFailure(_)
            | SdkError::TimeoutError(_)
            | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(e) => e.err().code().is_some_and(is_transient_code),
            _ => false,
        };
        let cause = format!("{context}: {}", DisplayErrorContext(&err));
        if transient {
            Self::unavailable(cause)
        } else {
            Self::Backend { context, cause }
        }
    }
}

/// How many times a transaction is sent while another transaction on the same items wins
/// (`TransactionConflict`): such a collision lasts as long as the other transaction, ms.
const CONFLICT_ATTEMPTS: usize = 4;

/// DynamoDB's error codes (whole requests, or a transaction's cancellation reasons) that say
/// "not now" rather than "never".
fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "ThrottlingError"
            | "ProvisionedThroughputExceededException"
            | "ProvisionedThroughputExceeded"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "ServiceUnavailable"
            // A single write on an item a transaction holds.
            | "TransactionConflictException"
            // S3's
            | "SlowDown"
            | "InternalError"
            | "RequestTimeout"
    )
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VersionChanged => f.write_str("the item changed since it was read"),
            Self::Taken { what, holder } => write!(f, "{what:?} taken by {holder:?}"),
            Self::NoFreeSlug => f.write_str("no free slug could be derived"),
            Self::ContactExists { holder } => write!(f, "value held by contact {holder}"),
            Self::TooManyContacts => f.write_str("too many contacts"),
            Self::ProfileMissing => f.write_str("no such profile"),
            Self::TooLarge => write!(f, "item over {MAX_ITEM_BYTES} bytes"),
            Self::IdInUse => f.write_str("the new profile's id is already stored"),
            Self::KeyUsed(_) => f.write_str("the idempotency key is used"),
            Self::Unavailable { cause, .. } => write!(f, "storage unavailable: {cause}"),
            Self::Backend { context, cause } => write!(f, "{context}: {cause}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// What a caller is told of a write the table's rules refuse (a unique value held, the
/// contact limit, the size of a profile): a stable code, the field it concerns, the words.
/// The edge answers it with its status (409, or 413 for the size); a bulk import reports it
/// on the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub field: Option<&'static str>,
    pub detail: String,
}

impl StoreError {
    /// The refusal this error is, when it is one of the table's rules (not an outage, a
    /// race or a bug).
    pub fn refusal(&self) -> Option<Refusal> {
        let (code, field, detail) = match self {
            Self::Taken {
                what: Unique::Slug, ..
            } => (
                "slug_taken",
                Some("slug"),
                "slug is already used by another profile".to_owned(),
            ),
            Self::Taken {
                what: Unique::ExternalId,
                holder,
            } => (
                "external_id_taken",
                Some("external_id"),
                match holder {
                    Some(id) => format!("external_id is already used by profile {id}"),
                    None => "external_id is already used by another profile".to_owned(),
                },
            ),
            Self::NoFreeSlug => (
                "slug_taken",
                Some("slug"),
                "no free slug could be made from the name; give a slug".to_owned(),
            ),
            Self::ContactExists { holder } => (
                "contact_exists",
                Some("value"),
                format!("the profile already has this value as contact {holder}"),
            ),
            Self::TooManyContacts => (
                "too_many_contacts",
                None,
                format!(
                    "a profile has at most {} contacts; delete one first",
                    crate::model::MAX_CONTACTS
                ),
            ),
            Self::TooLarge => (
                "payload_too_large",
                None,
                format!(
                    "the profile would exceed the {MAX_ITEM_BYTES}-byte limit of a stored profile; shorten some fields"
                ),
            ),
            _ => return None,
        };
        Some(Refusal {
            code,
            field,
            detail,
        })
    }
}

/// The table, seen through the operations the API needs.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
    /// The tenants' list layouts this process knows (shared by its clones).
    layouts: std::sync::Arc<layout::LayoutCache>,
    layout_ttl: std::time::Duration,
}

/// DynamoDB's own size of an item: attribute names plus values.
pub fn item_size(item: &Item) -> usize {
    fn value_size(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.iter().map(String::len).sum(),
            AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
            AttributeValue::L(v) => 3 + v.iter().map(|x| 1 + value_size(x)).sum::<usize>(),
            AttributeValue::M(m) => {
                3 + m
                    .iter()
                    .map(|(k, x)| 1 + k.len() + value_size(x))
                    .sum::<usize>()
            }
            _ => 0,
        }
    }
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// A record serialized as an item, with `key` (its key attributes) added.
fn to_item<T: serde::Serialize>(
    context: &'static str,
    record: &T,
    key: Item,
) -> Result<Item, StoreError> {
    let mut item: Item =
        serde_dynamo::to_item(record).map_err(|e| StoreError::backend(context, e))?;
    item.extend(key);
    Ok(item)
}

/// A record read back from its item.
fn from_item<T: serde::de::DeserializeOwned>(
    context: &'static str,
    item: Item,
) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::backend(context, e))
}

/// Why a transaction did not commit.
enum TxError {
    /// It was cancelled: one reason per item, in order.
    Cancelled(Reasons),
    Failed(StoreError),
}

/// A cancelled transaction's reasons, one per item, in the order the items were given.
struct Reasons(Vec<CancellationReason>);

impl Reasons {
    /// Whether the condition of the item at `at` failed.
    fn failed(&self, at: Option<usize>) -> bool {
        at.and_then(|i| self.0.get(i))
            .is_some_and(|r| r.code() == Some("ConditionalCheckFailed"))
    }

    /// Whether another transaction on the same items won (worth retrying at once).
    fn conflict(&self) -> bool {
        self.0
            .iter()
            .any(|r| r.code() == Some("TransactionConflict"))
    }

    /// The item at `at` as it was when its condition failed (for writes that ask for it).
    fn item(&self, at: usize) -> Option<&Item> {
        self.0.get(at).and_then(|r| r.item())
    }

    /// A cancellation no condition explains. Another transaction on the same items winning
    /// (`TransactionConflict`, still there after the retries) may pass: [`StoreError::Unavailable`];
    /// anything else is an error with every reason's code.
    fn unexpected(&self, context: &'static str) -> StoreError {
        let codes: Vec<&str> = self.0.iter().filter_map(|r| r.code()).collect();
        let cause = format!("{context}: transaction cancelled: {codes:?}");
        if self.conflict() {
            StoreError::unavailable(cause)
        } else {
            StoreError::backend(context, cause)
        }
    }
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            layouts: std::sync::Arc::default(),
            layout_ttl: layout::LAYOUT_TTL,
        }
    }

    pub fn from_config(config: &Config) -> Self {
        Self::new(dynamodb_client(config), config.table_name.clone())
    }

    /// A Put of `item`, on `condition` when given. A failed condition returns the item as it
    /// was, for the caller to tell why.
    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| StoreError::backend("build put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A Put of `item` over the version `expected` of the same item.
    fn put_over(&self, item: Item, expected: u64) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(schema::VERSION_IS_EXPECTED)
            .expression_attribute_values(":expected", AttributeValue::N(expected.to_string()))
            .build()
            .map_err(|e| StoreError::backend("build put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A Delete of the item at `key`; of its version `expected` only, when given.
    fn delete(&self, key: Item, expected: Option<u64>) -> Result<TransactWriteItem, StoreError> {
        let mut delete = Delete::builder().table_name(&self.table).set_key(Some(key));
        if let Some(version) = expected {
            delete = delete
                .condition_expression(schema::VERSION_IS_EXPECTED)
                .expression_attribute_values(":expected", AttributeValue::N(version.to_string()));
        }
        let delete = delete
            .build()
            .map_err(|e| StoreError::backend("build delete", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// One item by its key, read consistently.
    async fn get_item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::sdk("get_item", e))?;
        Ok(out.item)
    }

    /// The items at `keys` (each key's partition holding one item), by partition key:
    /// BatchGetItem, 100 keys a call, consistent when asked; keys the table leaves
    /// unprocessed (throttling) asked for again after a pause, a bounded number of times.
    async fn batch_get(
        &self,
        mut keys: Vec<Item>,
        consistent: bool,
    ) -> Result<std::collections::HashMap<String, Item>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut by_pk = std::collections::HashMap::with_capacity(keys.len());
        let mut throttled = 0;
        while !keys.is_empty() {
            let rest = keys.split_off(keys.len().min(BATCH_GET_MOST));
            let batch = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::replace(&mut keys, rest)))
                .consistent_read(consistent)
                .build()
                .map_err(|e| StoreError::backend("build batch get", e))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, batch)
                .send()
                .await
                .map_err(|e| StoreError::sdk("batch get", e))?;
            for item in out
                .responses
                .unwrap_or_default()
                .remove(&self.table)
                .unwrap_or_default()
            {
                if let Some(pk) = item.get(schema::PK).and_then(|v| v.as_s().ok()) {
                    by_pk.insert(pk.clone(), item);
                }
            }
            let unprocessed = out
                .unprocessed_keys
                .unwrap_or_default()
                .remove(&self.table)
                .map(|k| k.keys)
                .unwrap_or_default();
            if !unprocessed.is_empty() {
                throttled += 1;
                if throttled > UNPROCESSED_ROUNDS {
                    return Err(StoreError::unavailable(
                        "the table left reads unprocessed round after round",
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << throttled)).await;
                keys.extend(unprocessed);
            }
        }
        Ok(by_pk)
    }

    /// Every item of the partition `pk`, read consistently.
    async fn partition_items(&self, pk: AttributeValue) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", schema::PK)
                .expression_attribute_values(":pk", pk.clone())
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::sdk("query partition", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// The one write of several items at once: all of `items` commit, or none. One Put alone
    /// goes as a PutItem with the same condition (a transaction doubles the table's units),
    /// its failed condition reported as a transaction's would be.
    async fn transact(&self, mut items: Vec<TransactWriteItem>) -> Result<(), TxError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
        if let [one] = items.as_mut_slice()
            && let Some(put) = one.put.take()
        {
            // Boxed: its future beside the transaction's would swell every write's.
            return Box::pin(self.put_alone(put)).await;
        }
        let err = match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        let context = DisplayErrorContext(&err).to_string();
        if context.contains("Item size") {
            return Err(TxError::Failed(StoreError::TooLarge));
        }
        let err = match err {
            SdkError::ServiceError(e) => e.into_err(),
            other => {
                return Err(TxError::Failed(StoreError::sdk(
                    "transact_write_items",
                    other,
                )));
            }
        };
        match err {
            E::TransactionCanceledException(c) => {
                let reasons = c.cancellation_reasons().to_vec();
                let size = reasons.iter().any(|r| {
                    r.code() == Some("ValidationError")
                        && r.message().is_some_and(|m| m.contains("size"))
                });
                let throttled = reasons
                    .iter()
                    .any(|r| r.code().is_some_and(is_transient_code));
                if size {
                    Err(TxError::Failed(StoreError::TooLarge))
                } else if throttled {
                    Err(TxError::Failed(StoreError::unavailable(format!(
                        "transact_write_items: {context}"
                    ))))
                } else {
                    Err(TxError::Cancelled(Reasons(reasons)))
                }
            }
            E::ResourceNotFoundException(_) => Err(TxError::Failed(StoreError::backend(
                "transact_write_items",
                format!("table {} not found: {context}", self.table),
            ))),
            other => {
                let transient = other.code().is_some_and(is_transient_code);
                Err(TxError::Failed(if transient {
                    StoreError::unavailable(format!("transact_write_items: {context}"))
                } else {
                    StoreError::backend("transact_write_items", context)
                }))
            }
        }
    }

    /// A Put on its own, as a PutItem.
    async fn put_alone(&self, put: Put) -> Result<(), TxError> {
        use aws_sdk_dynamodb::operation::put_item::PutItemError as E;
        let out = self
            .client
            .put_item()
            .table_name(put.table_name)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_names(put.expression_attribute_names)
            .set_expression_attribute_values(put.expression_attribute_values)
            .set_return_values_on_condition_check_failure(
                put.return_values_on_condition_check_failure,
            )
            .send()
            .await;
        let err = match out {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        let context = DisplayErrorContext(&err).to_string();
        if let SdkError::ServiceError(e) = &err {
            let reason = match e.err() {
                E::ConditionalCheckFailedException(failed) => Some(
                    CancellationReason::builder()
                        .code("ConditionalCheckFailed")
                        .set_item(failed.item.clone()),
                ),
                // An item a transaction holds: the same collision a transaction meets.
                E::TransactionConflictException(_) => {
                    Some(CancellationReason::builder().code("TransactionConflict"))
                }
                _ => None,
            };
            if let Some(reason) = reason {
                return Err(TxError::Cancelled(Reasons(vec![reason.build()])));
            }
        }
        if context.contains("Item size") {
            return Err(TxError::Failed(StoreError::TooLarge));
        }
        Err(TxError::Failed(StoreError::sdk("put_item", err)))
    }

    /// [`Store::transact`], retried while another transaction on the same items wins
    /// (`TransactionConflict`), at most [`CONFLICT_ATTEMPTS`] times; a conflict that outlasts
    /// them stays a cancellation, which [`Reasons::unexpected`] calls an outage.
    async fn transact_retrying(&self, items: Vec<TransactWriteItem>) -> Result<(), TxError> {
        let conflict = |e: &TxError| matches!(e, TxError::Cancelled(reasons) if reasons.conflict());
        crate::retry::retrying(CONFLICT_ATTEMPTS, conflict, || self.transact(items.clone())).await
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::primitives::Blob;

    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    #[test]
    fn throttling_and_dynamodbs_own_failures_may_pass_and_nothing_else_does() {
        for code in [
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
            "InternalServerError",
            "ServiceUnavailable",
        ] {
            assert!(is_transient_code(code), "{code}");
        }
        for code in [
            "ValidationException",
            "ConditionalCheckFailedException",
            "ResourceNotFoundException",
            "TransactionCanceledException",
            "AccessDeniedException",
        ] {
            assert!(!is_transient_code(code), "{code}");
        }
    }

    #[test]
    fn an_items_size_is_its_names_and_values_as_dynamodb_counts_them() {
        let item: Item = [
            ("PK".to_owned(), s("abc")),                            // 2 + 3
            ("n".to_owned(), AttributeValue::N("12345".into())),    // 1 + 5
            ("b".to_owned(), AttributeValue::B(Blob::new([0; 7]))), // 1 + 7
            ("t".to_owned(), AttributeValue::Bool(true)),           // 1 + 1
            ("z".to_owned(), AttributeValue::Null(true)),           // 1 + 1
        ]
        .into();
        assert_eq!(item_size(&item), 5 + 6 + 8 + 2 + 2);
    }

    #[test]
    fn lists_and_maps_cost_three_bytes_and_one_per_element() {
        let list: Item = [(
            "l".to_owned(),
            AttributeValue::L(vec![s("ab"), s("c")]), // 3 + (1 + 2) + (1 + 1)
        )]
        .into();
        assert_eq!(item_size(&list), 1 + 3 + 3 + 2);
        let map: Item = [(
            "m".to_owned(),
            AttributeValue::M([("key".to_owned(), s("xy"))].into()), // 3 + 1 + 3 + 2
        )]
        .into();
        assert_eq!(item_size(&map), 1 + 9);
        let sets: Item = [
            (
                "ss".to_owned(),
                AttributeValue::Ss(vec!["a".into(), "bc".into()]),
            ),
            (
                "ns".to_owned(),
                AttributeValue::Ns(vec!["1".into(), "23".into()]),
            ),
        ]
        .into();
        assert_eq!(item_size(&sets), 2 + 3 + 2 + 3);
    }

    #[test]
    fn throttling_and_outage_codes_are_transient_and_others_are_not() {
        for code in [
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
            "InternalServerError",
        ] {
            assert!(is_transient_code(code), "{code}");
        }
        for code in [
            "ValidationException",
            "ConditionalCheckFailed",
            "AccessDeniedException",
        ] {
            assert!(!is_transient_code(code), "{code}");
        }
    }
}
