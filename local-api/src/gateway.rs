//! The embedded API Gateway's API keys and usage plan keys: what decides, as in API Gateway,
//! whether a request's usage key may pass (an enabled API key with that value, in a usage
//! plan of the API), and the part of API Gateway's management API that the `keys` command
//! calls through aws-sdk-apigateway (`CreateApiKey`, `GetApiKeys`, `DeleteApiKey`,
//! `CreateUsagePlanKey`, `GetUsagePlanKeys`, `DeleteUsagePlanKey`), on its own port as an
//! AWS endpoint is. The template's own keys (`AWS::ApiGateway::ApiKey` with
//! `UsagePlanKey`s) are there from the start. Kept in `apigateway.json` in the state
//! directory when the data is kept.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::template::{Error, TemplateApiKey};

/// An API key as API Gateway keeps it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub value: String,
    pub enabled: bool,
    #[serde(default)]
    pub description: String,
    /// Seconds since the epoch.
    pub created: i64,
}

#[derive(Default, Serialize, Deserialize)]
struct State_ {
    /// By id.
    keys: BTreeMap<String, ApiKey>,
    /// (usage plan id, API key id).
    plan_keys: BTreeSet<(String, String)>,
}

/// The API keys and usage plan keys, with the plans that exist.
pub struct Registry {
    state: Mutex<State_>,
    plans: BTreeSet<String>,
    file: Option<PathBuf>,
}

/// A refusal of the management API: API Gateway's error type and message.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl Refusal {
    fn not_found(message: String) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: "NotFoundException",
            message,
        }
    }
    fn conflict(message: String) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            kind: "ConflictException",
            message,
        }
    }
    fn bad(message: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "BadRequestException",
            message,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(json!({ "message": self.message }))).into_response();
        r.headers_mut().insert(
            "x-amzn-errortype",
            axum::http::HeaderValue::from_static(self.kind),
        );
        r
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// API Gateway's ids: 10 lower-case letters and digits.
fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

impl Registry {
    /// The registry of `plans` from `file` (when given and there), with the template's own
    /// keys made and put in their plans.
    pub fn load(
        file: Option<PathBuf>,
        plans: BTreeSet<String>,
        template_keys: &[TemplateApiKey],
    ) -> Result<Self, Error> {
        let mut state = match file.as_ref().map(std::fs::read_to_string) {
            Some(Ok(text)) => serde_json::from_str(&text).map_err(|e| {
                let path = file.as_deref().unwrap_or(std::path::Path::new(
                    shared::localstate::APIGATEWAY_REGISTRY,
                ));
                format!("{}: {e}", path.display())
            })?,
            _ => State_::default(),
        };
        for k in template_keys {
            // The template decides its own keys: its value and state win over a kept copy.
            state.keys.insert(
                k.id.clone(),
                ApiKey {
                    id: k.id.clone(),
                    name: k.name.clone(),
                    value: k.value.clone(),
                    enabled: k.enabled,
                    description: "from the template".into(),
                    created: now(),
                },
            );
            for plan in &k.plans {
                if plans.contains(plan) {
                    state.plan_keys.insert((plan.clone(), k.id.clone()));
                }
            }
        }
        let registry = Self {
            state: Mutex::new(state),
            plans,
            file,
        };
        registry.save()?;
        Ok(registry)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        // Plain data: a panic elsewhere while holding the lock leaves it usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn save(&self) -> Result<(), Error> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let text = serde_json::to_string_pretty(&*self.lock())?;
        crate::devkey::write_private(file, &text)
    }

    /// The plan among `plans` that `usage_key` may pass on: an enabled API key with that
    /// value, a key of the plan. `None`: API Gateway's 403 (`INVALID_API_KEY`).
    pub fn plan_of(&self, usage_key: &str, plans: &[String]) -> Option<String> {
        let state = self.lock();
        let keys: Vec<&ApiKey> = state
            .keys
            .values()
            .filter(|k| k.enabled && k.value == usage_key)
            .collect();
        plans
            .iter()
            .find(|plan| {
                keys.iter()
                    .any(|k| state.plan_keys.contains(&((*plan).clone(), k.id.clone())))
            })
            .cloned()
    }

    /// An enabled API key named `name` with `value`, in `plan`: made or put there when it is
    /// not (the runner's own development key).
    pub fn ensure(&self, plan: &str, name: &str, value: &str) -> Result<(), Error> {
        let existing = self
            .lock()
            .keys
            .values()
            .find(|k| k.value == value)
            .map(|k| k.id.clone());
        let id = match existing {
            Some(id) => id,
            None => {
                self.create_key(name, value, true, "the local runner's development key")
                    .map_err(|r| r.message)?
                    .id
            }
        };
        match self.join(plan, &id) {
            Ok(_) => Ok(()),
            Err(r) if r.status == StatusCode::CONFLICT => Ok(()),
            Err(r) => Err(r.message.into()),
        }
    }

