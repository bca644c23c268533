//! Function wiring: what every `functions/*/src/main.rs` calls. Builds the [`App`] once at
//! init, then serves invocations with one handler.

use std::future::Future;

use lambda_http::{Body, Request, Response};

use crate::handlers::App;

/// The error a function's `main` returns when init fails.
pub use lambda_http::Error;

/// Runs `handler` as this process's Lambda function, until the runtime stops it.
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
