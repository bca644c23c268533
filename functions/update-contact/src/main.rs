//! update-contact: `PUT and PATCH /profiles/{profile_id}/contacts/{contact_id}`. Wiring only; the handler is `edge::handlers::update_contact`.

use edge::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), edge::lambda::Error> {
    serve(|app, req| async move { respond(&req, edge::handlers::update_contact(app, &req)).await })
        .await
}
