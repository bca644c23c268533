//! replace-profile: `PUT /profiles/{profile_id}`. Wiring only; the handler is `shared::handlers::replace_profile`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve(shared::handlers::replace_profile).await
}
