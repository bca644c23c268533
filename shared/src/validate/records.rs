//! Structured values: social links, work experiences, education, custom properties.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::FieldErrors;
use super::{Field, Name, ObjectReader, PartialDate, Text, WebUrl, type_name};

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

    use serde_json::json;

    use super::*;

    #[test]
    fn a_work_experience_cannot_end_before_it_starts() {
        let mut errors = FieldErrors::default();
        let value = json!({"title": "CTO", "company": "Acme",
            "start_date": "2020-05", "end_date": "2019-01"});
        assert!(WorkExperience::parse(&value, "w", &mut errors).is_none());
        assert_eq!(errors.fields(), ["w.end_date"]);
        let ok = json!({"title": "CTO", "company": "Acme", "start_date": "2020-05"});
        assert!(WorkExperience::parse(&ok, "w", &mut errors).is_some());
    }

    #[test]
    fn a_social_link_needs_a_platform_and_a_web_url() {
        let mut errors = FieldErrors::default();
        let value = json!({"url": "not a url"});
        assert!(SocialLink::parse(&value, "s", &mut errors).is_none());
        let mut fields = errors.fields();
        fields.sort();
        assert_eq!(fields, ["s.platform", "s.url"]);
    }

    #[test]
    fn custom_properties_merge_as_a_patch_and_check_their_keys() {
        let mut errors = FieldErrors::default();
        let patch =
            CustomPropertiesPatch::parse(&json!({"a": "1", "b": "2"}), "c", &mut errors).unwrap();
        let stored = CustomProperties::merge(None, patch, &mut errors);
        let patch =
            CustomPropertiesPatch::parse(&json!({"a": null, "c": "3"}), "c", &mut errors).unwrap();
        let merged = CustomProperties::merge(stored, patch, &mut errors).unwrap();
        assert_eq!(
            serde_json::to_value(&merged).unwrap(),
            json!({"b": "2", "c": "3"})
        );
        assert!(errors.fields().is_empty());
        let bad = json!({"bad key": "x", "k": 1, "long": "x".repeat(501)});
        assert!(CustomPropertiesPatch::parse(&bad, "c", &mut errors).is_none());
        assert_eq!(errors.fields(), ["c.bad key", "c.k", "c.long"]);
    }
}
