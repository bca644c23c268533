//! create-photo-upload: `POST /profiles/{profile_id}/photo`. Wiring only; the handler is `shared::handlers::create_photo_upload`.

use shared::lambda::{respond, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    serve(|app, req| async move {
        respond(&req, shared::handlers::create_photo_upload(app, &req)).await
    })
    .await
}
