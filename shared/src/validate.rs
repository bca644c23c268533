//! Validated value types, parsed from request JSON at the edge. A value of one of these
//! types has passed its rule; code past the edge never checks again.
//!
//! Each type implements [`Field`]: parse a JSON value at a path, pushing every problem
//! found into a [`FieldErrors`] so a request's bad fields are reported all at once.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::FieldErrors;

/// A value that can be parsed from request JSON.
pub trait Field: Sized {
    /// Parses a non-null JSON value; on failure pushes the reasons and returns `None`.
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self>;

    /// True for a value that means "nothing" and is stored as absent (an empty list).
    fn is_blank(&self) -> bool {
        false
    }

    /// How the field is rendered when absent.
    fn absent_json() -> Value {
        Value::Null
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn expect_str<'v>(value: &'v Value, path: &str, errors: &mut FieldErrors) -> Option<&'v str> {
    match value {
        Value::String(s) => Some(s),
        other => {
            errors.push(path, format!("must be a string, not {}", type_name(other)));
            None
        }
    }
}

/// A trimmed, non-empty string of at most `MAX` characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Text<const MAX: usize>(String);

impl<const MAX: usize> Text<MAX> {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Validates a string from any source (request JSON, a query string).
    pub fn new(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("must not be empty (send null to clear it)".into());
        }
        let chars = trimmed.chars().count();
        if chars > MAX {
            return Err(format!("must be at most {MAX} characters, not {chars}"));
        }
        if trimmed
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err("must not contain control characters".into());
        }
        Ok(Self(trimmed.to_owned()))
    }
}

impl<const MAX: usize> Field for Text<MAX> {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let raw = expect_str(value, path, errors)?;
        Self::new(raw).map_err(|m| errors.push(path, m)).ok()
    }
}

impl<const MAX: usize> fmt::Display for Text<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub type Name = Text<255>;
pub type LongText = Text<10_000>;

impl Field for bool {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(*b),
            other => {
                errors.push(path, format!("must be a boolean, not {}", type_name(other)));
                None
            }
        }
    }
}

/// An email address: valid syntax, at most 254 characters, the domain lower-cased.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn new(raw: &str) -> Result<Self, String> {
        use email_address::{EmailAddress, Options};
        let raw = raw.trim();
        if raw.len() > 254 {
            return Err(format!("must be at most 254 characters, not {}", raw.len()));
        }
        let options = Options::default()
            .without_display_text()
            .without_domain_literal()
            .with_required_tld();
        let parsed = EmailAddress::parse_with_options(raw, options)
            .map_err(|e| format!("not a valid address ({e})"))?;
        Ok(Self(format!(
            "{}@{}",
            parsed.local_part(),
            parsed.domain().to_lowercase()
        )))
    }
}

impl Field for Email {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let raw = expect_str(value, path, errors)?;
        Self::new(raw).map_err(|m| errors.push(path, m)).ok()
    }
}

/// A phone number in E.164 form (`+49658245684`), checked against libphonenumber's metadata.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn new(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.len() > 64 {
            return Err("is not a phone number".into());
        }
        let number = phonenumber::parse(None, raw).map_err(|_| {
            "not a valid phone number: use the international form with a + and the country code, such as +14155552671".to_owned()
        })?;
        if !phonenumber::is_valid(&number) {
            return Err("not a valid phone number for its country code".into());
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }
}

impl Field for Phone {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let raw = expect_str(value, path, errors)?;
        Self::new(raw).map_err(|m| errors.push(path, m)).ok()
    }
}

/// An absolute `http` or `https` URL of at most 2,048 characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebUrl(String);

impl Field for WebUrl {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let raw = expect_str(value, path, errors)?.trim();
        if raw.len() > 2048 {
            errors.push(path, "must be at most 2048 characters");
            return None;
        }
        match url::Url::parse(raw) {
            Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
                Some(Self(u.to_string()))
            }
            Ok(_) => {
                errors.push(path, "must be an http or https URL");
                None
            }
            Err(e) => {
                errors.push(path, format!("not a valid absolute URL ({e})"));
                None
            }
        }
    }
}

