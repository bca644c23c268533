//! publish-events: the table stream's batches, each change of a profile or a contact put on
//! the event bus as a CloudEvent. Wiring only; the work is `shared::events::publish`. It
//! answers no HTTP request, so it runs on the Lambda runtime and the core alone.

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use shared::bus::Bus;
use shared::config::Config;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::logging::init();
    let config = Config::from_env()?;
    // One bus client per execution environment, alive as long as the process.
    let bus: &'static Bus = Box::leak(Box::new(Bus::from_config(&config)?));
    let source: &'static str = Box::leak(config.event_source.into_boxed_str());
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            // Records it could not publish come back as batch item failures (the event
            // source mapping delivers them again); a batch whose first record it could not
            // publish fails, so the mapping splits it.
            shared::events::publish(bus, source, &event.payload)
                .await
                .map_err(|e| Diagnostic {
                    error_type: "BatchFailed".to_owned(),
                    error_message: e.to_string(),
                })
        },
    ))
    .await
}
