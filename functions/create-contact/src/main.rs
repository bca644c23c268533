//! create-contact: `POST /profiles/{profile_id}/contacts`. Wiring only; the handler is `edge::handlers::create_contact`.

use edge::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), edge::lambda::Error> {
    serve(|app, req| async move { respond(&req, edge::handlers::create_contact(app, &req)).await })
        .await
}
