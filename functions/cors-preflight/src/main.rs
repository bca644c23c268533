//! cors-preflight: `OPTIONS` on every path, the browser's CORS preflight (deployed only when
//! the template's `CorsAllowedOrigins` is set). Wiring only; the answer is `edge::cors`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), edge::lambda::Error> {
    edge::lambda::serve_preflight().await
}
