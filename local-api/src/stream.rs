//! The table's stream delivered to functions as Lambda's event source mapping delivers it:
//! the embedded engine's stream read in order (four polls a second, as Lambda polls a
//! shard), no-op writes dropped as DynamoDB Streams drops them, batches of the template's
//! `BatchSize` invoked one at a time through the Runtime API. A batch answered with
//! `batchItemFailures` is delivered again from the first failed record; a failed invocation
//! delivers it again whole, or halved when `BisectBatchOnFunctionError` says so (as Lambda
//! does: a partial answer is never halved, and a split counts no retry); both up to
//! `MaximumRetryAttempts`; what is still failing
//! then goes to the on-failure destination: a line of `stream-failures.jsonl` in the state
//! directory, as the SQS message Lambda sends. Where it got to is kept in the state
//! directory, so a restart on the same data does not deliver again.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::runtime::{LogSink, Outcome, Pool, Pools};
use crate::template::StreamSource;

/// The stream label of the local table's stream: part of its ARN (`…/stream/<label>`).
pub const STREAM_LABEL: &str = "local";

/// How often an idle stream is read: Lambda polls each shard four times a second.
const POLL: Duration = Duration::from_millis(250);

/// Why a batch is delivered again after a partial answer.
const PARTIAL: &str = "batch item failure";

/// The pause before a failed batch is delivered again (doubling, at most 8 times this).
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Where the delivery of one event source stands, and what it needs.
struct Delivery {
    db: dynoxide::Database,
    table: String,
    source: StreamSource,
    pool: Arc<Pool>,
    region: String,
    stream_arn: String,
    state_dir: Option<PathBuf>,
    log: LogSink,
}

/// Starts delivering the table's stream to each source's function; the tasks end with the
/// runtime. A source whose function has no pool is skipped.
pub fn deliver(
    db: &dynoxide::Database,
    table: &str,
    sources: Vec<StreamSource>,
    pools: &Pools,
    region: &str,
    state_dir: Option<PathBuf>,
    log: LogSink,
) {
    for source in sources {
        let Some(pool) = pools.get(&source.function).cloned() else {
            continue;
        };
        let delivery = Delivery {
            db: db.clone(),
            table: table.to_owned(),
            stream_arn: stream_arn(region, table),
            source,
            pool,
            region: region.to_owned(),
            state_dir: state_dir.clone(),
            log: log.clone(),
        };
        tokio::spawn(delivery.run());
    }
}

/// The local table's stream ARN, as the template's `!GetAtt <table>.StreamArn` resolves.
pub fn stream_arn(region: &str, table: &str) -> String {
    format!(
        "arn:aws:dynamodb:{region}:{}:table/{table}/stream/{STREAM_LABEL}",
        crate::ACCOUNT_ID
    )
}

impl Delivery {
    async fn run(self) {
        let mut after = self.saved_position();
        if after.is_none() && self.source.starting_position == "LATEST" {
            after = self.latest().await;
        }
        loop {
            let records = match self.read(after.as_deref()).await {
                Ok(r) => r,
                Err(e) => {
                    (self.log)(&format!(
                        "stream → {}: reading failed: {e}",
                        self.source.function
                    ));
                    tokio::time::sleep(POLL * 4).await;
                    continue;
                }
            };
            let Some(last) = records.last().map(sequence_of) else {
                tokio::time::sleep(POLL).await;
                continue;
            };
            let changes: Vec<Value> = records.into_iter().filter(changes_something).collect();
            if !changes.is_empty() {
                self.deliver_batch(changes).await;
            }
            after = Some(last);
            self.save_position(after.as_deref());
        }
    }

