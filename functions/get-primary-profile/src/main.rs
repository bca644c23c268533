//! get-primary-profile: `GET /profiles/me`. Wiring only; the handler is `edge::handlers::get_primary_profile`.

use edge::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), edge::lambda::Error> {
    serve(|app, req| async move {
        respond(&req, edge::handlers::get_primary_profile(app, &req)).await
    })
    .await
}
