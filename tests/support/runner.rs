//! The local runner started by a test: real HTTP in front, the workspace's function binaries
//! behind, and clients that carry an API key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use shared::config::Config;

use crate::{config_for, repo_path};

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
