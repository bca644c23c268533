//! The Lambda authorizer step, as API Gateway runs it between route matching and the
//! integration: identity sources checked, the authorizer function invoked with its REQUEST
//! (or TOKEN) event, its answer validated, its policy evaluated against the method ARN,
//! and the answer cached per identity-source values for `ReauthorizeEvery`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::responses::ResponseType;
use crate::runtime::{Outcome, Pool};
use crate::template::{Authorizer, MAX_INTEGRATION_TIMEOUT, Payload};

/// One statement of an authorizer's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub allow: bool,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

/// A valid authorizer answer: what API Gateway caches.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub principal_id: String,
    pub statements: Vec<Statement>,
    /// `context`, every value as text (API Gateway stringifies them).
    pub context: Map<String, Value>,
    /// `usageIdentifierKey`.
    pub usage_key: Option<String>,
}

/// An allowed request: what the proxy event's `requestContext` gets.
#[derive(Clone, Debug)]
pub struct Allowed {
    pub answer: Answer,
    /// How long the authorizer took (`integrationLatency`); zero for a cached answer.
    pub latency: Duration,
}

impl Allowed {
    /// `requestContext.authorizer` of a REST proxy event: `principalId`, the context's
    /// members, `integrationLatency` in ms.
    pub fn request_context(&self) -> Value {
        let mut out = Map::new();
        out.insert("principalId".into(), json!(self.answer.principal_id));
        for (k, v) in &self.answer.context {
            out.insert(k.clone(), v.clone());
        }
        out.insert(
            "integrationLatency".into(),
            json!(self.latency.as_millis() as u64),
        );
        Value::Object(out)
    }
}

/// Whether `text` matches an IAM pattern: `*` any run of characters, `?` any one.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// How a policy decides on a method ARN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// A Deny statement matched: it wins over any Allow.
    ExplicitDeny,
    /// No statement allows it.
    NotAllowed,
}

/// Evaluates `statements` for `execute-api:Invoke` on `method_arn`, as IAM does: an
/// explicit Deny wins, else an Allow allows, else it is denied. Actions match without
/// regard to case, resources with it.
pub fn evaluate(statements: &[Statement], method_arn: &str) -> Verdict {
    let applies = |s: &Statement| {
        s.actions
            .iter()
            .any(|a| wildcard_match(&a.to_ascii_lowercase(), "execute-api:invoke"))
            && s.resources.iter().any(|r| wildcard_match(r, method_arn))
    };
    let matching: Vec<&Statement> = statements.iter().filter(|s| applies(s)).collect();
    if matching.iter().any(|s| !s.allow) {
        Verdict::ExplicitDeny
    } else if matching.iter().any(|s| s.allow) {
        Verdict::Allow
    } else {
        Verdict::NotAllowed
    }
}

/// One string or a list of strings (IAM's `Action`, `Resource`).
fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

/// An authorizer's response payload, validated as API Gateway does; `Err` says what is
/// wrong (API Gateway's AUTHORIZER_CONFIGURATION_ERROR).
pub fn parse_answer(payload: &[u8]) -> Result<Answer, String> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let principal_id = v["principalId"]
        .as_str()
        .ok_or("no principalId string")?
        .to_owned();
    let doc = &v["policyDocument"];
    if !doc.is_object() {
        return Err("no policyDocument object".into());
    }
    let statements = match &doc["Statement"] {
        Value::Array(items) => items.iter().collect(),
        one @ Value::Object(_) => vec![one],
        _ => return Err("policyDocument has no Statement".into()),
    };
    let statements = statements
        .into_iter()
        .map(|s| {
            let allow = match s["Effect"].as_str() {
                Some("Allow") => true,
                Some("Deny") => false,
                _ => return Err("a statement's Effect is neither Allow nor Deny".to_owned()),
            };
            let actions = strings(&s["Action"]).ok_or("a statement has no Action")?;
            let resources = strings(&s["Resource"]).ok_or("a statement has no Resource")?;
            Ok(Statement {
                allow,
                actions,
                resources,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut context = Map::new();
    match &v["context"] {
        Value::Null => {}
        Value::Object(members) => {
            for (k, value) in members {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => continue,
                    _ => return Err(format!("context.{k} is an object or array")),
                };
                context.insert(k.clone(), Value::String(text));
            }
        }
        _ => return Err("context is not an object".into()),
    }
    let usage_key = match &v["usageIdentifierKey"] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        _ => return Err("usageIdentifierKey is not a string".into()),
    };
    Ok(Answer {
        principal_id,
        statements,
        context,
        usage_key,
    })
}

/// A header's value in a REST event, whatever its case.
fn header<'e>(event: &'e Value, name: &str) -> Option<&'e str> {
    event["headers"]
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

