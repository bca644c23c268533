//! delete-contact: `DELETE /profiles/{profile_id}/contacts/{contact_id}`. Wiring only; the handler is `shared::handlers::delete_contact`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve(shared::handlers::delete_contact).await
}
