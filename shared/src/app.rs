//! What outlives an invocation: the configuration and the store, built once per execution
//! environment at init and shared by every request the process serves.

use crate::config::{Config, ConfigError};
use crate::idempotency::Clock;
use crate::store::Store;

#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub store: Store,
    /// What idempotency keys expire by (tests move it forward).
    pub clock: Clock,
}

impl App {
    pub fn new(config: Config) -> Self {
        let store = Store::from_config(&config);
        Self {
            config,
            store,
            clock: Clock::default(),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Config::from_env().map(Self::new)
    }
}