/// A URL-safe handle: `[a-z0-9-]`, 1 to 100 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub const MAX: usize = 100;

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn new(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > Self::MAX {
            return Err(format!("must be 1 to {} characters", Self::MAX));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("may contain only lowercase letters a-z, digits and hyphens".into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// The slug made from a display name, if the name has any letter or digit to keep.
    pub fn from_name(name: &str) -> Option<Self> {
        let mut base = slug::slugify(name);
        if base.len() > Self::MAX {
            base.truncate(Self::MAX);
            base = base.trim_end_matches('-').to_owned();
        }
        Self::new(&base).ok()
    }

    /// The `n`th alternative for a taken slug: `base-n`, shortened to stay within the limit.
    pub fn with_suffix(&self, n: u32) -> Self {
        let suffix = format!("-{n}");
        let keep = (Self::MAX - suffix.len()).min(self.0.len());
        let base = self.0[..keep].trim_end_matches('-');
        Self(format!("{base}{suffix}"))
    }
}

impl Field for Slug {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let raw = expect_str(value, path, errors)?;
        Self::new(raw).map_err(|m| errors.push(path, m)).ok()
    }
}

/// An ISO 3166-1 numeric country code (`"840"`), known to the ISO list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct CountryCode(isocountry::CountryCode);

impl CountryCode {
    pub fn new(raw: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{raw:?} is not an ISO 3166-1 numeric country code (three digits, such as \"840\")"
            )
        };
        if raw.len() != 3 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let id = u32::from_str(raw).map_err(|_| bad())?;
        isocountry::CountryCode::for_id(id)
            .map(Self)
            .map_err(|_| bad())
    }

    /// The country object of the contract, with its UN M49 region.
    pub fn country(&self) -> Country {
        let numeric_code = format!("{:03}", self.0.numeric_id());
        let region = codes_un_m49::RegionClassificationCode::from_str(&numeric_code)
            .ok()
            .and_then(|c| c.parent_code());
        Country {
            alpha2_code: self.0.alpha2(),
            alpha3_code: self.0.alpha3(),
            name: self.0.name(),
            region_numeric_code: region.map(|r| format!("{:03}", r.code())),
            region_name: region.map(|r| r.name()),
            numeric_code,
        }
    }
}

impl From<CountryCode> for String {
    fn from(c: CountryCode) -> Self {
        format!("{:03}", c.0.numeric_id())
    }
}

impl TryFrom<String> for CountryCode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::new(&s)
    }
}

impl Field for CountryCode {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let raw = expect_str(value, path, errors)?;
        Self::new(raw).map_err(|m| errors.push(path, m)).ok()
    }
}

/// The expansion of a country code, as responses show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Country {
    pub numeric_code: String,
    pub alpha2_code: &'static str,
    pub alpha3_code: &'static str,
    pub name: &'static str,
    pub region_numeric_code: Option<String>,
    pub region_name: Option<&'static str>,
}

/// A calendar date with day or month precision: `YYYY-MM` or `YYYY-MM-DD`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PartialDate(String);

impl Field for PartialDate {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let raw = expect_str(value, path, errors)?;
        let full = match raw.len() {
            7 => format!("{raw}-01"),
            10 => raw.to_owned(),
            _ => String::new(),
        };
        let format = time::macros::format_description!("[year]-[month]-[day]");
        if time::Date::parse(&full, format).is_ok() {
            Some(Self(raw.to_owned()))
        } else {
            errors.push(path, "must be a date as YYYY-MM or YYYY-MM-DD");
            None
        }
    }
}

impl PartialDate {
    /// Whether `end` can follow `self`, comparing at the coarser of the two precisions.
    fn allows_end(&self, end: &Self) -> bool {
        let n = self.0.len().min(end.0.len());
        end.0[..n] >= self.0[..n]
    }
}

