//! update-contact: `PUT and PATCH /profiles/{profile_id}/contacts/{contact_id}`. Wiring only; the handler is `shared::handlers::update_contact`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve(shared::handlers::update_contact).await
}
