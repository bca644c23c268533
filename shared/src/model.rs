//! The profile and contact models: what is stored, how a request body becomes a validated
//! change (create, PUT and PATCH all go through [`ProfilePatch`]), and how a profile is
//! rendered with its derived fields (`name`, `headline`, `country`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::{ApiError, FieldErrors};
use crate::validate::{
    CountryCode, CustomProperties, CustomPropertiesPatch, Education, Email, Field, List, LongText,
    Name, ObjectReader, Phone, Slug, SocialLink, Tags, Text, WebUrl, WorkExperience, member,
};

/// Fields a client may never send: the server owns them.
pub const READ_ONLY_FIELDS: &[&str] = &[
    "id",
    "owner_id",
    "created_at",
    "updated_at",
    "version",
    "photo_url",
    "country",
    "is_primary",
];

/// Declares the writable fields once: the stored struct, the merge patch, and its parser.
macro_rules! writable_fields {
    ($($name:ident: $ty:ty),* $(,)?) => {
        /// Every writable field of a profile, each absent or valid.
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        pub struct ProfileFields {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $name: Option<$ty>,
            )*
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub custom_properties: Option<CustomProperties>,
        }

        /// A JSON Merge Patch of the writable fields: `None` leaves a field alone,
        /// `Some(None)` clears it, `Some(Some(v))` sets it.
        #[derive(Clone, Debug, Default)]
        pub struct ProfilePatch {
            $( pub $name: Option<Option<$ty>>, )*
            pub custom_properties: Option<Option<CustomPropertiesPatch>>,
        }

        /// Names of the writable fields, in the order of the contract's table.
        pub const WRITABLE_FIELDS: &[&str] = &[$(stringify!($name),)* "custom_properties"];

        impl ProfilePatch {
            /// Parses one member; returns false when the key is not a writable field.
            fn set(&mut self, key: &str, value: &Value, errors: &mut FieldErrors) -> bool {
                match key {
                    $(
                        stringify!($name) => {
                            self.$name = Some(parse_nullable::<$ty>(value, key, errors));
                            true
                        }
                    )*
                    "custom_properties" => {
                        self.custom_properties =
                            Some(parse_nullable::<CustomPropertiesPatch>(value, key, errors));
                        true
                    }
                    _ => false,
                }
            }

            /// Applies the patch to `fields` (RFC 7396): set, clear, or leave alone.
            pub fn apply(self, fields: &mut ProfileFields, errors: &mut FieldErrors) {
                $(
                    if let Some(v) = self.$name {
                        fields.$name = v.filter(|v| !v.is_blank());
                    }
                )*
                match self.custom_properties {
                    None => {}
                    Some(None) => fields.custom_properties = None,
                    Some(Some(patch)) => {
                        fields.custom_properties =
                            CustomProperties::merge(fields.custom_properties.take(), patch, errors);
                    }
                }
            }
        }

        impl ProfileFields {
            /// The fields as JSON, every absent one shown as null (or `[]`, `{}`).
            fn to_json(&self) -> Result<Map<String, Value>, ApiError> {
                let mut out = Map::new();
                $(
                    out.insert(
                        stringify!($name).to_owned(),
                        match &self.$name {
                            Some(v) => to_json(v)?,
                            None => <$ty as Field>::absent_json(),
                        },
                    );
                )*
                out.insert(
                    "custom_properties".to_owned(),
                    match &self.custom_properties {
                        Some(v) => to_json(v)?,
                        None => CustomPropertiesPatch::absent_json(),
                    },
                );
                Ok(out)
            }
        }
    };
}

writable_fields! {
    name: Name,
    first_name: Name,
    middle_name: Name,
    last_name: Name,
    slug: Slug,
    title: Name,
    company: Name,
    location: Name,
    headline: Name,
    bio: LongText,
    overview: LongText,
    products_and_services: LongText,
    website_url: WebUrl,
    email: Email,
    mobile_phone_number: Phone,
    country_numeric_code: CountryCode,
    enabled: bool,
    is_public: bool,
    key_achievements: Tags,
    unique_value_propositions: Tags,
    industry: Tags,
    target_audience: Tags,
    tags: Tags,
    lists: Tags,
    skills: Tags,
    social_links: List<SocialLink, 50>,
    work_experiences: List<WorkExperience, 50>,
    education: List<Education, 50>,
    organization_id: Name,
    external_id: Name,
    comment: Text<2_000>,
}

