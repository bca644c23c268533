//! What outlives an invocation: the configuration and the store, built once per execution
//! environment at init and shared by every request the process serves.

use crate::config::{Config, ConfigError};
use crate::store::Store;

#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub store: Store,
}

impl App {
    pub fn new(config: Config) -> Self {
        let store = Store::from_config(&config);
        Self { config, store }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Config::from_env().map(Self::new)
    }
}
