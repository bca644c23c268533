//! list-profiles: `GET /profiles`. Wiring only; the handler is `shared::handlers::list_profiles`.

use shared::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    serve(|app, req| async move { respond(&req, shared::handlers::list_profiles(app, &req)).await })
        .await
}