fn parse_nullable<T: Field>(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<T> {
    if value.is_null() {
        None
    } else {
        T::parse(value, path, errors)
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::internal("render profile", e))
}

/// Where a body is being used: what else it may hold besides writable fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// `POST /profiles`: may carry initial `contacts`.
    Create,
    /// `PUT`: replaces every writable field.
    Replace,
    /// `PATCH`: needs at least one member.
    Patch,
}

/// A parsed, validated request body.
#[derive(Debug, Default)]
pub struct ProfileInput {
    pub patch: ProfilePatch,
    pub contacts: Vec<NewContact>,
    /// `"is_primary": true` in a PATCH or PUT: make this its owner's primary profile.
    pub make_primary: bool,
}

impl ProfileInput {
    /// Validates a whole body, reporting every bad, unknown or read-only member at once.
    pub fn parse(body: &Map<String, Value>, kind: BodyKind) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let mut input = Self::default();
        for (key, value) in body {
            if input.patch.set(key, value, &mut errors) {
                continue;
            }
            if key == "is_primary" {
                match (kind, value) {
                    (BodyKind::Create, _) => errors.push(
                        "is_primary",
                        "cannot be set on create: a principal's first profile is primary; \
                         move the mark later with PATCH {\"is_primary\": true}",
                    ),
                    (_, Value::Bool(true)) => input.make_primary = true,
                    (_, Value::Bool(false)) => errors.push(
                        "is_primary",
                        "only true is accepted: the mark moves when another profile is made primary",
                    ),
                    _ => errors.push("is_primary", "must be true"),
                }
            } else if key == "contacts" {
                if kind == BodyKind::Create {
                    input.contacts = parse_contacts(value, &mut errors);
                } else {
                    errors.push(
                        "contacts",
                        "cannot be changed here; use /profiles/{profile_id}/contacts",
                    );
                }
            } else if READ_ONLY_FIELDS.contains(&key.as_str()) {
                errors.push(key.as_str(), "is read-only");
            } else {
                errors.push(key.as_str(), "unknown field");
            }
        }
        if kind == BodyKind::Patch && body.is_empty() {
            return Err(ApiError::bad_request(
                "empty_patch",
                "the patch must contain at least one field",
            ));
        }
        errors.into_result(input)
    }
}

/// Applies `patch` to `fields`, then checks the rules that span fields.
pub fn apply_patch(fields: &mut ProfileFields, patch: ProfilePatch) -> Result<(), ApiError> {
    let mut errors = FieldErrors::default();
    patch.apply(fields, &mut errors);
    errors.into_result(())
}

/// A profile's id: a UUID v7, so ids sort by creation time.
pub type ProfileId = Uuid;

/// Parses a path parameter as a profile or contact id. Anything else cannot exist.
pub fn parse_id(raw: &str) -> Option<Uuid> {
    Uuid::try_parse(raw).ok()
}

/// A point in time, stored and shown as RFC 3339 UTC with milliseconds
/// (`2026-01-01T00:00:00.000Z`): fixed width, so it sorts as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(time::OffsetDateTime);

const TIMESTAMP_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
);

impl Timestamp {
    pub fn now() -> Self {
        let now = time::OffsetDateTime::now_utc();
        // Truncated to what the text form keeps, so a value equals itself after a round trip.
        let ms = now.millisecond();
        Self(now.replace_millisecond(ms).unwrap_or(now))
    }

    /// Now, or one millisecond after `previous` if that is not earlier: a record's
    /// `updated_at` strictly increases with its version, even within one millisecond.
    pub fn now_after(previous: Self) -> Self {
        let now = Self::now();
        if now > previous {
            now
        } else {
            Self(previous.0 + time::Duration::milliseconds(1))
        }
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.format(TIMESTAMP_FORMAT) {
            Ok(s) => f.write_str(&s),
            Err(_) => Err(std::fmt::Error),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        time::PrimitiveDateTime::parse(&s, TIMESTAMP_FORMAT)
            .map(|t| Self(t.assume_utc()))
            .map_err(serde::de::Error::custom)
    }
}

/// A stored profile: always valid, because it is only ever built from validated parts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub id: ProfileId,
    #[serde(flatten)]
    pub fields: ProfileFields,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_url: Option<String>,
    pub owner_id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
    /// Whether this is its owner's primary profile (`/profiles/me`). The pointer item
    /// (`store::schema::primary_pointer`) and this flag change in one transaction.
    #[serde(default)]
    pub is_primary: bool,
}

