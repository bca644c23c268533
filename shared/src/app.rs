//! What outlives an invocation: the configuration and the store, built once per execution
//! environment at init and shared by every request the process serves.

use std::sync::OnceLock;

use crate::config::{Config, ConfigError};
use crate::idempotency::Clock;
use crate::store::{Bucket, Store};

#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub store: Store,
    /// What idempotency keys expire by (tests move it forward).
    pub clock: Clock,
    /// The photo bucket's client, made on first use: only the functions that touch photos
    /// pay for it, and only when they do.
    bucket: OnceLock<Bucket>,
    /// The jobs bucket's client, made on first use (the job functions' only).
    jobs_bucket: OnceLock<Bucket>,
}

impl App {
    pub fn new(config: Config) -> Self {
        let store = Store::from_config(&config);
        Self::with_store(config, store)
    }

    /// An App on a store built elsewhere (tests count its operations).
    pub fn with_store(config: Config, store: Store) -> Self {
        Self {
            config,
            store,
            clock: Clock::default(),
            bucket: OnceLock::new(),
            jobs_bucket: OnceLock::new(),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Config::from_env().map(Self::new)
    }

    /// The same App on `bucket`'s client (tests record its calls).
    pub fn with_bucket(self, bucket: Bucket) -> Self {
        let _ = self.bucket.set(bucket);
        self
    }

    /// The same App on `bucket`'s client as its jobs bucket (tests record its calls).
    pub fn with_jobs_bucket(self, bucket: Bucket) -> Self {
        let _ = self.jobs_bucket.set(bucket);
        self
    }

    /// The photo bucket (`PHOTO_BUCKET`; unset, an error naming it).
    pub fn bucket(&self) -> Result<&Bucket, ConfigError> {
        let name = self.config.photo_bucket()?;
        Ok(self.bucket.get_or_init(|| Bucket::new(&self.config, name)))
    }

    /// The bucket of bulk imports and exports (`JOBS_BUCKET`; unset, an error naming it).
    pub fn jobs_bucket(&self) -> Result<&Bucket, ConfigError> {
        let name = self.config.jobs_bucket()?;
        Ok(self
            .jobs_bucket
            .get_or_init(|| Bucket::new(&self.config, name)))
    }
}
