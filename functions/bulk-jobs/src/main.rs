//! bulk-jobs: `POST /imports`, `POST /exports`, `GET /imports/{job_id}`, `GET
//! /exports/{job_id}`. Wiring only; the handlers are `edge::handlers::bulk_jobs`.

use edge::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), edge::lambda::Error> {
    serve(|app, req| async move { respond(&req, edge::handlers::bulk_jobs(app, &req)).await }).await
}