    /// `CreateApiKey`. A value another key has is a conflict.
    pub fn create_key(
        &self,
        name: &str,
        value: &str,
        enabled: bool,
        description: &str,
    ) -> Result<ApiKey, Refusal> {
        if !(20..=128).contains(&value.len()) {
            return Err(Refusal::bad(
                "API Key value should be at least 20 characters and at most 128".into(),
            ));
        }
        let key = {
            let mut state = self.lock();
            if state.keys.values().any(|k| k.value == value) {
                return Err(Refusal::conflict("API Key already exists".into()));
            }
            let key = ApiKey {
                id: new_id(),
                name: name.to_owned(),
                value: value.to_owned(),
                enabled,
                description: description.to_owned(),
                created: now(),
            };
            state.keys.insert(key.id.clone(), key.clone());
            key
        };
        self.save().map_err(|e| Refusal::bad(e.to_string()))?;
        Ok(key)
    }

    /// `DeleteApiKey`: also out of every plan.
    pub fn delete_key(&self, id: &str) -> Result<(), Refusal> {
        {
            let mut state = self.lock();
            if state.keys.remove(id).is_none() {
                return Err(Refusal::not_found(
                    "Invalid API Key identifier specified".into(),
                ));
            }
            state.plan_keys.retain(|(_, k)| k != id);
        }
        self.save().map_err(|e| Refusal::bad(e.to_string()))
    }

    /// `CreateUsagePlanKey`.
    pub fn join(&self, plan: &str, key_id: &str) -> Result<ApiKey, Refusal> {
        if !self.plans.contains(plan) {
            return Err(Refusal::not_found(format!(
                "Invalid Usage Plan ID specified: {plan}"
            )));
        }
        let key = {
            let mut state = self.lock();
            let Some(key) = state.keys.get(key_id).cloned() else {
                return Err(Refusal::not_found(
                    "Invalid API Key identifier specified".into(),
                ));
            };
            if !state.plan_keys.insert((plan.to_owned(), key_id.to_owned())) {
                return Err(Refusal::conflict("Usage Plan Key already exists".into()));
            }
            key
        };
        self.save().map_err(|e| Refusal::bad(e.to_string()))?;
        Ok(key)
    }

    /// `DeleteUsagePlanKey`.
    pub fn leave(&self, plan: &str, key_id: &str) -> Result<(), Refusal> {
        if !self
            .lock()
            .plan_keys
            .remove(&(plan.to_owned(), key_id.to_owned()))
        {
            return Err(Refusal::not_found(
                "Invalid Usage Plan Key specified".into(),
            ));
        }
        self.save().map_err(|e| Refusal::bad(e.to_string()))
    }

    /// The keys of `plan`.
    pub fn plan_keys(&self, plan: &str) -> Result<Vec<ApiKey>, Refusal> {
        if !self.plans.contains(plan) {
            return Err(Refusal::not_found(format!(
                "Invalid Usage Plan ID specified: {plan}"
            )));
        }
        let state = self.lock();
        Ok(state
            .plan_keys
            .iter()
            .filter(|(p, _)| p == plan)
            .filter_map(|(_, k)| state.keys.get(k).cloned())
            .collect())
    }

    /// Every API key whose name starts with `name` (API Gateway's `nameQuery`).
    pub fn keys_named(&self, name: Option<&str>) -> Vec<ApiKey> {
        self.lock()
            .keys
            .values()
            .filter(|k| name.is_none_or(|n| k.name.starts_with(n)))
            .cloned()
            .collect()
    }
}

fn key_json(k: &ApiKey, with_value: bool) -> Value {
    let mut v = json!({
        "id": k.id, "name": k.name, "enabled": k.enabled, "description": k.description,
        "createdDate": k.created, "lastUpdatedDate": k.created, "stageKeys": [],
    });
    if with_value {
        v["value"] = json!(k.value);
    }
    v
}

