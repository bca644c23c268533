//! get-profile: `GET /profiles/{profile_id}`. Wiring only; the handler is `shared::handlers::get_profile`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve(shared::handlers::get_profile).await
}
