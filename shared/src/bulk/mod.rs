//! Bulk jobs' work (run-jobs): the jobs bucket's one key scheme, and what a worker does
//! with each object S3 reports there. An import's file (`imports/…/file`) starts its import;
//! a wake object (`wake/…`) starts an export, or goes on with a job where the last worker
//! checkpointed it. The import is [`import`], the export [`export`]; the job item is
//! `crate::model::job`.

pub mod export;
pub mod import;

use std::time::{Duration, SystemTime};

use aws_lambda_events::event::s3::S3Event;

use crate::app::App;
use crate::budget::time_left;
use crate::config::ConfigError;
use crate::ids::{JobId, TenantId};
use crate::model::Timestamp;
use crate::model::job::{Job, JobKind, Status};
use crate::store::{Bucket, StoreError};

/// How long a download URL (an export, an import's error report) stays usable.
pub const DOWNLOAD_TTL: Duration = Duration::from_secs(15 * 60);

/// The media type of every JSONL file the jobs read and write.
pub const JSONL: &str = "application/x-ndjson";

/// How long before its deadline a worker stops taking more work, checkpoints and hands the
/// rest to a fresh invocation: a chunk of lines and a checkpoint take far less.
pub const RESERVE: Duration = Duration::from_secs(20);

/// The jobs bucket's keys of one job of one tenant.
pub struct Keys<'a> {
    pub tenant: &'a TenantId,
    pub job: &'a JobId,
}

impl Keys<'_> {
    /// An import's file, as uploaded: the object whose creation starts the import.
    pub fn file(&self) -> String {
        format!("imports/{}/{}/file", self.tenant, self.job)
    }

    /// The bad lines of the chunk that starts at `line`, while the import runs.
    pub fn chunk_errors(&self, line: u64) -> String {
        format!("{}{line:012}.jsonl", self.chunk_errors_prefix())
    }

    pub fn chunk_errors_prefix(&self) -> String {
        format!("imports/{}/{}/errors/", self.tenant, self.job)
    }

    /// An import's error report: every bad line, in line order.
    pub fn report(&self) -> String {
        format!("imports/{}/{}/errors.jsonl", self.tenant, self.job)
    }

    /// An export's file.
    pub fn export(&self) -> String {
        format!("exports/{}/{}.jsonl", self.tenant, self.job)
    }

    /// A new wake object: its creation starts a worker on the job.
    pub fn wake(&self) -> String {
        format!("wake/{}/{}/{}", self.tenant, self.job, uuid::Uuid::now_v7())
    }
}

/// The job an object S3 reported is for, if its key is one that starts a worker: exactly
/// the shapes [`Keys::file`] and [`Keys::wake`] make.
pub fn job_of(key: &str) -> Option<(TenantId, JobId)> {
    let parts: Vec<&str> = key.split('/').collect();
    let (tenant, raw) = match parts.as_slice() {
        ["imports", tenant, job, "file"] | ["wake", tenant, job, _] => (*tenant, *job),
        _ => return None,
    };
    let tenant = TenantId::new(tenant).ok()?;
    let job = JobId::parse(raw)?;
    // Only the canonical spelling (lower-case hyphenated ids) is ours.
    (job.to_string() == raw).then_some((tenant, job))
}

/// Why a worker stopped short of an outcome. Lambda retries the invocation (S3 invokes
/// asynchronously), and the job goes on from its last checkpoint.
#[derive(Debug)]
pub enum WorkError {
    /// A setting the deployment should give (the jobs bucket): our mistake.
    Config(ConfigError),
    /// S3 or DynamoDB: an outage that outlasted the invocation, or a failure.
    Store(StoreError),
}

impl WorkError {
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Store(StoreError::Unavailable { .. }))
    }
}

impl From<ConfigError> for WorkError {
    fn from(err: ConfigError) -> Self {
        Self::Config(err)
    }
}

impl From<StoreError> for WorkError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl std::fmt::Display for WorkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(e) => e.fmt(f),
            Self::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for WorkError {}

/// Where a worker left a job.
#[derive(Debug, PartialEq, Eq)]
pub enum Worked {
    /// Completed or failed (now, or before this event came).
    Done,
    /// Checkpointed, with a wake object written for a fresh invocation to go on.
    Continued,
    /// Another worker saved the job first: it goes on, this one stops.
    Lost,
    /// No such job (its item expired, or the key is no job's).
    NoJob,
}

/// The time a worker has: until `deadline`, less [`RESERVE`].
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub deadline: SystemTime,
}

