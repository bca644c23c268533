//! replace-profile: `PUT /profiles/{profile_id}`. Wiring only; the handler is `edge::handlers::replace_profile`.

use edge::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), edge::lambda::Error> {
    serve(|app, req| async move { respond(&req, edge::handlers::replace_profile(app, &req)).await })
        .await
}
