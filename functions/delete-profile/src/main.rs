//! delete-profile: `DELETE /profiles/{profile_id}`. Wiring only; the handler is `shared::handlers::delete_profile`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve(shared::handlers::delete_profile).await
}
