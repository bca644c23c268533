//! Contacts: a value (email or phone) validated and normalized by its key, the body that
//! makes or changes one, and the stored contact.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{BodyKind, Timestamp, to_json};
use crate::ids::ContactId;
use crate::validate::{Email, Field, List, Name, ObjectReader, Phone, Text, member};
use crate::validate::{FieldErrors, Invalid};

/// A contact's value, validated and normalized by its key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "key", content = "value", rename_all = "lowercase")]
pub enum ContactValue {
    Email(Email),
    Phone(Phone),
}

impl ContactValue {
    /// What makes two contacts of one profile the same: the key and the normalized value.
    pub fn fingerprint(&self) -> String {
        match self {
            Self::Email(e) => format!("email:{}", e.as_str()),
            Self::Phone(p) => format!("phone:{}", p.as_str()),
        }
    }
}

/// A contact as a request gives it: `{key, value, external_id?}`.
#[derive(Clone, Debug, PartialEq)]
pub struct NewContact {
    pub value: ContactValue,
    pub external_id: Option<Name>,
}

/// The members of a contact body; the others a contact shows are read-only.
const CONTACT_FIELDS: [&str; 3] = ["key", "value", "external_id"];
const CONTACT_READ_ONLY: [&str; 4] = ["id", "created_at", "updated_at", "version"];

impl Field for NewContact {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let mut r = ObjectReader::new(value, path, &CONTACT_FIELDS, errors)?;
        let external_id = r.optional::<Name>("external_id", errors);
        let key = r.required::<Text<16>>("key", errors);
        // The key exactly as the document's enum states it: not trimmed into one.
        let sent = value.get("key").and_then(Value::as_str);
        let parsed = match key
            .as_ref()
            .map(|k| k.as_str())
            .filter(|k| sent == Some(*k))
        {
            Some("email") => r
                .required::<Email>("value", errors)
                .map(ContactValue::Email),
            Some("phone") => r
                .required::<Phone>("value", errors)
                .map(ContactValue::Phone),
            _ => {
                if key.is_some() {
                    errors.push(member(path, "key"), "must be \"email\" or \"phone\"");
                }
                // The value's rule depends on the key; without a usable key, still report a
                // missing or non-string value, so one answer names every bad field.
                r.required::<Text<254>>("value", errors);
                None
            }
        };
        Some(Self {
            value: parsed?,
            external_id,
        })
        .filter(|_| r.ok())
    }
}

impl NewContact {
    /// A contact request body: `POST` and `PUT` give the whole contact; `PATCH` is a merge
    /// patch over `current`'s members (`null` clears `external_id`; a new `key` needs its
    /// `value`). Every bad, unknown or read-only member is reported at once.
    pub fn from_body(
        body: &Map<String, Value>,
        kind: BodyKind,
        current: Option<&Contact>,
    ) -> Result<Self, Invalid> {
        let mut errors = FieldErrors::default();
        for key in body.keys() {
            if CONTACT_READ_ONLY.contains(&key.as_str()) {
                errors.push(key.as_str(), "is read-only");
            }
        }
        if kind == BodyKind::Patch && body.is_empty() {
            return Err(super::empty_patch());
        }
        let mut merged = match (kind, current) {
            (BodyKind::Patch, Some(c)) => c.members(),
            _ => Map::new(),
        };
        if kind == BodyKind::Patch && body.contains_key("key") && !body.contains_key("value") {
            merged.remove("value");
        }
        for (k, v) in body {
            if CONTACT_READ_ONLY.contains(&k.as_str()) {
                continue;
            }
            if v.is_null() {
                merged.remove(k);
            } else {
                merged.insert(k.clone(), v.clone());
            }
        }
        let parsed = Self::parse(&Value::Object(merged), "", &mut errors);
        match (errors.into_result(()), parsed) {
            (Ok(()), Some(c)) => Ok(c),
            (Err(e), _) => Err(e),
            // `parse` reports every reason it gives no contact; this cannot be reached with an
            // empty error list, but answer as for a missing value rather than panic.
            (Ok(()), None) => Err(Invalid::field("value", "is required")),
        }
    }
}

/// At most this many contacts per profile.
pub const MAX_CONTACTS: usize = 50;

pub(super) fn parse_contacts(value: &Value, errors: &mut FieldErrors) -> Vec<NewContact> {
    if value.is_null() {
        return Vec::new();
    }
    let Some(list) = List::<NewContact, MAX_CONTACTS>::parse(value, "contacts", errors) else {
        return Vec::new();
    };
    let items = list.items();
    for (i, c) in items.iter().enumerate() {
        if let Some(first) = items[..i].iter().position(|o| o.value == c.value) {
            errors.push(
                format!("contacts[{i}]"),
                format!("duplicates contacts[{first}]"),
            );
        }
    }
    items.to_vec()
}

/// A stored contact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub id: ContactId,
    #[serde(flatten)]
    pub value: ContactValue,
    pub external_id: Option<Name>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Increases by one on every change; the `ETag`.
    #[serde(default = "first_version")]
    pub version: u64,
}

fn first_version() -> u64 {
    1
}

impl Contact {
    pub fn new(input: NewContact, now: Timestamp) -> Self {
        Self {
            id: ContactId::generate(),
            value: input.value,
            external_id: input.external_id,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// This contact changed to `input`, as its next version.
    pub fn changed(&self, input: NewContact) -> Self {
        Self {
            value: input.value,
            external_id: input.external_id,
            updated_at: Timestamp::now_after(self.updated_at),
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// The entity tag of this version.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }

    /// Its writable members as a body would give them.
    fn members(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let (key, value) = match &self.value {
            ContactValue::Email(e) => ("email", e.as_str()),
            ContactValue::Phone(p) => ("phone", p.as_str()),
        };
        m.insert("key".into(), key.into());
        m.insert("value".into(), value.into());
        if let Some(x) = &self.external_id {
            m.insert("external_id".into(), x.as_str().into());
        }
        m
    }

    pub fn to_json(&self) -> Result<Value, super::RenderError> {
        to_json(self)
    }
}
