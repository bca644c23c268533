//! Starting and stopping the runner: its components (the engine with the template's table,
//! the embedded S3 with the template's buckets, the embedded API Gateway, one pool of
//! instances per function served) in the order each needs the one before, and the
//! development key.

use std::collections::HashMap;
use std::sync::Arc;

use shared::config::env;

use crate::bus::LocalBus;
use crate::engine::Engine;
use crate::gateway::ApiGateway;
use crate::runtime::{Environment, LogSink, Pool, Pools};
use crate::s3::{Credentials, LocalS3};
use crate::template::{Api, Error, Function, Route, Template};
use crate::{Options, Server, Storage};
use crate::{authorizer, devkey, throttle};

impl Server {
    /// Starts the engine (or joins the one named) with the template's table, the embedded
    /// S3, EventBridge and API Gateway, a pool for every function the template's routes,
    /// authorizers, S3 events, stream and bus rules use, and the stream's delivery.
    pub async fn start(template: &Template, options: Options) -> Result<Self, Error> {
        let template = template
            .clone()
            .with_parameter_overrides(&options.parameter_overrides)?;
        let state_dir = options.state_dir.as_deref();
        let mut engine = Engine::start(&options.storage, state_dir).await?;
        let (mut vars, credentials) = role(&engine);
        vars.push((env::DYNAMODB_ENDPOINT.to_owned(), engine.endpoint.clone()));
        let (s3, created) = LocalS3::start(
            &template,
            &options.storage,
            state_dir,
            options.s3_port,
            credentials,
        )
        .await?;
        vars.push((env::S3_ENDPOINT.to_owned(), s3.endpoint.clone()));
        let template = template.with_local(&options.region, Some(&s3.endpoint));
        let log = log_sink(options.log.clone());
        let bus = if template.buses()?.is_empty() {
            None
        } else {
            let bus = LocalBus::start(
                &template,
                &options.region,
                options.state_dir.clone(),
                log.clone(),
            )
            .await?;
            vars.push((env::EVENTBRIDGE_ENDPOINT.to_owned(), bus.endpoint.clone()));
            Some(bus)
        };
        let config = engine.config(&options.region)?;
        engine.ensure_table(&template, &config).await?;

        let routes = template.routes()?;
        let apis: HashMap<String, Api> = template
            .apis()?
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect();
        let environment = Environment {
            region: options.region.clone(),
            vars,
        };
        let pools = pools(
            &template,
            &routes,
            &apis,
            &engine.table,
            environment,
            &options,
            &log,
        )?;
        provision(&pools, &log).await?;
        tokio::spawn(crate::s3::deliver(
            created,
            Arc::new(template.s3_subscriptions()?),
            pools.clone(),
            options.region.clone(),
            log.clone(),
        ));
        if let Some(bus) = &bus {
            bus.attach(pools.clone());
        }
        match &engine.db {
            Some(db) => crate::stream::deliver(
                db,
                &engine.table,
                template.stream_sources()?,
                &pools,
                &options.region,
                options.state_dir.clone(),
                log,
            ),
            None if !template.stream_sources()?.is_empty() => log(
                "the table's stream is delivered from the embedded engine only: with another engine, no stream event runs",
            ),
            None => {}
        }

        let store = shared::store::Store::new(
            shared::store::dynamodb_client(&config),
            engine.table.clone(),
        );
        // In-memory data forgets the key with the data: a new one each start, kept nowhere.
        let key_dir = match options.storage {
            Storage::Memory => None,
            _ => state_dir,
        };
        let dev_api_key = devkey::ensure(&store, key_dir).await?;
        let dev_key = shared::apikeys::lookup(&store, dev_api_key.expose())
            .await
            .map_err(|e| format!("reading the development key: {e}"))?
            .ok_or("the development key has no record")?;
        let gateway = ApiGateway::start(
            &template,
            &apis,
            &dev_key,
            key_dir,
            state_dir,
            options.apigateway_port,
        )
        .await?;
        Ok(Self {
            routes,
            apis,
            pools,
            engine,
            s3,
            gateway,
            bus,
            dev_api_key,
            mount: options.mount,
            region: options.region,
            cache: authorizer::Cache::default(),
            buckets: throttle::Buckets::default(),
            log: options.log,
        })
    }

    /// Stops every function instance, then the components: the engine (which closes its data
    /// file), the S3, the API Gateway; the files naming them go with them.
    pub async fn stop(&self) {
        for pool in self.pools.values() {
            pool.stop();
        }
        self.engine.stop().await;
        self.s3.stop().await;
        self.gateway.stop();
        if let Some(bus) = &self.bus {
            bus.stop();
        }
    }
}

