//! Change events: one CloudEvents 1.0 event per change of a profile or a contact, made from a
//! record of the table's stream (its old and new images, read back by `store::stream`), and
//! the publishing of a stream batch to the bus (`crate::bus`) in stream order. docs/events.md
//! is the contract; the OpenAPI document's `ChangeEvent` schema is its machine-readable form.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::bus::{Bus, BusError, Entry};
use crate::model::Timestamp;
use crate::store::StoreError;
use crate::store::stream::{self, Image, Stored};

/// The CloudEvents version of every event.
pub const SPEC_VERSION: &str = "1.0";

/// The largest event a PutEvents entry carries (EventBridge's limit is 256 KB an entry, its
/// source and type included): a larger one goes out with its object's id and version only.
pub const MAX_EVENT_BYTES: usize = 250_000;

/// The fields of an object that change with every write: a change of these alone (a contact
/// written, which moves its profile's version, or an item rewritten by an upgrade or a shard
/// move) is no change of the object.
const BOOKKEEPING: [&str; 2] = ["version", "updated_at"];

/// A record of the table's stream as Lambda delivers it (the fields events are made of).
#[derive(Clone, Debug, Deserialize)]
pub struct StreamRecord {
    #[serde(rename = "eventID")]
    pub event_id: String,
    /// `INSERT`, `MODIFY` or `REMOVE`.
    #[serde(rename = "eventName")]
    pub event_name: String,
    pub dynamodb: StreamChange,
}

#[derive(Clone, Debug, Deserialize)]
pub struct StreamChange {
    #[serde(rename = "Keys")]
    pub keys: Value,
    #[serde(rename = "NewImage", default)]
    pub new_image: Option<Value>,
    #[serde(rename = "OldImage", default)]
    pub old_image: Option<Value>,
    #[serde(rename = "SequenceNumber")]
    pub sequence_number: String,
    /// Seconds since the epoch.
    #[serde(rename = "ApproximateCreationDateTime", default)]
    pub approximate_creation: Option<f64>,
}

/// A change event (CloudEvents 1.0, structured JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub specversion: String,
    /// The stream record's id: the same on every delivery of one change.
    pub id: String,
    pub source: String,
    /// `profile.created`, `profile.updated`, `profile.deleted`, `contact.created`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The profile's id (a contact's profile for a contact event).
    pub subject: String,
    /// When the change was made: the object's `updated_at`; for a deletion, or a change that
    /// left `updated_at` as it was, the stream's time of it, or 1 ms after the state it
    /// follows if that is later.
    pub time: String,
    pub datacontenttype: String,
    /// The tenant: what a rule filters one tenant's events on.
    pub tenantid: String,
    /// The stream's sequence number, 40 digits: one profile's events (its contacts' too)
    /// sort by it in the order they were made.
    pub sequence: String,
    pub data: Value,
}

/// Why a stream record makes no event it should.
#[derive(Debug)]
pub enum EventError {
    /// The record or an image is not what the API writes.
    Record(String),
    Store(StoreError),
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventError::Record(why) => write!(f, "stream record: {why}"),
            EventError::Store(e) => write!(f, "stream image: {e}"),
        }
    }
}

impl std::error::Error for EventError {}

impl From<StoreError> for EventError {
    fn from(e: StoreError) -> Self {
        EventError::Store(e)
    }
}