/// The identity-source values of a request, in declaration order; `Ok(None)` when the
/// authorizer declares none (nothing to check, nothing to cache on), `Err` when one is
/// missing or empty (API Gateway answers 401 without invoking the authorizer).
pub fn identity(authorizer: &Authorizer, event: &Value) -> Result<Option<Vec<String>>, String> {
    let mut values = Vec::new();
    let mut take = |what: String, v: Option<&str>| match v {
        Some(v) if !v.is_empty() => {
            values.push(v.to_owned());
            Ok(())
        }
        _ => Err(format!("identity source {what} is missing")),
    };
    match &authorizer.payload {
        Payload::Token { header: name } => take(format!("header {name}"), header(event, name))?,
        Payload::Request {
            headers,
            query_strings,
            stage_variables,
            context,
        } => {
            if headers.is_empty()
                && query_strings.is_empty()
                && stage_variables.is_empty()
                && context.is_empty()
            {
                return Ok(None);
            }
            for name in headers {
                take(format!("header {name}"), header(event, name))?;
            }
            for name in query_strings {
                let v = event["queryStringParameters"][name.as_str()].as_str();
                take(format!("query string {name}"), v)?;
            }
            for name in stage_variables {
                let v = event["stageVariables"][name.as_str()].as_str();
                take(format!("stage variable {name}"), v)?;
            }
            for name in context {
                let mut v = &event["requestContext"];
                for part in name.split('.') {
                    v = &v[part];
                }
                let text = match v {
                    Value::Number(n) => Some(n.to_string()),
                    other => other.as_str().map(str::to_owned),
                };
                take(format!("context {name}"), text.as_deref())?;
            }
        }
    }
    Ok(Some(values))
}

/// The event the authorizer receives: for REQUEST, the proxy event without its body, with
/// `type` and `methodArn`; for TOKEN, the token and the method ARN.
pub fn event(authorizer: &Authorizer, proxy_event: &Value, method_arn: &str) -> Value {
    match &authorizer.payload {
        Payload::Token { header: name } => json!({
            "type": "TOKEN",
            "authorizationToken": header(proxy_event, name),
            "methodArn": method_arn,
        }),
        Payload::Request { .. } => {
            let mut e = proxy_event.clone();
            if let Some(m) = e.as_object_mut() {
                m.remove("body");
                m.remove("isBase64Encoded");
                m.insert("type".into(), json!("REQUEST"));
                m.insert("methodArn".into(), json!(method_arn));
            }
            e
        }
    }
}

/// What an answer is cached by: the API, the authorizer, the identity-source values.
type CacheKey = (String, String, Vec<String>);

/// Cached answers, with when each expires.
#[derive(Default)]
pub struct Cache {
    entries: Mutex<HashMap<CacheKey, (Instant, Answer)>>,
}

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, (Instant, Answer)>> {
        // Plain data: a panic elsewhere while holding it leaves nothing half-done.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, key: &CacheKey) -> Option<Answer> {
        let mut entries = self.lock();
        let now = Instant::now();
        entries.retain(|_, (expires, _)| *expires > now);
        entries.get(key).map(|(_, a)| a.clone())
    }

    fn put(&self, key: CacheKey, ttl: Duration, answer: Answer) {
        self.lock().insert(key, (Instant::now() + ttl, answer));
    }
}

/// The authorizer step's outcome, and how it went for the request's log line.
pub struct Decision {
    pub result: Result<Allowed, ResponseType>,
    pub how: String,
}

/// Runs `authorizer` (its function's `pool`) for a request whose REST event is
/// `proxy_event` on `method_arn`, through `cache`.
pub async fn authorize(
    api: &str,
    authorizer: &Authorizer,
    pool: &std::sync::Arc<Pool>,
    cache: &Cache,
    proxy_event: &Value,
    method_arn: &str,
    trace_id: &str,
) -> Decision {
    let sources = match identity(authorizer, proxy_event) {
        Ok(s) => s,
        Err(why) => {
            return Decision {
                result: Err(ResponseType::Unauthorized),
                how: format!("{why}, authorizer not invoked"),
            };
        }
    };
    let cache_key = sources
        .filter(|_| !authorizer.ttl.is_zero())
        .map(|s| (api.to_owned(), authorizer.name.clone(), s));
    if let Some(answer) = cache_key.as_ref().and_then(|k| cache.get(k)) {
        return decide(
            answer,
            Duration::ZERO,
            method_arn,
            "authorizer cached".into(),
        );
    }

    let event = event(authorizer, proxy_event, method_arn).to_string();
    let started = Instant::now();
    // The invocation runs on even when the gateway stops waiting, as in Lambda.
    let invocation = tokio::spawn({
        let pool = pool.clone();
        let (id, trace) = (uuid::Uuid::new_v4().to_string(), trace_id.to_owned());
        async move { pool.invoke(id, trace, event.into_bytes()).await }
    });
    let invoked = match tokio::time::timeout(MAX_INTEGRATION_TIMEOUT, invocation).await {
        Ok(Ok(invoked)) => invoked,
        Ok(Err(_)) => {
            return Decision {
                result: Err(ResponseType::AuthorizerFailure),
                how: "authorizer invocation aborted".into(),
            };
        }
        Err(_) => {
            return Decision {
                result: Err(ResponseType::AuthorizerFailure),
                how: "authorizer timed out".into(),
            };
        }
    };
    let latency = started.elapsed();
    let start = match invoked.cold {
        Some(init) => format!(
            "authorizer cold #{} (init {:.1} ms)",
            invoked.instance,
            init.as_secs_f64() * 1000.0
        ),
        None => format!("authorizer warm #{}", invoked.instance),
    };
    let failure = |why: String| Decision {
        result: Err(ResponseType::AuthorizerFailure),
        how: format!("{start}, {why}"),
    };
    match invoked.outcome {
        Outcome::Response(payload) => match parse_answer(&payload) {
            Ok(answer) => {
                if let Some(key) = cache_key {
                    cache.put(key, authorizer.ttl, answer.clone());
                }
                decide(answer, latency, method_arn, start)
            }
            Err(why) => Decision {
                result: Err(ResponseType::AuthorizerConfigurationError),
                how: format!("{start}, malformed authorizer response: {why}"),
            },
        },
        Outcome::Error { message, .. } if message == shared::auth::AUTHORIZER_REFUSAL => Decision {
            result: Err(ResponseType::Unauthorized),
            how: format!("{start}, Unauthorized"),
        },
        Outcome::Error {
            error_type,
            message,
        } => failure(format!("{error_type}: {message}")),
        Outcome::InitError(e) => failure(format!("init failed: {e}")),
        Outcome::Crashed(e) => failure(format!("crashed: {e}")),
        Outcome::TimedOut => failure(format!(
            "timed out after {} s",
            pool.function().timeout.as_secs()
        )),
    }
}

