//! get-contact: `GET /profiles/{profile_id}/contacts/{contact_id}`. Wiring only; the handler is `shared::handlers::get_contact`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve(shared::handlers::get_contact).await
}
