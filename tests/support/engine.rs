//! The engine: a real DynamoDB-compatible engine per test (dynoxide in the process, or the one
//! `PROFILES_TEST_DYNAMODB_ENDPOINT` names), the table made from `template.yaml`'s own
//! definition, and the configuration a function gets on it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aws_sdk_dynamodb::Client;
use shared::app::App;
use shared::config::{Config, env};

use crate::repo_path;

/// The switch: a URL here runs the suite on that engine instead of embedded dynoxide.
pub const ENGINE_ENV: &str = "PROFILES_TEST_DYNAMODB_ENDPOINT";

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