/// A list of at most `MAX` valid items. An empty list is stored as absent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct List<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> List<T, MAX> {
    pub fn items(&self) -> &[T] {
        &self.0
    }
}

impl<T: Field, const MAX: usize> Field for List<T, MAX> {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let Value::Array(items) = value else {
            errors.push(path, format!("must be an array, not {}", type_name(value)));
            return None;
        };
        if items.len() > MAX {
            errors.push(
                path,
                format!("must have at most {MAX} items, not {}", items.len()),
            );
            return None;
        }
        let mut parsed = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            if item.is_null() {
                errors.push(item_path, "must not be null");
                ok = false;
            } else if let Some(v) = T::parse(item, &item_path, errors) {
                parsed.push(v);
            } else {
                ok = false;
            }
        }
        ok.then_some(Self(parsed))
    }

    fn is_blank(&self) -> bool {
        self.0.is_empty()
    }

    fn absent_json() -> Value {
        Value::Array(Vec::new())
    }
}

pub type Tags = List<Name, 100>;

/// Reads a JSON object with a fixed set of members, reporting unknown and missing ones.
/// The path of member `key` inside `path` (`""` is the body itself).
pub fn member(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub struct ObjectReader<'v> {
    members: &'v serde_json::Map<String, Value>,
    path: String,
    ok: bool,
}

impl<'v> ObjectReader<'v> {
    /// Starts reading `value` as an object whose members are exactly `known` (or fewer).
    pub fn new(
        value: &'v Value,
        path: &str,
        known: &[&str],
        errors: &mut FieldErrors,
    ) -> Option<Self> {
        let Value::Object(members) = value else {
            errors.push(path, format!("must be an object, not {}", type_name(value)));
            return None;
        };
        let mut ok = true;
        for key in members.keys() {
            if !known.contains(&key.as_str()) {
                errors.push(
                    member(path, key),
                    format!("unknown field; expected one of: {}", known.join(", ")),
                );
                ok = false;
            }
        }
        Some(Self {
            members,
            path: path.to_owned(),
            ok,
        })
    }

    /// A member that must be present and valid.
    pub fn required<T: Field>(&mut self, key: &str, errors: &mut FieldErrors) -> Option<T> {
        let path = member(&self.path, key);
        match self.members.get(key) {
            None | Some(Value::Null) => {
                errors.push(path, "is required");
                self.ok = false;
                None
            }
            Some(v) => {
                let parsed = T::parse(v, &path, errors);
                self.ok &= parsed.is_some();
                parsed
            }
        }
    }

    /// A member that may be absent or null.
    pub fn optional<T: Field>(&mut self, key: &str, errors: &mut FieldErrors) -> Option<T> {
        let path = member(&self.path, key);
        match self.members.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => {
                let parsed = T::parse(v, &path, errors);
                self.ok &= parsed.is_some();
                parsed
            }
        }
    }

    /// True when every member read so far was valid and none was unknown.
    pub fn ok(&self) -> bool {
        self.ok
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

/// `{platform, url}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SocialLink {
    pub platform: Name,
    pub url: WebUrl,
}

impl Field for SocialLink {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let mut r = ObjectReader::new(value, path, &["platform", "url"], errors)?;
        let platform = r.required("platform", errors);
        let url = r.required("url", errors);
        Some(Self {
            platform: platform?,
            url: url?,
        })
        .filter(|_| r.ok())
    }
}

fn check_date_order(
    r: &ObjectReader<'_>,
    start: Option<&PartialDate>,
    end: Option<&PartialDate>,
    errors: &mut FieldErrors,
) -> bool {
    match (start, end) {
        (Some(s), Some(e)) if !s.allows_end(e) => {
            errors.push(
                format!("{}.end_date", r.path()),
                "must not be before start_date",
            );
            false
        }
        _ => true,
    }
}

