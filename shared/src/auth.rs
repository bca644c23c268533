//! Who is calling: the caller's tenant and principal. Until the authorizer lands, both come
//! from configuration; this module is the one place that will change when it does.

use std::fmt;

use crate::config::Config;

/// A tenant id: 1 to 128 characters of `[A-Za-z0-9_.-]`, so it can stand inside a key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TenantId(String);

impl TenantId {
    pub fn new(raw: &str) -> Result<Self, String> {
        let ok = (1..=128).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be 1 to 128 characters of A-Z, a-z, 0-9, _ . -".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The identity a request acts as.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant: TenantId,
    pub principal: String,
}

impl Caller {
    /// The caller of a request. Today: the configured tenant and principal.
    pub fn of(_request: &lambda_http::Request, config: &Config) -> Self {
        Self {
            tenant: config.tenant_id.clone(),
            principal: config.principal_id.clone(),
        }
    }
}
