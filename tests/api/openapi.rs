//! `docs/openapi.yaml` cannot drift from what is built: its paths and methods are exactly the
//! template's routes, its profile fields are the model's, and every length and count limit
//! it states is the validators' own (one over the limit is a 400 naming the field, the limit
//! itself is accepted), and each list filter takes exactly the values its schema allows.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;

use local_api::template::Template;
use profiles_tests::{Api, json, repo_path};
use serde_json::Value;

/// The document, as JSON.
fn document() -> Value {
    let text = std::fs::read_to_string(repo_path("docs/openapi.yaml")).unwrap();
    let yaml: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    serde_json::to_value(yaml).unwrap()
}

/// The schema `schema` stands for: through a `$ref`, or the one `$ref` of an `allOf` (how
/// OpenAPI 3.0 makes a referenced schema nullable).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let reference = schema["$ref"]
        .as_str()
        .or_else(|| schema["allOf"][0]["$ref"].as_str());
    match reference {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

fn property_names(schema: &Value) -> BTreeSet<String> {
    schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[test]
fn the_documents_paths_and_methods_are_exactly_the_templates_routes() {
    let doc = document();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    let template = Template::load(&repo_path("template.yaml")).unwrap();
    let routed: BTreeSet<String> = template
        .routes()
        .unwrap()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.resource))
        .collect();
    assert_eq!(documented, routed);
}

#[test]
fn the_documents_profile_fields_are_the_models() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let mut writable: BTreeSet<String> = shared::model::WRITABLE_FIELDS
        .iter()
        .map(|f| (*f).to_owned())
        .collect();
    writable.insert("is_primary".into());
    assert_eq!(property_names(&schemas["ProfileWritable"]), writable);
    assert_eq!(property_names(&schemas["ProfilePatch"]), writable);
    let mut create = writable.clone();
    create.insert("contacts".into());
    assert_eq!(property_names(&schemas["ProfileCreate"]), create);
    for schema in ["ProfileWritable", "ProfilePatch", "ProfileCreate"] {
        assert_eq!(schemas[schema]["additionalProperties"], false, "{schema}");
    }
    // What a profile shows beyond its writable fields is what a client may never write.
    let shown = property_names(&schemas["Profile"]["allOf"][1]);
    let read_only: BTreeSet<String> = shared::model::READ_ONLY_FIELDS
        .iter()
        .map(|f| (*f).to_owned())
        .collect();
    assert_eq!(shown, read_only);
}

/// A value of `schema` with `n` characters (or items, or members) that the validator would
/// accept but for its size; `None` where the schema's shape does not allow one simply.
fn sized(doc: &Value, schema: &Value, n: usize) -> Option<Value> {
    let schema = resolve(doc, schema);
    match schema["type"].as_str()? {
        "string" => match (schema["format"].as_str(), schema["pattern"].as_str()) {
            (Some("uri"), _) => Some(json!(format!("https://acme.com/{}", "a".repeat(n - 17)))),
            (Some(_), _) => None,
            // Plain text (the pattern only refuses blanks and control characters), or a slug.
            (None, Some(p)) if p.starts_with("^[^\\u0000") || p == "^[a-z0-9-]+$" => {
                Some(json!("a".repeat(n)))
            }
            (None, None) => Some(json!("a".repeat(n))),
            (None, Some(_)) => None,
        },
        "array" => {
            let one = sized(doc, &schema["items"], 1).or_else(|| {
                match resolve(doc, &schema["items"]) {
                    s if s["required"] == json!(["platform", "url"]) => {
                        Some(json!({"platform": "p", "url": "https://acme.com"}))
                    }
                    s if s["required"] == json!(["school"]) => Some(json!({"school": "s"})),
                    s if s["required"] == json!(["title", "company", "start_date"]) => {
                        Some(json!({"title": "t", "company": "c", "start_date": "2020-01"}))
                    }
                    _ => None,
                }
            })?;
            // Distinct items, so no rule but the count can refuse them.
            let items = (0..n)
                .map(|i| match &one {
                    Value::String(_) => json!(format!("item {i}")),
                    other => other.clone(),
                })
                .collect();
            Some(Value::Array(items))
        }
        "object" if schema["maxProperties"].is_u64() => Some(Value::Object(
            (0..n).map(|i| (format!("k{i}"), json!("v"))).collect(),
        )),
        _ => None,
    }
}

