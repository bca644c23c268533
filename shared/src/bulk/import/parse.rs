//! A line's content: parsed and validated as a `POST /profiles` body is (an export's
//! server-owned members ignored), what the table's refusal of it means on the line, and the
//! waves that keep lines sharing a unique value in file order.

use std::collections::HashMap;

use serde_json::Value;

use super::read::line_error;
use crate::model::job::{LineError, Mode};
use crate::model::{self, BodyKind, ProfileFields, ProfileInput, READ_ONLY_FIELDS};
use crate::store::StoreError;
use crate::validate::{FieldError, Invalid};

/// One line's content, parsed.
pub(super) struct Parsed {
    pub(super) number: u64,
    pub(super) input: ProfileInput,
    /// A new profile's fields: the input applied to none (its cross-field rules checked).
    pub(super) fields: ProfileFields,
    pub(super) external_id: Option<String>,
    pub(super) slug: Option<String>,
}

/// The members of an export's line the server owns, which an import ignores so that an
/// export imports as it is: a profile's read-only fields ([`READ_ONLY_FIELDS`]) and
/// `is_primary` (an import makes no primary profile), and each contact's own.
const IGNORED_TOO: &str = "is_primary";
pub const IGNORED_IN_CONTACTS: [&str; 4] = ["id", "created_at", "updated_at", "version"];

/// A line as a `POST /profiles` body (an export's server-owned members left out), with
/// what its import mode asks of it.
pub(super) fn parse(number: u64, text: &str, mode: Mode) -> Result<Parsed, LineError> {
    let body = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut map)) => {
            for name in READ_ONLY_FIELDS.iter().chain([&IGNORED_TOO]) {
                map.remove(*name);
            }
            if let Some(Value::Array(contacts)) = map.get_mut("contacts") {
                for contact in contacts.iter_mut().filter_map(Value::as_object_mut) {
                    for name in IGNORED_IN_CONTACTS {
                        contact.remove(name);
                    }
                }
            }
            map
        }
        Ok(_) => {
            return Err(line_error(
                number,
                "invalid_body",
                "the line must be a JSON object".into(),
                Vec::new(),
            ));
        }
        Err(e) => {
            return Err(line_error(
                number,
                "malformed_json",
                format!("the line is not valid JSON: {e}"),
                Vec::new(),
            ));
        }
    };
    let input = ProfileInput::parse(&body, BodyKind::Create).map_err(|e| invalid(number, e))?;
    let mut fields = ProfileFields::default();
    model::apply_patch(&mut fields, input.patch.clone()).map_err(|e| invalid(number, e))?;
    // An export shows a profile without a `name` or `headline` of its own with the one its
    // other fields make: such a value is not taken as the profile's own, so it goes on
    // following those fields.
    if fields.name.as_ref().map(ToString::to_string) == fields.name_from_parts() {
        fields.name = None;
    }
    if fields.headline.as_ref().map(ToString::to_string) == fields.headline_from_parts() {
        fields.headline = None;
    }
    // As stored (trimmed, normalised): what the guards compare.
    let external_id = fields.external_id.as_ref().map(|v| v.as_str().to_owned());
    let slug = fields.slug.as_ref().map(|v| v.as_str().to_owned());
    if mode == Mode::Upsert && external_id.is_none() {
        return Err(invalid(
            number,
            Invalid::field(
                "external_id",
                "required in upsert mode: a line is matched to a profile on it",
            ),
        ));
    }
    Ok(Parsed {
        number,
        input,
        fields,
        external_id,
        slug,
    })
}

/// Validation's refusal of a line, as the API answers a body with it.
pub(super) fn invalid(number: u64, err: Invalid) -> LineError {
    let detail = err.to_string();
    match err {
        Invalid::Fields(errors) => line_error(number, "validation_failed", detail, errors),
        Invalid::Content { code, .. } => line_error(number, code, detail, Vec::new()),
    }
}

/// The table's refusal of a line (a unique value held, a limit), as the API answers it.
pub(super) fn refused(number: u64, err: &StoreError) -> Option<LineError> {
    err.refusal().map(|r| {
        let errors = r
            .field
            .map(|field| {
                vec![FieldError {
                    field: field.to_owned(),
                    message: r.detail.clone(),
                }]
            })
            .unwrap_or_default();
        line_error(number, r.code, r.detail, errors)
    })
}

/// The waves a chunk's lines are written in: a line whose `external_id` or `slug` an
/// earlier line of the chunk also has waits for that line's wave to end, so the earlier
/// line always holds the value first, as if the file were written line by line.
pub(super) fn waves(lines: Vec<Parsed>) -> Vec<Vec<Parsed>> {
    let mut last: HashMap<(bool, String), usize> = HashMap::new();
    let mut out: Vec<Vec<Parsed>> = Vec::new();
    for line in lines {
        let keys: Vec<(bool, String)> = [
            line.external_id.clone().map(|v| (true, v)),
            line.slug.clone().map(|v| (false, v)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let wave = keys
            .iter()
            .filter_map(|k| last.get(k).map(|w| w + 1))
            .max()
            .unwrap_or(0);
        for k in keys {
            last.insert(k, wave);
        }
        if out.len() <= wave {
            out.resize_with(wave + 1, Vec::new);
        }
        out[wave].push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn a_name_or_headline_an_export_made_from_other_fields_is_not_taken_as_the_profiles_own() {
        let line = r#"{"name": "Ada King", "first_name": "Ada", "last_name": "King", "headline": "CTO at Acme", "title": "CTO", "company": "Acme"}"#;
        let parsed = parse(1, line, Mode::Create).unwrap();
        assert_eq!(parsed.fields.name, None);
        assert_eq!(parsed.fields.headline, None);
        let own = r#"{"name": "The Countess", "first_name": "Ada", "headline": "Analyst", "title": "CTO"}"#;
        let parsed = parse(1, own, Mode::Create).unwrap();
        assert_eq!(parsed.fields.name.unwrap().to_string(), "The Countess");
        assert_eq!(parsed.fields.headline.unwrap().to_string(), "Analyst");
    }

    #[test]
    fn a_later_line_with_an_earlier_ones_unique_value_waits_for_its_wave() {
        let line = |n: u64, ext: Option<&str>, slug: Option<&str>| Parsed {
            number: n,
            input: ProfileInput::default(),
            fields: ProfileFields::default(),
            external_id: ext.map(str::to_owned),
            slug: slug.map(str::to_owned),
        };
        let waves = waves(vec![
            line(1, Some("x"), None),
            line(2, Some("y"), Some("s")),
            line(3, Some("x"), None),
            line(4, None, Some("s")),
            line(5, Some("x"), Some("t")),
            line(6, None, None),
        ]);
        let numbers: Vec<Vec<u64>> = waves
            .iter()
            .map(|w| w.iter().map(|l| l.number).collect())
            .collect();
        assert_eq!(numbers, [vec![1, 2, 6], vec![3, 4], vec![5]]);
    }
}
