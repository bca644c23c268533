//! Change events: one CloudEvents 1.0 event per change of a profile or a contact, made from a
//! record of the table's stream (its old and new images, read back by `store::stream`), and
//! the publishing of a stream batch to the bus (`crate::bus`) in stream order. docs/events.md
//! is the contract; the OpenAPI document's `ChangeEvent` schema is its machine-readable form.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::bus::{Bus, BusError};
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
    /// When the change was made: the object's `updated_at`, or for a deletion the stream's
    /// time of it.
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
    let time = match (change, record.dynamodb.approximate_creation) {
        ("deleted", Some(secs)) => {
            time::OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9) as i128)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| Timestamp::now().to_string())
        }
        ("deleted", None) => Timestamp::now().to_string(),
        _ => view.updated_at.to_string(),
    };
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

/// Publishes a stream batch (Lambda's `{"Records": [...]}`): every record's event, in the
/// batch's order. It stops at the first record it cannot publish (one that makes no event
/// it should, or whose event the bus refused after its retries) and answers it as the
/// batch's failure, so Lambda delivers it and those after it again; the ones before are
/// done. Each is logged with why.
pub async fn publish(bus: &Bus, source: &str, batch: &Value) -> BatchResponse {
    let records = batch["Records"].as_array().cloned().unwrap_or_default();
    let mut pending: Vec<(String, ChangeEvent)> = Vec::new();
    for raw in &records {
        let sequence = raw["dynamodb"]["SequenceNumber"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let made = serde_json::from_value::<StreamRecord>(raw.clone())
            .map_err(|e| EventError::Record(e.to_string()))
            .and_then(|record| event_of(&record, source));
        match made {
            Ok(Some(event)) => pending.push((sequence, event)),
            Ok(None) => {}
            Err(e) => {
                if let Err(failed) = put_all(bus, &pending).await {
                    return failed;
                }
                tracing::error!(sequence, error = %e, "a stream record makes no event");
                return BatchResponse::failed_at(&sequence);
            }
        }
    }
    match put_all(bus, &pending).await {
        Ok(()) => BatchResponse::default(),
        Err(failed) => failed,
    }
}

/// Puts `events` on the bus in order; on the first that the bus would not take, the failure
/// to answer with.
async fn put_all(bus: &Bus, events: &[(String, ChangeEvent)]) -> Result<(), BatchResponse> {
    let only: Vec<&ChangeEvent> = events.iter().map(|(_, e)| e).collect();
    match bus.put(&only).await {
        Ok(()) => Ok(()),
        Err(BusError {
            first_unsent,
            cause,
        }) => {
            let sequence = events
                .get(first_unsent)
                .map(|(s, _)| s.as_str())
                .unwrap_or_default();
            tracing::warn!(sequence, error = %cause, "the bus did not take an event; Lambda delivers it again");
            Err(BatchResponse::failed_at(sequence))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
