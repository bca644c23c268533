//! A bucket: the S3 calls the API makes, through aws-sdk-s3, in the store's own error type.
//! The photo bucket (read an upload, write a photo, delete either) and the jobs bucket (an
//! import's file read a byte range at a time, reports and exports written in parts, a
//! download presigned).

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

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

    /// An object's size in bytes and its ETag, or `None` when there is no such object.
    pub async fn head(&self, key: &str) -> Result<Option<(u64, Option<String>)>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
        {
            Ok(o) => Ok(Some((o.content_length.unwrap_or(0).max(0) as u64, o.e_tag))),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(e) => Err(StoreError::sdk("head object", e)),
        }
    }

    /// Bytes `start..start + len` of an object (fewer at its end) and the object's ETag, or
    /// `None` when there is no such object.
    pub async fn get_range(
        &self,
        key: &str,
        start: u64,
        len: u64,
    ) -> Result<Option<(Vec<u8>, Option<String>)>, StoreError> {
        let got = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .range(format!("bytes={start}-{}", start + len.max(1) - 1))
            .send()
            .await;
        let object = match got {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            // A range that starts at the end: nothing more to read.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                return Ok(Some((Vec::new(), None)));
            }
            Err(e) => return Err(StoreError::sdk("get object range", e)),
        };
        let etag = object.e_tag;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| StoreError::unavailable(format!("read object {key}: {e}")))?;
        Ok(Some((bytes.to_vec(), etag)))
    }

    /// Every key under `prefix`, in key order.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .objects(prefix)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// Every object under `prefix` with its size, in key order.
    pub async fn objects(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.name)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| StoreError::sdk("list objects", e))?;
            keys.extend(out.contents().iter().filter_map(|o| {
                let size = o.size.unwrap_or(0).max(0) as u64;
                o.key().map(|k| (k.to_owned(), size))
            }));
            match out.next_continuation_token {
                Some(t) if out.is_truncated == Some(true) => token = Some(t),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// A GET of `key` anyone holding the URL may make for `ttl`, signed with the function's
    /// credentials.
    pub async fn presigned_get(&self, key: &str, ttl: Duration) -> Result<String, StoreError> {
        let config =
            PresigningConfig::expires_in(ttl).map_err(|e| StoreError::backend("presign", e))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| StoreError::sdk("presign get object", e))?;
        Ok(req.uri().to_owned())
    }

    /// Starts writing `key` in parts (an object too large to hold in memory at once).
    pub async fn start_parts(&self, key: &str, content_type: &str) -> Result<Parts, StoreError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| StoreError::sdk("create multipart upload", e))?;
        let upload_id = out
            .upload_id
            .ok_or_else(|| StoreError::backend("create multipart upload", "no upload id"))?;
        Ok(Parts {
            key: key.to_owned(),
            upload_id,
            done: Vec::new(),
        })
    }

    /// Writes the next part (every part but the last at least 5 MiB, as S3 requires).
    pub async fn put_part(&self, parts: &mut Parts, bytes: Vec<u8>) -> Result<(), StoreError> {
        let number = i32::try_from(parts.done.len() + 1)
            .map_err(|e| StoreError::backend("upload part", e))?;
        let out = self
            .client
            .upload_part()
            .bucket(&self.name)
            .key(&parts.key)
            .upload_id(&parts.upload_id)
            .part_number(number)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| StoreError::sdk("upload part", e))?;
        parts.done.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .build(),
        );
        Ok(())
    }

    /// Makes the object of the parts written.
    pub async fn finish_parts(&self, parts: Parts) -> Result<(), StoreError> {
        self.client
            .complete_multipart_upload()
            .bucket(&self.name)
            .key(&parts.key)
            .upload_id(&parts.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts.done))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| StoreError::sdk("complete multipart upload", e))?;
        Ok(())
    }
}

/// An object being written in parts.
#[derive(Debug)]
pub struct Parts {
    key: String,
    upload_id: String,
    done: Vec<CompletedPart>,
}
