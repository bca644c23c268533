//! list-profiles: `GET /profiles`. Wiring only; the handler is `shared::handlers::list_profiles`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve(shared::handlers::list_profiles).await
}
