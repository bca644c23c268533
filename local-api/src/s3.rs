//! The embedded S3, as dynoxide is the embedded DynamoDB: `s3s` serves the S3 protocol over
//! `s3s-fs` (objects as files in a folder), with SigV4 checked against the functions' own
//! credentials and presigned POST policies checked by `s3s` (expiry, `eq` and `starts-with`
//! conditions, `content-length-range`, every form field covered). The template's buckets are
//! made at start. Every object created (PUT, POST, copy, a multipart upload completed) becomes an S3 event notification,
//! delivered to the functions whose `S3` events subscribe to it ([`crate::template`]), as
//! Lambda's asynchronous invocation: through the function's Runtime API, retried twice on
//! error. Unsigned GET and HEAD are allowed only where the template's CloudFront distribution
//! reads (its S3 origin's bucket and origin path): the local stand-in for the distribution.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use s3s_fs::FileSystem;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::runtime::{Outcome, Pools};
use crate::template::{Error, S3Subscription};

/// One object created: what an S3 event record says of it.
#[derive(Clone, Debug)]
pub struct Created {
    /// `ObjectCreated:Put`, `ObjectCreated:Post`, `ObjectCreated:Copy` or
    /// `ObjectCreated:CompleteMultipartUpload`.
    pub event_name: &'static str,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
}

/// The file system, telling of every object it creates.
struct Notifying {
    fs: FileSystem,
    root: PathBuf,
    created: mpsc::UnboundedSender<Created>,
}

impl Notifying {
    fn tell(&self, event_name: &'static str, bucket: &str, key: &str, etag: Option<&ETag>) {
        let size = std::fs::metadata(self.root.join(bucket).join(key)).map_or(0, |m| m.len());
        let _ = self.created.send(Created {
            event_name,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size,
            etag: etag.map(|e| e.value().to_owned()).unwrap_or_default(),
        });
    }
}

