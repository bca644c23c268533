//! bench-floor: the smallest Lambda function, an echo on `lambda_runtime` (re-exported by
//! lambda_http, so the same runtime version as the API's functions). Its cold start is the
//! floor the bench compares every function against.

use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<_, lambda_runtime::Error>(json!({"statusCode": 200, "body": "{}"}))
    }))
    .await
}
