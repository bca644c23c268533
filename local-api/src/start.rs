//! Starting and stopping the runner: the engine (embedded, or one named by URL), the
//! template's table on it, the development key, and a pool for every function served.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::{Environment, Pool, Pools};
use crate::template::{Api, Error, Template};
use crate::{Options, Server, Storage, TABLE};
use crate::{authorizer, devkey, throttle};

/// Variables passed through to the functions when they talk to a real engine.
const AWS_CREDENTIAL_VARS: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

impl Server {
    /// Starts the engine (or joins the one named), creates the template's table there when
    /// missing, and prepares a pool for every function the template's routes use.
    pub async fn start(template: &Template, options: Options) -> Result<Self, Error> {
        let template = &template
            .clone()
            .with_parameter_overrides(&options.parameter_overrides)?;
        let mut vars = Vec::new();
        let (endpoint, table, engine) = match &options.storage {
            Storage::Endpoint { url, table } => {
                for name in AWS_CREDENTIAL_VARS {
                    if let Ok(v) = std::env::var(name) {
                        vars.push((name.to_owned(), v));
                    }
                }
                (url.clone(), table.clone(), None)
            }
            local => {
                let db = match local {
                    Storage::File(file) => {
                        if let Some(dir) = file.parent() {
                            std::fs::create_dir_all(dir)?;
                        }
                        dynoxide::Database::new(&file.to_string_lossy())?
                    }
                    _ => dynoxide::Database::memory()?,
                };
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let url = format!("http://{}", listener.local_addr()?);
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let task = tokio::spawn(async move {
                    let shutdown = async {
                        let _ = stopped.await;
                    };
                    if let Err(e) =
                        dynoxide::server::serve_with_shutdown(listener, db, shutdown).await
                    {
                        tracing::error!("embedded DynamoDB stopped: {e}");
                    }
                });
                (url, TABLE.to_owned(), Some((stop, task)))
            }
        };
        vars.push(("DYNAMODB_ENDPOINT".to_owned(), endpoint.clone()));

        let config = shared::config::Config::from_lookup(|k| match k {
            "TABLE_NAME" => Some(table.clone()),
            "DYNAMODB_ENDPOINT" => Some(endpoint.clone()),
            "AWS_REGION" => Some(options.region.clone()),
            "PROFILES_TENANT_ID" => Some("local".into()),
            _ if AWS_CREDENTIAL_VARS.contains(&k) && engine.is_none() => std::env::var(k).ok(),
            _ => None,
        })?;
        let client = shared::store::dynamodb_client(&config);
        let created_table = template.ensure_table(&client, &table).await?;

        let routes = template.routes()?;
        let apis: HashMap<String, Api> = template
            .apis()?
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect();
        let authorizer_functions: Vec<&str> = routes
            .iter()
            .filter_map(|r| {
                let api = apis.get(r.api.as_deref()?)?;
                Some(
                    api.authorizers
                        .get(r.authorizer.as_deref()?)?
                        .function
                        .as_str(),
                )
            })
            .collect();
        let environment = Environment {
            region: options.region.clone(),
            vars,
        };
        let mut pools = Pools::new();
        for function in template.functions(&table)? {
            let serves_a_route = routes.iter().any(|r| r.function == function.id);
            if !serves_a_route && !authorizer_functions.contains(&function.id.as_str()) {
                continue;
            }
            let Some(binary) = options.binaries.get(&function.binary) else {
                return Err(
                    format!("{}: no binary {:?} was built", function.id, function.binary).into(),
                );
            };
            let pool = Pool::new(
                function.clone(),
                binary.clone(),
                environment.clone(),
                options.concurrency,
            )
            .with_log(options.log.clone());
            pools.insert(function.id.clone(), Arc::new(pool));
        }

        let store = shared::store::Store::new(client, table.clone());
        // In-memory data forgets the key with the data: a new one each start, kept nowhere.
        let key_dir = match options.storage {
            Storage::Memory => None,
            _ => options.state_dir.as_deref(),
        };
        let dev_api_key = devkey::ensure(&store, key_dir).await?;
        let engine_endpoint_file = match &options.state_dir {
            Some(dir) => {
                let file = dir.join(devkey::ENGINE_ENDPOINT_FILE);
                if engine.is_some() {
                    std::fs::create_dir_all(dir)?;
                    std::fs::write(&file, format!("{endpoint}\n"))?;
                    Some(file)
                } else {
                    // Another engine: a URL left by an earlier embedded one is stale.
                    let _ = std::fs::remove_file(&file);
                    None
                }
            }
            None => None,
        };
        Ok(Self {
            routes,
            apis,
            pools,
            endpoint,
            table,
            created_table,
            dev_api_key,
            engine_endpoint_file,
            region: options.region,
            cache: authorizer::Cache::default(),
            buckets: throttle::Buckets::default(),
            log: options.log,
            engine: std::sync::Mutex::new(engine),
        })
    }

    /// Stops every function instance, then the embedded engine, which closes its data file.
    pub async fn stop(&self) {
        for pool in self.pools.values() {
            pool.stop();
        }
        let engine = self
            .engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((stop, task)) = engine {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        // The engine is gone: its URL no longer leads anywhere.
        if let Some(file) = &self.engine_endpoint_file
            && std::fs::read_to_string(file).is_ok_and(|url| url.trim() == self.endpoint)
        {
            let _ = std::fs::remove_file(file);
        }
    }
}
