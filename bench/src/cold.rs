//! Cold starts and the baseline's direct comparison: every function, the floor and the
//! baseline started fresh for each of N invocations (exec → first `/next` → answered, and
//! the CPU time the process used to get there), then get-profile and the baseline kept warm
//! and invoked directly through the Runtime API.

use std::time::{Duration, Instant};

use local_api::runtime::{Environment, Invoked, Outcome, Pool};
use local_api::template::Function;
use serde_json::{Value, json};

use crate::Error;
use crate::calls::{AUTHORIZER, Call, Fixtures, allows, authorizer_event, proxy_status};
use crate::measure::{cpu_ms, ms, percentile, spread, vm_hwm_kb};

/// What a measured subject is, for choosing its event and checking its answer.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Role {
    /// The empty function: any event, any answer.
    Floor,
    /// bench-baseline: get-profile's event; its answer must name the profile.
    Baseline,
    /// One of ours.
    Function,
}

pub(crate) struct Subject {
    pub(crate) label: String,
    pub(crate) function: Function,
    pub(crate) kind: Role,
    /// Makes the request to send instead of the function's usual one (fresh each time).
    pub(crate) call: Option<fn() -> Call>,
    /// Variables set over the runner's environment (another endpoint, a trust setting).
    pub(crate) env: Vec<(String, String)>,
}

/// The floor and the baseline as the runner runs a template's functions.
pub(crate) fn bench_function(binary: &str, env: Vec<(String, String)>) -> Function {
    Function {
        id: binary.into(),
        binary: binary.into(),
        timeout: Duration::from_secs(10),
        memory_mb: 128,
        env,
        log_format: None,
        log_level: None,
        reserved_concurrency: None,
        provisioned_concurrency: 0,
    }
}

/// What the bench knows to send, and the profile get-profile and the baseline read.
pub(crate) struct Setup<'a> {
    pub(crate) fixtures: &'a Fixtures,
    pub(crate) ids: &'a (String, String),
    pub(crate) environment: &'a Environment,
    pub(crate) dev_key: &'a str,
}

impl Setup<'_> {
    async fn event(&self, subject: &Subject) -> Result<Value, Error> {
        Ok(match subject.kind {
            _ if let Some(call) = subject.call => call().event()?,
            Role::Floor => json!({}),
            Role::Baseline => self.fixtures.call("get-profile", self.ids).await?.event()?,
            Role::Function if subject.function.binary == AUTHORIZER => {
                authorizer_event(self.dev_key)?
            }
            Role::Function => self
                .fixtures
                .call(&subject.function.binary, self.ids)
                .await?
                .event()?,
        })
    }

    /// A pool of one instance of `subject`'s function.
    fn pool(
        &self,
        subject: &Subject,
        binaries: &local_api::binaries::Binaries,
    ) -> Result<Pool, Error> {
        let function = &subject.function;
        let binary = binaries
            .get(&function.binary)
            .ok_or_else(|| format!("no binary {}", function.binary))?;
        // Later variables win: the subject's over the runner's.
        let mut environment = self.environment.clone();
        environment.vars.extend(subject.env.iter().cloned());
        Ok(Pool::new(function.clone(), binary.clone(), environment, 1))
    }

    /// Invokes `pool` with `subject`'s event; the invocation, checked, and how long it took.
    async fn invoke(&self, subject: &Subject, pool: &Pool) -> Result<(Invoked, Duration), Error> {
        let event = self.event(subject).await?.to_string().into_bytes();
        let started = Instant::now();
        let invoked = pool
            .invoke(uuid::Uuid::new_v4().to_string(), "Root=1-0-0".into(), event)
            .await;
        let took = started.elapsed();
        self.check(subject, &invoked)?;
        Ok((invoked, took))
    }

    /// An error unless `invoked` is the answer `subject` gives when it did its work.
    fn check(&self, subject: &Subject, invoked: &Invoked) -> Result<(), Error> {
        let ok = match (&invoked.outcome, subject.kind) {
            (Outcome::Response(_), Role::Floor) => true,
            (Outcome::Response(p), Role::Baseline) => {
                proxy_status(p) == 200 && String::from_utf8_lossy(p).contains(self.ids.0.as_str())
            }
            (Outcome::Response(p), Role::Function) if subject.function.binary == AUTHORIZER => {
                allows(p)
            }
            (Outcome::Response(p), Role::Function) => (200..300).contains(&proxy_status(p)),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{}: invocation failed: {:?}",
                subject.label, invoked.outcome
            )
            .into())
        }
    }
}

/// One subject's cold starts: init, exec → answered, and CPU used to the answer (ms).
pub(crate) struct Cold {
    pub(crate) label: String,
    pub(crate) kind: Role,
    pub(crate) inits: Vec<f64>,
    pub(crate) totals: Vec<f64>,
    pub(crate) cpus: Vec<f64>,
}

pub(crate) async fn cold_starts(
    setup: &Setup<'_>,
    subjects: &[Subject],
    binaries: &local_api::binaries::Binaries,
    runs: usize,
) -> Result<Vec<Cold>, Error> {
    let mut out = Vec::new();
    for subject in subjects {
        let mut cold = Cold {
            label: subject.label.clone(),
            kind: subject.kind,
            inits: Vec::new(),
            totals: Vec::new(),
            cpus: Vec::new(),
        };
        for _ in 0..runs {
            let pool = setup.pool(subject, binaries)?;
            let (invoked, total) = setup.invoke(subject, &pool).await?;
            // The instance now waits on `/next`: what it has used is what its first answer cost.
            let cpu = pool.idle_pids().first().and_then(|p| cpu_ms(*p));
            cold.totals.push(ms(total));
            cold.inits.push(invoked.cold.map_or(f64::NAN, ms));
            cold.cpus.push(cpu.unwrap_or(f64::NAN));
            pool.stop();
        }
        out.push(cold);
    }
    Ok(out)
}

