//! Starting and stopping the runner: the engine (embedded, or one named by URL), the
//! template's table on it, the embedded S3 with the template's buckets, the development
//! key, and a pool for every function served.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::{Environment, Pool, Pools};
use crate::s3::EmbeddedS3;
use crate::template::{Api, Error, Template};
use shared::localstate;

use crate::{Options, Server, Storage, TABLE};
use crate::{authorizer, devkey, gateway, throttle};

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

        // The functions' role credentials, as Lambda sets them: passed through to another
        // engine, else made for this run. The embedded S3 checks signatures against them.
        let credentials = crate::s3::Credentials {
            access_key_id: vars
                .iter()
                .find(|(k, _)| k == "AWS_ACCESS_KEY_ID")
                .map_or_else(|| "ASIALOCALFUNCTIONROLE".to_owned(), |(_, v)| v.clone()),
            secret_access_key: vars
                .iter()
                .find(|(k, _)| k == "AWS_SECRET_ACCESS_KEY")
                .map_or_else(
                    || uuid::Uuid::new_v4().simple().to_string(),
                    |(_, v)| v.clone(),
                ),
        };
        if !vars.iter().any(|(k, _)| k == "AWS_ACCESS_KEY_ID") {
            vars.push((
                "AWS_ACCESS_KEY_ID".into(),
                credentials.access_key_id.clone(),
            ));
            vars.push((
                "AWS_SECRET_ACCESS_KEY".into(),
                credentials.secret_access_key.clone(),
            ));
            // A role's credentials carry a session token; presigned uploads must include it.
            vars.push((
                "AWS_SESSION_TOKEN".into(),
                format!("local-session-{}", uuid::Uuid::new_v4().simple()),
            ));
        }

        // The embedded S3: objects under the state directory when the data is kept there.
        let (s3_root, temporary) = match (&options.storage, &options.state_dir) {
            (Storage::Memory, _) | (_, None) => (
                std::env::temp_dir().join(format!("local-api-s3-{}", uuid::Uuid::new_v4())),
                true,
            ),
            (_, Some(dir)) => (dir.join(localstate::S3_DIR), false),
        };
        let buckets: Vec<String> = template.buckets()?.into_iter().map(|(_, n)| n).collect();
        let public = template
            .origins()?
            .into_iter()
            .map(|o| {
                let prefix = if o.path.is_empty() {
                    String::new()
                } else {
                    format!("{}/", o.path)
                };
                (o.bucket, prefix)
            })
            .collect();
        let (s3, created) = EmbeddedS3::start(
            s3_root,
            temporary,
            options.s3_port,
            &credentials,
            &buckets,
            public,
        )
        .await?;
        vars.push(("S3_ENDPOINT".to_owned(), s3.endpoint.clone()));
        let template = &template
            .clone()
            .with_local(&options.region, Some(&s3.endpoint));

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
        let subscriptions = template.s3_subscriptions()?;
        for function in template.functions(&table)? {
            let serves_a_route = routes.iter().any(|r| r.function == function.id);
            let subscribed = subscriptions.iter().any(|s| s.function == function.id);
            if !serves_a_route
                && !subscribed
                && !authorizer_functions.contains(&function.id.as_str())
            {
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

        let log: crate::runtime::LogSink = {
            let sink = options.log.clone();
            Arc::new(move |line: &str| {
                tracing::info!("{line}");
                if let Some(sink) = &sink {
                    sink(line);
                }
            })
        };
        tokio::spawn(crate::s3::deliver(
            created,
            Arc::new(subscriptions),
            pools.clone(),
            options.region.clone(),
            log,
        ));

        let store = shared::store::Store::new(client, table.clone());
        // In-memory data forgets the key with the data: a new one each start, kept nowhere.
        let key_dir = match options.storage {
            Storage::Memory => None,
            _ => options.state_dir.as_deref(),
        };
        let dev_api_key = devkey::ensure(&store, key_dir).await?;

        // The embedded API Gateway: the template's plans and keys, the kept registrations,
        // and the development key's usage key in the plan keys join.
        let plans: std::collections::BTreeSet<String> = apis
            .values()
            .flat_map(|a| a.plans.iter().map(|p| p.id.clone()))
            .collect();
        let gateway_file = key_dir.map(|d| d.join(localstate::APIGATEWAY_REGISTRY));
        let registry = Arc::new(gateway::Registry::load(
            gateway_file,
            plans,
            &template.api_keys()?,
        )?);
        let usage_plan = template.key_plan()?;
        if let Some(plan) = &usage_plan {
            let record = shared::apikeys::lookup(&store, dev_api_key.expose())
                .await
                .map_err(|e| format!("reading the development key: {e}"))?
                .ok_or("the development key has no record")?;
            registry.ensure(
                plan,
                &shared::apikeys::gateway_key_name(&record.key_id),
                &record.usage_key,
            )?;
        }
        let listener =
            tokio::net::TcpListener::bind(("127.0.0.1", options.apigateway_port)).await?;
        let gateway_endpoint = format!("http://{}", listener.local_addr()?);
        let gateway_task = gateway::serve(registry.clone(), listener);
        let gateway_endpoint_file = options
            .state_dir
            .as_ref()
            .map(|d| d.join(localstate::APIGATEWAY_ENDPOINT));
        if let (Some(dir), Some(file)) = (&options.state_dir, &gateway_endpoint_file) {
            std::fs::create_dir_all(dir)?;
            std::fs::write(file, format!("{gateway_endpoint}\n"))?;
            match &usage_plan {
                Some(plan) => {
                    std::fs::write(dir.join(localstate::USAGE_PLAN_ID), format!("{plan}\n"))?
                }
                None => {
                    let _ = std::fs::remove_file(dir.join(localstate::USAGE_PLAN_ID));
                }
            }
        }
        let engine_endpoint_file = match &options.state_dir {
            Some(dir) => {
                let file = dir.join(localstate::ENGINE_ENDPOINT);
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
            s3_endpoint: s3.endpoint.clone(),
            s3_root: s3.root.clone(),
            s3_credentials: credentials,
            s3: tokio::sync::Mutex::new(Some(s3)),
            mount: options.mount,
            gateway: registry,
            gateway_endpoint,
            gateway_endpoint_file,
            usage_plan,
            gateway_task,
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
        if let Some(mut s3) = self.s3.lock().await.take() {
            s3.stop().await;
        }
        self.gateway_task.abort();
        // Its URL no longer leads anywhere either (unless another runner wrote its own).
        if let Some(file) = &self.gateway_endpoint_file
            && std::fs::read_to_string(file).is_ok_and(|url| url.trim() == self.gateway_endpoint)
        {
            let _ = std::fs::remove_file(file);
        }
        // The engine is gone: its URL no longer leads anywhere.
        if let Some(file) = &self.engine_endpoint_file
            && std::fs::read_to_string(file).is_ok_and(|url| url.trim() == self.endpoint)
        {
            let _ = std::fs::remove_file(file);
        }
    }
}
