//! create-photo-upload: `POST /profiles/{profile_id}/photo`. Wiring only; the handler is `edge::handlers::create_photo_upload`.

use edge::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), edge::lambda::Error> {
    serve(|app, req| async move {
        respond(&req, edge::handlers::create_photo_upload(app, &req)).await
    })
    .await
}
