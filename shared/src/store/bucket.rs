//! The photo bucket: the S3 calls the photo functions and delete-profile make (read an upload,
//! write a photo, delete either), through aws-sdk-s3, in the store's own error type.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use super::StoreError;
use super::client::s3_client;
use crate::config::Config;

/// One bucket, seen through the calls the API makes.
#[derive(Clone, Debug)]
pub struct Bucket {
    client: Client,
    name: String,
}

impl Bucket {
    pub fn new(config: &Config, name: &str) -> Self {
        Self::with_client(s3_client(config), name)
    }

    /// The bucket through a client built elsewhere (tests record its calls).
    pub fn with_client(client: Client, name: &str) -> Self {
        Self {
            client,
            name: name.to_owned(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// An object's bytes, or `None` when there is no such object (any more).
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let got = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await;
        let object = match got {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(StoreError::sdk("get object", e)),
        };
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| StoreError::unavailable(format!("read object {key}: {e}")))?;
        Ok(Some(bytes.to_vec()))
    }

    /// Writes an object with its media type and caching rule.
    pub async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        cache_control: &str,
    ) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .content_type(content_type)
            .cache_control(cache_control)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| StoreError::sdk("put object", e))?;
        Ok(())
    }

    /// Deletes an object; one already gone is no error (S3 answers 204 either way).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .map_err(|e| StoreError::sdk("delete object", e))?;
        Ok(())
    }
}