    /// The next records after `after` (from the start when `None`), at most a batch.
    async fn read(&self, after: Option<&str>) -> Result<Vec<Value>, String> {
        let db = self.db.clone();
        let table = self.table.clone();
        let after = after.map(str::to_owned);
        let limit = self.source.batch_size.max(1);
        let (region, arn) = (self.region.clone(), self.stream_arn.clone());
        tokio::task::spawn_blocking(move || {
            let stream = db
                .list_streams(dynoxide::actions::list_streams::ListStreamsRequest {
                    table_name: Some(table.clone()),
                    ..Default::default()
                })
                .map_err(|e| e.to_string())?
                .streams
                .into_iter()
                .next()
                .ok_or_else(|| format!("table {table} has no stream"))?;
            let iterator = db
                .get_shard_iterator(
                    dynoxide::actions::get_shard_iterator::GetShardIteratorRequest {
                        stream_arn: stream.stream_arn,
                        shard_id: dynoxide::streams::shard_id(&table),
                        shard_iterator_type: if after.is_some() {
                            "AFTER_SEQUENCE_NUMBER"
                        } else {
                            "TRIM_HORIZON"
                        }
                        .to_owned(),
                        sequence_number: after,
                    },
                )
                .map_err(|e| e.to_string())?
                .shard_iterator
                .ok_or("no shard iterator")?;
            let out = db
                .get_records(dynoxide::actions::get_records::GetRecordsRequest {
                    shard_iterator: iterator,
                    limit: Some(limit),
                })
                .map_err(|e| e.to_string())?;
            out.records
                .iter()
                .map(|r| {
                    let mut v = serde_json::to_value(r).map_err(|e| e.to_string())?;
                    v["awsRegion"] = json!(region);
                    v["eventSourceARN"] = json!(arn);
                    Ok(v)
                })
                .collect()
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// The newest record's sequence number (`LATEST`: only what comes after the start).
    async fn latest(&self) -> Option<String> {
        let mut after: Option<String> = None;
        loop {
            let records = self.read(after.as_deref()).await.ok()?;
            match records.last() {
                Some(r) => after = Some(sequence_of(r)),
                None => return after,
            }
        }
    }

    /// Delivers one batch until every record in it was taken or given up on.
    async fn deliver_batch(&self, batch: Vec<Value>) {
        let mut queue: VecDeque<(Vec<Value>, u32)> = VecDeque::from([(batch, 0)]);
        while let Some((records, retries)) = queue.pop_front() {
            let (records, expired) = self.fresh(records);
            if !expired.is_empty() {
                self.give_up(&expired, retries, "RecordAgeExceeded", None);
            }
            if records.is_empty() {
                continue;
            }
            let (failed, why, invocation_failed) = self.invoke(&records).await;
            let Some(first) = failed else {
                continue;
            };
            let failed = records[first..].to_vec();
            let split = invocation_failed && self.source.bisect;
            match next(failed, split, retries, self.source.max_retries) {
                Next::GiveUp(failed) => {
                    self.give_up(&failed, retries, "RetryAttemptsExhausted", why.as_deref());
                }
                Next::Again(batches) => {
                    tokio::time::sleep(RETRY_PAUSE * 2u32.pow(retries.min(3))).await;
                    for batch in batches.into_iter().rev() {
                        queue.push_front(batch);
                    }
                }
            }
        }
    }

    /// Invokes the function with `records`; the index of the first record to deliver again
    /// (`None`: all taken), why, and whether the invocation failed (not a partial answer).
    async fn invoke(&self, records: &[Value]) -> (Option<usize>, Option<String>, bool) {
        let payload = json!({"Records": records}).to_string().into_bytes();
        let started = Instant::now();
        let invoked = self
            .pool
            .invoke(
                uuid::Uuid::new_v4().to_string(),
                crate::event::trace_id(),
                payload,
            )
            .await;
        let function = &self.source.function;
        let (first, why) = match &invoked.outcome {
            Outcome::Response(body) if self.source.reports_item_failures => {
                match first_failure(body, records) {
                    Ok(None) => (None, None),
                    Ok(Some(i)) => (Some(i), Some(PARTIAL.to_owned())),
                    Err(e) => (Some(0), Some(e)),
                }
            }
            Outcome::Response(_) => (None, None),
            Outcome::Error {
                error_type,
                message,
            } => (Some(0), Some(format!("{error_type}: {message}"))),
            Outcome::InitError(e) => (Some(0), Some(format!("init failed: {e}"))),
            Outcome::Crashed(e) => (Some(0), Some(format!("crashed: {e}"))),
            Outcome::TimedOut => (Some(0), Some("timed out".to_owned())),
        };
        let took = started.elapsed().as_millis();
        match (&first, &why) {
            (None, _) => (self.log)(&format!(
                "stream → {function}: {} records ok ({took} ms)",
                records.len()
            )),
            (Some(i), Some(why)) => (self.log)(&format!(
                "stream → {function}: {} records, from record {i} to be delivered again: {why}",
                records.len()
            )),
            (Some(_), None) => {}
        }
        let partial =
            matches!(&invoked.outcome, Outcome::Response(_)) && why.as_deref() == Some(PARTIAL);
        (first, why, !partial && first.is_some())
    }

    /// `records` split into those still young enough to deliver and those past
    /// `MaximumRecordAgeInSeconds`.
    fn fresh(&self, records: Vec<Value>) -> (Vec<Value>, Vec<Value>) {
        let Some(most) = self.source.max_record_age else {
            return (records, Vec::new());
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
        records.into_iter().partition(|r| {
            r["dynamodb"]["ApproximateCreationDateTime"]
                .as_f64()
                .is_none_or(|at| now - at <= most.as_secs_f64())
        })
    }

    /// Sends what is given up on to the on-failure destination (a line of
    /// `stream-failures.jsonl`), as Lambda's message to SQS describes it: the shard and the
    /// range of sequence numbers, not the records.
    fn give_up(&self, records: &[Value], retries: u32, condition: &str, why: Option<&str>) {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return;
        };
        let at = |r: &Value| {
            r["dynamodb"]["ApproximateCreationDateTime"]
                .as_f64()
                .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s as i64).ok())
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
        };
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let message = json!({
            "requestContext": {
                "requestId": uuid::Uuid::new_v4().to_string(),
                "functionArn": format!(
                    "arn:aws:lambda:{}:{}:function:{}",
                    self.region,
                    crate::ACCOUNT_ID,
                    self.source.function
                ),
                "condition": condition,
                "approximateInvokeCount": retries + 1,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": why},
            "version": "1.0",
            "timestamp": now,
            "DDBStreamBatchInfo": {
                "shardId": dynoxide::streams::shard_id(&self.table),
                "startSequenceNumber": sequence_of(first),
                "endSequenceNumber": sequence_of(last),
                "approximateArrivalOfFirstRecord": at(first),
                "approximateArrivalOfLastRecord": at(last),
                "batchSize": records.len(),
                "streamArn": self.stream_arn,
            },
        });
        (self.log)(&format!(
            "stream → {}: gave up on {} records ({condition}), sent to {}",
            self.source.function,
            records.len(),
            self.source
                .on_failure
                .as_deref()
                .unwrap_or("no destination")
        ));
        if let (Some(dir), Some(_)) = (&self.state_dir, &self.source.on_failure) {
            let line = format!("{message}\n");
            let written = std::fs::create_dir_all(dir).and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(shared::localstate::STREAM_FAILURES))?
                    .write_all(line.as_bytes())
            });
            if let Err(e) = written {
                (self.log)(&format!(
                    "stream: writing the on-failure record failed: {e}"
                ));
            }
        }
    }

    fn position_file(&self) -> Option<PathBuf> {
        let name = format!(
            "{}{}",
            shared::localstate::STREAM_POSITION_PREFIX,
            self.source.function
        );
        self.state_dir.as_ref().map(|d| d.join(name))
    }

    fn saved_position(&self) -> Option<String> {
        let file = self.position_file()?;
        let dir = file.parent()?;
        shared::localstate::read(dir, file.file_name()?.to_str()?)
    }

    /// Saves where delivery got to: written beside and renamed over, so a stop mid-write
    /// leaves the last position whole.
    fn save_position(&self, after: Option<&str>) {
        if let (Some(file), Some(after)) = (self.position_file(), after) {
            let next = file.with_extension("next");
            let saved = std::fs::write(&next, format!("{after}\n"))
                .and_then(|()| std::fs::rename(&next, &file));
            if let Err(e) = saved {
                (self.log)(&format!(
                    "stream: saving the position in {}: {e}",
                    file.display()
                ));
            }
        }
    }
}

