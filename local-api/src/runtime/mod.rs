//! Runs function binaries as Lambda does: each instance is a child process polling its own
//! Lambda Runtime API endpoint (`/2018-06-01/runtime/…`) served here, one invocation at a
//! time; a function's pool starts instances on demand up to its concurrency limit, keeps them
//! warm, and replaces any that crash, fail init or overrun the function's timeout.

use shared::config::env;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};
use tokio::sync::{Semaphore, mpsc, oneshot};

mod api;

use api::{Job, RuntimeState, init_error, invocation_error, lock, next, response};

use crate::template::{Error, Function};

/// How long Lambda lets a function's init run before it fails the invocation.
pub const INIT_LIMIT: Duration = Duration::from_secs(10);

/// What every instance of every function gets besides its template environment.
#[derive(Clone, Debug)]
pub struct Environment {
    /// `AWS_REGION`.
    pub region: String,
    /// Extra variables: the DynamoDB endpoint, credentials when a real engine needs them.
    pub vars: Vec<(String, String)>,
}

/// How an invocation ended.
#[derive(Debug)]
pub enum Outcome {
    /// The function's response payload (`/response`).
    Response(Vec<u8>),
    /// The function reported an error (`/error`); the instance stays warm.
    Error { error_type: String, message: String },
    /// Init failed (`/init/error`, or the process died or hung before asking for work).
    InitError(String),
    /// The process exited during the invocation.
    Crashed(String),
    /// The invocation overran the function's timeout; the instance was stopped.
    TimedOut,
}

/// One invocation's result and how it ran.
#[derive(Debug)]
pub struct Invoked {
    pub outcome: Outcome,
    /// `Some(init time)` when this invocation started a new instance (a cold start).
    pub cold: Option<Duration>,
    /// The instance's number within its function, from 1.
    pub instance: usize,
}

/// How an instance came to be, as Lambda tells it in `AWS_LAMBDA_INITIALIZATION_TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Initialization {
    /// Started for an invocation that found no idle instance.
    OnDemand,
    /// Started ahead of any invocation, for the function's provisioned concurrency.
    Provisioned,
}

impl Initialization {
    fn as_str(self) -> &'static str {
        match self {
            Self::OnDemand => "on-demand",
            Self::Provisioned => "provisioned-concurrency",
        }
    }
}

/// A running instance of a function.
struct Instance {
    number: usize,
    child: Child,
    jobs: mpsc::Sender<Job>,
    state: Arc<RuntimeState>,
    api: tokio::task::JoinHandle<()>,
    started: Instant,
    used: bool,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.api.abort();
        // kill_on_drop also stops the process; this makes it immediate.
        let _ = self.child.start_kill();
    }
}

/// Where the runner's lines go besides `tracing`: every request line and every line a
/// function writes (a test captures them here).
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Forwards an instance's output, line by line, to the runner's log.
fn forward<R>(out: R, function: String, number: usize, sink: Option<LogSink>)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(out).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = format!("[{function}#{number}] {line}");
            tracing::info!(target: "function", "{line}");
            if let Some(sink) = &sink {
                sink(&line);
            }
        }
    });
}

