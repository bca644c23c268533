//! create-profile: `POST /profiles (alias POST /profiles/create)`. Wiring only; the handler is `edge::handlers::create_profile`.

use edge::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), edge::lambda::Error> {
    serve(|app, req| async move { respond(&req, edge::handlers::create_profile(app, &req)).await })
        .await
}
