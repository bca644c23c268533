//! What the bench sends: a route's request as data ([`Call`]), turned into an API Gateway
//! event or an HTTP request; the authorizer's event; fixtures made through the handlers.

use edge::handlers as h;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use shared::app::App;

use crate::{Error, repo};

/// One request to one route, as data: turned into an API Gateway event (cold starts,
/// in-process handlers) or an HTTP request (warm latency through the runner).
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub(crate) binary: String,
    pub(crate) method: &'static str,
    pub(crate) params: Vec<(&'static str, String)>,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Option<Value>,
    /// Request headers beyond the content type.
    pub(crate) headers: Vec<(&'static str, String)>,
    /// The tenant the authorizer's context names ([`BENCH_TENANT`] by default).
    pub(crate) tenant: Option<String>,
}

impl Call {
    pub(crate) fn new(binary: &str, method: &'static str) -> Self {
        Self {
            binary: binary.to_owned(),
            method,
            params: Vec::new(),
            query: Vec::new(),
            body: None,
            headers: Vec::new(),
            tenant: None,
        }
    }

    pub(crate) fn header(mut self, k: &'static str, v: &str) -> Self {
        self.headers.push((k, v.to_owned()));
        self
    }

    pub(crate) fn param(mut self, k: &'static str, v: &str) -> Self {
        self.params.push((k, v.to_owned()));
        self
    }

    pub(crate) fn body(mut self, b: Value) -> Self {
        self.body = Some(b);
        self
    }

    pub(crate) fn template_event(&self) -> Result<Value, Error> {
        let path = repo().join(format!("events/{}.json", self.binary));
        Ok(serde_json::from_str(&std::fs::read_to_string(&path)?)?)
    }

    pub(crate) fn path(&self, event: &Value) -> String {
        let mut path = event["resource"].as_str().unwrap_or("/").to_owned();
        for (k, v) in &self.params {
            path = path.replace(&format!("{{{k}}}"), v);
        }
        path
    }

    pub(crate) fn media_type(&self) -> &'static str {
        if self.method == "PATCH" {
            "application/merge-patch+json"
        } else {
            "application/json"
        }
    }

    pub(crate) fn event(&self) -> Result<Value, Error> {
        let mut e = self.template_event()?;
        let path = self.path(&e);
        e["path"] = json!(path);
        e["httpMethod"] = json!(self.method);
        e["requestContext"]["httpMethod"] = json!(self.method);
        e["requestContext"]["requestId"] = json!(uuid::Uuid::new_v4().to_string());
        // The development key's caller, so the fixtures made in-process are the ones the
        // HTTP requests (authorized with that key) reach.
        let auth = &mut e["requestContext"]["authorizer"];
        auth["tenant_id"] = json!(self.tenant.as_deref().unwrap_or(BENCH_TENANT));
        auth["principal_id"] = json!(BENCH_PRINCIPAL);
        auth["principalId"] = json!(BENCH_PRINCIPAL);
        e["pathParameters"] = if self.params.is_empty() {
            Value::Null
        } else {
            Value::Object(
                self.params
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), json!(v)))
                    .collect(),
            )
        };
        let q: serde_json::Map<String, Value> = self
            .query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        e["multiValueQueryStringParameters"] = if q.is_empty() {
            Value::Null
        } else {
            Value::Object(q.iter().map(|(k, v)| (k.clone(), json!([v]))).collect())
        };
        e["queryStringParameters"] = if q.is_empty() {
            Value::Null
        } else {
            Value::Object(q)
        };
        e["body"] = match &self.body {
            Some(b) => json!(b.to_string()),
            None => Value::Null,
        };
        e["headers"]["Content-Type"] = json!(self.media_type());
        e["multiValueHeaders"]["Content-Type"] = json!([self.media_type()]);
        for (k, v) in &self.headers {
            e["headers"][*k] = json!(v);
            e["multiValueHeaders"][*k] = json!([v]);
        }
        Ok(e)
    }

    pub(crate) fn request(&self) -> Result<Request, Error> {
        Ok(lambda_http::request::from_str(&self.event()?.to_string())?)
    }

    pub(crate) fn http(
        &self,
        client: &reqwest::Client,
        base: &str,
    ) -> Result<reqwest::RequestBuilder, Error> {
        let path = self.path(&self.template_event()?);
        let method = reqwest::Method::from_bytes(self.method.as_bytes())?;
        let mut url = reqwest::Url::parse(&format!("{base}{path}"))?;
        for (k, v) in &self.query {
            url.query_pairs_mut().append_pair(k, v);
        }
        let mut r = client.request(method, url);
        for (k, v) in &self.headers {
            r = r.header(*k, v);
        }
        if let Some(b) = &self.body {
            r = r
                .header("content-type", self.media_type())
                .body(b.to_string());
        }
        Ok(r)
    }
}

/// The caller of every in-process call: the local runner's development key's tenant and
/// principal (local-api's `devkey`), which the HTTP requests present.
pub(crate) const BENCH_TENANT: &str = "default";
pub(crate) const BENCH_PRINCIPAL: &str = "developer";

/// The authorizer's binary: invoked with its own event, not a proxy event.
pub(crate) const AUTHORIZER: &str = "authorizer";

