//! list-contacts: `GET /profiles/{profile_id}/contacts`. Wiring only; the handler is `shared::handlers::list_contacts`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve(shared::handlers::list_contacts).await
}
