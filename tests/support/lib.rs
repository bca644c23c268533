//! Test support: a real DynamoDB-compatible engine per test, the table made from
//! `template.yaml`'s own definition, and real API Gateway events from `events/`.
//!
//! The engine is dynoxide embedded in the test process (one in-memory server per test).
//! Set `PROFILES_TEST_DYNAMODB_ENDPOINT` to run the same suite against another engine,
//! such as AWS's DynamoDB Local (`scripts/test-dynamodb-local.sh`); each test then gets a
//! table of its own there.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use shared::config::env;
use std::path::PathBuf;

use aws_sdk_dynamodb::Client;
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use shared::app::App;
use shared::config::Config;

pub mod fault_proxy;
pub mod openapi;

pub use serde_json::json;

/// The switch: a URL here runs the suite on that engine instead of embedded dynoxide.
pub const ENGINE_ENV: &str = "PROFILES_TEST_DYNAMODB_ENDPOINT";

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// A running engine with the API's table in it.
#[derive(Clone)]
pub struct Engine {
    pub endpoint: String,
    pub table: String,
    pub client: Client,
}

impl Engine {
    /// Starts an engine (or joins the one named by `PROFILES_TEST_DYNAMODB_ENDPOINT`) and
    /// creates a fresh table there from `template.yaml`.
    pub async fn start() -> Self {
        let endpoint = match std::env::var(ENGINE_ENV) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let db = dynoxide::Database::memory().unwrap();
                tokio::spawn(dynoxide::server::serve_on(listener, db));
                format!("http://{addr}")
            }
        };
        let table = format!("profiles-{}", uuid::Uuid::now_v7().simple());
        let config = config_for(&endpoint, &table);
        let client = shared::store::dynamodb_client(&config);
        create_table_from_template(&client, &table).await;
        Self {
            endpoint,
            table,
            client,
        }
    }

    pub fn config(&self) -> Config {
        config_for(&self.endpoint, &self.table)
    }

    /// The application exactly as a function builds it at init, pointed at this engine.
    pub fn app(&self) -> App {
        App::new(self.config())
    }

    /// Every item in the table (a Scan: fine for a test, never done by the API).
    pub async fn all_items(&self) -> Vec<shared::store::schema::Item> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .unwrap();
        out.items.unwrap_or_default()
    }
}

pub fn config_for(endpoint: &str, table: &str) -> Config {
    let endpoint = endpoint.to_owned();
    let table = table.to_owned();
    Config::from_lookup(move |k| match k {
        env::TABLE_NAME => Some(table.clone()),
        env::DYNAMODB_ENDPOINT => Some(endpoint.clone()),
        _ => None,
    })
    .unwrap()
}

/// Creates `table` as `template.yaml` defines it, with the local API's own template reader.
pub async fn create_table_from_template(client: &Client, table: &str) {
    let template = local_api::template::Template::load(&repo_path("template.yaml")).unwrap();
    template.create_table(client, table).await.unwrap();
}

/// A real API Gateway event from `events/<name>.json`, with the parts a test changes.
#[derive(Clone)]
pub struct Event(Value);

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
    /// runner's tests (`local_api.rs`) run the real binaries.
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

/// The workspace's executables, built once per test process by the runner's own cargo
/// invocation. `--workspace` gives the feature set `cargo test --workspace` compiled the
/// dependencies with, so this only links the binaries.
pub fn binaries() -> &'static local_api::binaries::Binaries {
    static BUILT: std::sync::OnceLock<local_api::binaries::Binaries> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        local_api::binaries::build(&repo_path(""), &["--workspace"], false).unwrap()
    })
}

/// A local runner started by a test: real HTTP in front, the functions' binaries behind.
pub struct Runner {
    /// `http://127.0.0.1:<port>`.
    pub origin: String,
    /// Where the API is: the origin and, by default, `/<stage>` (as execute-api serves it).
    pub url: String,
    pub server: std::sync::Arc<local_api::Server>,
    /// Sends the runner's development API key (`Authorization: Bearer`, every scope, tenant
    /// `default`) with each request that sets no `Authorization` of its own.
    pub http: reqwest::Client,
    /// Sends no credential.
    pub anonymous: reqwest::Client,
}

/// A client that sends `key` as `Authorization: Bearer` unless a request sets its own.
pub fn client_with_key(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).unwrap();
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

impl Runner {
    /// Starts the runner for `template` on `storage`, at most `concurrency` instances per
    /// function, listening on a free port.
    pub async fn start(
        template: &local_api::template::Template,
        storage: local_api::Storage,
        concurrency: usize,
    ) -> Self {
        let options = local_api::Options {
            storage,
            concurrency,
            ..Default::default()
        };
        Self::start_with(template, options).await
    }