/// `{title, company, start_date, end_date?, description?}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkExperience {
    pub title: Name,
    pub company: Name,
    pub start_date: PartialDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<PartialDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Text<2_000>>,
}

impl Field for WorkExperience {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let known = ["title", "company", "start_date", "end_date", "description"];
        let mut r = ObjectReader::new(value, path, &known, errors)?;
        let title = r.required("title", errors);
        let company = r.required("company", errors);
        let start_date = r.required("start_date", errors);
        let end_date = r.optional("end_date", errors);
        let description = r.optional("description", errors);
        let ordered = check_date_order(&r, start_date.as_ref(), end_date.as_ref(), errors);
        Some(Self {
            title: title?,
            company: company?,
            start_date: start_date?,
            end_date,
            description,
        })
        .filter(|_| r.ok() && ordered)
    }
}

/// `{school, degree?, field?, start_date?, end_date?}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Education {
    pub school: Name,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degree: Option<Name>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<Name>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<PartialDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<PartialDate>,
}

impl Field for Education {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let known = ["school", "degree", "field", "start_date", "end_date"];
        let mut r = ObjectReader::new(value, path, &known, errors)?;
        let school = r.required("school", errors);
        let degree = r.optional("degree", errors);
        let field = r.optional("field", errors);
        let start_date = r.optional("start_date", errors);
        let end_date = r.optional("end_date", errors);
        let ordered = check_date_order(&r, start_date.as_ref(), end_date.as_ref(), errors);
        Some(Self {
            school: school?,
            degree,
            field,
            start_date,
            end_date,
        })
        .filter(|_| r.ok() && ordered)
    }
}

/// Free-form string properties: at most 50 keys `[A-Za-z0-9_.-]{1,64}`, values ≤ 500 characters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomProperties(BTreeMap<String, String>);

/// A merge patch of custom properties: a key set to `None` is removed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CustomPropertiesPatch(BTreeMap<String, Option<String>>);

impl CustomProperties {
    pub const MAX_KEYS: usize = 50;

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Applies a merge patch key by key; the result must still respect the key limit.
    pub fn merge(
        current: Option<Self>,
        patch: CustomPropertiesPatch,
        errors: &mut FieldErrors,
    ) -> Option<Self> {
        let mut map = current.map(|c| c.0).unwrap_or_default();
        for (k, v) in patch.0 {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        if map.len() > Self::MAX_KEYS {
            errors.push(
                "custom_properties",
                format!(
                    "must have at most {} keys, would have {}",
                    Self::MAX_KEYS,
                    map.len()
                ),
            );
        }
        (!map.is_empty()).then_some(Self(map))
    }
}

impl Field for CustomPropertiesPatch {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let Value::Object(members) = value else {
            errors.push(path, format!("must be an object, not {}", type_name(value)));
            return None;
        };
        let mut ok = true;
        let mut map = BTreeMap::new();
        if members.len() > CustomProperties::MAX_KEYS {
            errors.push(
                path,
                format!(
                    "must have at most {} keys, not {}",
                    CustomProperties::MAX_KEYS,
                    members.len()
                ),
            );
            ok = false;
        }
        for (key, v) in members {
            let key_path = format!("{path}.{key}");
            let key_ok = (1..=64).contains(&key.len())
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !key_ok {
                errors.push(
                    key_path,
                    "key must be 1 to 64 characters of A-Z, a-z, 0-9, _ . -",
                );
                ok = false;
                continue;
            }
            match v {
                Value::Null => {
                    map.insert(key.clone(), None);
                }
                Value::String(s) if s.chars().count() <= 500 => {
                    map.insert(key.clone(), Some(s.clone()));
                }
                Value::String(_) => {
                    errors.push(key_path, "must be at most 500 characters");
                    ok = false;
                }
                other => {
                    errors.push(
                        key_path,
                        format!("must be a string or null, not {}", type_name(other)),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(Self(map))
    }

    fn absent_json() -> Value {
        Value::Object(serde_json::Map::new())
    }
}
