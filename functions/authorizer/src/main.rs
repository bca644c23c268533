//! authorizer: the API's Lambda authorizer (REQUEST). Wiring only; the logic is `edge::authorizer`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), edge::lambda::Error> {
    edge::lambda::serve_authorizer().await
}
