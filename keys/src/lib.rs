//! The `keys` tool's library: [`cli`], its command line; [`gateway`], the API Gateway side of an API key (its usage
//! key in the stack's usage plan), which the tests also use to register keys they make.

pub mod cli;
pub mod gateway;
