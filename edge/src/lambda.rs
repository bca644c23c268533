//! Function wiring: what every HTTP function's `functions/*/src/main.rs` calls. Builds the [`App`] once at
//! init, then serves invocations with one handler, each through [`respond`].

use std::future::Future;
use std::time::SystemTime;

use lambda_http::{Body, Request, RequestExt, Response};

use crate::error::ApiError;
use crate::http::{self, Reply};
use shared::app::App;
use shared::budget;

/// The error a function's `main` returns when init fails.
pub use lambda_http::Error;

/// Answers `req` with the outcome of `handler` (a handler called on it), the one wrapper
/// every handler runs in: the request's trace id, the handler's outcome, and
/// [`http::finish`] (the answer, problem+json for an error, and the request's one log line).
///
/// In an invocation (a request with a Lambda context), the handler gets the time left before
/// the invocation's deadline less [`budget::ANSWER_MARGIN`]: a handler still waiting then
/// (a dependency slow on every call) is dropped and the caller gets a 503 with `Retry-After`,
/// not Lambda's timeout and API Gateway's bare 502.
pub async fn respond(
    req: &Request,
    handler: impl Future<Output = Result<Reply, ApiError>>,
) -> Response<Body> {
    let trace = http::trace_id(req);
    // A context built by hand (tests) has no deadline: 0.
    let deadline = req
        .lambda_context_ref()
        .filter(|c| c.deadline > 0)
        .map(|c| c.deadline());
    let outcome = match deadline {
        None => handler.await,
        Some(deadline) => {
            let left = budget::time_left(deadline, SystemTime::now());
            tokio::time::timeout(left, handler)
                .await
                .unwrap_or_else(|_| {
                    Err(ApiError::Unavailable {
                        retry_after: budget::RETRY_AFTER_SECONDS,
                        cause: format!(
                            "the request's time budget ran out ({left:?} left at start)"
                        ),
                    })
                })
        }
    };
    http::finish(req, &trace, outcome)
}

/// Runs `handler` as this process's Lambda function, until the runtime stops it. A
/// function's `main` passes `|app, req| async move { respond(&req, its_handler(app, &req)).await }`.
pub async fn serve<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(&'static App, Request) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Response<Body>> + Send,
{
    shared::logging::init();
    // One App per execution environment, alive as long as the process: leaking it gives
    // handlers a `'static` reference without a lock or a reference count per invocation.
    let app: &'static App = Box::leak(Box::new(App::from_env()?));
    open_connection(app).await;
    lambda_http::run(lambda_http::service_fn(move |req: Request| async move {
        // Every answer, the handler's or its error's, carries the CORS headers its origin
        // may see (none when CORS is off).
        let origin = req
            .headers()
            .get(lambda_http::http::header::ORIGIN)
            .cloned();
        let mut response = handler(app, req).await;
        crate::cors::decorate(&app.config.cors, origin.as_ref(), response.headers_mut());
        Ok::<_, lambda_http::Error>(response)
    }))
    .await
}

/// Opens the store's DynamoDB connection while Lambda runs init (unless `CONNECT_AT_INIT` is
/// `false`), so that the first request finds it open: awaited here, not left to a task, as a
/// process that has asked for its next invocation may be frozen until one comes. Bounded by
/// [`budget::INIT_CONNECT`]; a failure only logs, and the first request connects as it would
/// have. A connection that dies while the instance waits (idle, closed by the far end) is
/// replaced by the next call's retry, as any dropped connection is.
async fn open_connection(app: &App) {
    if !app.config.connect_at_init {
        return;
    }
    match app.store.open_connection(budget::INIT_CONNECT).await {
        Ok(took) => tracing::debug!(?took, "DynamoDB connection opened at init"),
        Err(e) => tracing::warn!(
            "DynamoDB connection not opened at init: {e}; the first request opens it"
        ),
    }
}

/// Runs the CORS preflight ([`shared::origins::Origins::preflight`]) as this process's function:
/// `OPTIONS` on every path, which API Gateway routes here without the authorizer. Its init
/// reads `CORS_ALLOWED_ORIGINS` alone and builds no store: it calls nothing.
pub async fn serve_preflight() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let origins: &'static shared::origins::Origins =
        Box::leak(Box::new(shared::config::cors_origins(&|k| {
            std::env::var(k).ok()
        })?));
    lambda_http::run(lambda_http::service_fn(move |req: Request| async move {
        Ok::<_, lambda_http::Error>(crate::cors::preflight(origins, &req))
    }))
    .await
}

