//! The API's handlers fed real events in this process (`Api`), the answers they give
//! (`Reply`), and a store that counts the DynamoDB operations it sends.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aws_sdk_dynamodb::Client;
use lambda_http::{Body, Response};
use serde_json::Value;
use shared::app::App;

use crate::{Engine, Event, openapi};

/// A response, read.
pub struct Reply {
    pub status: u16,
    pub headers: lambda_http::http::HeaderMap,
    pub body: Value,
    pub raw_body: String,
}

impl Reply {
    pub fn from(response: Response<Body>) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let raw_body = match response.body() {
            Body::Empty => String::new(),
            Body::Text(t) => t.clone(),
            Body::Binary(b) => String::from_utf8(b.clone()).unwrap(),
            _ => String::new(),
        };
        let body = if raw_body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&raw_body).unwrap()
        };
        Self {
            status,
            headers,
            body,
            raw_body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The fields named in a problem's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["field"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts this is a problem+json with `status`, and returns its `code`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16) -> &str {
        assert_eq!(self.status, status, "body: {}", self.raw_body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(self.body["status"], status);
        assert_eq!(self.body["type"], "about:blank");
        assert!(self.body["title"].is_string());
        assert!(self.body["detail"].is_string());
        assert_eq!(self.body["trace_id"].as_str(), self.header("x-trace-id"));
        self.body["code"].as_str().unwrap()
    }
}

/// The API's handlers, each fed its function's real event, on a fresh engine and table.
pub struct Api {
    pub engine: Engine,
    pub app: App,
    /// Who the requests come from: put in every event's `requestContext.authorizer`.
    pub caller: TestCaller,
}

/// A caller as the authorizer's context names it.
#[derive(Clone, Debug)]
pub struct TestCaller {
    pub tenant: String,
    pub principal: String,
    /// Space-separated scope names.
    pub scopes: String,
}

impl Default for TestCaller {
    /// The fixtures' caller: tenant `tenant-a`, principal `user-1`, every scope.
    fn default() -> Self {
        Self {
            tenant: "tenant-a".into(),
            principal: "user-1".into(),
            scopes: shared::auth::Scopes::all().to_string(),
        }
    }
}

impl Api {
    pub async fn start() -> Self {
        let engine = Engine::start().await;
        Self::on(engine)
    }

    /// The API on an existing engine and table, as the default caller.
    pub fn on(engine: Engine) -> Self {
        let app = engine.app();
        Self {
            engine,
            app,
            caller: TestCaller::default(),
        }
    }

    /// The same API (the engine's table), its store talking to the engine through
    /// `endpoint` (a proxy in front of it: a meter, a fault proxy).
    pub fn on_endpoint(engine: &Engine, endpoint: &str) -> Self {
        Self {
            engine: engine.clone(),
            app: shared::app::App::new(crate::config_for(endpoint, &engine.table)),
            caller: TestCaller::default(),
        }
    }

    /// The same API (engine, table) called by another tenant's principal, with every scope.
    pub fn as_caller(&self, tenant: &str, principal: &str) -> Self {
        let mut other = Self::on(self.engine.clone());
        other.caller.tenant = tenant.into();
        other.caller.principal = principal.into();
        other
    }

    /// The same API called with only these scopes (space-separated).
    pub fn with_scopes(&self, scopes: &str) -> Self {
        let mut other = Self::on(self.engine.clone());
        other.caller = TestCaller {
            scopes: scopes.into(),
            ..self.caller.clone()
        };
        other
    }

    /// Feeds `event` to the handler of function `function` (its binary's name), in this
    /// process: what the function's `main.rs` wires, without the process around it. The
    /// runner's tests (`local_api.rs`, `runner_*.rs`) run the real binaries.
    pub async fn send(&self, function: &str, event: Event) -> Reply {
        let event = event
            .caller(&self.caller.tenant, &self.caller.principal)
            .scopes(&self.caller.scopes);
        let response = edge::handlers::by_binary(function, &self.app, event.request())
            .await
            .unwrap_or_else(|| panic!("no function {function}"));
        let reply = Reply::from(response);
        // Every answer is one the document describes (support/openapi.rs).
        let (method, resource) = (event.0["httpMethod"].as_str(), event.0["resource"].as_str());
        if let (Some(method), Some(resource)) = (method, resource) {
            let body = (!reply.raw_body.is_empty()).then_some(&reply.body);
            if let Err(drift) = openapi::check(
                method,
                resource,
                reply.status,
                reply.header("content-type"),
                body,
            ) {
                panic!("the answer is not as docs/openapi.yaml describes it: {drift}");
            }
        }
        reply
    }

    pub async fn create(&self, body: Value) -> Reply {
        self.send("create-profile", Event::load("create-profile").body(body))
            .await
    }

    /// Creates a profile and returns its JSON, asserting the 201.
    pub async fn created(&self, body: Value) -> Value {
        let r = self.create(body).await;
        assert_eq!(r.status, 201, "create failed: {}", r.raw_body);
        r.body
    }

    pub async fn get(&self, id: &str) -> Reply {
        self.send("get-profile", Event::load("get-profile").profile_id(id))
            .await
    }

    pub async fn patch(&self, id: &str, body: Value) -> Reply {
        self.send(
            "update-profile",
            Event::load("update-profile").profile_id(id).body(body),
        )
        .await
    }

