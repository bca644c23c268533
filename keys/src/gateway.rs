//! The API Gateway side of an API key: its usage key as an API Gateway API key in the
//! stack's usage plan, without which API Gateway answers the key's every request with 403.
//! Registering and removing are idempotent (found by the API key's name first), so a run cut
//! short is finished by running it again. The same calls reach AWS or the local runner's
//! embedded API Gateway (`local-api`, its `apigateway-endpoint`).
//!
//! IAM: the template's `KeysOperatorPolicy` (`apigateway:GET` and `POST` on `/apikeys`,
//! `DELETE` on `/apikeys/*`, `POST` on `/usageplans/<id>/keys`, `DELETE` on its keys), which
//! `tests/api/policies.rs` proves against these calls.

use aws_sdk_apigateway::Client;
use aws_sdk_apigateway::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_apigateway::types::ApiKey;
use shared::config::Config;

/// The API Gateway API key name of an API key.
pub use shared::apikeys::gateway_key_name as key_name;

/// A usage plan, through the API Gateway endpoint that holds it.
pub struct Gateway {
    client: Client,
    plan: String,
}

/// What [`Gateway::register`] found and did.
#[derive(Debug, PartialEq, Eq)]
pub struct Registered {
    /// The API Gateway API key's id.
    pub api_key_id: String,
    /// Whether this call made the API key (`false`: it was there).
    pub created_key: bool,
    /// Whether this call put it in the plan (`false`: it was in).
    pub joined_plan: bool,
}

/// A failed API Gateway call, with the SDK's whole story.
#[derive(Debug)]
pub struct GatewayError(pub String);

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn failed<E, R>(what: &str, e: SdkError<E, R>) -> GatewayError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    GatewayError(format!("{what}: {}", DisplayErrorContext(&e)))
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

impl Gateway {
    /// The usage plan `plan` at `endpoint` (`None`: AWS's own, in the config's region), with
    /// the config's credentials and HTTPS client.
    pub fn new(config: &Config, endpoint: Option<&str>, plan: &str) -> Self {
        use aws_sdk_apigateway::config::{BehaviorVersion, Region};
        let mut builder = aws_sdk_apigateway::Config::builder()
            .http_client(shared::store::https_client_for(config, endpoint))
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(shared::store::credentials(config));
        if let Some(url) = endpoint {
            builder = builder.endpoint_url(url);
        }
        Self {
            client: Client::from_conf(builder.build()),
            plan: plan.to_owned(),
        }
    }

    /// The same gateway, its calls also seen by `interceptor` (the tests record them as IAM
    /// authorizes them).
    pub fn with_interceptor(
        self,
        interceptor: impl aws_sdk_apigateway::config::Intercept + 'static,
    ) -> Self {
        let config = self
            .client
            .config()
            .to_builder()
            .interceptor(interceptor)
            .build();
        Self {
            client: Client::from_conf(config),
            plan: self.plan,
        }
    }

    /// The API key named `name`, if there is one (with its value).
    async fn find(&self, name: &str) -> Result<Option<ApiKey>, GatewayError> {
        let mut position = None;
        loop {
            let page = self
                .client
                .get_api_keys()
                .name_query(name)
                .include_values(true)
                .set_position(position)
                .send()
                .await
                .map_err(|e| failed("GetApiKeys", e))?;
            // `nameQuery` matches a prefix: keep the exact name.
            if let Some(key) = page
                .items()
                .iter()
                .find(|k| k.name.as_deref() == Some(name))
            {
                return Ok(Some(key.clone()));
            }
            match page.position {
                Some(next) if !next.is_empty() => position = Some(next),
                _ => return Ok(None),
            }
        }
    }

    /// Makes `usage_key` an enabled API key named `name` (unless one is) and puts it in the
    /// plan (unless it is in).
    pub async fn register(&self, name: &str, usage_key: &str) -> Result<Registered, GatewayError> {
        let (id, created_key) = match self.find(name).await? {
            Some(key) => {
                if key.value.as_deref() != Some(usage_key) {
                    return Err(GatewayError(format!(
                        "API Gateway already has an API key named {name} with another value: \
                         remove it (aws apigateway delete-api-key --api-key {}) and run this again",
                        key.id.as_deref().unwrap_or("?")
                    )));
                }
                (key.id.unwrap_or_default(), false)
            }
            None => {
                let made = self
                    .client
                    .create_api_key()
                    .name(name)
                    .value(usage_key)
                    .enabled(true)
                    .description("a Profiles API key's usage key (the keys command)")
                    .send()
                    .await
                    .map_err(|e| failed("CreateApiKey", e))?;
                (made.id.unwrap_or_default(), true)
            }
        };
        if id.is_empty() {
            return Err(GatewayError(format!(
                "API Gateway gave API key {name} no id"
            )));
        }
        let joined = self
            .client
            .create_usage_plan_key()
            .usage_plan_id(&self.plan)
            .key_id(&id)
            .key_type("API_KEY")
            .send()
            .await;
        let joined_plan = match joined {
            Ok(_) => true,
            // Already a key of the plan.
            Err(e) if code(&e) == Some("ConflictException") => false,
            Err(e) => return Err(failed("CreateUsagePlanKey", e)),
        };
        Ok(Registered {
            api_key_id: id,
            created_key,
            joined_plan,
        })
    }

    /// Takes the API key named `name` out of the plan and deletes it: `false` when there was
    /// none.
    pub async fn unregister(&self, name: &str) -> Result<bool, GatewayError> {
        let Some(key) = self.find(name).await? else {
            return Ok(false);
        };
        let id = key.id.unwrap_or_default();
        match self
            .client
            .delete_usage_plan_key()
            .usage_plan_id(&self.plan)
            .key_id(&id)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if code(&e) == Some("NotFoundException") => {}
            Err(e) => return Err(failed("DeleteUsagePlanKey", e)),
        }
        match self.client.delete_api_key().api_key(&id).send().await {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some("NotFoundException") => Ok(true),
            Err(e) => Err(failed("DeleteApiKey", e)),
        }
    }

    /// The usage keys (values) in the plan.
    pub async fn plan_keys(&self) -> Result<Vec<String>, GatewayError> {
        let mut values = Vec::new();
        let mut position = None;
        loop {
            let page = self
                .client
                .get_usage_plan_keys()
                .usage_plan_id(&self.plan)
                .set_position(position)
                .send()
                .await
                .map_err(|e| failed("GetUsagePlanKeys", e))?;
            values.extend(page.items().iter().filter_map(|k| k.value.clone()));
            match page.position {
                Some(next) if !next.is_empty() => position = Some(next),
                _ => return Ok(values),
            }
        }
    }
}
