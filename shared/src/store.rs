//! DynamoDB access: every read and write of the table, through aws-sdk-dynamodb and
//! serde_dynamo. Uniqueness (slug, external id) and cascades are transactions, so a failure
//! part-way leaves nothing half-written; every profile write is conditional on the version
//! it was computed from.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Delete, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use serde::{Deserialize, Serialize};

use crate::auth::TenantId;
use crate::config::Config;
use crate::error::ApiError;
use crate::keys::{self, Item, PartitionItem, Sort};
use crate::listing::{Filter, ListQuery, Position};
use crate::model::{Contact, ContactValue, MAX_CONTACTS, Profile, ProfileId};

/// A profile item must stay well inside DynamoDB's 400 KB item limit (its list-index copy
/// has the same size, and keys and future attributes need room).
pub const MAX_ITEM_BYTES: usize = 350 * 1024;

/// How many slugs are tried for a derived slug before giving up with a 409.
const SLUG_ATTEMPTS: u32 = 20;

/// Builds the DynamoDB client from configuration alone: region and credentials come from
/// the Lambda environment directly, skipping the SDK's default provider chains (profile
/// files, IMDS, SSO), which cost cold-start time and are never used in Lambda.
pub fn dynamodb_client(config: &Config) -> Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let c = &config.credentials;
    let credentials = Credentials::new(
        c.access_key_id.clone(),
        c.secret_access_key.expose().to_owned(),
        c.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "environment",
    );
    // rustls on ring, with the platform's root certificates, built once per process.
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut builder = aws_sdk_dynamodb::Config::builder()
        .http_client(http)
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .credentials_provider(credentials);
    if let Some(endpoint) = &config.dynamodb_endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    Client::from_conf(builder.build())
}

/// The table, seen through the operations the API needs.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
}

/// Sort direction of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    Asc,
    Desc,
}

/// A change to one contact of a profile.
#[derive(Clone, Copy, Debug)]
pub enum ContactWrite<'a> {
    Create(&'a Contact),
    Update { old: &'a Contact, new: &'a Contact },
    Delete(&'a Contact),
}

/// How many times a contact write is retried when another transaction on the same profile
/// collides with it (`TransactionConflict`).
const CONFLICT_ATTEMPTS: usize = 4;

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    pub profiles: Vec<Profile>,
    /// Where the next page starts, when more may follow.
    pub next: Option<Position>,
}

/// How many index entries one list request reads at most while filters skip entries; a page
/// that runs out of budget is short and carries a cursor.
pub const READ_BUDGET: usize = 1000;

/// Entries per Query while a filter skips some.
const FILTERED_CHUNK: usize = 200;

/// Positions, in one transaction, of the writes whose condition can fail.
#[derive(Default)]
struct Plan {
    items: Vec<TransactWriteItem>,
    profile: usize,
    slug: Option<usize>,
    external_id: Option<usize>,
    primary: Option<usize>,
}

/// What a profile write does to its owner's primary mark (`/profiles/me`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrimaryMark {
    /// Leave the mark where it is.
    Keep,
    /// Make the profile written its owner's primary, taking the mark from `previous` (the
    /// profile the pointer names now, as read), or claiming a free mark when `None`. If the
    /// pointer changed since it was read, the write fails with `PreconditionFailed`.
    Claim { previous: Option<ProfileId> },
}

enum TxError {
    /// The transaction was cancelled: one reason per item, in order.
    Cancelled(Vec<CancellationReason>),
    Other(ApiError),
}

fn failed_condition(reasons: &[CancellationReason], at: Option<usize>) -> bool {
    at.and_then(|i| reasons.get(i))
        .is_some_and(|r| r.code() == Some("ConditionalCheckFailed"))
}