    /// Starts the runner for `template` with `options` (whose binaries are replaced by the
    /// workspace's), listening on a free port.
    pub async fn start_with(
        template: &local_api::template::Template,
        mut options: local_api::Options,
    ) -> Self {
        options.binaries = tokio::task::spawn_blocking(binaries).await.unwrap().clone();
        let server = local_api::Server::start(template, options).await.unwrap();
        let server = std::sync::Arc::new(server);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let url = server.api_url(&origin);
        tokio::spawn(server.clone().serve(listener, std::future::pending()));
        let http = client_with_key(server.dev_api_key.expose());
        Self {
            origin,
            url,
            server,
            http,
            anonymous: reqwest::Client::new(),
        }
    }

    /// The runner's development API key.
    pub fn key(&self) -> &str {
        self.server.dev_api_key.expose()
    }

    /// The store on the runner's engine and table.
    pub fn store(&self) -> shared::store::Store {
        let config = config_for(&self.server.engine.endpoint, &self.server.engine.table);
        shared::store::Store::from_config(&config)
    }

    /// Makes an API key on the runner's engine for `principal` in `tenant` with `scopes`, and
    /// puts its usage key in the runner's usage plan through its embedded API Gateway, as
    /// `keys create --local` does.
    pub async fn create_key(
        &self,
        tenant: &str,
        principal: &str,
        scopes: shared::auth::Scopes,
    ) -> String {
        self.create_key_record(tenant, principal, scopes).await.0
    }

    /// [`Runner::create_key`], with the key's record (its id, to revoke it).
    pub async fn create_key_record(
        &self,
        tenant: &str,
        principal: &str,
        scopes: shared::auth::Scopes,
    ) -> (String, shared::apikeys::ApiKeyRecord) {
        let (key, record) = shared::apikeys::create(
            &self.store(),
            &shared::ids::TenantId::new(tenant).unwrap(),
            &shared::ids::PrincipalId::new(principal).unwrap(),
            scopes,
            None,
        )
        .await
        .unwrap();
        self.register(&record).await;
        (key.expose().to_owned(), record)
    }

    /// Puts `record`'s usage key in the runner's usage plan (`keys::gateway`, over HTTP).
    pub async fn register(&self, record: &shared::apikeys::ApiKeyRecord) {
        let plan = self
            .server
            .gateway
            .usage_plan
            .as_deref()
            .expect("the template's usage plan");
        let gateway = keys::gateway::Gateway::new(
            &self.store_config(),
            Some(&self.server.gateway.endpoint),
            plan,
        );
        gateway
            .register(&keys::gateway::key_name(&record.key_id), &record.usage_key)
            .await
            .unwrap();
    }

    fn store_config(&self) -> Config {
        config_for(&self.server.engine.endpoint, &self.server.engine.table)
    }

    /// The runner on the repository's `template.yaml`, in memory.
    pub async fn start_default() -> Self {
        let template = local_api::template::Template::load(&repo_path("template.yaml")).unwrap();
        Self::start(&template, local_api::Storage::Memory, 4).await
    }

    /// The URL of an API path (`/profiles`): under the stage of the API that serves it.
    pub fn url(&self, path: &str) -> String {
        self.server.url_of(&self.origin, path)
    }

    /// The URL a `Location` or `Link` target names (a path from the host's root), followed
    /// literally as a client would.
    pub fn follow(&self, target: &str) -> String {
        format!("{}{target}", self.origin)
    }