    pub async fn put(&self, id: &str, body: Value) -> Reply {
        self.send(
            "replace-profile",
            Event::load("replace-profile").profile_id(id).body(body),
        )
        .await
    }

    pub async fn delete(&self, id: &str) -> Reply {
        self.send(
            "delete-profile",
            Event::load("delete-profile").profile_id(id),
        )
        .await
    }

    pub async fn list(&self, query: &[(&str, &str)]) -> Reply {
        self.send("list-profiles", Event::load("list-profiles").query(query))
            .await
    }

    /// `GET /profiles/all`: the caller's own profiles.
    pub async fn list_own(&self, query: &[(&str, &str)]) -> Reply {
        self.send(
            "list-profiles",
            Event::load("list-own-profiles").query(query),
        )
        .await
    }

    /// `GET /profiles/me`.
    pub async fn me(&self) -> Reply {
        self.send("get-primary-profile", Event::load("get-primary-profile"))
            .await
    }

    /// Creates one profile per body, 16 at a time (an unbounded burst of connections would
    /// overflow the engine's accept backlog and time out connecting), asserting each 201.
    pub async fn created_many(self: &std::sync::Arc<Self>, bodies: Vec<Value>) -> Vec<Value> {
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
        let mut tasks = tokio::task::JoinSet::new();
        for body in bodies {
            let (api, permits) = (self.clone(), permits.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire().await.unwrap();
                api.created(body).await
            });
        }
        tasks.join_all().await
    }

    /// Every item of a list walked page by page through `next_cursor`, and how many pages
    /// it took; each page's `Link` must name the next one, and the last has none.
    pub async fn walk(&self, query: &[(&str, &str)]) -> (Vec<Value>, usize) {
        let mut items = Vec::new();
        let mut pages = 0;
        let mut cursor: Option<String> = None;
        loop {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            if let Some(c) = &cursor {
                q.push(("cursor", c));
            }
            let r = self.list(&q).await;
            assert_eq!(r.status, 200, "{q:?}: {}", r.raw_body);
            pages += 1;
            items.extend(r.body["data"].as_array().unwrap().iter().cloned());
            match r.body["next_cursor"].as_str() {
                Some(c) => {
                    let link = r.header("link").unwrap();
                    assert!(
                        link.contains(&format!("cursor={c}")) && link.ends_with("rel=\"next\""),
                        "{link}"
                    );
                    cursor = Some(c.to_owned());
                }
                None => {
                    assert_eq!(r.header("link"), None);
                    return (items, pages);
                }
            }
        }
    }

    pub async fn list_contacts(&self, profile: &str) -> Reply {
        self.send(
            "list-contacts",
            Event::load("list-contacts").profile_id(profile),
        )
        .await
    }

    pub async fn create_contact(&self, profile: &str, body: Value) -> Reply {
        self.send(
            "create-contact",
            Event::load("create-contact").profile_id(profile).body(body),
        )
        .await
    }

    /// Adds a contact and returns its JSON, asserting the 201.
    pub async fn created_contact(&self, profile: &str, body: Value) -> Value {
        let r = self.create_contact(profile, body).await;
        assert_eq!(r.status, 201, "create contact failed: {}", r.raw_body);
        r.body
    }

    pub async fn get_contact(&self, profile: &str, contact: &str) -> Reply {
        self.send(
            "get-contact",
            Event::load("get-contact").contact_id(profile, contact),
        )
        .await
    }

    /// `PATCH` or `PUT` of a contact.
    pub async fn update_contact(
        &self,
        method: &str,
        profile: &str,
        contact: &str,
        body: Value,
    ) -> Reply {
        let media_type = match method {
            "PATCH" => "application/merge-patch+json",
            _ => "application/json",
        };
        let event = Event::load("update-contact")
            .contact_id(profile, contact)
            .method(method)
            .header("Content-Type", media_type)
            .body(body);
        self.send("update-contact", event).await
    }

    pub async fn delete_contact(&self, profile: &str, contact: &str) -> Reply {
        self.send(
            "delete-contact",
            Event::load("delete-contact").contact_id(profile, contact),
        )
        .await
    }
}

/// The `id` of a profile's JSON.
pub fn id_of(profile: &Value) -> String {
    profile["id"].as_str().unwrap().to_owned()
}

/// Counts the DynamoDB operations a client sends, by name (`Query`, `GetItem`, ...).
#[derive(Clone, Debug, Default)]
pub struct OperationCounter(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl OperationCounter {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl aws_sdk_dynamodb::config::Intercept for OperationCounter {
    fn name(&self) -> &'static str {
        "OperationCounter"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        if let Some(target) = context.request().headers().get("x-amz-target") {
            let op = target.rsplit('.').next().unwrap_or(target).to_owned();
            self.0.lock().unwrap().push(op);
        }
        Ok(())
    }
}

impl Api {
    /// The same API whose store counts every DynamoDB operation it sends.
    pub fn counting(&self) -> (Api, OperationCounter) {
        let counter = OperationCounter::default();
        let config = self.engine.config();
        let client = shared::store::dynamodb_client(&config);
        let client = Client::from_conf(
            client
                .config()
                .to_builder()
                .interceptor(counter.clone())
                .build(),
        );
        let store = shared::store::Store::new(client, config.table_name.clone());
        let app = App::with_store(config, store);
        let api = Api {
            engine: self.engine.clone(),
            app,
            caller: self.caller.clone(),
        };
        (api, counter)
    }
}
