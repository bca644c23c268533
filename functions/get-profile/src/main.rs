//! get-profile: `GET /profiles/{profile_id}`. Wiring only; the handler is `shared::handlers::get_profile`.

use shared::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    serve(|app, req| async move { respond(&req, shared::handlers::get_profile(app, &req)).await })
        .await
}
