//! create-contact: `POST /profiles/{profile_id}/contacts`. Wiring only; the handler is `shared::handlers::create_contact`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve(shared::handlers::create_contact).await
}
