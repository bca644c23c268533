//! Validated value types, parsed from request JSON at the edge. A value of one of these
//! types has passed its rule; code past the edge never checks again.
//!
//! Each type implements [`Field`]: parse a JSON value at a path, pushing every problem
//! found into a [`FieldErrors`] so a request's bad fields are reported all at once. This file
//! is the frame (the trait, text, lists, objects); `values` holds the scalar values (email,
//! phone, URL, slug, country, date), `records` the structured ones (links, work, education,
//! custom properties).

mod records;
mod values;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use records::{CustomProperties, CustomPropertiesPatch, Education, SocialLink, WorkExperience};
pub use values::{Country, CountryCode, Email, PartialDate, Phone, Slug, WebUrl};

/// One bad field of a request: a JSON path (`social_links[2].url`), a query parameter or a
/// header, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Collects every bad field of a request, so one answer can report them all.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// The fields reported so far, in order (for tests).
    #[cfg(test)]
    pub fn fields(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.field.as_str()).collect()
    }

    /// The messages reported so far, in order (for tests).
    #[cfg(test)]
    pub fn messages(&self) -> Vec<String> {
        self.0.iter().map(|e| e.message.clone()).collect()
    }

    /// `Ok(value)` when nothing was reported, otherwise every bad field.
    pub fn into_result<T>(self, value: T) -> Result<T, Invalid> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(Invalid::Fields(self.0))
        }
    }
}

/// Why a request's content is refused: what validation speaks. The edge answers it with a
/// 400 whose `errors` name each field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// One or more fields, each with what is wrong.
    Fields(Vec<FieldError>),
    /// The content as a whole (`empty_patch`): a problem code and what is wrong.
    Content { code: &'static str, detail: String },
}

impl Invalid {
    /// One named field (a parameter, a header, a member) and what is wrong with it.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Fields(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// The fields it names, in order (empty for a content-wide refusal).
    pub fn fields(&self) -> Vec<&str> {
        match self {
            Self::Fields(errors) => errors.iter().map(|e| e.field.as_str()).collect(),
            Self::Content { .. } => Vec::new(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fields(errors) => {
                let parts: Vec<String> = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect();
                f.write_str(&parts.join("; "))
            }
            Self::Content { detail, .. } => f.write_str(detail),
        }
    }
}

impl std::error::Error for Invalid {}

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

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn expect_str<'v>(
    value: &'v Value,
    path: &str,
    errors: &mut FieldErrors,
) -> Option<&'v str> {
    match value {
        Value::String(s) => Some(s),
        other => {
            errors.push(path, format!("must be a string, not {}", type_name(other)));
            None
        }
    }
}

/// A non-blank string of at most `MAX` characters with no control character but tab and line
/// breaks, kept trimmed. The length and the characters are those of the value as sent, before
/// trimming, so the rule is the one docs/openapi.yaml can state (`maxLength` and a pattern
/// over the whole value): a value the document refuses is never quietly trimmed into one it
/// allows.
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
        let chars = raw.chars().count();
        if chars > MAX {
            return Err(format!("must be at most {MAX} characters, not {chars}"));
        }
        if raw
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err("must not contain control characters".into());
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The longest valid value `raw` begins with: trimmed and cut to `MAX` characters. For
    /// values the server derives from valid parts (a profile's computed `name` and
    /// `headline`), so that every value the API shows passes its own validation and a client
    /// can send it back. `None` when nothing is left.
    pub fn cut(raw: &str) -> Option<Self> {
        let cut: String = raw.trim().chars().take(MAX).collect();
        Self::new(cut.trim_end()).ok()
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    proptest! {
        /// `Text<N>` accepts exactly the strings whose trimmed form is non-empty, that are at
        /// most `N` characters and free of control characters but tab and line breaks as
        /// sent (a control character that is also a space, U+000B, U+000C or U+0085, is
        /// refused even at an end), and keeps the trimmed form.
        #[test]
        fn text_accepts_exactly_what_its_rule_says(raw in "[ \\t\\na-zé\\u{0}\\u{b}\\u{7f}\\u{85}]{0,12}") {
            let trimmed = raw.trim();
            let allowed = !trimmed.is_empty()
                && raw.chars().count() <= 8
                && raw.chars().all(|c| !c.is_control() || "\t\n\r".contains(c));
            match Text::<8>::new(&raw) {
                Ok(t) => {
                    prop_assert!(allowed, "{raw:?} accepted");
                    prop_assert_eq!(t.as_str(), trimmed);
                }
                Err(_) => prop_assert!(!allowed, "{raw:?} refused"),
            }
        }
    }

    #[test]
    fn a_list_reports_each_bad_item_by_its_index() {
        let mut errors = FieldErrors::default();
        let parsed = Tags::parse(&json!(["ok", "", null, 3]), "tags", &mut errors);
        assert!(parsed.is_none());
        assert_eq!(errors.fields(), ["tags[1]", "tags[2]", "tags[3]"]);
    }

    #[test]
    fn a_list_past_its_limit_is_refused_and_an_empty_one_is_blank() {
        let mut errors = FieldErrors::default();
        let many = json!(vec!["t"; 101]);
        assert!(Tags::parse(&many, "tags", &mut errors).is_none());
        assert_eq!(errors.fields(), ["tags"]);
        let empty = Tags::parse(&json!([]), "tags", &mut errors).unwrap();
        assert!(empty.is_blank());
        assert_eq!(Tags::absent_json(), json!([]));
    }

    #[test]
    fn an_object_reader_reports_unknown_missing_and_bad_members_at_once() {
        let mut errors = FieldErrors::default();
        let value = json!({"title": "", "extra": 1});
        let mut r =
            ObjectReader::new(&value, "work[0]", &["title", "company"], &mut errors).unwrap();
        assert!(r.required::<Name>("title", &mut errors).is_none());
        assert!(r.required::<Name>("company", &mut errors).is_none());
        assert!(!r.ok());
        let mut fields = errors.fields();
        fields.sort();
        assert_eq!(
            fields,
            ["work[0].company", "work[0].extra", "work[0].title"]
        );
        assert_eq!(member("", "title"), "title");
    }

    #[test]
    fn booleans_are_only_json_booleans() {
        let mut errors = FieldErrors::default();
        assert_eq!(bool::parse(&json!(true), "b", &mut errors), Some(true));
        assert_eq!(bool::parse(&json!("true"), "b", &mut errors), None);
        assert_eq!(errors.messages(), ["must be a boolean, not a string"]);
    }
}
