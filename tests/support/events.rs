//! Real API Gateway events from `events/`, with the parts a test changes (caller, body,
//! path parameters, headers, query string).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use lambda_http::Request;
use serde_json::{Value, json};

use crate::repo_path;

/// A real API Gateway event from `events/<name>.json`, with the parts a test changes.
#[derive(Clone)]
pub struct Event(pub(crate) Value);

impl Event {
    pub fn load(name: &str) -> Self {
        let path = repo_path(&format!("events/{name}.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        Self(serde_json::from_str(&text).unwrap())
    }

    /// The caller the authorizer vouched for (the fixtures: `tenant-a`, `user-1`, every
    /// scope), as API Gateway passes it in `requestContext.authorizer`.
    pub fn caller(mut self, tenant: &str, principal: &str) -> Self {
        let auth = &mut self.0["requestContext"]["authorizer"];
        auth["tenant_id"] = Value::String(tenant.to_owned());
        auth["principal_id"] = Value::String(principal.to_owned());
        auth["principalId"] = Value::String(principal.to_owned());
        self
    }

    /// The caller's scopes, space-separated as the authorizer's context carries them.
    pub fn scopes(mut self, scopes: &str) -> Self {
        self.0["requestContext"]["authorizer"]["scopes"] = Value::String(scopes.to_owned());
        self
    }

    /// One more member of the authorizer's context, as API Gateway passes it (a string).
    pub fn authorizer_context(mut self, key: &str, value: &str) -> Self {
        self.0["requestContext"]["authorizer"][key] = Value::String(value.to_owned());
        self
    }

    /// The event as it would be if the route had no authorizer: no caller at all.
    pub fn without_caller(mut self) -> Self {
        if let Some(ctx) = self.0["requestContext"].as_object_mut() {
            ctx.remove("authorizer");
        }
        self
    }

    /// The event's body as given (raw text, for malformed bodies).
    pub fn raw_body(mut self, body: &str) -> Self {
        self.0["body"] = Value::String(body.to_owned());
        self.0["isBase64Encoded"] = Value::Bool(false);
        self
    }

    pub fn body(self, body: Value) -> Self {
        let text = body.to_string();
        self.raw_body(&text)
    }

    pub fn no_body(mut self) -> Self {
        self.0["body"] = Value::Null;
        self
    }

    pub fn profile_id(mut self, id: &str) -> Self {
        self.0["pathParameters"] = json!({ "profile_id": id });
        let resource = self.0["resource"].as_str().unwrap().to_owned();
        let path = resource.replace("{profile_id}", id);
        self.0["path"] = Value::String(path.clone());
        self.0["requestContext"]["path"] = Value::String(format!("/prod{path}"));
        self
    }

    /// Sets both path parameters of a contact route.
    pub fn contact_id(mut self, profile: &str, contact: &str) -> Self {
        self.0["pathParameters"] = json!({ "profile_id": profile, "contact_id": contact });
        let resource = self.0["resource"].as_str().unwrap().to_owned();
        let path = resource
            .replace("{profile_id}", profile)
            .replace("{contact_id}", contact);
        self.0["path"] = Value::String(path.clone());
        self.0["requestContext"]["path"] = Value::String(format!("/prod{path}"));
        self
    }

    /// Sets the HTTP method (update-contact serves PUT and PATCH).
    pub fn method(mut self, method: &str) -> Self {
        self.0["httpMethod"] = Value::String(method.to_owned());
        self.0["requestContext"]["httpMethod"] = Value::String(method.to_owned());
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        // Replace any header of the same name, whatever its case.
        for map in ["headers", "multiValueHeaders"] {
            if let Some(m) = self.0[map].as_object_mut() {
                m.retain(|k, _| !k.eq_ignore_ascii_case(name));
            }
        }
        self.0["headers"][name] = Value::String(value.to_owned());
        self.0["multiValueHeaders"][name] = json!([value]);
        self
    }

    pub fn without_header(mut self, name: &str) -> Self {
        for map in ["headers", "multiValueHeaders"] {
            if let Some(m) = self.0[map].as_object_mut() {
                m.retain(|k, _| !k.eq_ignore_ascii_case(name));
            }
        }
        self
    }

    /// Sets the query string: each pair once, a repeated name becomes multi-value.
    pub fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        let mut single = serde_json::Map::new();
        let mut multi = serde_json::Map::new();
        for (k, v) in pairs {
            single.insert((*k).to_owned(), json!(v));
            multi
                .entry((*k).to_owned())
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .unwrap()
                .push(json!(v));
        }
        let empty = pairs.is_empty();
        self.0["queryStringParameters"] = if empty {
            Value::Null
        } else {
            Value::Object(single)
        };
        self.0["multiValueQueryStringParameters"] = if empty {
            Value::Null
        } else {
            Value::Object(multi)
        };
        self
    }

    pub fn request_id(&self) -> String {
        self.0["requestContext"]["requestId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn with_request_id(mut self, id: &str) -> Self {
        self.0["requestContext"]["requestId"] = Value::String(id.to_owned());
        self
    }

    /// The route `resource` with its one path parameter `name` set to `value`.
    pub fn path_param(mut self, resource: &str, name: &str, value: &str) -> Self {
        let path = resource.replace(&format!("{{{name}}}"), value);
        self.0["pathParameters"] = json!({ name: value });
        self.0["requestContext"]["path"] = Value::String(format!("/prod{path}"));
        self.resource(resource, &path)
    }

    pub fn resource(mut self, resource: &str, path: &str) -> Self {
        self.0["resource"] = Value::String(resource.to_owned());
        self.0["requestContext"]["resourcePath"] = Value::String(resource.to_owned());
        self.0["path"] = Value::String(path.to_owned());
        self
    }

    /// The event as the Lambda runtime hands it to lambda_http.
    pub fn request(&self) -> Request {
        lambda_http::request::from_str(&self.0.to_string()).unwrap()
    }
}
