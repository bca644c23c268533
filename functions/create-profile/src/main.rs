//! create-profile: `POST /profiles (alias POST /profiles/create)`. Wiring only; the handler is `shared::handlers::create_profile`.

use shared::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    serve(
        |app, req| async move { respond(&req, shared::handlers::create_profile(app, &req)).await },
    )
    .await
}
