//! process-photo: the photo bucket's `ObjectCreated` events under `uploads/`. Wiring only; the
//! handler is `shared::handlers::process_photos`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve_s3_events(|app, event| async move {
        shared::handlers::process_photos(app, event)
            .await
            .map(|_| ())
    })
    .await
}