fn decide(answer: Answer, latency: Duration, method_arn: &str, how: String) -> Decision {
    let result = match evaluate(&answer.statements, method_arn) {
        Verdict::Allow => Ok(Allowed { answer, latency }),
        Verdict::ExplicitDeny => Err(ResponseType::AccessDenied { explicit: true }),
        Verdict::NotAllowed => Err(ResponseType::AccessDenied { explicit: false }),
    };
    Decision { result, how }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_iam_does() {
        let arn = "arn:aws:execute-api:us-east-1:123456789012:local/prod/GET/profiles/1";
        assert!(wildcard_match(arn, arn));
        assert!(wildcard_match("*", arn));
        assert!(wildcard_match(
            "arn:aws:execute-api:us-east-1:123456789012:local/prod/*",
            arn
        ));
        assert!(wildcard_match(
            "arn:aws:execute-api:*:*:local/prod/GET/profiles/?",
            arn
        ));
        assert!(!wildcard_match(
            "arn:aws:execute-api:us-east-1:123456789012:local/prod/POST/*",
            arn
        ));
        assert!(!wildcard_match(
            "arn:aws:execute-api:us-east-1:123456789012:local/prod/GET/profiles/??",
            arn
        ));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
        assert!(wildcard_match("", ""));
        assert!(!wildcard_match("", "a"));
    }

    #[test]
    fn an_explicit_deny_wins() {
        let arn = "arn:aws:execute-api:r:a:api/prod/DELETE/profiles/1";
        let allow_all = Statement {
            allow: true,
            actions: vec!["execute-api:Invoke".into()],
            resources: vec!["arn:aws:execute-api:r:a:api/prod/*".into()],
        };
        let deny_delete = Statement {
            allow: false,
            actions: vec!["execute-api:*".into()],
            resources: vec!["arn:aws:execute-api:r:a:api/prod/DELETE/*".into()],
        };
        assert_eq!(
            evaluate(std::slice::from_ref(&allow_all), arn),
            Verdict::Allow
        );
        assert_eq!(
            evaluate(&[allow_all.clone(), deny_delete], arn),
            Verdict::ExplicitDeny
        );
        let other_action = Statement {
            actions: vec!["s3:GetObject".into()],
            ..allow_all
        };
        assert_eq!(evaluate(&[other_action], arn), Verdict::NotAllowed);
        assert_eq!(evaluate(&[], arn), Verdict::NotAllowed);
    }

    #[test]
    fn answers_are_validated_and_their_context_stringified() {
        let ok = parse_answer(
            br#"{"principalId":"p","policyDocument":{"Version":"2012-10-17","Statement":
                {"Action":"execute-api:Invoke","Effect":"Allow","Resource":["*"]}},
                "context":{"n":1,"b":true,"s":"x"},"usageIdentifierKey":"usage-1"}"#,
        );
        let ok = ok.unwrap_or_else(|e| panic!("{e}")); // a test: the panic is the failure
        assert_eq!(ok.statements.len(), 1);
        assert_eq!(ok.context["n"], "1");
        assert_eq!(ok.context["b"], "true");
        assert_eq!(ok.usage_key.as_deref(), Some("usage-1"));
        for bad in [
            &br#"not json"#[..],
            br#"{"policyDocument":{"Statement":[]}}"#,
            br#"{"principalId":"p"}"#,
            br#"{"principalId":"p","policyDocument":{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}}"#,
            br#"{"principalId":"p","policyDocument":{"Statement":[]},"context":{"o":{}}}"#,
        ] {
            assert!(parse_answer(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