    /// How many instances the function `id` has started.
    pub fn instances(&self, id: &str) -> usize {
        self.server.pools[id].instances_started()
    }
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

/// Every AWS call a client sends, as IAM sees it: the action it needs and the resource ARN
/// it names (DynamoDB: the table, or the index of a Query; a transaction's items one by one,
/// as IAM authorizes them; S3, path-style: the object, or the bucket of a listing).
#[derive(Clone, Default, Debug)]
pub struct IamRecorder(
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<(String, String)>>>,
);

impl IamRecorder {
    /// What was sent since the last take.
    pub fn take(&self) -> std::collections::BTreeSet<(String, String)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    fn push(&self, action: &str, resource: String) {
        self.0.lock().unwrap().insert((action.to_owned(), resource));
    }
}

/// The local ARN of a DynamoDB table.
pub fn table_arn(table: &str) -> String {
    format!(
        "arn:aws:dynamodb:us-east-1:{}:table/{table}",
        local_api::ACCOUNT_ID
    )
}

impl aws_sdk_dynamodb::config::Intercept for IamRecorder {
    fn name(&self) -> &'static str {
        "IamRecorder"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let req = context.request();
        let body: Value = req
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        if let Some(target) = req.headers().get("x-amz-target") {
            let op = target.rsplit('.').next().unwrap_or(target);
            let table = |v: &Value| table_arn(v["TableName"].as_str().unwrap_or("?"));
            match op {
                "TransactWriteItems" | "TransactGetItems" => {
                    for item in body["TransactItems"].as_array().into_iter().flatten() {
                        for (kind, action) in [
                            ("Put", "dynamodb:PutItem"),
                            ("Update", "dynamodb:UpdateItem"),
                            ("Delete", "dynamodb:DeleteItem"),
                            ("ConditionCheck", "dynamodb:ConditionCheckItem"),
                            ("Get", "dynamodb:GetItem"),
                        ] {
                            if item[kind].is_object() {
                                self.push(action, table(&item[kind]));
                            }
                        }
                    }
                }
                "BatchWriteItem" | "BatchGetItem" => {
                    for name in body["RequestItems"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, _)| k)
                    {
                        self.push(&format!("dynamodb:{op}"), table_arn(name));
                    }
                }
                _ => {
                    let mut arn = table(&body);
                    if let Some(index) = body["IndexName"].as_str() {
                        arn = format!("{arn}/index/{index}");
                    }
                    self.push(&format!("dynamodb:{op}"), arn);
                }
            }
            return Ok(());
        }
        let uri: lambda_http::http::Uri = req.uri().parse()?;
        // API Gateway's management API: apigateway:<METHOD> on the path's ARN.
        if uri.path().starts_with("/apikeys") || uri.path().starts_with("/usageplans") {
            self.push(
                &format!("apigateway:{}", req.method()),
                format!("arn:aws:apigateway:us-east-1::{}", uri.path()),
            );
            return Ok(());
        }
        // S3, path-style: /<bucket>/<key>[?query].
        let path = uri.path().trim_start_matches('/');
        let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
        let query = uri.query().unwrap_or_default();
        let object = format!("arn:aws:s3:::{bucket}/{key}");
        match req.method() {
            "GET" if key.is_empty() => self.push("s3:ListBucket", format!("arn:aws:s3:::{bucket}")),
            "GET" | "HEAD" => self.push("s3:GetObject", object),
            "PUT" => {
                if let Some(source) = req.headers().get("x-amz-copy-source") {
                    self.push(
                        "s3:GetObject",
                        format!("arn:aws:s3:::{}", source.trim_start_matches('/')),
                    );
                }
                self.push("s3:PutObject", object);
            }
            "DELETE" => self.push("s3:DeleteObject", object),
            "POST" if query.contains("delete") => {
                self.push("s3:DeleteObject", format!("{object}*"))
            }
            other => self.push(&format!("s3:?{other}"), object),
        }
        Ok(())
    }
}

/// A real PNG, `width`×`height`, RGB, made by the png crate's encoder.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    let mut writer = encoder.write_header().unwrap();
    let data: Vec<u8> = (0..width * height * 3).map(|i| (i % 251) as u8).collect();
    writer.write_image_data(&data).unwrap();
    writer.finish().unwrap();
    out
}

/// A real JPEG, `width`×`height`, RGB, made by jpeg-encoder.
pub fn jpeg(width: u16, height: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let data: Vec<u8> = (0..u32::from(width) * u32::from(height) * 3)
        .map(|i| (i % 253) as u8)
        .collect();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&data, width, height, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

/// A real engine and a real embedded S3 with one bucket whose object events go nowhere (the
/// test decides what process-photo sees, and when), and the configuration a photo function
/// gets on them.
pub struct QuietS3 {
    pub engine: Engine,
    /// Serving while it lives; its folder is removed when dropped.
    pub s3: local_api::s3::EmbeddedS3,
    pub config: Config,
    pub bucket: String,
}

impl QuietS3 {
    pub async fn start(bucket: &str) -> Self {
        let engine = Engine::start().await;
        let (key_id, secret) = ("AKIDTEST", "secret");
        let credentials = local_api::s3::Credentials {
            access_key_id: key_id.into(),
            secret_access_key: secret.into(),
        };
        let root = std::env::temp_dir().join(format!("quiet-s3-{}", uuid::Uuid::new_v4()));
        let (s3, _events_dropped) = local_api::s3::EmbeddedS3::start(
            root,
            true,
            0,
            &credentials,
            &[bucket.to_owned()],
            vec![],
        )
        .await
        .unwrap();
        let vars: std::collections::BTreeMap<&str, String> = [
            (env::TABLE_NAME, engine.table.clone()),
            (env::DYNAMODB_ENDPOINT, engine.endpoint.clone()),
            (env::S3_ENDPOINT, s3.endpoint.clone()),
            (env::AWS_ACCESS_KEY_ID, key_id.into()),
            (env::AWS_SECRET_ACCESS_KEY, secret.into()),
            (env::PHOTO_BUCKET, bucket.into()),
            (env::PHOTO_BASE_URL, "https://photos.test".into()),
        ]
        .into_iter()
        .collect();
        let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
        Self {
            engine,
            s3,
            config,
            bucket: bucket.to_owned(),
        }
    }
}