/// Runs the Lambda authorizer ([`crate::authorizer::authorize`]) as this process's function: a
/// plain Lambda function (API Gateway's authorizer event in, its policy out), not an HTTP one.
/// Init builds the [`App`] once, and fails on a bad JWT configuration. A refusal leaves as the
/// error whose message is `Unauthorized`, which API Gateway answers with 401; any other error
/// is API Gateway's `AUTHORIZER_FAILURE` (the template's 503 with `Retry-After`), its cause
/// logged here: an outage (`Unavailable`) at warn level, anything else at error level.
pub async fn serve_authorizer() -> Result<(), lambda_http::Error> {
    use lambda_http::aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest as Event;
    use lambda_http::lambda_runtime::{Diagnostic, LambdaEvent};

    use crate::authorizer::{AuthorizerError, authorize};

    shared::logging::init();
    let app: &'static App = Box::leak(Box::new(App::from_env()?));
    if let Some(jwt) = &app.config.jwt {
        jwt.check()?;
    }
    open_connection(app).await;
    match &app.config.jwt {
        Some(jwt) => tracing::info!(
            issuer = %jwt.issuer,
            audience = %jwt.audience,
            hs256 = jwt.hs256_secret.is_some(),
            rs256 = jwt.rs256_public_key.is_some(),
            "authorizer ready: API keys and JWTs"
        ),
        None => tracing::info!("authorizer ready: API keys only (no JWT key configured)"),
    }
    lambda_http::lambda_runtime::run(lambda_http::service_fn(
        move |event: LambdaEvent<Event>| async move {
            authorize(app, event.payload).await.map_err(|e| {
                let error_type = match &e {
                    AuthorizerError::Unauthorized => shared::auth::AUTHORIZER_REFUSAL,
                    AuthorizerError::Internal(cause @ ApiError::Unavailable { .. }) => {
                        tracing::warn!(error = %cause, "authorizer: the table is unavailable");
                        "Unavailable"
                    }
                    AuthorizerError::Internal(cause) => {
                        tracing::error!(error = %cause, "authorizer failed");
                        "AuthorizerError"
                    }
                };
                Diagnostic {
                    error_type: error_type.to_owned(),
                    error_message: e.to_string(),
                }
            })
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use std::time::{Duration, Instant, UNIX_EPOCH};

    use lambda_http::lambda_runtime::Context;

    use super::*;

    /// A request in an invocation that must answer within `ms`.
    fn invoked_with(ms: u64) -> Request {
        let mut context = Context::default();
        let deadline = SystemTime::now() + Duration::from_millis(ms);
        context.deadline = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        Request::default().with_lambda_context(context)
    }

    #[tokio::test]
    async fn a_handler_that_outlasts_the_invocations_budget_is_a_503_before_the_deadline() {
        let started = Instant::now();
        let never_done = async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(Reply::empty(lambda_http::http::StatusCode::NO_CONTENT))
        };
        let r = respond(&invoked_with(800), never_done).await;
        let took = started.elapsed();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        // Stopped ANSWER_MARGIN (500 ms) before the 800 ms deadline.
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took < Duration::from_millis(800), "{took:?}");
    }

    #[tokio::test]
    async fn a_handler_inside_its_budget_answers_as_it_answers() {
        let quick = async { Ok(Reply::empty(lambda_http::http::StatusCode::NO_CONTENT)) };
        let r = respond(&invoked_with(10_000), quick).await;
        assert_eq!(r.status(), 204);
    }
}
