//! create-contact: `POST /profiles/{profile_id}/contacts`. Wiring only; the handler is `shared::handlers::create_contact`.

use shared::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    serve(
        |app, req| async move { respond(&req, shared::handlers::create_contact(app, &req)).await },
    )
    .await
}
