//! The Profiles API's common crate: everything the Lambda functions share.

pub mod apikeys;
pub mod app;
pub mod auth;
pub mod authorizer;
pub mod config;
pub mod error;
pub mod handlers;
pub mod http;
pub mod lambda;
pub mod listing;
pub mod model;
pub mod store;
pub mod validate;