pub(crate) fn print_cold(cold: &[Cold], runs: usize) {
    let median = |kind: Role, f: fn(&Cold) -> &Vec<f64>| {
        cold.iter()
            .find(|c| c.kind == kind)
            .map_or(f64::NAN, |c| spread(f(c)).0)
    };
    let floor = median(Role::Floor, |c| &c.totals);
    let floor_init = median(Role::Floor, |c| &c.inits);
    let baseline = median(Role::Baseline, |c| &c.totals);
    let baseline_cpu = median(Role::Baseline, |c| &c.cpus);
    println!(
        "### Cold start: exec → runtime ready (init) → first invocation answered, and the CPU time used to that answer ({runs} runs; median [min–max] ms)\n"
    );
    println!(
        "| function | init | init / floor's | exec → answered | CPU to answer | answered / floor | answered / baseline | CPU / baseline's |\n|---|---|---|---|---|---|---|---|"
    );
    for c in cold {
        let (im, imin, imax) = spread(&c.inits);
        let (tm, tmin, tmax) = spread(&c.totals);
        let (cm, cmin, cmax) = spread(&c.cpus);
        println!(
            "| {} | {im:.1} [{imin:.1}–{imax:.1}] | {:.2}× | {tm:.1} [{tmin:.1}–{tmax:.1}] | {cm:.1} [{cmin:.1}–{cmax:.1}] | {:.2}× | {:.2}× | {:.2}× |",
            c.label,
            im / floor_init,
            tm / floor,
            tm / baseline,
            cm / baseline_cpu,
        );
    }
}

/// One subject's cold starts split where init ends: the instance started and left to
/// finish init (its first `/next`), then invoked, then invoked warm. Times and CPU in ms.
pub(crate) struct Split {
    pub(crate) label: String,
    pub(crate) kind: Role,
    pub(crate) init: Vec<f64>,
    pub(crate) init_cpu: Vec<f64>,
    pub(crate) first: Vec<f64>,
    pub(crate) first_cpu: Vec<f64>,
    /// CPU per warm invocation, over [`WARM_AFTER`] invocations after the first.
    pub(crate) warm_cpu: Vec<f64>,
}

/// Warm invocations after each split cold start, for the CPU a warm request uses.
pub(crate) const WARM_AFTER: usize = 10;

pub(crate) async fn split_starts(
    setup: &Setup<'_>,
    subjects: &[Subject],
    binaries: &local_api::binaries::Binaries,
    runs: usize,
) -> Result<Vec<Split>, Error> {
    let mut out = Vec::new();
    for subject in subjects {
        let mut split = Split {
            label: subject.label.clone(),
            kind: subject.kind,
            init: Vec::new(),
            init_cpu: Vec::new(),
            first: Vec::new(),
            first_cpu: Vec::new(),
            warm_cpu: Vec::new(),
        };
        for _ in 0..runs {
            let pool = setup.pool(subject, binaries)?;
            let init = pool
                .prestart()
                .await
                .map_err(|e| format!("{}: init failed: {e}", subject.label))?;
            let pid = pool.idle_pids().first().copied();
            let cpu = || pid.and_then(cpu_ms).unwrap_or(f64::NAN);
            let at_init = cpu();
            let (_, first) = setup.invoke(subject, &pool).await?;
            let at_first = cpu();
            for _ in 0..WARM_AFTER {
                setup.invoke(subject, &pool).await?;
            }
            let at_warm = cpu();
            split.init.push(ms(init));
            split.init_cpu.push(at_init);
            split.first.push(ms(first));
            split.first_cpu.push(at_first - at_init);
            split
                .warm_cpu
                .push((at_warm - at_first) / WARM_AFTER as f64);
            pool.stop();
        }
        out.push(split);
    }
    Ok(out)
}

/// get-profile and the baseline each kept warm in one instance and invoked `n` times
/// directly (no HTTP, no authorizer): latency, CPU per invocation, and peak RSS after.
pub(crate) async fn warm_direct(
    setup: &Setup<'_>,
    subjects: &[Subject],
    binaries: &local_api::binaries::Binaries,
    n: usize,
) -> Result<(), Error> {
    println!(
        "\n### Warm, invoked directly through the Runtime API (no HTTP, no authorizer; {n} invocations, one warm instance each)\n"
    );
    println!(
        "| function | p50 ms | p99 ms | CPU per invocation µs | peak RSS MB |\n|---|---|---|---|---|"
    );
    for subject in subjects {
        let pool = setup.pool(subject, binaries)?;
        let mut samples = Vec::new();
        let mut cpu_from = None;
        for i in 0..n + 3 {
            let (_, took) = setup.invoke(subject, &pool).await?;
            if i == 2 {
                cpu_from = pool.idle_pids().first().and_then(|p| cpu_ms(*p));
            }
            if i >= 3 {
                samples.push(ms(took));
            }
        }
        let pid = pool.idle_pids().first().copied();
        let cpu_to = pid.and_then(cpu_ms);
        let per = match (cpu_from, cpu_to) {
            (Some(a), Some(b)) => format!("{:.0}", (b - a) * 1000.0 / n as f64),
            _ => "n/a".into(),
        };
        let rss = pid
            .and_then(vm_hwm_kb)
            .map_or("n/a".into(), |kb| format!("{:.1}", kb as f64 / 1024.0));
        println!(
            "| {} | {:.2} | {:.2} | {per} | {rss} |",
            subject.label,
            percentile(&samples, 50.0),
            percentile(&samples, 99.0)
        );
        pool.stop();
    }
    Ok(())
}
