//! Photo fixtures: real PNGs and JPEGs, and an engine with an embedded S3 whose object
//! events go nowhere.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use shared::config::{Config, env};

use crate::Engine;

/// A real PNG, `width`×`height`, RGB, made by the png crate's encoder.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    let mut writer = encoder.write_header().unwrap();
    let data: Vec<u8> = (0..width * height * 3).map(|i| (i % 251) as u8).collect();
    writer.write_image_data(&data).unwrap();
    writer.finish().unwrap();
    out
}

/// A real JPEG, `width`×`height`, RGB, made by jpeg-encoder.
pub fn jpeg(width: u16, height: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let data: Vec<u8> = (0..u32::from(width) * u32::from(height) * 3)
        .map(|i| (i % 253) as u8)
        .collect();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&data, width, height, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

/// A real engine and a real embedded S3 with one bucket whose object events go nowhere (the
/// test decides what process-photo sees, and when), and the configuration a photo function
/// gets on them.
pub struct QuietS3 {
    pub engine: Engine,
    /// Serving while it lives; its folder is removed when dropped.
    pub s3: local_api::s3::EmbeddedS3,
    pub config: Config,
    pub bucket: String,
}

impl QuietS3 {
    pub async fn start(bucket: &str) -> Self {
        Self::start_with_jobs(bucket, "jobs").await
    }

    /// With a jobs bucket too (`JOBS_BUCKET`), for bulk imports and exports.
    pub async fn start_with_jobs(bucket: &str, jobs_bucket: &str) -> Self {
        let engine = Engine::start().await;
        let (key_id, secret) = ("AKIDTEST", "secret");
        let credentials = local_api::s3::Credentials {
            access_key_id: key_id.into(),
            secret_access_key: secret.into(),
        };
        let root = std::env::temp_dir().join(format!("quiet-s3-{}", uuid::Uuid::new_v4()));
        let (s3, _events_dropped) = local_api::s3::EmbeddedS3::start(
            root,
            true,
            0,
            &credentials,
            &[bucket.to_owned(), jobs_bucket.to_owned()],
            vec![],
        )
        .await
        .unwrap();
        let vars: std::collections::BTreeMap<&str, String> = [
            (env::TABLE_NAME, engine.table.clone()),
            (env::DYNAMODB_ENDPOINT, engine.endpoint.clone()),
            (env::S3_ENDPOINT, s3.endpoint.clone()),
            (env::AWS_ACCESS_KEY_ID, key_id.into()),
            (env::AWS_SECRET_ACCESS_KEY, secret.into()),
            (env::PHOTO_BUCKET, bucket.into()),
            (env::PHOTO_BASE_URL, "https://photos.test".into()),
            (env::JOBS_BUCKET, jobs_bucket.into()),
        ]
        .into_iter()
        .collect();
        let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
        Self {
            engine,
            s3,
            config,
            bucket: bucket.to_owned(),
        }
    }
}