impl Instance {
    async fn start(
        function: &Function,
        binary: &PathBuf,
        env: &Environment,
        number: usize,
        kind: Initialization,
        sink: Option<&LogSink>,
    ) -> Result<Self, Error> {
        let arn = format!(
            "arn:aws:lambda:{}:123456789012:function:{}",
            env.region, function.id
        );
        let (jobs, jobs_rx) = mpsc::channel(1);
        let state = Arc::new(RuntimeState {
            arn,
            timeout: function.timeout,
            jobs: tokio::sync::Mutex::new(jobs_rx),
            pending: Mutex::new(None),
            init_error: Mutex::new(None),
            first_poll: Mutex::new(None),
            ready: tokio::sync::Notify::new(),
        });
        let router = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .layer(axum::extract::DefaultBodyLimit::max(6 * 1024 * 1024))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let runtime_api = listener.local_addr()?.to_string();
        let api = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });

        let mut cmd = Command::new(binary);
        // A clean environment, as Lambda gives: the template's variables and Lambda's own.
        cmd.env_clear()
            .envs(function.env.iter().map(|(k, v)| (k, v)))
            .envs(env.vars.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", &function.id)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                function.memory_mb.to_string(),
            )
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", function.id),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{number}"))
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", kind.as_str())
            .env(env::AWS_REGION, &env.region)
            .env("AWS_DEFAULT_REGION", &env.region)
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_rust")
            .env("TZ", ":UTC")
            .kill_on_drop(true)
            // Its own process group: Ctrl-C in the terminal reaches the runner, which stops
            // the instances once requests in flight are answered.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(format) = &function.log_format {
            cmd.env(env::AWS_LAMBDA_LOG_FORMAT, format);
        }
        if let Some(level) = &function.log_level {
            cmd.env(env::AWS_LAMBDA_LOG_LEVEL, level);
        }
        // Taken before the exec: on a busy machine this thread can be preempted after it,
        // long enough for a fast process to ask for work first (an init time of 0).
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{}: cannot start {}: {e}", function.id, binary.display()))?;
        if let Some(out) = child.stdout.take() {
            forward(out, function.binary.clone(), number, sink.cloned());
        }
        if let Some(err) = child.stderr.take() {
            forward(err, function.binary.clone(), number, sink.cloned());
        }
        Ok(Self {
            number,
            child,
            jobs,
            state,
            api,
            started,
            used: false,
        })
    }

    /// Why the process ended, for an invocation it left unanswered.
    fn ended(
        &self,
        status: std::io::Result<std::process::ExitStatus>,
        initialised: bool,
    ) -> Outcome {
        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        match lock(&self.state.init_error).take() {
            Some(error) => Outcome::InitError(error),
            None if !initialised => Outcome::InitError(format!("Runtime.ExitError: {status}")),
            None => Outcome::Crashed(format!("Runtime.ExitError: {status}")),
        }
    }

    /// Runs one invocation. The instance is fit for another only after `Outcome::Response`
    /// or `Outcome::Error`.
    async fn invoke(&mut self, job: (String, String, Vec<u8>), timeout: Duration) -> Outcome {
        let (request_id, trace_id, event) = job;
        let (delivered_tx, delivered) = oneshot::channel();
        let (reply_tx, reply) = oneshot::channel();
        let job = Job {
            request_id,
            trace_id,
            event,
            delivered: delivered_tx,
            reply: reply_tx,
        };
        if self.jobs.send(job).await.is_err() {
            return Outcome::Crashed("runtime endpoint closed".into());
        }
        let initialised = self.used;
        // Cold: the function has INIT_LIMIT to finish init and poll; warm: it is polling.
        tokio::select! {
            biased;
            Ok(()) = delivered => {}
            status = self.child.wait() => return self.ended(status, initialised),
            () = tokio::time::sleep(INIT_LIMIT) => {
                return Outcome::InitError("Runtime.InitTimeout".into());
            }
        }
        self.used = true;
        tokio::select! {
            biased;
            r = reply => r.unwrap_or_else(|_| Outcome::Crashed("runtime endpoint closed".into())),
            status = self.child.wait() => self.ended(status, true),
            () = tokio::time::sleep(timeout) => Outcome::TimedOut,
        }
    }

    fn init_time(&self) -> Duration {
        lock(&self.state.first_poll).map_or_else(|| self.started.elapsed(), |t| t - self.started)
    }
}

/// A function's instances.
pub struct Pool {
    function: Function,
    binary: PathBuf,
    env: Environment,
    permits: Semaphore,
    limit: usize,
    idle: Mutex<Vec<Instance>>,
    started: AtomicUsize,
    invocations: AtomicUsize,
    stopped: std::sync::atomic::AtomicBool,
    sink: Option<LogSink>,
}

impl Pool {
    pub fn new(function: Function, binary: PathBuf, env: Environment, concurrency: usize) -> Self {
        Self {
            function,
            binary,
            env,
            permits: Semaphore::new(concurrency.max(1)),
            limit: concurrency.max(1),
            idle: Mutex::new(Vec::new()),
            started: AtomicUsize::new(0),
            invocations: AtomicUsize::new(0),
            stopped: std::sync::atomic::AtomicBool::new(false),
            sink: None,
        }
    }

    /// The same pool, its instances' output also going to `sink`.
    pub fn with_log(mut self, sink: Option<LogSink>) -> Self {
        self.sink = sink;
        self
    }

    pub fn function(&self) -> &Function {
        &self.function
    }

    /// The most instances it runs at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How many instances this pool has started so far.
    pub fn instances_started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    /// How many invocations this pool has been given so far.
    pub fn invocations(&self) -> usize {
        self.invocations.load(Ordering::Relaxed)
    }

