//! list-contacts: `GET /profiles/{profile_id}/contacts`. Wiring only; the handler is `edge::handlers::list_contacts`.

use edge::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), edge::lambda::Error> {
    serve(|app, req| async move { respond(&req, edge::handlers::list_contacts(app, &req)).await })
        .await
}
