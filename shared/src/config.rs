//! The one configuration loader: every setting a function reads from its environment.

/// The shortest cursor-signing key accepted.
pub const MIN_CURSOR_KEY: usize = 32;

/// A function's settings, read once at init.
#[derive(Clone, Debug)]
pub struct Config {
    /// `TABLE_NAME`: the DynamoDB table (set by the template).
    pub table_name: String,
    /// `AWS_REGION` (set by Lambda); `us-east-1` when absent, as for a local engine.
    pub region: String,
    /// `DYNAMODB_ENDPOINT`: a local engine's URL. Never set in production.
    pub dynamodb_endpoint: Option<String>,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`: the function's
    /// role credentials, which Lambda sets for the life of the execution environment.
    /// With a local engine and none set, placeholder credentials (the engine ignores them).
    pub credentials: StaticCredentials,
    /// `PROFILES_CURSOR_KEY`: signs list cursors (at least 32 characters; the template makes
    /// a random one in Secrets Manager and gives it to list-profiles only). With a local
    /// engine and none set, a fixed development key. Only listing needs it: see
    /// [`Config::cursor_key`].
    pub cursor_key: Option<Secret>,
}

#[derive(Clone, Debug)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// A secret string that never shows in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get`, so tests can give them without touching the environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let non_empty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let table_name =
            non_empty("TABLE_NAME").ok_or_else(|| ConfigError("TABLE_NAME is not set".into()))?;
        let dynamodb_endpoint = non_empty("DYNAMODB_ENDPOINT");
        let credentials = match (
            non_empty("AWS_ACCESS_KEY_ID"),
            non_empty("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Some(access_key_id), Some(secret)) => StaticCredentials {
                access_key_id,
                secret_access_key: Secret::new(secret),
                session_token: non_empty("AWS_SESSION_TOKEN").map(Secret::new),
            },
            _ if dynamodb_endpoint.is_some() => StaticCredentials {
                access_key_id: "local".into(),
                secret_access_key: Secret::new("local".into()),
                session_token: None,
            },
            _ => {
                return Err(ConfigError(
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them; \
                     locally, set DYNAMODB_ENDPOINT to use a local engine)"
                        .into(),
                ));
            }
        };
        let cursor_key = match non_empty("PROFILES_CURSOR_KEY") {
            Some(k) if k.len() >= MIN_CURSOR_KEY => Some(Secret::new(k)),
            Some(_) => {
                return Err(ConfigError(format!(
                    "PROFILES_CURSOR_KEY must have at least {MIN_CURSOR_KEY} characters"
                )));
            }
            None if dynamodb_endpoint.is_some() => Some(Secret::new(
                "local-development-cursor-key-not-secret".into(),
            )),
            None => None,
        };
        Ok(Self {
            table_name,
            credentials,
            cursor_key,
            dynamodb_endpoint,
            region: non_empty("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
        })
    }
}

impl Config {
    /// The cursor-signing key. Its absence is a deployment mistake (the template sets it for
    /// list-profiles), answered as a 500 with the cause in the log.
    pub fn cursor_key(&self) -> Result<&Secret, crate::error::ApiError> {
        self.cursor_key.as_ref().ok_or_else(|| {
            crate::error::ApiError::internal("configuration", "PROFILES_CURSOR_KEY is not set")
        })
    }
}