/// What becomes of the records a delivery did not take.
#[derive(Debug, PartialEq)]
enum Next {
    /// Their retries are used up: to the on-failure destination.
    GiveUp(Vec<Value>),
    /// Delivered again, in this order, each with its retries so far.
    Again(Vec<(Vec<Value>, u32)>),
}

/// The records `failed` of a delivery that had made `retries` retries, as Lambda treats them:
/// after a failed invocation with `BisectBatchOnFunctionError` (`split`), two halves, with no
/// retry counted (Lambda: splitting does not count towards the retry quota); otherwise (a
/// partial answer, a single record, no bisect) delivered again whole, one retry more, or
/// given up on once `max_retries` are made.
fn next(failed: Vec<Value>, split: bool, retries: u32, max_retries: Option<u32>) -> Next {
    if split && failed.len() > 1 {
        let mut first_half = failed;
        let second_half = first_half.split_off(first_half.len() / 2);
        return Next::Again(vec![(first_half, retries), (second_half, retries)]);
    }
    if max_retries.is_some_and(|most| retries >= most) {
        return Next::GiveUp(failed);
    }
    Next::Again(vec![(failed, retries + 1)])
}

/// A record's sequence number.
fn sequence_of(record: &Value) -> String {
    record["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Whether a record changed its item: DynamoDB Streams writes no record for a write that
/// leaves an item as it was (the engine does).
fn changes_something(record: &Value) -> bool {
    let d = &record["dynamodb"];
    record["eventName"] != "MODIFY" || d["NewImage"] != d["OldImage"]
}

/// The first record a `batchItemFailures` answer names, by its position in `records`:
/// Lambda resumes from the lowest sequence number named. An answer that names a record not
/// in the batch, or is not such an answer, fails the whole batch, as Lambda does.
fn first_failure(body: &[u8], records: &[Value]) -> Result<Option<usize>, String> {
    if body.is_empty() || body == b"null" {
        return Ok(None);
    }
    let answer: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let Some(failures) = answer.get("batchItemFailures").filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    let failures = failures
        .as_array()
        .ok_or("batchItemFailures is not a list")?;
    let mut first: Option<usize> = None;
    for f in failures {
        let id = f["itemIdentifier"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or("a batch item failure without an itemIdentifier")?;
        let at = records
            .iter()
            .position(|r| sequence_of(r) == id)
            .ok_or_else(|| format!("itemIdentifier {id} is not a record of the batch"))?;
        first = Some(first.map_or(at, |f| f.min(at)));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    fn record(seq: &str) -> Value {
        json!({"eventName": "INSERT", "dynamodb": {"SequenceNumber": seq}})
    }

    #[test]
    fn the_lowest_named_record_is_where_delivery_resumes() {
        let records = [record("1"), record("2"), record("3")];
        let body = br#"{"batchItemFailures":[{"itemIdentifier":"3"},{"itemIdentifier":"2"}]}"#;
        assert_eq!(first_failure(body, &records), Ok(Some(1)));
        assert_eq!(
            first_failure(br#"{"batchItemFailures":[]}"#, &records),
            Ok(None)
        );
        assert_eq!(first_failure(b"", &records), Ok(None));
        assert_eq!(
            first_failure(br#"{"batchItemFailures":null}"#, &records),
            Ok(None)
        );
    }

    #[test]
    fn an_answer_naming_no_record_of_the_batch_fails_it_whole() {
        let records = [record("1")];
        let body = br#"{"batchItemFailures":[{"itemIdentifier":"9"}]}"#;
        assert!(first_failure(body, &records).is_err());
        assert!(first_failure(br#"{"batchItemFailures":[{}]}"#, &records).is_err());
    }

    #[test]
    fn a_partial_answer_is_delivered_again_whole_and_a_failed_invocation_is_halved() {
        let records = vec![record("1"), record("2"), record("3")];
        // A partial answer (or no bisect): the same records again, one retry more.
        assert_eq!(
            next(records.clone(), false, 0, Some(2)),
            Next::Again(vec![(records.clone(), 1)])
        );
        // A failed invocation with bisect: two halves, in order, no retry counted.
        assert_eq!(
            next(records.clone(), true, 1, Some(2)),
            Next::Again(vec![
                (vec![record("1")], 1),
                (vec![record("2"), record("3")], 1)
            ])
        );
        // Even with the retries used up, a batch is split before it is given up on.
        assert_eq!(
            next(records.clone(), true, 2, Some(2)),
            Next::Again(vec![
                (vec![record("1")], 2),
                (vec![record("2"), record("3")], 2)
            ])
        );
        // One record left, its retries used up: given up on.
        assert_eq!(
            next(vec![record("2")], true, 2, Some(2)),
            Next::GiveUp(vec![record("2")])
        );
        assert_eq!(
            next(records.clone(), false, 2, Some(2)),
            Next::GiveUp(records.clone())
        );
        // No limit: again, whatever the count.
        assert_eq!(
            next(vec![record("2")], true, 99, None),
            Next::Again(vec![(vec![record("2")], 100)])
        );
    }

    #[test]
    fn a_write_that_left_the_item_as_it_was_is_no_change() {
        let same = json!({"eventName": "MODIFY", "dynamodb": {"NewImage": {"a": {"S": "x"}}, "OldImage": {"a": {"S": "x"}}}});
        let moved = json!({"eventName": "MODIFY", "dynamodb": {"NewImage": {"a": {"S": "y"}}, "OldImage": {"a": {"S": "x"}}}});
        assert!(!changes_something(&same));
        assert!(changes_something(&moved));
        assert!(changes_something(&record("1")));
    }
}
