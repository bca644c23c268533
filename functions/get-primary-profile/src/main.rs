//! get-primary-profile: `GET /profiles/me`. Wiring only; the handler is `shared::handlers::get_primary_profile`.

use shared::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    serve(|app, req| async move {
        respond(&req, shared::handlers::get_primary_profile(app, &req)).await
    })
    .await
}
