//! Idempotency records: the first answer of an idempotent write, put in the same
//! transaction as the write it protects, on the condition that its key has no live record.
//! A crash therefore commits both or neither, and of two requests racing with one key only
//! one can commit; the other is told the key is used and gets the winner's record.

use aws_sdk_dynamodb::types::TransactWriteItem;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValuesOnConditionCheckFailure};
use serde::{Deserialize, Serialize};

use super::{
    MAX_ITEM_BYTES, Reasons, Store, StoreError, TxError, from_item, item_size, schema, to_item,
};
use crate::idempotency::{Claim, StoredAnswer, UsedKey};
use crate::ids::TenantId;

/// An idempotent write's record, to commit with it: the claim, and how to make the answer
/// from what is written (`T`: the profile or the contact, ids and slug decided).
pub struct Idempotent<'a, T> {
    pub claim: &'a Claim,
    pub answer: &'a (dyn Fn(&T) -> Result<StoredAnswer, String> + Sync),
}

impl<T> Clone for Idempotent<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Idempotent<'_, T> {}

/// The record as stored (with its key).
#[derive(Serialize, Deserialize)]
struct IdempotencyItem {
    fingerprint: String,
    answer: StoredAnswer,
    /// The table's TTL attribute ([`schema::EXPIRES_AT`]).
    expires_at: i64,
}

impl Store {
    /// The Put of `idem`'s record with the answer to `written`, on the condition that the key
    /// has no record or only an expired one.
    pub(super) fn idempotency_put<T>(
        &self,
        tenant: &TenantId,
        idem: Idempotent<'_, T>,
        written: &T,
    ) -> Result<TransactWriteItem, StoreError> {
        let answer = (idem.answer)(written)
            .map_err(|cause| StoreError::backend("make the idempotent answer", cause))?;
        let record = IdempotencyItem {
            fingerprint: idem.claim.fingerprint.clone(),
            answer,
            expires_at: idem.claim.expires_at,
        };
        let key = schema::idempotency_record(tenant, &idem.claim.scope);
        let item = to_item("serialize idempotency record", &record, key)?;
        if item_size(&item) > MAX_ITEM_BYTES {
            return Err(StoreError::TooLarge);
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(schema::IS_NEW_OR_EXPIRED)
            .expression_attribute_values(":now", AttributeValue::N(idem.claim.now.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| StoreError::backend("build put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Records `idem`'s answer to `written` alone, for an idempotent POST that writes nothing
    /// else to the table: committed only while the key has no live record; a used key is
    /// `KeyUsed`.
    pub async fn remember<T>(
        &self,
        tenant: &TenantId,
        idem: Idempotent<'_, T>,
        written: &T,
    ) -> Result<(), StoreError> {
        let put = self.idempotency_put(tenant, idem, written)?;
        match self.transact_retrying(vec![put]).await {
            Ok(()) => Ok(()),
            Err(TxError::Failed(e)) => Err(e),
            Err(TxError::Cancelled(reasons)) if reasons.failed(Some(0)) => {
                Err(self.used_key(tenant, idem.claim, &reasons, 0).await)
            }
            Err(TxError::Cancelled(reasons)) => Err(reasons.unexpected("record idempotent answer")),
        }
    }

    /// The error of a transaction whose idempotency record (at `at`) failed its condition:
    /// the key is used, by the record that holds it.
    pub(super) async fn used_key(
        &self,
        tenant: &TenantId,
        claim: &Claim,
        reasons: &Reasons,
        at: usize,
    ) -> StoreError {
        let item = match reasons.item(at) {
            Some(item) => Some(item.clone()),
            None => match self
                .get_item(schema::idempotency_record(tenant, &claim.scope))
                .await
            {
                Ok(item) => item,
                Err(e) => return e,
            },
        };
        let Some(item) = item else {
            let cause = "its condition failed, yet no record is there";
            return StoreError::backend("idempotency record", cause);
        };
        match from_item::<IdempotencyItem>("read idempotency record", item) {
            Ok(record) => StoreError::KeyUsed(UsedKey {
                fingerprint: record.fingerprint,
                answer: record.answer,
            }),
            Err(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;
    use crate::store::schema::Item;

    #[test]
    fn the_record_keeps_its_expiry_in_the_tables_ttl_attribute() {
        let record = IdempotencyItem {
            fingerprint: "f".into(),
            answer: StoredAnswer {
                status: 201,
                body: "{}".into(),
                headers: vec![("location".into(), "/profiles/x".into())],
            },
            expires_at: 86_400,
        };
        let item: Item = serde_dynamo::to_item(&record).unwrap();
        assert_eq!(
            item[schema::EXPIRES_AT],
            AttributeValue::N("86400".into()),
            "a number of seconds, as TTL wants"
        );
        assert!(schema::IS_NEW_OR_EXPIRED.contains(schema::EXPIRES_AT));
        let template = include_str!("../../../template.yaml");
        let ttl = format!(
            "TimeToLiveSpecification:\n        AttributeName: {}",
            schema::EXPIRES_AT
        );
        assert!(template.contains(&ttl), "the table's TTL attribute");
        let back: IdempotencyItem = serde_dynamo::from_item(item).unwrap();
        assert_eq!(back.answer, record.answer);
    }
}
