//! run-jobs: the jobs bucket's `ObjectCreated` events (an import's file, a job's wake object).
//! Wiring only; the work is `shared::bulk`. It answers no HTTP request, so it runs on the
//! Lambda runtime alone and depends on the core, not the HTTP edge.

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use shared::app::App;
use shared::bulk::{Budget, WorkError, run_jobs};

// Multi-threaded: an import's lines are tasks, spread over the function's vCPUs (its
// MemorySize buys them: 1,769 MB is one).
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::logging::init();
    // One App per execution environment, alive as long as the process.
    let app: &'static App = Box::leak(Box::new(App::from_env()?));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        // The invocation's deadline: a worker checkpoints and hands over before it.
        let budget = Budget {
            deadline: event.context.deadline(),
        };
        // A failed invocation is retried by Lambda (S3 invokes asynchronously); the job goes
        // on from its last checkpoint.
        run_jobs(app, event.payload, budget)
            .await
            .map(|_| ())
            .map_err(|e: WorkError| Diagnostic {
                error_type: if e.is_outage() {
                    "Unavailable"
                } else {
                    "JobError"
                }
                .to_owned(),
                error_message: e.to_string(),
            })
    }))
    .await
}
