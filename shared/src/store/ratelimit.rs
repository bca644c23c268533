//! Per-caller rate limits kept in the table, for the callers API Gateway's usage plans cannot
//! count one by one: JWT subjects, who arrive unannounced and may number in the hundred
//! thousands (docs/authentication.md). The authorizer admits each JWT request here.
//!
//! The limit is GCRA (the generic cell rate algorithm), the token bucket written as one
//! number per caller: its theoretical arrival time `tat`. A request at `now` moves it to
//! `max(tat, now) + T` (`T` = 1/rate) and fits while that is at most `burst · T` ahead of
//! `now`. DynamoDB's update expressions cannot take a `max`, so each of its two cases is one
//! conditional `UpdateItem`: a caller at rest is set to `now + T` on the condition that its
//! `tat` has passed; a caller mid-burst is moved by `T` on the condition that one more request
//! still fits. A failed condition returns the item as it is (`ALL_OLD`), which says whether
//! the caller is over its limit and for how long, or which case to try instead. Racing
//! instances cannot let more through than fit: every write holds to its condition.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::schema::{self, Item};
use super::{Store, StoreError};
pub use crate::config::Rate;
use crate::ids::TenantId;

/// Whether a request may pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Over the limit: the next request fits in `retry_after_ms`.
    Limited {
        retry_after_ms: i64,
    },
}

/// One GCRA step: the caller's new `tat` when a request at `now` fits, else how long (ms)
/// until one does. `tat` is `None` for a caller never seen (or whose item expired).
pub fn step(rate: Rate, tat: Option<i64>, now: i64) -> Result<i64, i64> {
    let t = rate.interval_ms();
    let next = tat.map_or(now, |tat| tat.max(now)).saturating_add(t);
    let wait = next - now - rate.burst() * t;
    if wait > 0 { Err(wait) } else { Ok(next) }
}

/// How many conditional writes one admission tries before calling the caller limited
/// (others of its requests winning every time means it is sending faster than it may).
const ATTEMPTS: usize = 3;

/// Why one conditional write of an admission did not settle it.
enum Race {
    /// Another request of the caller moved its number first: try again from the number the
    /// failed condition returned.
    Lost,
    Failed(StoreError),
}

impl Store {
    /// Admits one request of `caller` (a digest naming it) in `tenant` at `now_ms` (ms since
    /// the epoch) under `rate`: one conditional `UpdateItem` for a caller at rest or over its
    /// limit, two mid-burst.
    pub async fn admit(
        &self,
        tenant: &TenantId,
        caller: &str,
        rate: Rate,
        now_ms: i64,
    ) -> Result<Admission, StoreError> {
        let key = schema::rate_limit(tenant, caller);
        // The caller's number as the last failed condition returned it: each attempt starts
        // from what the one before it found.
        let known = std::sync::Mutex::new(None);
        let (key, known) = (&key, &known);
        let attempt = || async move { self.admit_once(key, rate, now_ms, known).await };
        match crate::retry::retrying(ATTEMPTS, |e| matches!(e, Race::Lost), attempt).await {
            Ok(admission) => Ok(admission),
            Err(Race::Lost) => Ok(Admission::Limited {
                retry_after_ms: rate.interval_ms(),
            }),
            Err(Race::Failed(e)) => Err(e),
        }
    }