/// `events/authorizer.json` presenting `key`.
pub(crate) fn authorizer_event(key: &str) -> Result<Value, Error> {
    let text = std::fs::read_to_string(repo().join("events/authorizer.json"))?;
    let mut e: Value = serde_json::from_str(&text)?;
    e["headers"]["Authorization"] = json!(format!("Bearer {key}"));
    e["multiValueHeaders"]["Authorization"] = json!([format!("Bearer {key}")]);
    Ok(e)
}

/// Whether an authorizer's answer allows (an Allow statement in its policy).
pub(crate) fn allows(payload: &[u8]) -> bool {
    serde_json::from_slice::<Value>(payload).is_ok_and(|v| {
        v["policyDocument"]["Statement"]
            .as_array()
            .is_some_and(|s| s.iter().any(|st| st["Effect"] == "Allow"))
    })
}

/// Runs a handler in-process, as its function would.
pub(crate) async fn handle(app: &App, binary: &str, req: Request) -> Result<Response<Body>, Error> {
    h::by_binary(binary, app, req)
        .await
        .ok_or_else(|| format!("no function {binary}").into())
}

pub(crate) fn json_of(r: &Response<Body>) -> Value {
    match r.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// Creates fixtures through the handlers themselves.
pub(crate) struct Fixtures {
    pub(crate) app: App,
}

impl Fixtures {
    pub(crate) async fn profile(&self, contacts: usize) -> Result<String, Error> {
        let contacts: Vec<Value> = (0..contacts)
            .map(|i| json!({"key": "email", "value": format!("c{i}@example.com")}))
            .collect();
        let call = Call::new("create-profile", "POST").body(json!({
            "name": format!("Bench {}", uuid::Uuid::now_v7()),
            "title": "CTO", "company": "Acme", "country_numeric_code": "840",
            "tags": ["bench"], "contacts": contacts,
        }));
        let r = handle(&self.app, "create-profile", call.request()?).await?;
        let body = json_of(&r);
        match body["id"].as_str() {
            Some(id) if r.status() == 201 => Ok(id.to_owned()),
            _ => Err(format!("seeding a profile failed: {body}").into()),
        }
    }

    pub(crate) async fn contact(&self, profile: &str) -> Result<String, Error> {
        let call = Call::new("create-contact", "POST")
            .param("profile_id", profile)
            .body(
                json!({"key": "email", "value": format!("{}@example.com", uuid::Uuid::now_v7())}),
            );
        let r = handle(&self.app, "create-contact", call.request()?).await?;
        let body = json_of(&r);
        match body["id"].as_str() {
            Some(id) if r.status() == 201 => Ok(id.to_owned()),
            _ => Err(format!("seeding a contact failed: {body}").into()),
        }
    }

    /// A call to `binary` that does its real work, with fresh fixtures where it consumes
    /// them (deletes) or would collide (creates).
    pub(crate) async fn call(
        &self,
        binary: &str,
        shared: &(String, String),
    ) -> Result<Call, Error> {
        let (p, c) = shared;
        Ok(match binary {
            "create-profile" => Call::new(binary, "POST").body(json!({
                "first_name": "Mary", "last_name": format!("Smith {}", uuid::Uuid::now_v7()),
                "title": "CTO", "company": "Acme", "email": "Mary@Example.COM",
                "country_numeric_code": "840", "tags": ["blue", "green"],
                "contacts": [{"key": "phone", "value": "+1 415 555 2671"}],
            })),
            "get-profile" => Call::new(binary, "GET").param("profile_id", p),
            // The fixtures' principal's first profile is their primary.
            "get-primary-profile" => Call::new(binary, "GET"),
            "list-profiles" => Call::new(binary, "GET"),
            "update-profile" => Call::new(binary, "PATCH")
                .param("profile_id", p)
                .body(json!({"title": "CEO", "custom_properties": {"clicks": uuid::Uuid::now_v7().to_string()}})),
            "replace-profile" => Call::new(binary, "PUT")
                .param("profile_id", p)
                .body(json!({"name": "Acme Corp", "website_url": "https://acme.com"})),
            "delete-profile" => Call::new(binary, "DELETE").param("profile_id", &self.profile(3).await?),
            "list-contacts" => Call::new(binary, "GET").param("profile_id", p),
            "create-photo-upload" => Call::new(binary, "POST")
                .param("profile_id", p)
                .body(json!({"content_type": "image/jpeg"})),
            // POST /imports (its event's route): a job and its presigned upload.
            "bulk-jobs" => Call::new(binary, "POST").body(json!({"mode": "upsert"})),
            "create-contact" => Call::new(binary, "POST")
                .param("profile_id", &self.profile(0).await?)
                .body(json!({"key": "phone", "value": "+1 (415) 555-2671"})),
            "get-contact" => Call::new(binary, "GET")
                .param("profile_id", p)
                .param("contact_id", c),
            "update-contact" => Call::new(binary, "PATCH")
                .param("profile_id", p)
                .param("contact_id", c)
                .body(json!({"external_id": uuid::Uuid::now_v7().to_string()})),
            "delete-contact" => {
                let fresh = self.profile(0).await?;
                let contact = self.contact(&fresh).await?;
                Call::new(binary, "DELETE")
                    .param("profile_id", &fresh)
                    .param("contact_id", &contact)
            }
            other => return Err(format!("no call for {other}").into()),
        })
    }
}

pub(crate) fn proxy_status(payload: &[u8]) -> u64 {
    serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|v| v["statusCode"].as_u64())
        .unwrap_or(0)
}