/// The event a stream record makes, if any: none for an item that is neither a profile nor
/// a contact, and none for a write that changed nothing the API shows but the version and
/// `updated_at` (a no-op write, a contact write's mark on its profile, a rewrite by an
/// upgrade or a shard move).
pub fn event_of(record: &StreamRecord, source: &str) -> Result<Option<ChangeEvent>, EventError> {
    let keys = stream::item_of_json(record.dynamodb.keys.clone())?;
    if !stream::is_profile_or_contact(&keys) {
        return Ok(None);
    }
    let image = |v: &Option<Value>| -> Result<Option<Image>, EventError> {
        match v {
            None => Ok(None),
            Some(v) => Ok(stream::image_of(stream::item_of_json(v.clone())?)?),
        }
    };
    let (old, new) = (
        image(&record.dynamodb.old_image)?,
        image(&record.dynamodb.new_image)?,
    );
    let (change, image, previous) = match (old, new) {
        (None, Some(new)) => ("created", new, None),
        (Some(old), Some(new)) => {
            let changed = previous_values(&shown(&old)?.object, &shown(&new)?.object);
            if changed.keys().all(|k| BOOKKEEPING.contains(&k.as_str())) {
                return Ok(None);
            }
            ("updated", new, Some(changed))
        }
        (Some(old), None) => ("deleted", old, None),
        (None, None) => {
            return Err(EventError::Record(format!(
                "{} {} carries no image (the stream must show new and old images)",
                record.event_name, record.event_id
            )));
        }
    };
    let view = shown(&image)?;
    // A deletion has no `updated_at` of its own, and a write that leaves `updated_at` as it
    // was (a profile losing the primary mark to another) did not make it: both take the
    // stream's time of the change (whole seconds on AWS), never before the state they follow.
    let moved_updated_at = previous
        .as_ref()
        .is_none_or(|p| p.contains_key("updated_at"));
    let after = view.updated_at.next();
    let time = match (change, record.dynamodb.approximate_creation) {
        ("deleted", Some(secs)) => stream_time(secs).max(after),
        ("updated", Some(secs)) if !moved_updated_at => stream_time(secs).max(after),
        ("deleted", None) => Timestamp::now_after(view.updated_at),
        _ => view.updated_at,
    }
    .to_string();
    let mut data = Map::new();
    data.insert("object".into(), view.object);
    if let Some(previous) = previous {
        data.insert("previous_attributes".into(), Value::Object(previous));
    }
    data.insert("version".into(), view.version.into());
    let mut event = ChangeEvent {
        specversion: SPEC_VERSION.to_owned(),
        id: record.event_id.clone(),
        source: source.to_owned(),
        kind: format!("{}.{change}", view.kind),
        subject: image.profile_id().to_string(),
        time,
        datacontenttype: "application/json".to_owned(),
        tenantid: image.tenant.to_string(),
        sequence: format!("{:0>40}", record.dynamodb.sequence_number),
        data: Value::Object(data),
    };
    if serde_json::to_vec(&event).map_or(0, |b| b.len()) > MAX_EVENT_BYTES {
        let id = event.data["object"]["id"].clone();
        event.data = json!({"object": {"id": id}, "version": view.version, "truncated": true});
    }
    Ok(Some(event))
}

/// The stream's time of a change (seconds since the epoch), as a [`Timestamp`]; now when it
/// is out of range.
fn stream_time(secs: f64) -> Timestamp {
    time::OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9) as i128)
        .map_or_else(|_| Timestamp::now(), Timestamp::from)
}

/// An object as the API shows it, with what events say of it.
struct Shown {
    kind: &'static str,
    object: Value,
    version: u64,
    updated_at: Timestamp,
}

fn shown(image: &Image) -> Result<Shown, EventError> {
    let render = |e: crate::model::RenderError| EventError::Record(e.to_string());
    Ok(match &image.stored {
        Stored::Profile(p) => Shown {
            kind: "profile",
            object: p.to_json(None).map_err(render)?,
            version: p.version,
            updated_at: p.updated_at,
        },
        Stored::Contact { profile, contact } => {
            let mut object = contact.to_json().map_err(render)?;
            if let Some(o) = object.as_object_mut() {
                o.insert("profile_id".into(), profile.to_string().into());
            }
            Shown {
                kind: "contact",
                object,
                version: contact.version,
                updated_at: contact.updated_at,
            }
        }
    })
}

/// Every top-level field whose value differs between `old` and `new`, with its old value
/// (`null` for a field `old` did not have).
fn previous_values(old: &Value, new: &Value) -> Map<String, Value> {
    let empty = Map::new();
    let (old, new) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    old.keys()
        .chain(new.keys())
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| (k.clone(), old.get(k).cloned().unwrap_or(Value::Null)))
        .collect()
}

