//! create-profile: `POST /profiles (alias POST /profiles/create)`. Wiring only; the handler is `shared::handlers::create_profile`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve(shared::handlers::create_profile).await
}