impl Budget {
    /// Whether the worker should checkpoint and hand over now.
    pub fn running_low(&self) -> bool {
        time_left(self.deadline, SystemTime::now()) < RESERVE
    }
}

/// run-jobs: every record of an S3 event, in order.
pub async fn run_jobs(app: &App, event: S3Event, budget: Budget) -> Result<Vec<Worked>, WorkError> {
    let mut out = Vec::new();
    for record in event.records {
        let Some(key) = record.s3.object.key else {
            continue;
        };
        out.push(work(app, &key, budget).await?);
    }
    Ok(out)
}

/// A worker on the job the object `key` is for.
pub async fn work(app: &App, key: &str, budget: Budget) -> Result<Worked, WorkError> {
    let Some((tenant, id)) = job_of(key) else {
        tracing::warn!(key, "an object no job starts on: left alone");
        return Ok(Worked::NoJob);
    };
    let bucket = app.jobs_bucket()?;
    let Some(job) = app.store.job(&tenant, &id).await? else {
        tracing::warn!(key, "no such job (expired?): nothing to do");
        return Ok(Worked::NoJob);
    };
    if job.is_done() {
        return Ok(Worked::Done);
    }
    let worker = Worker {
        app,
        bucket,
        tenant: &tenant,
        budget,
    };
    let worked = match job.kind {
        JobKind::Import { .. } => import::run(&worker, job).await?,
        JobKind::Export { .. } => export::run(&worker, job).await?,
    };
    Ok(worked)
}

/// What a worker works with.
pub struct Worker<'a> {
    pub app: &'a App,
    pub bucket: &'a Bucket,
    pub tenant: &'a TenantId,
    pub budget: Budget,
}

impl Worker<'_> {
    fn keys<'k>(&'k self, job: &'k Job) -> Keys<'k> {
        Keys {
            tenant: self.tenant,
            job: &job.id,
        }
    }

    /// Saves `job`; `None` when another worker saved it first.
    async fn save(&self, job: &Job) -> Result<Option<Job>, StoreError> {
        match self.app.store.save_job(self.tenant, job).await {
            Ok(saved) => Ok(Some(saved)),
            // Or this very save, committed but its answer lost (the SDK's retry then met its
            // condition): the job as it reads now tells which.
            Err(StoreError::VersionChanged) => {
                let mine = Job {
                    version: job.version + 1,
                    ..job.clone()
                };
                let now = self.app.store.job(self.tenant, &job.id).await?;
                Ok(now.filter(|now| *now == mine))
            }
            Err(e) => Err(e),
        }
    }

    /// Marks a queued job processing (and started now); `None` when another worker did.
    async fn start(&self, mut job: Job) -> Result<Option<Job>, StoreError> {
        if job.status == Status::Queued {
            job.status = Status::Processing;
            job.started_at = Some(Timestamp::now());
            return self.save(&job).await;
        }
        Ok(Some(job))
    }

    /// Ends `job` as `status` (with `failure`, when failed).
    async fn finish(
        &self,
        mut job: Job,
        status: Status,
        failure: Option<String>,
    ) -> Result<Worked, StoreError> {
        job.status = status;
        job.failure = failure;
        job.finished_at = Some(Timestamp::now());
        Ok(match self.save(&job).await? {
            Some(_) => Worked::Done,
            None => Worked::Lost,
        })
    }

    /// Hands the job to a fresh invocation: a wake object, whose event starts it.
    async fn hand_over(&self, job: &Job) -> Result<Worked, StoreError> {
        let key = self.keys(job).wake();
        self.bucket
            .put(&key, Vec::new(), "application/octet-stream", "no-store")
            .await?;
        Ok(Worked::Continued)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn a_job_is_read_back_from_its_file_and_wake_keys_only_in_their_own_spelling() {
        let tenant = TenantId::new("acme").unwrap();
        let job = JobId::generate();
        let keys = Keys {
            tenant: &tenant,
            job: &job,
        };
        assert_eq!(job_of(&keys.file()), Some((tenant.clone(), job)));
        assert_eq!(job_of(&keys.wake()), Some((tenant.clone(), job)));
        for other in [
            keys.report(),
            keys.export(),
            keys.chunk_errors(1),
            keys.file().to_uppercase(),
            format!("{}/x", keys.file()),
            keys.file().replacen("imports/", "uploads/", 1),
        ] {
            assert_eq!(job_of(&other), None, "{other}");
        }
    }
}