fn too_large() -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the profile would exceed the {MAX_ITEM_BYTES}-byte limit of a stored profile; shorten some fields"
    ))
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

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn from_config(config: &Config) -> Self {
        Self::new(dynamodb_client(config), config.table_name.clone())
    }

    /// The DynamoDB client, for the crate's other record kinds (API keys).
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The table's name.
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    fn profile_item(&self, tenant: &TenantId, profile: &Profile) -> Result<Item, ApiError> {
        let mut item: Item = serde_dynamo::to_item(profile)
            .map_err(|e| ApiError::internal("serialize profile", e))?;
        item.extend(keys::profile_item_keys(tenant, profile));
        if item_size(&item) > MAX_ITEM_BYTES {
            return Err(too_large());
        }
        Ok(item)
    }

    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, ApiError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| ApiError::internal("build put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete(&self, key: Item) -> Result<TransactWriteItem, ApiError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .build()
            .map_err(|e| ApiError::internal("build delete", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    fn guard(&self, key: Item, profile: &ProfileId) -> Result<TransactWriteItem, ApiError> {
        let mut item = key;
        item.insert(
            keys::GUARD_OWNER.to_owned(),
            AttributeValue::S(profile.to_string()),
        );
        self.put(item, Some("attribute_not_exists(PK)"))
    }

    /// The transaction that writes `new` over `old` (or creates it), with its guards.
    fn plan(
        &self,
        tenant: &TenantId,
        old: Option<&Profile>,
        new: &Profile,
        contacts: &[Contact],
        mark: PrimaryMark,
    ) -> Result<Plan, ApiError> {
        let mut plan = Plan::default();
        let item = self.profile_item(tenant, new)?;
        let profile_put = match old {
            None => self.put(item, Some("attribute_not_exists(PK)"))?,
            Some(old) => {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("version = :expected")
                    .expression_attribute_values(
                        ":expected",
                        AttributeValue::N(old.version.to_string()),
                    )
                    .build()
                    .map_err(|e| ApiError::internal("build put", e))?;
                TransactWriteItem::builder().put(put).build()
            }
        };
        plan.profile = plan.items.len();
        plan.items.push(profile_put);

        let old_fields = old.map(|o| &o.fields);
        let old_slug = old_fields.and_then(|f| f.slug.as_ref());
        if new.fields.slug.as_ref() != old_slug {
            if let Some(s) = old_slug {
                plan.items.push(self.delete(keys::slug_guard(tenant, s))?);
            }
            if let Some(s) = &new.fields.slug {
                plan.slug = Some(plan.items.len());
                plan.items
                    .push(self.guard(keys::slug_guard(tenant, s), &new.id)?);
            }
        }
        let old_ext = old_fields.and_then(|f| f.external_id.as_ref());
        if new.fields.external_id.as_ref() != old_ext {
            if let Some(e) = old_ext {
                plan.items
                    .push(self.delete(keys::external_id_guard(tenant, e))?);
            }
            if let Some(e) = &new.fields.external_id {
                plan.external_id = Some(plan.items.len());
                plan.items
                    .push(self.guard(keys::external_id_guard(tenant, e), &new.id)?);
            }
        }
        for contact in contacts {
            let mut item: Item = serde_dynamo::to_item(contact)
                .map_err(|e| ApiError::internal("serialize contact", e))?;
            item.extend(keys::contact_key(tenant, &new.id, &contact.id));
            plan.items
                .push(self.put(item, Some("attribute_not_exists(PK)"))?);
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

    /// Points the owner's primary pointer at `new`, on the condition that it still names
    /// `previous` (or does not exist yet).
    fn claim_primary(
        &self,
        tenant: &TenantId,
        new: &Profile,
        previous: Option<ProfileId>,
    ) -> Result<TransactWriteItem, ApiError> {
        let mut item = keys::primary_pointer(tenant, &new.owner_id);
        item.insert(
            keys::GUARD_OWNER.to_owned(),
            AttributeValue::S(new.id.to_string()),
        );
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = match previous {
            None => put.condition_expression("attribute_not_exists(PK)"),
            Some(prev) => put
                .condition_expression("#owner = :previous")
                .expression_attribute_names("#owner", keys::GUARD_OWNER)
                .expression_attribute_values(":previous", AttributeValue::S(prev.to_string())),
        };
        let put = put
            .build()
            .map_err(|e| ApiError::internal("build put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Takes the primary mark off a profile: its representation changes, so its version too.
    fn unmark_primary(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
    ) -> Result<TransactWriteItem, ApiError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::profile_key(tenant, id)))
            .update_expression("SET is_primary = :no, version = version + :one")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .map_err(|e| ApiError::internal("build update", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The id of a principal's primary profile, from its pointer.
    pub async fn primary_of(
        &self,
        tenant: &TenantId,
        principal: &crate::auth::PrincipalId,
    ) -> Result<Option<ProfileId>, ApiError> {
        Ok(self
            .get_item(keys::primary_pointer(tenant, principal.as_str()))
            .await?
            .as_ref()
            .and_then(guard_owner)
            .and_then(|id| crate::model::parse_id(&id)))
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TxError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
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
        match err.into_service_error() {
            E::TransactionCanceledException(c) => {
                let reasons = c.cancellation_reasons().to_vec();
                let size = reasons.iter().any(|r| {
                    r.code() == Some("ValidationError")
                        && r.message().is_some_and(|m| m.contains("size"))
                });
                if size {
                    Err(TxError::Other(too_large()))
                } else {
                    Err(TxError::Cancelled(reasons))
                }
            }
            E::ResourceNotFoundException(_) => Err(TxError::Other(ApiError::internal(
                "transact_write_items",
                format!("table {} not found: {context}", self.table),
            ))),
            _ if context.contains("Item size") => Err(TxError::Other(too_large())),
            _ => Err(TxError::Other(ApiError::internal(
                "transact_write_items",
                context,
            ))),
        }
    }

    /// The profile that holds an external id, read from its guard.
    async fn external_id_owner(
        &self,
        tenant: &TenantId,
        reasons: &[CancellationReason],
        at: Option<usize>,
        new: &Profile,
    ) -> Result<Option<String>, ApiError> {
        let from_reason = at
            .and_then(|i| reasons.get(i))
            .and_then(|r| r.item())
            .and_then(guard_owner);
        if from_reason.is_some() {
            return Ok(from_reason);
        }
        let Some(ext) = &new.fields.external_id else {
            return Ok(None);
        };
        let guard = self.get_item(keys::external_id_guard(tenant, ext)).await?;
        Ok(guard.as_ref().and_then(guard_owner))
    }

    /// Writes a new or changed profile (with a new profile's initial contacts), and moves
    /// its owner's primary mark as `mark` says. A profile without a slug gets one made from
    /// its name, with a numeric suffix while taken. An update whose `old` version is no
    /// longer current, or a claim of the mark that lost a race, is `PreconditionFailed`.
    pub async fn write_profile(
        &self,
        tenant: &TenantId,
        old: Option<&Profile>,
        mut new: Profile,
        contacts: &[Contact],
        mark: PrimaryMark,
    ) -> Result<Profile, ApiError> {
        let derived = match new.fields.slug {
            Some(_) => None,
            None => new.derived_slug(),
        };
        let old_slug = old.and_then(|o| o.fields.slug.clone());
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
            let plan = self.plan(tenant, old, &new, contacts, mark)?;
            let reasons = match self.transact(plan.items).await {
                Ok(()) => return Ok(new),
                Err(TxError::Other(e)) => return Err(e),
                Err(TxError::Cancelled(reasons)) => reasons,
            };
            if failed_condition(&reasons, plan.primary) {
                return Err(ApiError::PreconditionFailed);
            }
            if failed_condition(&reasons, Some(plan.profile)) {
                return Err(match old {
                    Some(_) => ApiError::PreconditionFailed,
                    None => ApiError::internal("create profile", "profile id already in use"),
                });
            }
            if failed_condition(&reasons, plan.external_id) {
                let owner = self
                    .external_id_owner(tenant, &reasons, plan.external_id, &new)
                    .await?;
                return Err(ApiError::Conflict {
                    code: "external_id_taken",
                    detail: match owner {
                        Some(id) => format!("external_id is already used by profile {id}"),
                        None => "external_id is already used by another profile".into(),
                    },
                    field: Some("external_id".into()),
                });
            }
            if failed_condition(&reasons, plan.slug) {
                if derived.is_some() {
                    continue;
                }
                return Err(ApiError::Conflict {
                    code: "slug_taken",
                    detail: "slug is already used by another profile".into(),
                    field: Some("slug".into()),
                });
            }
            let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).collect();
            return Err(ApiError::internal(
                "write profile",
                format!("transaction cancelled: {codes:?}"),
            ));
        }
        Err(ApiError::Conflict {
            code: "slug_taken",
            detail: "no free slug could be made from the name; give a slug".into(),
            field: Some("slug".into()),
        })
    }

    /// Every item of a profile's partition: the profile and its contacts.
    async fn partition(&self, tenant: &TenantId, id: &ProfileId) -> Result<Vec<Item>, ApiError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(":pk", keys::profile_partition(tenant, id))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| ApiError::internal("query partition", DisplayErrorContext(&e)))?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(items),
            }
        }
    }

    /// A profile with its contacts, in one Query of its partition.
    pub async fn get_with_contacts(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
    ) -> Result<Option<(Profile, Vec<Contact>)>, ApiError> {
        let mut profile = None;
        let mut contacts = Vec::new();
        for item in self.partition(tenant, id).await? {
            match keys::classify(&item) {
                PartitionItem::Profile => profile = Some(decode_profile(item)?),
                PartitionItem::Contact => contacts.push(
                    serde_dynamo::from_item(item)
                        .map_err(|e| ApiError::internal("decode contact", e))?,
                ),
                PartitionItem::Other => {}
            }
        }
        Ok(profile.map(|p| (p, contacts)))
    }

    /// A profile alone, read consistently.
    pub async fn get(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
    ) -> Result<Option<Profile>, ApiError> {
        self.get_item(keys::profile_key(tenant, id))
            .await?
            .map(decode_profile)
            .transpose()
    }

    /// Deletes a profile with everything in its partition and its guards, in one
    /// transaction conditional on the version read. `Ok(false)` when there is no profile.
    pub async fn delete_profile(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        expected_version: Option<u64>,
    ) -> Result<bool, ApiError> {
        let items = self.partition(tenant, id).await?;
        let mut profile: Option<Profile> = None;
        let mut deletes = Vec::new();
        for item in items {
            let key: Item = [keys::PK, keys::SK]
                .into_iter()
                .filter_map(|k| item.get(k).map(|v| (k.to_owned(), v.clone())))
                .collect();
            if let PartitionItem::Profile = keys::classify(&item) {
                profile = Some(decode_profile(item)?);
            } else {
                deletes.push(self.delete(key)?);
            }
        }
        let Some(profile) = profile else {
            return Ok(false);
        };
        if expected_version.is_some_and(|v| v != profile.version) {
            return Err(ApiError::PreconditionFailed);
        }
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(keys::profile_key(tenant, id)))
            .condition_expression("version = :expected")
            .expression_attribute_values(
                ":expected",
                AttributeValue::N(profile.version.to_string()),
            )
            .build()
            .map_err(|e| ApiError::internal("build delete", e))?;
        deletes.insert(0, TransactWriteItem::builder().delete(delete).build());
        if let Some(s) = &profile.fields.slug {
            deletes.push(self.delete(keys::slug_guard(tenant, s))?);
        }
        if let Some(e) = &profile.fields.external_id {
            deletes.push(self.delete(keys::external_id_guard(tenant, e))?);
        }
        if profile.is_primary {
            // The owner has no primary until they mark another (or create their next one).
            deletes.push(self.delete(keys::primary_pointer(tenant, &profile.owner_id))?);
        }
        match self.transact(deletes).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(reasons)) if failed_condition(&reasons, Some(0)) => {
                Err(ApiError::PreconditionFailed)
            }
            Err(TxError::Cancelled(reasons)) => Err(ApiError::internal(
                "delete profile",
                format!("transaction cancelled: {reasons:?}"),
            )),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// Writes one contact change in one transaction with its profile's contact index:
    /// the index entry of its value is added, moved or removed, and the profile's version
    /// bumped, on the conditions that the profile exists, the value is not already another
    /// contact's, and (for a new one) the profile has fewer than [`MAX_CONTACTS`]. Concurrent
    /// writes to one profile's contacts serialise on that item, so neither rule can be beaten
    /// by a race, and a contact can never be written next to a deleted profile.
    ///
    /// An update or delete holds to `old.version`: `PreconditionFailed` when it has changed.
    pub async fn write_contact(
        &self,
        tenant: &TenantId,
        profile: &ProfileId,
        write: ContactWrite<'_>,
    ) -> Result<(), ApiError> {
        let (add, remove) = match write {
            ContactWrite::Create(c) => (Some(c), None),
            ContactWrite::Update { old, new } if old.value != new.value => (Some(new), Some(old)),
            ContactWrite::Update { .. } => (None, None),
            ContactWrite::Delete(c) => (None, Some(c)),
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::profile_key(tenant, profile)))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let mut set = vec!["version = version + :one".to_owned()];
        let mut condition = vec!["attribute_exists(PK)".to_owned()];
        let mut removes = Vec::new();
        if add.is_some() || remove.is_some() {
            update = update.expression_attribute_names("#ci", "contact_index");
        }
        if let Some(c) = add {
            update = update
                .expression_attribute_names("#new", c.value.fingerprint())
                .expression_attribute_values(":cid", AttributeValue::S(c.id.to_string()));
            set.push("#ci.#new = :cid".into());
            condition.push("attribute_not_exists(#ci.#new)".into());
        }
        if let ContactWrite::Create(_) = write {
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
            .map_err(|e| ApiError::internal("build update", e))?;

        let contact_key = |c: &Contact| keys::contact_key(tenant, profile, &c.id);
        let version_is = |c: &Contact| AttributeValue::N(c.version.to_string());
        let contact_op = match write {
            ContactWrite::Create(c) => self.put(
                self.contact_item(tenant, profile, c)?,
                Some("attribute_not_exists(PK)"),
            )?,
            ContactWrite::Update { old, new } => {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(self.contact_item(tenant, profile, new)?))
                    .condition_expression("version = :expected")
                    .expression_attribute_values(":expected", version_is(old))
                    .build()
                    .map_err(|e| ApiError::internal("build put", e))?;
                TransactWriteItem::builder().put(put).build()
            }
            ContactWrite::Delete(old) => {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(contact_key(old)))
                    .condition_expression("version = :expected")
                    .expression_attribute_values(":expected", version_is(old))
                    .build()
                    .map_err(|e| ApiError::internal("build delete", e))?;
                TransactWriteItem::builder().delete(delete).build()
            }
        };
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            contact_op,
        ];

        let mut reasons = Vec::new();
        for _ in 0..CONFLICT_ATTEMPTS {
            reasons = match self.transact(items.clone()).await {
                Ok(()) => return Ok(()),
                Err(TxError::Other(e)) => return Err(e),
                Err(TxError::Cancelled(reasons)) => reasons,
            };
            let conflict = reasons
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"));
            if !conflict {
                break;
            }
        }
        if failed_condition(&reasons, Some(0)) {
            let stored = match reasons.first().and_then(|r| r.item()) {
                Some(item) => Some(item.clone()),
                None => self.get_item(keys::profile_key(tenant, profile)).await?,
            };
            return Err(index_failure(stored.as_ref(), add.map(|c| &c.value)));
        }
        if failed_condition(&reasons, Some(1)) {
            return Err(ApiError::PreconditionFailed);
        }
        let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).collect();
        Err(ApiError::internal(
            "write contact",
            format!("transaction cancelled: {codes:?}"),
        ))
    }

    fn contact_item(
        &self,
        tenant: &TenantId,
        profile: &ProfileId,
        contact: &Contact,
    ) -> Result<Item, ApiError> {
        let mut item: Item = serde_dynamo::to_item(contact)
            .map_err(|e| ApiError::internal("serialize contact", e))?;
        item.extend(keys::contact_key(tenant, profile, &contact.id));
        Ok(item)
    }

    /// One item by its key, read consistently.
    pub(crate) async fn get_item(&self, key: Item) -> Result<Option<Item>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| ApiError::internal("get_item", DisplayErrorContext(&e)))?;
        Ok(out.item)
    }

    /// One page of a tenant's profiles in `query`'s order, after `after`: a Query of the
    /// sort's index (or, for `filter[email]` or `filter[owner_id]` in creation order, of
    /// `ByEmail` or `ByOwner`), never a Scan.
    /// Filters that are unique lookups (`external_id`, `slug`) read their guard instead.
    /// Other filters skip entries as they are read, within [`READ_BUDGET`].
    pub async fn list(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
        after: Option<&Position>,
    ) -> Result<Page, ApiError> {
        let lookup = query.filters.iter().find_map(|f| match f {
            Filter::ExternalId(v) => Some(keys::external_id_guard_of(tenant, v)),
            Filter::Slug(v) => Some(keys::slug_guard_of(tenant, v)),
            _ => None,
        });
        if let Some(guard) = lookup {
            // At most one profile holds a unique value: one page, never a second.
            let mut profiles = Vec::new();
            if after.is_none() {
                let owner = self
                    .get_item(guard)
                    .await?
                    .as_ref()
                    .and_then(guard_owner)
                    .and_then(|id| crate::model::parse_id(&id));
                if let Some(id) = owner
                    && let Some(p) = self.get(tenant, &id).await?
                    && query.filters.iter().all(|f| f.matches(&p))
                {
                    profiles.push(p);
                }
            }
            return Ok(Page {
                profiles,
                next: None,
            });
        }

        // In creation order, an email or owner filter has its own index partition.
        let created = query.sort == Sort::CreatedAt;
        let narrowed = query.filters.iter().find_map(|f| match f {
            Filter::Email(e) if created => Some((
                f,
                keys::BY_EMAIL,
                keys::EMAIL_PK,
                keys::email_partition(tenant, e),
            )),
            Filter::OwnerId(o) if created => Some((
                f,
                keys::BY_OWNER,
                keys::OWNER_PK,
                keys::owner_partition(tenant, o),
            )),
            _ => None,
        });
        let (index, pk_name, pk_value) = match &narrowed {
            Some((_, index, pk_name, pk)) => (*index, *pk_name, pk.clone()),
            None => (
                query.sort.index(),
                keys::GSI1PK,
                keys::list_partition(tenant),
            ),
        };
        let sort_attr = query.sort.attribute();
        let filtering = query
            .filters
            .iter()
            .any(|f| narrowed.as_ref().is_none_or(|(by, ..)| *by != f));
        let mut start = after.map(|p| match &narrowed {
            Some(_) => {
                keys::created_start_key(tenant, pk_name, pk_value.clone(), &p.id, &p.sort_value)
            }
            None => keys::list_start_key(tenant, query.sort, &p.id, &p.sort_value),
        });
        let mut found: Vec<Profile> = Vec::new();
        let mut read = 0;
        let budget_end = loop {
            // Unfiltered: one more than asked tells whether a next page exists.
            let want = if filtering {
                FILTERED_CHUNK.min(READ_BUDGET - read)
            } else {
                query.limit + 1 - found.len()
            };
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_values(":pk", pk_value.clone())
                .scan_index_forward(query.order == SortOrder::Asc)
                .limit(i32::try_from(want).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| ApiError::internal("query list", DisplayErrorContext(&e)))?;
            read += out.items().len();
            for item in out.items.unwrap_or_default() {
                let profile = decode_profile(item)?;
                if query.filters.iter().all(|f| f.matches(&profile)) {
                    found.push(profile);
                }
            }
            match out.last_evaluated_key {
                _ if found.len() > query.limit => break None,
                Some(k) if !k.is_empty() => {
                    if read >= READ_BUDGET {
                        break Some(k);
                    }
                    start = Some(k);
                }
                _ => break None,
            }
        };
        let next = if found.len() > query.limit {
            found.truncate(query.limit);
            found.last().map(|p| Position {
                sort_value: query.sort.value(p),
                id: p.id,
            })
        } else {
            // Out of budget with the index not exhausted: resume where reading stopped.
            budget_end.and_then(|k| {
                let sort_value = k.get(sort_attr)?.as_s().ok()?.clone();
                let id = keys::profile_id_of(k.get(keys::PK)?.as_s().ok()?)?;
                Some(Position { sort_value, id })
            })
        };
        Ok(Page {
            profiles: found,
            next,
        })
    }
}

/// The profile id a guard item names.
fn guard_owner(guard: &Item) -> Option<String> {
    guard
        .get(keys::GUARD_OWNER)
        .and_then(|v| v.as_s().ok())
        .cloned()
}

/// Why a contact write's condition on its profile failed, from the profile item as stored.
fn index_failure(profile: Option<&Item>, adding: Option<&ContactValue>) -> ApiError {
    let Some(profile) = profile else {
        return ApiError::NotFound("profile");
    };
    let index = profile.get("contact_index").and_then(|v| v.as_m().ok());
    if let Some(value) = adding {
        let holder = index
            .and_then(|m| m.get(&value.fingerprint()))
            .and_then(|v| v.as_s().ok());
        if let Some(holder) = holder {
            return ApiError::Conflict {
                code: "contact_exists",
                detail: format!("the profile already has this value as contact {holder}"),
                field: Some("value".into()),
            };
        }
    }
    ApiError::Conflict {
        code: "too_many_contacts",
        detail: format!("a profile has at most {MAX_CONTACTS} contacts; delete one first"),
        field: None,
    }
}

fn decode_profile(item: Item) -> Result<Profile, ApiError> {
    serde_dynamo::from_item(item).map_err(|e| ApiError::internal("decode profile", e))
}
