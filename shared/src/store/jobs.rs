//! Bulk jobs in the table: one item per import or export, written new once and then only
//! over the version read (a checkpoint), so two workers on one job cannot both go on; and
//! the lookup an upsert matches a line by (the profile an external id's guard names).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::profiles::{StoredProfile, decode, guard_owner};
use super::schema::{self, Item};
use super::{Idempotent, Store, StoreError, TxError, from_item, to_item};
use crate::ids::{JobId, ProfileId, TenantId};
use crate::model::job::{JOB_TTL_DAYS, Job};

impl Store {
    fn job_item(&self, tenant: &TenantId, job: &Job) -> Result<Item, StoreError> {
        let mut item = to_item("serialize job", job, schema::job_key(tenant, &job.id))?;
        // Kept a week after it was made, as its files are (the table's TTL removes it).
        let expires = job.created_at.unix_seconds() + JOB_TTL_DAYS * 86_400;
        item.insert(
            schema::EXPIRES_AT.to_owned(),
            AttributeValue::N(expires.to_string()),
        );
        Ok(item)
    }

    /// Writes a new job; with `idem`, its Idempotency-Key's record in the same transaction
    /// (a key already used is `KeyUsed`, and no job is made).
    pub async fn insert_job(
        &self,
        tenant: &TenantId,
        job: &Job,
        idem: Option<Idempotent<'_, Job>>,
    ) -> Result<(), StoreError> {
        let mut items = vec![self.put(self.job_item(tenant, job)?, Some(schema::IS_NEW))?];
        if let Some(idem) = idem {
            items.push(self.idempotency_put(tenant, idem, job)?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Failed(e)) => Err(e),
            Err(TxError::Cancelled(reasons)) => match idem {
                Some(idem) if reasons.failed(Some(1)) => {
                    Err(self.used_key(tenant, idem.claim, &reasons, 1).await)
                }
                _ => Err(reasons.unexpected("insert job")),
            },
        }
    }

    /// A job of `tenant`, read consistently; `None` when there is none (or it is another
    /// tenant's: the key holds the tenant).
    pub async fn job(&self, tenant: &TenantId, id: &JobId) -> Result<Option<Job>, StoreError> {
        match self.get_item(schema::job_key(tenant, id)).await? {
            Some(item) => from_item("decode job", item).map(Some),
            None => Ok(None),
        }
    }

    /// Writes `job` over the version it was read at (`job.version`), as the next version:
    /// `VersionChanged` when another worker saved it meanwhile. Returns the job as saved.
    pub async fn save_job(&self, tenant: &TenantId, job: &Job) -> Result<Job, StoreError> {
        let next = Job {
            version: job.version + 1,
            ..job.clone()
        };
        let put = self.put_over(self.job_item(tenant, &next)?, job.version)?;
        match self.transact(vec![put]).await {
            Ok(()) => Ok(next),
            Err(TxError::Cancelled(reasons)) if reasons.failed(Some(0)) => {
                Err(StoreError::VersionChanged)
            }
            Err(TxError::Cancelled(reasons)) => Err(reasons.unexpected("save job")),
            Err(TxError::Failed(e)) => Err(e),
        }
    }

    /// The profiles that hold each of `external_ids` in `tenant` (those held), read
    /// consistently in BatchGetItems.
    pub async fn external_id_holders(
        &self,
        tenant: &TenantId,
        external_ids: &[&str],
    ) -> Result<HashMap<String, ProfileId>, StoreError> {
        let keys = external_ids
            .iter()
            .map(|e| schema::external_id_guard_of(tenant, e))
            .collect();
        let found = self.batch_get(keys, true).await?;
        Ok(external_ids
            .iter()
            .filter_map(|e| {
                let pk = schema::external_id_guard_of(tenant, e)
                    .remove(schema::PK)
                    .and_then(|v| v.as_s().ok().cloned())?;
                let holder = guard_owner(found.get(&pk)?)?;
                Some(((*e).to_owned(), holder))
            })
            .collect())
    }

    /// The profiles `ids` of `tenant` that exist, read consistently in BatchGetItems.
    pub async fn profiles(
        &self,
        tenant: &TenantId,
        ids: &[ProfileId],
    ) -> Result<HashMap<ProfileId, StoredProfile>, StoreError> {
        let keys = ids
            .iter()
            .map(|id| schema::profile_key(tenant, id))
            .collect();
        let found = self.batch_get(keys, true).await?;
        let mut out = HashMap::with_capacity(found.len());
        for item in found.into_values() {
            let stored = decode(item)?;
            out.insert(stored.profile.id, stored);
        }
        Ok(out)
    }

    /// The profile that holds `external_id` in `tenant`, read consistently.
    pub async fn external_id_holder_of(
        &self,
        tenant: &TenantId,
        external_id: &str,
    ) -> Result<Option<ProfileId>, StoreError> {
        let guard = self
            .get_item(schema::external_id_guard_of(tenant, external_id))
            .await?;
        Ok(guard.as_ref().and_then(guard_owner))
    }
}
