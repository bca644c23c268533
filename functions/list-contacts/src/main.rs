//! list-contacts: `GET /profiles/{profile_id}/contacts`. Wiring only; the handler is `shared::handlers::list_contacts`.

use shared::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    serve(|app, req| async move { respond(&req, shared::handlers::list_contacts(app, &req)).await })
        .await
}