/// What the functions and clients use, delegated to the file system; object creation is told.
#[async_trait::async_trait]
impl S3 for Notifying {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.fs.get_object(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.fs.head_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.fs.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.fs.delete_objects(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let answer = self.fs.put_object(req).await?;
        self.tell(
            "ObjectCreated:Put",
            &bucket,
            &key,
            answer.output.e_tag.as_ref(),
        );
        Ok(answer)
    }

    async fn post_object(
        &self,
        req: S3Request<PostObjectInput>,
    ) -> S3Result<S3Response<PostObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let answer = self.fs.post_object(req).await?;
        self.tell(
            "ObjectCreated:Post",
            &bucket,
            &key,
            answer.output.e_tag.as_ref(),
        );
        Ok(answer)
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.fs.upload_part(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.fs.abort_multipart_upload(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let answer = self.fs.complete_multipart_upload(req).await?;
        self.tell(
            "ObjectCreated:CompleteMultipartUpload",
            &bucket,
            &key,
            answer.output.e_tag.as_ref(),
        );
        Ok(answer)
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let answer = self.fs.copy_object(req).await?;
        let etag = answer
            .output
            .copy_object_result
            .as_ref()
            .and_then(|r| r.e_tag.as_ref());
        self.tell("ObjectCreated:Copy", &bucket, &key, etag);
        Ok(answer)
    }
}

/// Signed requests may do anything; unsigned ones only read where the distribution reads.
struct Access {
    /// (bucket, key prefix) pairs the template's distributions serve.
    public: Vec<(String, String)>,
}

#[async_trait::async_trait]
impl s3s::access::S3Access for Access {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_some() {
            return Ok(());
        }
        let read = matches!(cx.method().as_str(), "GET" | "HEAD");
        // A `..` segment would climb out of the served folder on the file system.
        if let s3s::path::S3Path::Object { bucket, key } = cx.s3_path()
            && read
            && !key.split('/').any(|segment| segment == "..")
            && self
                .public
                .iter()
                .any(|(b, prefix)| **b == **bucket && key.starts_with(prefix.as_str()))
        {
            return Ok(());
        }
        Err(s3s::s3_error!(AccessDenied, "Signature is required"))
    }
}

/// The functions' credentials: what they sign with and the server checks.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// A running embedded S3.
pub struct EmbeddedS3 {
    /// `http://127.0.0.1:<port>`: the functions' `S3_ENDPOINT`.
    pub endpoint: String,
    /// The folder the objects live in.
    pub root: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Removed at stop (a runner whose data is in memory keeps no objects either).
    temporary: bool,
}

impl EmbeddedS3 {
    /// Serves `root` (made if missing) on 127.0.0.1:`port` (0: a free one) with `buckets`
    /// made, and returns with the objects created to come on `created`.
    pub async fn start(
        root: PathBuf,
        temporary: bool,
        port: u16,
        credentials: &Credentials,
        buckets: &[String],
        public: Vec<(String, String)>,
    ) -> Result<(Self, mpsc::UnboundedReceiver<Created>), Error> {
        for bucket in buckets {
            std::fs::create_dir_all(root.join(bucket))?;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let fs = FileSystem::new(&root).map_err(|e| format!("{}: {e:?}", root.display()))?;
        let service = {
            let mut b = s3s::service::S3ServiceBuilder::new(Notifying {
                fs,
                root: root.clone(),
                created: tx,
            });
            b.set_auth(SimpleAuth::from_single(
                credentials.access_key_id.as_str(),
                credentials.secret_access_key.as_str(),
            ));
            b.set_access(Access { public });
            b.build()
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("embedded S3 on 127.0.0.1:{port}: {e}"))?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            let graceful = hyper_util::server::graceful::GracefulShutdown::new();
            loop {
                let socket = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => socket,
                        Err(e) => {
                            tracing::warn!("embedded S3: accept failed: {e}");
                            continue;
                        }
                    },
                    _ = &mut stopped => break,
                };
                let conn = http.serve_connection(TokioIo::new(socket), service.clone());
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
        });
        Ok((
            Self {
                endpoint,
                root,
                stop: Some(stop),
                task: Some(task),
                temporary,
            },
            rx,
        ))
    }

    /// Stops serving; a temporary folder is removed.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

impl Drop for EmbeddedS3 {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// An S3 event notification of one object, as S3 sends it (the shape `sam local
/// generate-event s3 put` prints; `events/process-photo.json` is one).
pub fn event(created: &Created, region: &str, configuration: &str) -> Value {
    // S3 sends the key URL-encoded, a space as `+`, `/` as is.
    const KEY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b' ');
    let key = percent_encoding::utf8_percent_encode(&created.key, KEY)
        .to_string()
        .replace(' ', "+");
    let now = time::OffsetDateTime::now_utc();
    let event_time = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": region,
            "eventTime": event_time,
            "eventName": created.event_name,
            "userIdentity": {"principalId": "AWS:LOCAL"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {
                "x-amz-request-id": uuid::Uuid::new_v4().simple().to_string().to_uppercase(),
                "x-amz-id-2": "local",
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": configuration,
                "bucket": {
                    "name": created.bucket,
                    "ownerIdentity": {"principalId": "LOCAL"},
                    "arn": format!("arn:aws:s3:::{}", created.bucket),
                },
                "object": {
                    "key": key,
                    "size": created.size,
                    "eTag": created.etag,
                    "sequencer": format!("{:016X}", now.unix_timestamp_nanos() as u64),
                },
            },
        }],
    })
}