/// A record the batch could not publish: where Lambda resumes (`itemIdentifier` is its
/// sequence number).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// The answer to a stream batch: the records to deliver again (the first failure and, by
/// Lambda's rule, every record after it); empty when all were published.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

impl BatchResponse {
    fn failed_at(sequence: &str) -> Self {
        Self {
            batch_item_failures: vec![ItemFailure {
                item_identifier: sequence.to_owned(),
            }],
        }
    }
}

/// Why a batch failed from its first record on: the invocation fails, so that Lambda splits
/// the batch (`BisectBatchOnFunctionError`) and a record that can never be published ends
/// alone in the dead-letter queue, holding up none of the others.
#[derive(Debug)]
pub struct BatchFailed {
    pub sequence: String,
    pub cause: String,
}

impl std::fmt::Display for BatchFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the batch's first record ({}): {}",
            self.sequence, self.cause
        )
    }
}

impl std::error::Error for BatchFailed {}

/// Publishes a stream batch (Lambda's `{"Records": [...]}`): every record's event, in the
/// batch's order. It stops at the first record it cannot publish (one that makes no event
/// it should, or whose event the bus refused after its retries). When records before it
/// were done, it answers that record as the batch's item failure: Lambda checkpoints the
/// ones before and delivers it and those after it again. When it is the batch's first, the
/// invocation fails: Lambda then halves the batch (an item failure would only deliver the
/// same records again), so a record that cannot be published is soon alone. Each is logged
/// with why.
pub async fn publish(bus: &Bus, source: &str, batch: &Value) -> Result<BatchResponse, BatchFailed> {
    let records = batch["Records"].as_array().cloned().unwrap_or_default();
    let sequence_of = |raw: &Value| {
        raw["dynamodb"]["SequenceNumber"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let first = records.first().map(sequence_of).unwrap_or_default();
    let fail = |sequence: String, cause: String| {
        if sequence.is_empty() || sequence == first {
            Err(BatchFailed { sequence, cause })
        } else {
            Ok(BatchResponse::failed_at(&sequence))
        }
    };
    let mut pending: Vec<(String, ChangeEvent)> = Vec::new();
    for raw in &records {
        let sequence = sequence_of(raw);
        let made = serde_json::from_value::<StreamRecord>(raw.clone())
            .map_err(|e| EventError::Record(e.to_string()))
            .and_then(|record| event_of(&record, source));
        match made {
            Ok(Some(event)) => pending.push((sequence, event)),
            Ok(None) => {}
            Err(e) => {
                if let Err((at, cause)) = put_all(bus, &pending).await {
                    return fail(at, cause);
                }
                tracing::error!(sequence, error = %e, "a stream record makes no event");
                return fail(sequence, e.to_string());
            }
        }
    }
    match put_all(bus, &pending).await {
        Ok(()) => Ok(BatchResponse::default()),
        Err((at, cause)) => fail(at, cause),
    }
}

impl ChangeEvent {
    /// The event as a bus entry: its source, its type as the detail type, itself as the
    /// detail.
    pub fn entry(&self) -> Result<Entry, serde_json::Error> {
        Ok(Entry {
            source: self.source.clone(),
            detail_type: self.kind.clone(),
            detail: serde_json::to_string(self)?,
        })
    }
}

/// Puts `events` on the bus in order; on the first that the bus would not take (or that
/// would not serialize), its record's sequence number and why.
async fn put_all(bus: &Bus, events: &[(String, ChangeEvent)]) -> Result<(), (String, String)> {
    let mut entries = Vec::with_capacity(events.len());
    let mut unmade = None;
    for (at, (_, event)) in events.iter().enumerate() {
        match event.entry() {
            Ok(entry) => entries.push(entry),
            Err(e) => {
                unmade = Some((at, format!("serializing the event: {e}")));
                break;
            }
        }
    }
    let failed = match bus.put(&entries).await {
        Err(BusError {
            first_unsent,
            cause,
        }) => Some((first_unsent, cause)),
        Ok(()) => unmade,
    };
    let Some((at, cause)) = failed else {
        return Ok(());
    };
    let sequence = events.get(at).map(|(s, _)| s.clone()).unwrap_or_default();
    tracing::warn!(sequence, error = %cause, "the bus did not take an event; Lambda delivers it again");
    Err((sequence, cause))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test
mod tests {
    use super::*;

    /// `events/publish-events.json`: a profile's INSERT, MODIFY (renamed) and REMOVE.
    fn fixture() -> Vec<StreamRecord> {
        let batch: Value =
            serde_json::from_str(include_str!("../../events/publish-events.json")).unwrap();
        serde_json::from_value(batch["Records"].clone()).unwrap()
    }

    fn event(record: &StreamRecord) -> Option<ChangeEvent> {
        event_of(record, "test").unwrap()
    }

    #[test]
    fn a_create_an_update_and_a_delete_make_their_events() {
        let records = fixture();
        let [created, updated, deleted] = [0, 1, 2].map(|i| event(&records[i]).unwrap());
        assert_eq!(created.kind, "profile.created");
        assert_eq!(created.time, created.data["object"]["updated_at"]);
        assert!(created.data.get("previous_attributes").is_none());
        assert_eq!(updated.kind, "profile.updated");
        assert_eq!(updated.data["previous_attributes"]["name"], "Mary Smith");
        assert_eq!(updated.data["object"]["name"], "Mary Jones");
        assert_eq!(updated.data["version"], 2);
        assert_eq!(deleted.kind, "profile.deleted");
        assert_eq!(deleted.data["object"]["name"], "Mary Jones");
        // A deletion's time is the stream's, in the API's timestamp form.
        assert_eq!(deleted.time, "2026-12-07T00:27:39.000Z");
        assert_eq!(created.sequence.len(), 40);
        assert!(created.sequence < updated.sequence && updated.sequence < deleted.sequence);
    }

    #[test]
    fn a_write_that_moves_only_version_and_updated_at_makes_none() {
        let mut record = fixture().remove(1);
        let old = record.dynamodb.old_image.clone().unwrap();
        let mut new = old.clone();
        new["version"] = json!({"N": "2"});
        new["updated_at"] = json!({"S": "2026-12-08T00:00:00.000Z"});
        record.dynamodb.new_image = Some(new);
        assert_eq!(event(&record), None);
    }

    #[test]
    fn a_change_that_leaves_updated_at_takes_the_streams_time() {
        // A profile losing the primary mark to another: only is_primary changes.
        let mut record = fixture().remove(1);
        let old = record.dynamodb.new_image.clone().unwrap();
        let mut new = old.clone();
        new["is_primary"] = json!({"BOOL": false});
        record.dynamodb.old_image = Some(old);
        record.dynamodb.new_image = Some(new);
        let e = event(&record).unwrap();
        assert_eq!(
            Value::Object(e.data["previous_attributes"].as_object().unwrap().clone()),
            json!({"is_primary": true})
        );
        // The stream's time (00:27:38, whole seconds) is before the state it follows: one
        // millisecond after that state instead.
        assert_eq!(e.time, "2026-12-07T00:27:38.035Z");
    }

    #[test]
    fn an_item_that_is_neither_a_profile_nor_a_contact_makes_none() {
        let mut record = fixture().remove(0);
        record.dynamodb.keys["SK"] = json!({"S": "GUARD#slug#mary-smith"});
        assert_eq!(event(&record), None);
    }

    #[test]
    fn a_profile_image_that_does_not_decode_is_an_error() {
        let mut record = fixture().remove(0);
        record.dynamodb.new_image = Some(record.dynamodb.keys.clone());
        assert!(event_of(&record, "test").is_err());
    }

    #[test]
    fn previous_values_name_every_changed_field_with_its_old_value() {
        let old = json!({"a": 1, "b": "x", "gone": true});
        let new = json!({"a": 2, "b": "x", "added": null, "new": 5});
        let p = previous_values(&old, &new);
        assert_eq!(
            Value::Object(p),
            json!({"a": 1, "gone": true, "added": null, "new": null})
        );
    }
}
