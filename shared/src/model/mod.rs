//! The profile and contact models: what is stored, how a request body becomes a validated
//! change (create, PUT and PATCH all go through [`ProfilePatch`]), and how a profile is
//! rendered with its derived fields (`name`, `headline`, `country`). Contacts are in
//! `contact`; bulk jobs in `job`.

mod contact;
pub mod job;

use contact::parse_contacts;
pub use contact::{Contact, ContactValue, MAX_CONTACTS, NewContact};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::ids::{PrincipalId, ProfileId};

use crate::validate::{
    CountryCode, CustomProperties, CustomPropertiesPatch, Education, Email, Field, List, LongText,
    Name, Phone, Slug, SocialLink, Tags, Text, WebUrl, WorkExperience,
};
use crate::validate::{FieldErrors, Invalid};

/// The largest request body accepted: DynamoDB's item limit. A larger body could never be
/// stored, so it is refused before it is parsed; an import's line is held to it too.
pub const MAX_BODY_BYTES: usize = 400 * 1024;

/// Fields a client may never send: the server owns them.
pub const READ_ONLY_FIELDS: &[&str] = &[
    "id",
    "owner_id",
    "created_at",
    "updated_at",
    "version",
    "photo_url",
    "country",
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
            fn to_json(&self) -> Result<Map<String, Value>, RenderError> {
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

/// A model that would not render as JSON: our bug (serde cannot fail on these types), never
/// the caller's.
#[derive(Debug)]
pub struct RenderError(pub serde_json::Error);

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "render as JSON: {}", self.0)
    }
}

impl std::error::Error for RenderError {}

/// A PATCH with no member: there is nothing to change.
pub(crate) fn empty_patch() -> Invalid {
    Invalid::Content {
        code: "empty_patch",
        detail: "the patch must contain at least one field".into(),
    }
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Value, RenderError> {
    serde_json::to_value(value).map_err(RenderError)
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

impl ProfileFields {
    /// The name the first, middle and last names make: what a profile without `name` shows.
    pub fn name_from_parts(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.first_name, &self.middle_name, &self.last_name]
            .into_iter()
            .flatten()
            .map(|p| p.as_str())
            .collect();
        // Cut to a name's 255 characters: a client may PUT back what it read.
        Name::cut(&parts.join(" ")).map(|n| n.to_string())
    }

    /// "title at company", or whichever of the two is set: what a profile without
    /// `headline` shows (cut to a name's length).
    pub fn headline_from_parts(&self) -> Option<String> {
        let derived = match (&self.title, &self.company) {
            (Some(t), Some(c)) => format!("{t} at {c}"),
            (Some(t), None) => t.to_string(),
            (None, Some(c)) => c.to_string(),
            (None, None) => return None,
        };
        Name::cut(&derived).map(|h| h.to_string())
    }
}

/// A parsed, validated request body.
#[derive(Debug, Default)]
pub struct ProfileInput {
    pub patch: ProfilePatch,
    pub contacts: Vec<NewContact>,
    /// `is_primary` as sent: `true` makes the profile its owner's primary one (moving the
    /// mark from the previous one); `false` on create makes one that is not; `false` on a
    /// write of a profile that is not primary changes nothing.
    pub primary: Option<bool>,
}

impl ProfileInput {
    /// Validates a whole body, reporting every bad, unknown or read-only member at once.
    pub fn parse(body: &Map<String, Value>, kind: BodyKind) -> Result<Self, Invalid> {
        let mut errors = FieldErrors::default();
        let mut input = Self::default();
        for (key, value) in body {
            if input.patch.set(key, value, &mut errors) {
                continue;
            }
            if key == "is_primary" {
                match value {
                    Value::Bool(b) => input.primary = Some(*b),
                    _ => errors.push("is_primary", "must be true or false"),
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
            return Err(empty_patch());
        }
        errors.into_result(input)
    }
}

/// Applies `patch` to `fields`, then checks the rules that span fields.
pub fn apply_patch(fields: &mut ProfileFields, patch: ProfilePatch) -> Result<(), Invalid> {
    let mut errors = FieldErrors::default();
    patch.apply(fields, &mut errors);
    errors.into_result(())
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

    /// The time a profile id was made (a UUID v7 carries its creation in ms): a profile's
    /// `created_at`, so creation order and id order are one.
    pub fn of_id(id: &ProfileId) -> Self {
        let ms = id
            .as_uuid()
            .get_timestamp()
            .map(|t| t.to_unix())
            .map_or(0, |(secs, nanos)| {
                i128::from(secs) * 1000 + i128::from(nanos / 1_000_000)
            });
        time::OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000)
            .map_or_else(|_| Self::now(), Self)
    }

    /// Now, or one millisecond after `previous` if that is not earlier: a record's
    /// `updated_at` strictly increases with its version, even within one millisecond.
    pub fn now_after(previous: Self) -> Self {
        Self::now().max(previous.next())
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(self) -> i64 {
        self.0.unix_timestamp()
    }

    /// One millisecond later: the least time after this one that the text form tells apart.
    pub fn next(self) -> Self {
        Self(self.0 + time::Duration::milliseconds(1))
    }
}

impl From<time::OffsetDateTime> for Timestamp {
    fn from(t: time::OffsetDateTime) -> Self {
        Self(t.to_offset(time::UtcOffset::UTC))
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

/// A profile's accepted photo: the upload it came from (a UUID v7, so later uploads order
/// after earlier ones), its object in the bucket, and the URL the API shows as `photo_url`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Photo {
    pub upload: Uuid,
    pub key: String,
    pub url: String,
}

/// A stored profile: always valid, because it is only ever built from validated parts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub id: ProfileId,
    #[serde(flatten)]
    pub fields: ProfileFields,
    /// The accepted photo (`photo_url`), set only by process-photo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<Photo>,
    pub owner_id: PrincipalId,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
    /// Whether this is its owner's primary profile (`/profiles/me`). The pointer item
    /// (`store::schema::primary_pointer`) and this flag change in one transaction.
    #[serde(default)]
    pub is_primary: bool,
}

impl Profile {
    /// A new profile of `owner` with `fields`, made at its id's time (creation order is id
    /// order), at version 1 and not its owner's primary.
    pub fn new(id: ProfileId, fields: ProfileFields, owner_id: PrincipalId) -> Self {
        let now = Timestamp::of_id(&id);
        Self {
            id,
            fields,
            photo: None,
            owner_id,
            created_at: now,
            updated_at: now,
            version: 1,
            is_primary: false,
        }
    }

    /// The display name: `name` if set, else first/middle/last joined by single spaces.
    pub fn display_name(&self) -> Option<String> {
        match &self.fields.name {
            Some(name) => Some(name.to_string()),
            None => self.fields.name_from_parts(),
        }
    }

    /// `headline` if set, else "title at company", or whichever of the two is set (cut to
    /// 255 characters, like `name`).
    pub fn display_headline(&self) -> Option<String> {
        match &self.fields.headline {
            Some(h) => Some(h.to_string()),
            None => self.fields.headline_from_parts(),
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
    pub fn to_json(&self, contacts: Option<&[Contact]>) -> Result<Value, RenderError> {
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
        let photo_url = self.photo.as_ref().map(|p| p.url.clone());
        out.insert("photo_url".into(), photo_url.into());
        out.insert("owner_id".into(), Value::String(self.owner_id.to_string()));
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