/// The functions' role credentials, as Lambda sets them, and the same for the embedded S3 to
/// check signatures against: the environment's when the engine is another one (AWS, say),
/// else made up for this run, with a session token as a role's have (presigned uploads must
/// carry it).
fn role(engine: &Engine) -> (Vec<(String, String)>, Credentials) {
    let passed: Vec<(String, String)> = if engine.embedded {
        Vec::new()
    } else {
        env::AWS_CREDENTIALS
            .iter()
            .filter_map(|name| Some(((*name).to_owned(), std::env::var(name).ok()?)))
            .collect()
    };
    let given = |name: &str| {
        passed
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let credentials = Credentials {
        access_key_id: given(env::AWS_ACCESS_KEY_ID)
            .unwrap_or_else(|| "ASIALOCALFUNCTIONROLE".to_owned()),
        secret_access_key: given(env::AWS_SECRET_ACCESS_KEY)
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
    };
    if given(env::AWS_ACCESS_KEY_ID).is_some() {
        return (passed, credentials);
    }
    let vars = vec![
        (
            env::AWS_ACCESS_KEY_ID.to_owned(),
            credentials.access_key_id.clone(),
        ),
        (
            env::AWS_SECRET_ACCESS_KEY.to_owned(),
            credentials.secret_access_key.clone(),
        ),
        (
            env::AWS_SESSION_TOKEN.to_owned(),
            format!("local-session-{}", uuid::Uuid::new_v4().simple()),
        ),
    ];
    (vars, credentials)
}

/// A pool of instances for every function something invokes: a route's, an authorizer a
/// route uses, an S3 event's, the stream's or a bus rule's. Each runs at most
/// `options.concurrency` instances, or its reserved concurrency when that is lower (said in
/// the log); a reserved concurrency of 0 is refused, naming what sets it.
fn pools(
    template: &Template,
    routes: &[Route],
    apis: &HashMap<String, Api>,
    table: &str,
    environment: Environment,
    options: &Options,
    log: &LogSink,
) -> Result<Pools, Error> {
    let authorizers: Vec<&str> = routes
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
    let subscriptions = template.s3_subscriptions()?;
    let by_events = template.invoked_by_events()?;
    let mut pools = Pools::new();
    for function in template.functions(table)? {
        let invoked = routes.iter().any(|r| r.function == function.id)
            || subscriptions.iter().any(|s| s.function == function.id)
            || by_events.contains(&function.id)
            || authorizers.contains(&function.id.as_str());
        if !invoked {
            continue;
        }
        let limit = instance_limit(template, &function, options.concurrency)?;
        if limit < options.concurrency {
            log(&format!(
                "{}: at most {limit} instances, its reserved concurrency{}",
                function.id,
                set_by(template, &function.id)
            ));
        }
        let Some(binary) = options.binaries.get(&function.binary) else {
            return Err(
                format!("{}: no binary {:?} was built", function.id, function.binary).into(),
            );
        };
        let pool = Pool::new(function.clone(), binary.clone(), environment.clone(), limit)
            .with_log(options.log.clone());
        pools.insert(function.id.clone(), Arc::new(pool));
    }
    Ok(pools)
}

/// The most instances of `function` the runner starts: `concurrency`, or the function's
/// reserved concurrency when lower. A reservation of 0 is an error: Lambda would throttle
/// every invocation, which the runner does not emulate, and starting one instance instead
/// would hide it.
fn instance_limit(
    template: &Template,
    function: &Function,
    concurrency: usize,
) -> Result<usize, Error> {
    match function.reserved_concurrency {
        None => Ok(concurrency),
        Some(0) => Err(format!(
            "{}: its reserved concurrency (ReservedConcurrentExecutions) is 0{}: Lambda would \
             throttle every invocation of it, which the runner does not emulate; give it 1 or \
             more, or no reservation",
            function.id,
            set_by(template, &function.id)
        )
        .into()),
        Some(n) => Ok(usize::try_from(n).map_or(concurrency, |n| n.min(concurrency))),
    }
}

/// Starts the instances each function keeps initialised (its provisioned concurrency, at
/// most its instance limit; `AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency`) and
/// waits for their init to end, as Lambda readies them before the alias takes traffic: the
/// first requests to such a function find warm instances. An init that fails stops the
/// start, naming the function (Lambda would fail the deploy). Like every idle instance, one
/// that later exits is found by the next request (a crash, a 502), and the request after
/// starts a new one on demand.
async fn provision(pools: &Pools, log: &LogSink) -> Result<(), Error> {
    let mut starts = tokio::task::JoinSet::new();
    let mut said = Vec::new();
    for pool in pools.values() {
        let function = pool.function();
        let wanted = usize::try_from(function.provisioned_concurrency).unwrap_or(usize::MAX);
        let n = wanted.min(pool.limit());
        if n == 0 {
            continue;
        }
        said.push(format!(
            "{}: provisioned concurrency {n}{}, initialised before the first request",
            function.id,
            if n < wanted {
                format!(" (of {wanted}: its instance limit)")
            } else {
                String::new()
            }
        ));
        for _ in 0..n {
            let pool = pool.clone();
            starts.spawn(async move { (pool.function().id.clone(), pool.provision().await) });
        }
    }
    while let Some(started) = starts.join_next().await {
        let (id, ready) = started.map_err(|e| format!("provisioning an instance: {e}"))?;
        ready.map_err(|e| format!("{id}: a provisioned instance did not initialise: {e}"))?;
    }
    said.sort();
    for line in said {
        log(&line);
    }
    Ok(())
}

/// ` (parameter P)` when a template parameter sets function `id`'s reserved concurrency.
fn set_by(template: &Template, id: &str) -> String {
    let names = template.reserved_concurrency_parameters(id);
    if names.is_empty() {
        String::new()
    } else {
        format!(" (parameter {})", names.join(", "))
    }
}

/// Where the runner's own lines go: its log, and the sink when one is given.
fn log_sink(sink: Option<LogSink>) -> LogSink {
    Arc::new(move |line: &str| {
        tracing::info!("{line}");
        if let Some(sink) = &sink {
            sink(line);
        }
    })
}