    /// Invokes the function with `event`: on a warm instance when one is idle, else on a new
    /// one, waiting while the function is at its concurrency limit.
    pub async fn invoke(&self, request_id: String, trace_id: String, event: Vec<u8>) -> Invoked {
        self.invocations.fetch_add(1, Ordering::Relaxed);
        // The semaphore is never closed, so acquire only fails if it were; treat that as a
        // crash rather than panic.
        let Ok(_permit) = self.permits.acquire().await else {
            return Invoked {
                outcome: Outcome::Crashed("pool closed".into()),
                cold: None,
                instance: 0,
            };
        };
        let warm = lock(&self.idle).pop();
        let mut instance = match warm {
            Some(i) => i,
            None => {
                let (number, started) = self.start_instance(Initialization::OnDemand).await;
                match started {
                    Ok(i) => i,
                    Err(e) => {
                        return Invoked {
                            outcome: Outcome::InitError(e.to_string()),
                            cold: Some(Duration::ZERO),
                            instance: number,
                        };
                    }
                }
            }
        };
        let was_cold = !instance.used;
        let outcome = instance
            .invoke((request_id, trace_id, event), self.function.timeout)
            .await;
        let cold = was_cold.then(|| instance.init_time());
        let number = instance.number;
        let reusable = matches!(outcome, Outcome::Response(_) | Outcome::Error { .. });
        if reusable && !self.stopped.load(Ordering::Acquire) {
            lock(&self.idle).push(instance);
        }
        Invoked {
            outcome,
            cold,
            instance: number,
        }
    }

    /// Starts the pool's next instance: its number, and the instance or why it did not start.
    async fn start_instance(&self, kind: Initialization) -> (usize, Result<Instance, Error>) {
        let number = self.started.fetch_add(1, Ordering::Relaxed) + 1;
        let instance = Instance::start(
            &self.function,
            &self.binary,
            &self.env,
            number,
            kind,
            self.sink.as_ref(),
        )
        .await;
        (number, instance)
    }

    /// Starts one more instance and waits for its init to end (its first `/next`), leaving
    /// it idle for the next invocation: an on-demand cold start cut in two, so that init
    /// and the first invocation can be measured apart. Its init time; the reason when init
    /// failed or the pool was stopped meanwhile. The next invocation is still reported as
    /// the instance's cold one. The instance counts against the pool's limit only while it
    /// runs an invocation.
    pub async fn prestart(&self) -> Result<Duration, String> {
        self.ready_instance(false).await
    }

    /// Starts one instance Lambda keeps initialised (provisioned concurrency) and waits for
    /// its init to end, leaving it idle: as [`Pool::prestart`], but its first invocation is
    /// a warm one, as Lambda reports it (no Init Duration on that REPORT line).
    pub async fn provision(&self) -> Result<Duration, String> {
        self.ready_instance(true).await
    }

    /// Starts an instance and waits for its first `/next`; `initialised` says whether its
    /// first invocation counts as warm.
    async fn ready_instance(&self, initialised: bool) -> Result<Duration, String> {
        let kind = match initialised {
            true => Initialization::Provisioned,
            false => Initialization::OnDemand,
        };
        let mut instance = self
            .start_instance(kind)
            .await
            .1
            .map_err(|e| e.to_string())?;
        let state = instance.state.clone();
        tokio::select! {
            biased;
            () = state.ready.notified() => {}
            status = instance.child.wait() => {
                return Err(format!("{:?}", instance.ended(status, false)));
            }
            () = tokio::time::sleep(INIT_LIMIT) => return Err("Runtime.InitTimeout".into()),
        }
        if self.stopped.load(Ordering::Acquire) {
            return Err("the pool was stopped".into());
        }
        let init = instance.init_time();
        instance.used = initialised;
        lock(&self.idle).push(instance);
        Ok(init)
    }

    /// The process ids of the idle instances (for measuring them).
    pub fn idle_pids(&self) -> Vec<u32> {
        lock(&self.idle)
            .iter()
            .filter_map(|i| i.child.id())
            .collect()
    }

    /// Stops every idle instance; one running an invocation stops when the invocation ends.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        lock(&self.idle).clear();
    }
}

/// The pools of every function, by logical id.
pub type Pools = HashMap<String, Arc<Pool>>;