#[tokio::test]
async fn every_limit_the_document_states_is_the_validators() {
    let api = Api::start().await;
    let doc = document();
    let fields = doc["components"]["schemas"]["ProfileWritable"]["properties"]
        .as_object()
        .unwrap()
        .clone();
    let mut checked = Vec::new();
    for (i, (field, schema)) in fields.iter().enumerate() {
        // A tenant per field: a slug made from one field's long name cannot collide with
        // another field's.
        let api = api.as_caller(&format!("limits-{i}"), "user-1");
        let resolved = resolve(&doc, schema);
        let limit = ["maxLength", "maxItems", "maxProperties"]
            .iter()
            .find_map(|k| resolved[*k].as_u64().or_else(|| schema[*k].as_u64()));
        let Some(limit) = limit.map(|l| l as usize) else {
            continue;
        };
        let (Some(at), Some(over)) = (sized(&doc, schema, limit), sized(&doc, schema, limit + 1))
        else {
            continue;
        };
        let r = api.create(json!({ field: over })).await;
        assert_eq!(
            r.error_fields(),
            vec![field.clone()],
            "{field}: {} is over the documented {limit}: {}",
            limit + 1,
            r.raw_body
        );
        let r = api.create(json!({ field: at })).await;
        assert_eq!(
            r.status, 201,
            "{field}: the documented {limit} is accepted: {}",
            r.raw_body
        );
        checked.push(field.clone());
    }
    // The check above reached the fields it should (a schema change that hid them from it
    // would otherwise pass in silence).
    for field in [
        "name",
        "bio",
        "comment",
        "slug",
        "website_url",
        "tags",
        "social_links",
        "education",
        "work_experiences",
        "custom_properties",
    ] {
        assert!(
            checked.iter().any(|c| c == field),
            "{field} was not checked: {checked:?}"
        );
    }
}

/// A schema-driven client (or fuzzer) may send any value a filter's documented schema allows:
/// each such value is listed (200), and each value the schema refuses is a 400 naming the
/// filter. Probed at the edges of every rule the schemas state: blanks, tabs and line breaks,
/// control characters, and lengths counted in characters of one to four bytes.
#[tokio::test]
async fn every_filter_takes_exactly_the_values_its_schema_allows() {
    let api = Api::start().await.as_caller("filter-schemas", "user-1");
    let mut probes: Vec<String> = [
        "a",
        " a ",
        "a b",
        "a\tb",
        "a\nb",
        "\t",
        " ",
        "\n",
        "a\u{7f}",
        "a\u{85}b",
        "a\u{1}",
        "\u{9f}",
        "\u{a0}a",
        "a\u{1c}b",
        "ann@example.com",
        "ann@",
        "acme-1",
        "Acme",
        "true",
        "\u{feff}",
        "a\u{2028}b",
        "\u{3000}",
        "a\u{b}",
        "\u{c}a",
        "a\u{85}",
        // A fuzzer's find: an owner id with a tab inside.
        "\u{d1}\u{bc}:\t\u{d7}x0#",
    ]
    .iter()
    .map(|p| (*p).to_owned())
    .collect();
    for n in [99, 100, 101, 254, 255, 256, 257] {
        probes.extend(["a", "\u{e9}", "\u{20ac}", "\u{1d11e}"].map(|c| c.repeat(n)));
        // Padded: the document counts the value as sent, so the API must too.
        probes.push(format!(" {} ", "a".repeat(n - 2)));
    }
    let filters: Vec<_> = profiles_tests::openapi::text_query_parameters("GET", "/profiles")
        .into_iter()
        .filter(|(name, _)| name.starts_with("filter["))
        .collect();
    assert!(
        filters.len() >= 12,
        "the document's text filters were not found: {filters:?}"
    );
    let mut disagree = Vec::new();
    for (name, schema) in &filters {
        for probe in &probes {
            let allowed =
                profiles_tests::openapi::check_value(name, schema, &Value::from(probe.as_str()))
                    .is_ok();
            let r = api.list(&[(name.as_str(), probe.as_str())]).await;
            let refused = r.status == 400 && r.error_fields() == vec![name.clone()];
            if (allowed && r.status != 200) || (!allowed && !refused) {
                disagree.push(format!(
                    "{name}={probe:?}: schema {}, API {} {}",
                    if allowed { "allows" } else { "refuses" },
                    r.status,
                    r.raw_body
                ));
            }
        }
    }
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}
