//! Function wiring: what every `functions/*/src/main.rs` calls. Builds the [`App`] once at
//! init, then serves invocations with one handler, each through [`respond`].

use std::future::Future;

use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::error::ApiError;
use crate::http::{self, Reply};

/// The error a function's `main` returns when init fails.
pub use lambda_http::Error;

/// Answers `req` with the outcome of `handler` (a handler called on it), the one wrapper
/// every handler runs in: the request's trace id, the handler's outcome, and
/// [`http::finish`] (the answer, problem+json for an error, and the request's one log line).
pub async fn respond(
    req: &Request,
    handler: impl Future<Output = Result<Reply, ApiError>>,
) -> Response<Body> {
    let trace = http::trace_id(req);
    let outcome = handler.await;
    http::finish(req, &trace, outcome)
}

/// Runs `handler` as this process's Lambda function, until the runtime stops it. A
/// function's `main` passes `|app, req| async move { respond(&req, its_handler(app, &req)).await }`.
pub async fn serve<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(&'static App, Request) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Response<Body>> + Send,
{
    lambda_http::tracing::init_default_subscriber();
    // One App per execution environment, alive as long as the process: leaking it gives
    // handlers a `'static` reference without a lock or a reference count per invocation.
    let app: &'static App = Box::leak(Box::new(App::from_env()?));
    lambda_http::run(lambda_http::service_fn(move |req: Request| async move {
        Ok::<_, lambda_http::Error>(handler(app, req).await)
    }))
    .await
}

/// Runs the Lambda authorizer ([`crate::authorizer::authorize`]) as this process's function: a
/// plain Lambda function (API Gateway's authorizer event in, its policy out), not an HTTP one.
/// Init builds the [`App`] once, and fails on a bad JWT configuration. A refusal leaves as the
/// error whose message is `Unauthorized`, which API Gateway answers with 401; any other error
/// is a 500, its cause logged here.
pub async fn serve_authorizer() -> Result<(), lambda_http::Error> {
    use lambda_http::aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest as Event;
    use lambda_http::lambda_runtime::{Diagnostic, LambdaEvent};

    use crate::authorizer::{AuthorizerError, authorize};

    lambda_http::tracing::init_default_subscriber();
    let app: &'static App = Box::leak(Box::new(App::from_env()?));
    if let Some(jwt) = &app.config.jwt {
        jwt.check()?;
    }
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
                    AuthorizerError::Unauthorized => "Unauthorized",
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
