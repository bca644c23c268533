//! Every answer a handler test receives, checked against `docs/openapi.yaml`: its status must
//! be one the document lists for that route and method, and its body must validate against
//! the schema the document gives for that status and media type. The document's OpenAPI 3.0
//! schemas are read as JSON Schema draft 4 with `nullable: true` turned into "or null".

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// The document as JSON, with OpenAPI's `nullable` made JSON Schema.
fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let text = std::fs::read_to_string(crate::repo_path("docs/openapi.yaml")).unwrap();
        let yaml: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
        let mut doc = serde_json::to_value(yaml).unwrap();
        json_schema(&mut doc);
        doc
    })
}

/// Rewrites every `{..., nullable: true}` as `{anyOf: [{...}, {type: null}]}`, in place.
fn json_schema(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for child in map.values_mut() {
                json_schema(child);
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                let inner = Value::Object(std::mem::take(map));
                *map = Map::from_iter([("anyOf".to_owned(), json!([inner, {"type": "null"}]))]);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(json_schema),
        _ => {}
    }
}

/// The document's answer for `status` to `method resource`, resolving `$ref`s to responses.
fn documented(method: &str, resource: &str, status: u16) -> Result<&'static Value, String> {
    let doc = document();
    let operation = &doc["paths"][resource][method.to_lowercase()];
    if operation.is_null() {
        return Err(format!("{method} {resource} is not in docs/openapi.yaml"));
    }
    let mut answer = &operation["responses"][status.to_string()];
    if answer.is_null() {
        return Err(format!(
            "{method} {resource} answered {status}, which docs/openapi.yaml does not list"
        ));
    }
    if let Some(r) = answer["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/responses/");
        answer = &doc["components"]["responses"][name];
    }
    Ok(answer)
}

/// Checks an answer of `method resource`: a documented status, and a body (`None` when
/// empty) that validates against the documented schema for its media type.
pub fn check(
    method: &str,
    resource: &str,
    status: u16,
    content_type: Option<&str>,
    body: Option<&Value>,
) -> Result<(), String> {
    let answer = documented(method, resource, status)?;
    let what = format!("{method} {resource} {status}");
    let (Some(content_type), Some(body)) = (content_type, body) else {
        return match answer["content"].is_null() {
            true => Ok(()),
            false => Err(format!(
                "{what}: the document gives a body, the answer has none"
            )),
        };
    };
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let schema = &answer["content"][media]["schema"];
    if schema.is_null() {
        return Err(format!("{what}: the document has no {media} body"));
    }
    validate(&what, schema, body)
}

/// Checks `value` against the document's schema `components/schemas/<name>`.
pub fn check_schema(name: &str, value: &Value) -> Result<(), String> {
    let schema = &document()["components"]["schemas"][name];
    if schema.is_null() {
        return Err(format!("docs/openapi.yaml has no schema {name}"));
    }
    validate(name, schema, value)
}

/// The query parameters of `method resource` whose schema is text, by name, each with its
/// schema (through `$ref`s to the document's parameters).
pub fn text_query_parameters(method: &str, resource: &str) -> Vec<(String, &'static Value)> {
    let doc = document();
    let operation = &doc["paths"][resource][method.to_lowercase()];
    let mut out = Vec::new();
    for p in operation["parameters"].as_array().into_iter().flatten() {
        let p = match p["$ref"].as_str() {
            Some(r) => {
                &doc["components"]["parameters"][r.trim_start_matches("#/components/parameters/")]
            }
            None => p,
        };
        let schema = &p["schema"];
        let resolved = match schema["$ref"].as_str() {
            Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
            None => schema,
        };
        if p["in"] == "query" && resolved["type"] == "string" {
            out.push((p["name"].as_str().unwrap_or_default().to_owned(), schema));
        }
    }
    out
}

/// Checks `value` against `schema`, a schema of the document (as
/// [`text_query_parameters`] gives).
pub fn check_value(what: &str, schema: &Value, value: &Value) -> Result<(), String> {
    validate(what, schema, value)
}

/// Validates `body` against `schema`, a schema of the document.
fn validate(what: &str, schema: &Value, body: &Value) -> Result<(), String> {
    // The schema within the document, so its `#/components/...` references resolve.
    let mut root = schema.clone();
    root["components"] = document()["components"].clone();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .should_ignore_unknown_formats(true)
        .build(&root)
        .map_err(|e| format!("{what}: the document's schema does not load: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    match errors.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "{what}: the body does not match the document: {errors:?}\n{body}"
        )),
    }
}
