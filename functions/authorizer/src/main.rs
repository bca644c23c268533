//! authorizer: the API's Lambda authorizer (REQUEST). Wiring only; the logic is `shared::authorizer`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve_authorizer().await
}
