//! EventBridge's event patterns, as its rules match them: every key of the pattern must
//! match (a nested object matches the event's object there; an array of conditions matches
//! when any does, an event array when any element does), `$or` takes alternatives, and the
//! content filters `prefix`, `suffix`, `equals-ignore-case`, `anything-but`, `exists`,
//! `numeric` and `wildcard`. A field the event lacks matches nothing but `exists: false`.

use serde_json::{Map, Value};

/// Whether `event` matches `pattern`.
pub fn matches(pattern: &Value, event: &Value) -> bool {
    pattern
        .as_object()
        .is_some_and(|p| object_matches(p, Some(event)))
}

fn object_matches(pattern: &Map<String, Value>, event: Option<&Value>) -> bool {
    pattern.iter().all(|(key, condition)| {
        if key == "$or" {
            return condition.as_array().is_some_and(|alternatives| {
                alternatives
                    .iter()
                    .filter_map(Value::as_object)
                    .any(|alt| object_matches(alt, event))
            });
        }
        let field = event.and_then(|e| e.get(key));
        match condition {
            Value::Object(nested) => {
                field.is_some_and(Value::is_object) && object_matches(nested, field)
            }
            Value::Array(conditions) => conditions.iter().any(|c| leaf_matches(c, field)),
            _ => false,
        }
    })
}

/// The values a condition is held to: each element of an array, else the value itself.
fn values(field: Option<&Value>) -> Vec<&Value> {
    match field {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
    }
}

fn leaf_matches(condition: &Value, field: Option<&Value>) -> bool {
    let Value::Object(op) = condition else {
        return values(field).contains(&condition);
    };
    let Some((name, arg)) = op.iter().next() else {
        return false;
    };
    let strings = || values(field).into_iter().filter_map(Value::as_str);
    match name.as_str() {
        "exists" => arg.as_bool() == Some(field.is_some()),
        "prefix" | "suffix" | "equals-ignore-case" | "wildcard" => {
            strings().any(|s| text_matches(name, arg, s))
        }
        "numeric" => values(field)
            .into_iter()
            .filter_map(Value::as_f64)
            .any(|n| numeric_matches(arg, n)),
        "anything-but" => {
            let present = values(field);
            !present.is_empty()
                && present.into_iter().all(|v| match arg {
                    Value::Array(excluded) => !excluded.contains(v),
                    Value::Object(inner) => inner
                        .iter()
                        .next()
                        .is_some_and(|(op, a)| v.as_str().is_some_and(|s| !text_matches(op, a, s))),
                    excluded => v != excluded,
                })
        }
        _ => false,
    }
}

/// A text condition (`prefix`, `suffix`, `equals-ignore-case`, `wildcard`) on `s`; `prefix`
/// and `suffix` may take `{"equals-ignore-case": …}`.
fn text_matches(op: &str, arg: &Value, s: &str) -> bool {
    let (want, fold) = match arg {
        Value::String(w) => (w.as_str(), op == "equals-ignore-case"),
        Value::Object(o) => match o.get("equals-ignore-case").and_then(Value::as_str) {
            Some(w) => (w, true),
            None => return false,
        },
        _ => return false,
    };
    let (s, want) = if fold {
        (s.to_lowercase(), want.to_lowercase())
    } else {
        (s.to_owned(), want.to_owned())
    };
    match op {
        "prefix" => s.starts_with(&want),
        "suffix" => s.ends_with(&want),
        "equals-ignore-case" => s == want,
        "wildcard" => wildcard(&want, &s),
        _ => false,
    }
}

/// `*` stands for any run of characters.
fn wildcard(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if parts.len() == 1 {
        return s == pattern;
    }
    if !s.starts_with(first) || !s[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// `["<", 10, ">=", 0]`: every comparison holds.
fn numeric_matches(arg: &Value, n: f64) -> bool {
    let Some(terms) = arg.as_array() else {
        return false;
    };
    !terms.is_empty()
        && terms.chunks(2).all(|pair| match pair {
            [Value::String(op), bound] => bound.as_f64().is_some_and(|b| match op.as_str() {
                "=" => n == b,
                "<" => n < b,
                "<=" => n <= b,
                ">" => n > b,
                ">=" => n >= b,
                _ => false,
            }),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "source": "profiles-api/profiles-local",
            "detail-type": "profile.updated",
            "detail": {"tenantid": "acme", "data": {"version": 3, "tags": ["a", "b"]}, "none": null}
        })
    }

    #[test]
    fn exact_values_and_nested_objects_match_as_eventbridge_does() {
        assert!(matches(
            &json!({"source": ["profiles-api/profiles-local"]}),
            &event()
        ));
        assert!(matches(
            &json!({"detail": {"tenantid": ["x", "acme"]}}),
            &event()
        ));
        assert!(!matches(
            &json!({"detail": {"tenantid": ["Acme"]}}),
            &event()
        ));
        assert!(matches(
            &json!({"detail": {"data": {"tags": ["b"]}}}),
            &event()
        ));
        assert!(matches(&json!({"detail": {"none": [null]}}), &event()));
        assert!(!matches(&json!({"detail": {"missing": [null]}}), &event()));
        assert!(!matches(
            &json!({"detail": {"tenantid": ["acme"]}, "source": ["other"]}),
            &event()
        ));
    }

    #[test]
    fn content_filters_match_as_eventbridge_does() {
        let e = event();
        assert!(matches(
            &json!({"detail-type": [{"prefix": "profile."}]}),
            &e
        ));
        assert!(matches(
            &json!({"detail-type": [{"suffix": ".updated"}]}),
            &e
        ));
        assert!(matches(
            &json!({"detail-type": [{"prefix": {"equals-ignore-case": "PROFILE."}}]}),
            &e
        ));
        assert!(matches(
            &json!({"detail": {"tenantid": [{"equals-ignore-case": "ACME"}]}}),
            &e
        ));
        assert!(matches(
            &json!({"detail-type": [{"wildcard": "profile.*ed"}]}),
            &e
        ));
        assert!(!matches(
            &json!({"detail-type": [{"wildcard": "contact.*"}]}),
            &e
        ));
        assert!(matches(
            &json!({"detail": {"tenantid": [{"anything-but": ["x", "y"]}]}}),
            &e
        ));
        assert!(!matches(
            &json!({"detail": {"tenantid": [{"anything-but": "acme"}]}}),
            &e
        ));
        assert!(!matches(
            &json!({"detail": {"absent": [{"anything-but": "acme"}]}}),
            &e
        ));
        assert!(matches(
            &json!({"detail": {"absent": [{"exists": false}]}}),
            &e
        ));
        assert!(!matches(
            &json!({"detail": {"tenantid": [{"exists": false}]}}),
            &e
        ));
        assert!(matches(
            &json!({"detail": {"data": {"version": [{"numeric": [">", 2, "<=", 3]}]}}}),
            &e
        ));
        assert!(!matches(
            &json!({"detail": {"data": {"version": [{"numeric": [">", 3]}]}}}),
            &e
        ));
        assert!(matches(
            &json!({"$or": [{"source": ["no"]}, {"detail": {"tenantid": ["acme"]}}]}),
            &e
        ));
    }
}