fn plan_key_json(k: &ApiKey) -> Value {
    json!({ "id": k.id, "type": "API_KEY", "name": k.name, "value": k.value })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewKey {
    name: Option<String>,
    value: Option<String>,
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewPlanKey {
    key_id: String,
    key_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeysQuery {
    name: Option<String>,
    include_values: Option<bool>,
}

type Shared = State<Arc<Registry>>;

/// The management API's routes.
pub fn router(registry: Arc<Registry>) -> axum::Router {
    axum::Router::new()
        .route(
            "/apikeys",
            get(|State(r): Shared, Query(q): Query<KeysQuery>| async move {
                let with_values = q.include_values.unwrap_or(false);
                let items: Vec<Value> = r
                    .keys_named(q.name.as_deref())
                    .iter()
                    .map(|k| key_json(k, with_values))
                    .collect();
                Json(json!({ "item": items }))
            })
            .post(|State(r): Shared, Json(body): Json<NewKey>| async move {
                let value = body.value.unwrap_or_else(|| format!("{}{}", new_id(), new_id()));
                let name = body.name.unwrap_or_default();
                r.create_key(&name, &value, body.enabled, &body.description)
                    .map(|k| (StatusCode::CREATED, Json(key_json(&k, true))))
            }),
        )
        .route(
            "/apikeys/{id}",
            delete(|State(r): Shared, Path(id): Path<String>| async move {
                r.delete_key(&id).map(|()| StatusCode::ACCEPTED)
            }),
        )
        .route(
            "/usageplans/{plan}/keys",
            get(|State(r): Shared, Path(plan): Path<String>| async move {
                r.plan_keys(&plan).map(|keys| {
                    Json(json!({ "item": keys.iter().map(plan_key_json).collect::<Vec<_>>() }))
                })
            })
            .post(
                |State(r): Shared, Path(plan): Path<String>, Json(body): Json<NewPlanKey>| async move {
                    if body.key_type != "API_KEY" {
                        return Err(Refusal::bad(format!("keyType {} is not API_KEY", body.key_type)));
                    }
                    r.join(&plan, &body.key_id)
                        .map(|k| (StatusCode::CREATED, Json(plan_key_json(&k))))
                },
            ),
        )
        .route(
            "/usageplans/{plan}/keys/{key}",
            delete(
                |State(r): Shared, Path((plan, key)): Path<(String, String)>| async move {
                    r.leave(&plan, &key).map(|()| StatusCode::ACCEPTED)
                },
            ),
        )
        .with_state(registry)
}

/// Serves the management API on `listener` until the task is aborted.
pub fn serve(
    registry: Arc<Registry>,
    listener: tokio::net::TcpListener,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(registry)).await {
            tracing::error!("embedded API Gateway stopped: {e}");
        }
    })
}

/// The runner's API Gateway as a component: the registry of API keys and usage plan keys
/// (the template's, the development key's, what `keys --local` registered), its management
/// endpoint, and the files naming that endpoint and the usage plan keys join.
pub struct ApiGateway {
    pub registry: Arc<Registry>,
    /// The management endpoint (`keys --local` calls it).
    pub endpoint: String,
    /// The usage plan API keys join (the template's `UsagePlanId` output), if any.
    pub usage_plan: Option<String>,
    endpoint_file: Option<PathBuf>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiGateway {
    /// Loads the registry (kept in `key_dir` when the data is), puts the development key's
    /// usage key in the plan keys join, serves the management API on 127.0.0.1:`port` (0: a
    /// free one) and writes its URL and the plan's id to `state_dir`.
    pub async fn start(
        template: &crate::template::Template,
        apis: &std::collections::HashMap<String, crate::template::Api>,
        dev_key: &shared::apikeys::ApiKeyRecord,
        key_dir: Option<&std::path::Path>,
        state_dir: Option<&std::path::Path>,
        port: u16,
    ) -> Result<Self, Error> {
        use shared::localstate;
        let plans: BTreeSet<String> = apis
            .values()
            .flat_map(|a| a.plans.iter().map(|p| p.id.clone()))
            .collect();
        let file = key_dir.map(|d| d.join(localstate::APIGATEWAY_REGISTRY));
        let registry = Arc::new(Registry::load(file, plans, &template.api_keys()?)?);
        let usage_plan = template.key_plan()?;
        if let Some(plan) = &usage_plan {
            let name = shared::apikeys::gateway_key_name(&dev_key.key_id);
            registry.ensure(plan, &name, &dev_key.usage_key)?;
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let task = serve(registry.clone(), listener);
        let endpoint_file = state_dir.map(|d| d.join(localstate::APIGATEWAY_ENDPOINT));
        if let (Some(dir), Some(file)) = (state_dir, &endpoint_file) {
            std::fs::create_dir_all(dir)?;
            std::fs::write(file, format!("{endpoint}\n"))?;
            let plan_file = dir.join(localstate::USAGE_PLAN_ID);
            match &usage_plan {
                Some(plan) => std::fs::write(plan_file, format!("{plan}\n"))?,
                None => {
                    let _ = std::fs::remove_file(plan_file);
                }
            }
        }
        Ok(Self {
            registry,
            endpoint,
            usage_plan,
            endpoint_file,
            task,
        })
    }

    /// Stops the management API and removes the file naming it (unless another runner
    /// wrote its own since).
    pub fn stop(&self) {
        self.task.abort();
        if let Some(file) = &self.endpoint_file
            && std::fs::read_to_string(file).is_ok_and(|url| url.trim() == self.endpoint)
        {
            let _ = std::fs::remove_file(file);
        }
    }
}