/// How many times Lambda retries an asynchronous invocation that failed, and the pause
/// before each (Lambda waits about 1 and 2 minutes; locally, seconds).
const ASYNC_RETRIES: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// Delivers every object created to the subscribed functions, until `created` closes.
/// `log` gets one line per delivery.
pub async fn deliver(
    mut created: mpsc::UnboundedReceiver<Created>,
    subscriptions: Arc<Vec<S3Subscription>>,
    pools: Pools,
    region: String,
    log: Arc<dyn Fn(&str) + Send + Sync>,
) {
    while let Some(object) = created.recv().await {
        for sub in subscriptions
            .iter()
            .filter(|s| s.matches(&object.bucket, object.event_name, &object.key))
        {
            let Some(pool) = pools.get(&sub.function).cloned() else {
                continue;
            };
            let payload = event(&object, &region, &sub.name).to_string().into_bytes();
            let (function, key, event_name) =
                (sub.function.clone(), object.key.clone(), object.event_name);
            let log = log.clone();
            tokio::spawn(async move {
                for attempt in 0..=ASYNC_RETRIES.len() {
                    let id = uuid::Uuid::new_v4().to_string();
                    let trace = crate::event::trace_id();
                    let invoked = pool.invoke(id, trace, payload.clone()).await;
                    let failed = match &invoked.outcome {
                        Outcome::Response(_) => None,
                        Outcome::Error {
                            error_type,
                            message,
                        } => Some(format!("{error_type}: {message}")),
                        Outcome::InitError(e) => Some(format!("init failed: {e}")),
                        Outcome::Crashed(e) => Some(format!("crashed: {e}")),
                        Outcome::TimedOut => Some("timed out".to_owned()),
                    };
                    let start = if invoked.cold.is_some() {
                        "cold"
                    } else {
                        "warm"
                    };
                    match failed {
                        None => {
                            log(&format!("S3 {event_name} {key} → {function} ok ({start})"));
                            return;
                        }
                        Some(why) => {
                            log(&format!(
                                "S3 {event_name} {key} → {function} failed ({start}): {why}"
                            ));
                            match ASYNC_RETRIES.get(attempt) {
                                Some(pause) => tokio::time::sleep(*pause).await,
                                None => return,
                            }
                        }
                    }
                }
            });
        }
    }
}

/// The runner's S3 as a component: the embedded server with the template's buckets (under
/// the state directory when the data is kept, else a temporary folder), the role
/// credentials it checks signatures against, and its object-created events.
pub struct LocalS3 {
    /// `http://127.0.0.1:<port>`: the functions' `S3_ENDPOINT`.
    pub endpoint: String,
    /// The folder the objects live in.
    pub root: PathBuf,
    /// The functions' role credentials, which signatures are checked against.
    pub credentials: Credentials,
    server: tokio::sync::Mutex<Option<EmbeddedS3>>,
}

impl LocalS3 {
    /// Serves the template's buckets on 127.0.0.1:`port` (0: a free one), the objects kept
    /// in `state_dir` unless the data is in memory; returns the objects created to come.
    pub async fn start(
        template: &crate::template::Template,
        storage: &crate::Storage,
        state_dir: Option<&std::path::Path>,
        port: u16,
        credentials: Credentials,
    ) -> Result<(Self, mpsc::UnboundedReceiver<Created>), Error> {
        let (root, temporary) = match (storage, state_dir) {
            (crate::Storage::Memory, _) | (_, None) => (
                std::env::temp_dir().join(format!("local-api-s3-{}", uuid::Uuid::new_v4())),
                true,
            ),
            (_, Some(dir)) => (dir.join(shared::localstate::S3_DIR), false),
        };
        let buckets: Vec<String> = template.buckets()?.into_iter().map(|(_, n)| n).collect();
        // Unsigned GETs are served only where a CloudFront distribution reads.
        let public = template
            .origins()?
            .into_iter()
            .map(|o| {
                let prefix = if o.path.is_empty() {
                    String::new()
                } else {
                    format!("{}/", o.path)
                };
                (o.bucket, prefix)
            })
            .collect();
        let (server, created) =
            EmbeddedS3::start(root, temporary, port, &credentials, &buckets, public).await?;
        let s3 = Self {
            endpoint: server.endpoint.clone(),
            root: server.root.clone(),
            credentials,
            server: tokio::sync::Mutex::new(Some(server)),
        };
        Ok((s3, created))
    }

    /// Stops the server (and removes a temporary folder).
    pub async fn stop(&self) {
        if let Some(mut server) = self.server.lock().await.take() {
            server.stop().await;
        }
    }
}
