//! get-primary-profile: `GET /profiles/me`. Wiring only; the handler is `shared::handlers::get_primary_profile`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve(shared::handlers::get_primary_profile).await
}
