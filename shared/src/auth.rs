//! What a caller may do, as data: the scopes a route requires, and an API key's record (who
//! the caller is: `crate::ids`). The edge reads a request's caller from the authorizer's context
//! (`edge::caller`).

use std::fmt;

use crate::ids::{PrincipalId, TenantId};
use crate::model::Timestamp;

/// The error message by which a Lambda authorizer refuses a credential: API Gateway answers
/// a function error with exactly this message with 401 (`UNAUTHORIZED`), any other with its
/// `AUTHORIZER_FAILURE`. The authorizer says it; the local runner, as API Gateway, reads it.
pub const AUTHORIZER_REFUSAL: &str = "Unauthorized";

/// A permission a route requires (the contract's route table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Create,
    Read,
    Lists,
    Update,
    Delete,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::Create,
        Scope::Read,
        Scope::Lists,
        Scope::Update,
        Scope::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Create => "profiles.create",
            Scope::Read => "profiles.read",
            Scope::Lists => "profiles.lists",
            Scope::Update => "profiles.update",
            Scope::Delete => "profiles.delete",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Scope`]s.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Self {
        Self::ALL_SCOPES
    }

    const ALL_SCOPES: Scopes = Scopes(0b1_1111);

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn with(self, scope: Scope) -> Self {
        Self(self.0 | scope.bit())
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// Space-separated names (OAuth's `scope` form); names that are not ours are ignored,
    /// so a token may carry other services' scopes.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        names
            .into_iter()
            .filter_map(Scope::parse)
            .fold(Self::default(), Self::with)
    }

    /// Parses a space- or comma-separated list strictly: an unknown name is an error naming it.
    pub fn parse_strict(raw: &str) -> Result<Self, String> {
        raw.split([' ', ','])
            .filter(|s| !s.is_empty())
            .try_fold(Self::default(), |acc, name| match Scope::parse(name) {
                Some(s) => Ok(acc.with(s)),
                None => Err(format!(
                    "unknown scope {name:?}; scopes are {}",
                    Self::all()
                )),
            })
    }
}

impl fmt::Display for Scopes {
    /// Space-separated, in the contract's order: the form the authorizer's context carries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

/// An API key's record: everything about a key but the key (`crate::apikeys` makes keys,
/// the store keeps their records).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// A short random id (16 hex digits), shown in lists and used to revoke; not secret.
    pub key_id: String,
    pub tenant: TenantId,
    pub principal: PrincipalId,
    pub scopes: Scopes,
    /// An optional label (who or what the key is for).
    pub name: Option<String>,
    pub created_at: Timestamp,
    pub revoked: bool,
    pub revoked_at: Option<Timestamp>,
    /// The key's identifier in API Gateway's usage plan (`usageIdentifierKey`): requests are
    /// throttled per usage key. Not secret: callers cannot present it, the authorizer names it.
    pub usage_key: String,
}
