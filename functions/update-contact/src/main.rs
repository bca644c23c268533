//! update-contact: `PUT and PATCH /profiles/{profile_id}/contacts/{contact_id}`. Wiring only; the handler is `shared::handlers::update_contact`.

use shared::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    serve(
        |app, req| async move { respond(&req, shared::handlers::update_contact(app, &req)).await },
    )
    .await
}