    /// One conditional write of [`Store::admit`], from the number `known` holds.
    async fn admit_once(
        &self,
        key: &Item,
        rate: Rate,
        now_ms: i64,
        known: &std::sync::Mutex<Option<i64>>,
    ) -> Result<Admission, Race> {
        // A poisoned lock still holds a number (it is only ever replaced whole).
        let last = *known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(wait) = step(rate, last, now_ms) {
            return Ok(Admission::Limited {
                retry_after_ms: wait,
            });
        }
        let t = rate.interval_ms();
        // After this the caller's bucket is full again: TTL may delete the item, which then
        // reads as a caller at rest, the same thing.
        let expires_at = (now_ms + rate.burst() * t) / 1000 + 2;
        let at_rest = last.is_none_or(|tat| tat <= now_ms);
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .expression_attribute_names("#tat", schema::RATE_TAT)
            .expression_attribute_names("#exp", schema::EXPIRES_AT)
            .expression_attribute_values(":exp", n(expires_at))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let update = if at_rest {
            update
                .update_expression("SET #tat = :next, #exp = :exp")
                .condition_expression("attribute_not_exists(#tat) OR #tat <= :now")
                .expression_attribute_values(":next", n(now_ms + t))
                .expression_attribute_values(":now", n(now_ms))
        } else {
            // One more fits while the new tat is at most burst·T ahead of now.
            update
                .update_expression("SET #tat = #tat + :t, #exp = :exp")
                .condition_expression("#tat <= :fits")
                .expression_attribute_values(":t", n(t))
                .expression_attribute_values(":fits", n(now_ms + (rate.burst() - 1) * t))
        };
        let Err(e) = update.send().await else {
            return Ok(Admission::Allowed);
        };
        // A failed condition: the item as it is says which case holds now.
        let failed = match &e {
            SdkError::ServiceError(s) => match s.err() {
                UpdateItemError::ConditionalCheckFailedException(f) => {
                    Some(f.item.as_ref().and_then(tat_of))
                }
                _ => None,
            },
            _ => None,
        };
        match failed {
            Some(tat) => {
                *known
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = tat;
                Err(Race::Lost)
            }
            None => Err(Race::Failed(StoreError::sdk("update rate limit", e))),
        }
    }
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn tat_of(item: &Item) -> Option<i64> {
    item.get(schema::RATE_TAT)?.as_n().ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

    use super::*;
    use proptest::prelude::*;

    const CONTRACT: Rate = Rate {
        burst: 10,
        per_second: 2.5,
    };

    /// Runs `times` (ms, ascending) through [`step`]: which requests passed.
    fn run(rate: Rate, times: &[i64]) -> Vec<bool> {
        let mut tat = None;
        times
            .iter()
            .map(|&now| match step(rate, tat, now) {
                Ok(next) => {
                    tat = Some(next);
                    true
                }
                Err(_) => false,
            })
            .collect()
    }

    #[test]
    fn a_burst_then_the_steady_rate() {
        let passed = run(CONTRACT, &[0; 11]);
        assert_eq!(passed.iter().filter(|p| **p).count(), 10);
        assert!(!passed[10], "the eleventh at once is refused");
        // 400 ms later one more fits; the next one does not.
        assert_eq!(
            run(CONTRACT, &[[0; 10].as_slice(), &[399, 400, 401]].concat())[10..],
            [false, true, false]
        );
    }

    #[test]
    fn the_wait_is_until_the_next_request_fits() {
        let mut tat = None;
        for _ in 0..10 {
            tat = Some(step(CONTRACT, tat, 1_000).unwrap());
        }
        let wait = step(CONTRACT, tat, 1_000).unwrap_err();
        assert_eq!(wait, 400);
        assert!(step(CONTRACT, tat, 1_000 + wait - 1).is_err());
        assert!(step(CONTRACT, tat, 1_000 + wait).is_ok());
    }

    proptest! {
        /// However requests arrive, no window of `w` ms lets more than `burst + w / T` pass.
        #[test]
        fn no_window_passes_more_than_the_burst_and_the_rate(
            gaps in proptest::collection::vec(0i64..700, 1..200),
            burst in 1u32..20,
            per_second in 0.5f64..20.0,
        ) {
            let rate = Rate { burst, per_second };
            let times: Vec<i64> = gaps.iter().scan(0, |at, g| { *at += g; Some(*at) }).collect();
            let passed: Vec<i64> = times.iter().zip(run(rate, &times)).filter(|(_, p)| *p).map(|(t, _)| *t).collect();
            let t = rate.interval_ms();
            for (i, start) in passed.iter().enumerate() {
                let within = passed[i..].iter().take_while(|at| **at - start < 10_000).count() as i64;
                prop_assert!(within <= i64::from(burst) + 10_000 / t + 1, "{within} in 10 s");
            }
        }

        /// A caller that keeps to the steady rate is never refused, and one that waits as told
        /// always passes.
        #[test]
        fn the_steady_rate_passes_and_waiting_as_told_passes(
            burst in 1u32..20,
            per_second in 0.5f64..20.0,
            start in 0i64..1_000_000,
        ) {
            let rate = Rate { burst, per_second };
            let t = rate.interval_ms();
            let steady: Vec<i64> = (0..50).map(|k| start + k * t).collect();
            prop_assert!(run(rate, &steady).iter().all(|p| *p));
            let mut tat = None;
            let mut now = start;
            for _ in 0..(burst * 3) {
                match step(rate, tat, now) {
                    Ok(next) => tat = Some(next),
                    Err(wait) => {
                        now += wait;
                        tat = Some(step(rate, tat, now).expect("the told wait is enough"));
                    }
                }
            }
        }
    }
}
