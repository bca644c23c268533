//! list-profiles: `GET /profiles`. Wiring only; the handler is `edge::handlers::list_profiles`.

use edge::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), edge::lambda::Error> {
    serve(|app, req| async move { respond(&req, edge::handlers::list_profiles(app, &req)).await })
        .await
}