impl Profile {
    /// The display name: `name` if set, else first/middle/last joined by single spaces.
    pub fn display_name(&self) -> Option<String> {
        if let Some(name) = &self.fields.name {
            return Some(name.to_string());
        }
        let f = &self.fields;
        let parts: Vec<&str> = [&f.first_name, &f.middle_name, &f.last_name]
            .into_iter()
            .flatten()
            .map(|p| p.as_str())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// `headline` if set, else "title at company", or whichever of the two is set.
    pub fn display_headline(&self) -> Option<String> {
        let f = &self.fields;
        if let Some(h) = &f.headline {
            return Some(h.to_string());
        }
        match (&f.title, &f.company) {
            (Some(t), Some(c)) => Some(format!("{t} at {c}")),
            (Some(t), None) => Some(t.to_string()),
            (None, Some(c)) => Some(c.to_string()),
            (None, None) => None,
        }
    }

    /// The slug this profile should get when it has none: made from its display name.
    pub fn derived_slug(&self) -> Option<Slug> {
        self.display_name().as_deref().and_then(Slug::from_name)
    }

    /// The entity tag of this version.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }

    /// The profile as the API shows it; `contacts` is embedded when given.
    pub fn to_json(&self, contacts: Option<&[Contact]>) -> Result<Value, ApiError> {
        let mut out = self.fields.to_json()?;
        out.insert("id".into(), Value::String(self.id.to_string()));
        out.insert("name".into(), self.display_name().into());
        out.insert("headline".into(), self.display_headline().into());
        out.insert("enabled".into(), self.fields.enabled.unwrap_or(true).into());
        out.insert(
            "is_public".into(),
            self.fields.is_public.unwrap_or(false).into(),
        );
        let country = match self.fields.country_numeric_code {
            Some(c) => to_json(&c.country())?,
            None => Value::Null,
        };
        out.insert("country".into(), country);
        out.insert("photo_url".into(), self.photo_url.clone().into());
        out.insert("owner_id".into(), Value::String(self.owner_id.clone()));
        out.insert("is_primary".into(), self.is_primary.into());
        out.insert(
            "created_at".into(),
            Value::String(self.created_at.to_string()),
        );
        out.insert(
            "updated_at".into(),
            Value::String(self.updated_at.to_string()),
        );
        out.insert("version".into(), self.version.into());
        if let Some(contacts) = contacts {
            out.insert("contacts".into(), to_json(&contacts)?);
        }
        Ok(Value::Object(out))
    }
}

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
        let parsed = match key.as_ref().map(|k| k.as_str()) {
            Some("email") => r
                .required::<Email>("value", errors)
                .map(ContactValue::Email),
            Some("phone") => r
                .required::<Phone>("value", errors)
                .map(ContactValue::Phone),
            Some(_) => {
                errors.push(member(path, "key"), "must be \"email\" or \"phone\"");
                None
            }
            None => None,
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
    ) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        for key in body.keys() {
            if CONTACT_READ_ONLY.contains(&key.as_str()) {
                errors.push(key.as_str(), "is read-only");
            }
        }
        if kind == BodyKind::Patch && body.is_empty() {
            return Err(ApiError::bad_request(
                "empty_patch",
                "the patch must contain at least one field",
            ));
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
            (Ok(()), None) => Err(ApiError::bad_request(
                "validation_failed",
                "value: is required",
            )),
        }
    }
}

/// At most this many contacts per profile.
pub const MAX_CONTACTS: usize = 50;

fn parse_contacts(value: &Value, errors: &mut FieldErrors) -> Vec<NewContact> {
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
    pub id: Uuid,
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
            id: Uuid::now_v7(),
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

    pub fn to_json(&self) -> Result<Value, ApiError> {
        to_json(self)
    }
}
