//! process-photo: the photo bucket's `ObjectCreated` events under `uploads/`. Wiring only; the
//! work is `shared::photo::process`. It answers no HTTP request, so it runs on the Lambda
//! runtime alone and depends on the core, not the HTTP edge.

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use shared::app::App;
use shared::photo::process::{ProcessError, process_photos};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::logging::init();
    // One App per execution environment, alive as long as the process.
    let app: &'static App = Box::leak(Box::new(App::from_env()?));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        // A failed invocation is retried by Lambda (S3 invokes asynchronously).
        process_photos(app, event.payload)
            .await
            .map(|_| ())
            .map_err(|e: ProcessError| Diagnostic {
                error_type: if e.is_outage() {
                    "Unavailable"
                } else {
                    "S3EventError"
                }
                .to_owned(),
                error_message: e.to_string(),
            })
    }))
    .await
}
