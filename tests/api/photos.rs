//! Photos end to end: `POST /profiles/{id}/photo` grants a presigned S3 POST; the form goes to
//! the runner's embedded S3, which checks the policy; S3's event invokes the real
//! process-photo binary, which checks the bytes and sets `photo_url`, fetchable unsigned
//! where the photo distribution serves. Then, in process on a real engine and a real embedded
//! S3 with no event delivery, what at-least-once, out-of-order delivery must leave.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant, SystemTime};

use profiles_tests::{Api, QuietS3, Runner, id_of, jpeg, png};
use serde_json::{Value, json};
use shared::app::App;
use shared::ids::TenantId;
use shared::photo::presign::{self, Target};
use shared::photo::process::{Processed, process_photos};
use shared::photo::{ImageType, MAX_BYTES, Refused, Upload};

const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

/// Sends `bytes` as the form's file, the fields as given (a browser's or `curl -F`'s
/// multipart POST): S3's status and body.
async fn upload(grant: &Value, bytes: Vec<u8>) -> (u16, String) {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in grant["fields"].as_object().unwrap() {
        form = form.text(name.clone(), value.as_str().unwrap().to_owned());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("photo"),
    );
    let r = reqwest::Client::new()
        .post(grant["upload_url"].as_str().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The bucket as the functions see it, with the runner's credentials.
fn bucket_of(api: &Runner) -> aws_sdk_s3::Client {
    let c = &api.server.s3.credentials;
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&api.server.s3.endpoint)
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            &c.access_key_id,
            &c.secret_access_key,
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The photo bucket's name, as the template names it locally.
fn bucket_name() -> String {
    let template =
        local_api::template::Template::load(&profiles_tests::repo_path("template.yaml")).unwrap();
    template.buckets().unwrap().into_iter().next().unwrap().1
}

/// Every key in the bucket under `prefix`.
async fn keys_under(s3: &aws_sdk_s3::Client, prefix: &str) -> Vec<String> {
    let out = s3
        .list_objects_v2()
        .bucket(bucket_name())
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// Polls `check` until it holds, for at most 20 s (S3 delivers its events asynchronously).
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not within 20 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn new_profile(api: &Runner) -> Value {
    let r = api
        .http
        .post(api.url("/profiles"))
        .json(&json!({"first_name": "Ada", "last_name": "Lovelace"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

async fn get_profile(api: &Runner, id: &str) -> (u16, Value) {
    let r = api
        .http
        .get(api.url(&format!("/profiles/{id}")))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn grant(api: &Runner, id: &str, content_type: &str) -> Value {
    let r = api
        .http
        .post(api.url(&format!("/profiles/{id}/photo")))
        .json(&json!({"content_type": content_type}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

/// Uploads a real image and waits for its `photo_url`; returns the profile then.
async fn accepted(api: &Runner, id: &str, kind: &str, bytes: Vec<u8>) -> Value {
    let g = grant(api, id, kind).await;
    let (status, body) = upload(&g, bytes).await;
    assert_eq!(status, 204, "{body}");
    let key = g["fields"]["key"].as_str().unwrap().to_owned();
    let upload_id = key.rsplit('/').next().unwrap().to_owned();
    eventually("the profile shows the upload", || async {
        get_profile(api, id).await.1["photo_url"]
            .as_str()
            .is_some_and(|u| u.contains(&upload_id))
    })
    .await;
    get_profile(api, id).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_png_and_a_jpeg_are_accepted_and_photo_url_serves_them() {
    let api = Runner::start_default().await;
    let profile = new_profile(&api).await;
    let id = id_of(&profile);
    assert_eq!(profile["photo_url"], Value::Null);

    let image = png(40, 30);
    let shown = accepted(&api, &id, "image/png", image.clone()).await;
    assert_eq!(shown["version"], profile["version"].as_u64().unwrap() + 1);
    let url = shown["photo_url"].as_str().unwrap().to_owned();
    assert!(url.ends_with(".png"), "{url}");
    // Unsigned, as a browser fetches it: the distribution's stand-in.
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(r.bytes().await.unwrap().to_vec(), image);

    // A JPEG replaces it; the PNG's object is gone, the upload too.
    let image = jpeg(64, 48);
    let shown = accepted(&api, &id, "image/jpeg", image.clone()).await;
    let jpeg_url = shown["photo_url"].as_str().unwrap().to_owned();
    assert!(jpeg_url.ends_with(".jpg"), "{jpeg_url}");
    let r = reqwest::get(&jpeg_url).await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.bytes().await.unwrap().to_vec(), image);
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 404);
    let s3 = bucket_of(&api);
    assert_eq!(keys_under(&s3, "uploads/").await, Vec::<String>::new());
    assert_eq!(keys_under(&s3, "photos/").await.len(), 1);
    // Only the distribution's folder is public: an upload is not readable unsigned.
    let upload_url = jpeg_url.replace("/photos/", "/uploads/");
    assert_eq!(reqwest::get(&upload_url).await.unwrap().status(), 403);
}

/// Files S3 takes (the policy holds) but that are not photos: process-photo deletes them and
/// the profile does not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gif_named_png_and_a_truncated_png_are_deleted_and_change_nothing() {
    let api = Runner::start_default().await;
    let profile = new_profile(&api).await;
    let id = id_of(&profile);
    let s3 = bucket_of(&api);
    let whole = png(40, 30);
    for bytes in [GIF.to_vec(), whole[..whole.len() / 2].to_vec()] {
        let g = grant(&api, &id, "image/png").await;
        let (status, body) = upload(&g, bytes).await;
        assert_eq!(status, 204, "S3 takes it: {body}");
        eventually("the upload is deleted", || async {
            keys_under(&s3, "uploads/").await.is_empty()
        })
        .await;
    }
    let (_, now) = get_profile(&api, &id).await;
    assert_eq!(now["photo_url"], Value::Null);
    assert_eq!(now["version"], profile["version"]);
    assert_eq!(keys_under(&s3, "photos/").await, Vec::<String>::new());
}

/// What the signed policy forbids, S3 itself refuses: nothing is stored, nothing processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_refuses_what_the_policy_does_not_allow() {
    let api = Runner::start_default().await;
    let id = id_of(&new_profile(&api).await);
    let s3 = bucket_of(&api);
    let refused = |(status, body): (u16, String)| {
        assert!((400..500).contains(&status), "{status} {body}");
        body
    };

    // One byte over 5 MiB.
    let g = grant(&api, &id, "image/png").await;
    let body = refused(upload(&g, vec![0; MAX_BYTES as usize + 1]).await);
    assert!(body.contains("EntityTooLarge"), "{body}");

    // Another media type than the one granted.
    let mut g = grant(&api, &id, "image/png").await;
    g["fields"]["Content-Type"] = json!("image/gif");
    let body = refused(upload(&g, png(4, 4)).await);
    assert!(body.to_lowercase().contains("content-type"), "{body}");

    // Another key than the one signed (here: another profile's folder).
    let mut g = grant(&api, &id, "image/png").await;
    let key = g["fields"]["key"]
        .as_str()
        .unwrap()
        .replace(&id, &uuid::Uuid::now_v7().to_string());
    g["fields"]["key"] = json!(key);
    let body = refused(upload(&g, png(4, 4)).await);
    assert!(body.contains("key"), "{body}");

    // A changed policy no longer matches its signature.
    let mut g = grant(&api, &id, "image/png").await;
    let policy = g["fields"]["policy"].as_str().unwrap().to_owned();
    g["fields"]["policy"] = json!(format!("{}A", &policy[..policy.len() - 1]));
    refused(upload(&g, png(4, 4)).await);

    // Expired: a form signed with the functions' own credentials 11 minutes ago.
    let credentials = shared::config::StaticCredentials {
        access_key_id: api.server.s3.credentials.access_key_id.clone(),
        secret_access_key: shared::config::Secret::new(
            api.server.s3.credentials.secret_access_key.clone(),
        ),
        session_token: None,
    };
    let bucket = bucket_name();
    let target = Target {
        bucket: &bucket,
        region: "us-east-1",
        endpoint: Some(&api.server.s3.endpoint),
    };
    let upload_key = Upload::new(TenantId::new("default").unwrap(), id.parse().unwrap()).key();
    let then = SystemTime::now() - Duration::from_secs(11 * 60);
    let form = presign::post_form(&target, &credentials, &upload_key, ImageType::Png, then);
    let expired = json!({"upload_url": form.upload_url, "fields": form.fields});
    let body = refused(upload(&expired, png(4, 4)).await);
    assert!(body.contains("expired"), "{body}");
    // The same form signed now is taken: the signature is S3's to check, and it agrees.
    let form = presign::post_form(
        &target,
        &credentials,
        &upload_key,
        ImageType::Png,
        SystemTime::now(),
    );
    let fresh = json!({"upload_url": form.upload_url, "fields": form.fields});
    assert_eq!(upload(&fresh, png(4, 4)).await.0, 204);
    eventually("the accepted upload is processed", || async {
        keys_under(&s3, "uploads/").await.is_empty()
    })
    .await;
    assert_eq!(keys_under(&s3, "photos/").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_upload_names_its_media_type_and_a_profile_of_the_callers_tenant() {
    let api = Runner::start_default().await;
    let id = id_of(&new_profile(&api).await);
    let post = |body: Value, key: Option<String>, profile: String| {
        let client = match key {
            Some(k) => profiles_tests::client_with_key(&k),
            None => api.http.clone(),
        };
        let url = api.url(&format!("/profiles/{profile}/photo"));
        async move { client.post(url).json(&body).send().await.unwrap() }
    };
    for (body, field) in [
        (json!({"content_type": "image/gif"}), "content_type"),
        (json!({}), "content_type"),
        (json!({"content_type": "image/png", "size": 3}), "size"),
    ] {
        let r = post(body, None, id.clone()).await;
        assert_eq!(r.status(), 400);
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    // Another tenant's profile, and no profile: the same 404.
    let other = api
        .create_key("tenant-b", "someone", shared::auth::Scopes::all())
        .await;
    let r = post(
        json!({"content_type": "image/png"}),
        Some(other),
        id.clone(),
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = post(
        json!({"content_type": "image/png"}),
        None,
        uuid::Uuid::now_v7().to_string(),
    )
    .await;
    assert_eq!(r.status(), 404);
    // Without profiles.update: 403.
    let reader = api
        .create_key(
            "default",
            "reader",
            shared::auth::Scopes::parse_strict("profiles.read").unwrap(),
        )
        .await;
    let r = post(
        json!({"content_type": "image/png"}),
        Some(reader),
        id.clone(),
    )
    .await;
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_upload_with_an_idempotency_key_is_granted_once() {
    let api = Runner::start_default().await;
    let id = id_of(&new_profile(&api).await);
    let send = |body: Value| {
        let r = api
            .http
            .post(api.url(&format!("/profiles/{id}/photo")))
            .header("Idempotency-Key", "photo-1")
            .json(&body);
        async move { r.send().await.unwrap() }
    };
    let first = send(json!({"content_type": "image/png"})).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send(json!({"content_type": "image/png"})).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let other = send(json!({"content_type": "image/jpeg"})).await;
    assert_eq!(other.status(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_profile_deletes_its_photo() {
    let api = Runner::start_default().await;
    let id = id_of(&new_profile(&api).await);
    let shown = accepted(&api, &id, "image/png", png(8, 8)).await;
    let url = shown["photo_url"].as_str().unwrap().to_owned();
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
    let r = api
        .http
        .delete(api.url(&format!("/profiles/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 404);
    assert_eq!(
        keys_under(&bucket_of(&api), "photos/").await,
        Vec::<String>::new()
    );
}

/// In process: a real engine and a real embedded S3 whose events go nowhere, so the test
/// decides what process-photo sees, and in which order.
struct Quiet {
    api: Api,
    app: App,
    /// Serving while the test runs; its folder is removed when dropped.
    s3: local_api::s3::EmbeddedS3,
    bucket: String,
}

impl Quiet {
    async fn start() -> Self {
        let q = QuietS3::start("photos").await;
        Self {
            api: Api::on(q.engine),
            app: App::new(q.config),
            s3: q.s3,
            bucket: q.bucket,
        }
    }

    /// An upload for `profile`, stored as S3 would take it.
    async fn put_upload(&self, profile: &str, bytes: Vec<u8>) -> Upload {
        let upload = Upload::new(TenantId::new("tenant-a").unwrap(), profile.parse().unwrap());
        self.app
            .bucket()
            .unwrap()
            .put(&upload.key(), bytes, "image/png", "no-store")
            .await
            .unwrap();
        upload
    }

    /// The event S3 sends for `upload` (the runner's own event shape).
    fn event_of(&self, upload: &Upload, size: u64) -> aws_lambda_events::event::s3::S3Event {
        let created = local_api::s3::Created {
            event_name: "ObjectCreated:Post",
            bucket: self.bucket.clone(),
            key: upload.key(),
            size,
            etag: String::new(),
        };
        serde_json::from_value(local_api::s3::event(&created, "us-east-1", "Uploaded")).unwrap()
    }

    async fn process(&self, upload: &Upload, size: u64) -> Processed {
        let mut outcomes = process_photos(&self.app, self.event_of(upload, size))
            .await
            .unwrap();
        assert_eq!(outcomes.len(), 1);
        outcomes.remove(0)
    }

    async fn exists(&self, key: &str) -> bool {
        self.app.bucket().unwrap().get(key).await.unwrap().is_some()
    }
}

#[tokio::test]
async fn the_same_event_twice_leaves_the_photo_as_the_first_left_it() {
    let w = Quiet::start().await;
    let id = id_of(&w.api.create(json!({"name": "Acme"})).await.body);
    let image = png(16, 16);
    let up = w.put_upload(&id, image.clone()).await;
    let first = w.process(&up, image.len() as u64).await;
    let Processed::Accepted { photo, version } = first else {
        panic!("{first:?}");
    };
    assert_eq!(version, 2);
    assert_eq!(
        w.process(&up, image.len() as u64).await,
        Processed::AlreadyProcessed
    );
    let shown = w.api.get(&id).await.body;
    assert_eq!(shown["version"], 2);
    assert_eq!(shown["photo_url"], photo.url.as_str());
    assert!(w.exists(&photo.key).await);
    assert!(!w.exists(&up.key()).await);
}

#[tokio::test]
async fn an_older_upload_processed_after_a_newer_one_leaves_the_newer() {
    let w = Quiet::start().await;
    let id = id_of(&w.api.create(json!({"name": "Acme"})).await.body);
    let older = w.put_upload(&id, png(10, 10)).await;
    let newer = w.put_upload(&id, jpeg(12, 12)).await;
    assert!(older.id < newer.id);
    let Processed::Accepted { photo, .. } = w.process(&newer, 1).await else {
        panic!("the newer is accepted");
    };
    assert_eq!(w.process(&older, 1).await, Processed::Superseded);
    let shown = w.api.get(&id).await.body;
    assert_eq!(shown["photo_url"], photo.url.as_str());
    assert!(photo.url.ends_with(".jpg"));
    // The older left nothing behind: no upload, no photo object.
    assert!(!w.exists(&older.key()).await);
    assert!(!w.exists(&older.photo(ImageType::Png, "x").key).await);
    assert!(w.exists(&photo.key).await);
}

#[tokio::test]
async fn a_profile_deleted_before_its_upload_is_processed_leaves_nothing() {
    let w = Quiet::start().await;
    let id = id_of(&w.api.create(json!({"name": "Acme"})).await.body);
    let up = w.put_upload(&id, png(10, 10)).await;
    assert_eq!(w.api.delete(&id).await.status, 204);
    assert_eq!(w.process(&up, 1).await, Processed::ProfileGone);
    assert!(!w.exists(&up.key()).await);
    assert!(!w.exists(&up.photo(ImageType::Png, "x").key).await);
    assert_eq!(w.api.get(&id).await.status, 404);
}

#[tokio::test]
async fn an_oversized_or_foreign_object_is_deleted_unread() {
    let w = Quiet::start().await;
    let id = id_of(&w.api.create(json!({"name": "Acme"})).await.body);
    let up = w.put_upload(&id, png(10, 10)).await;
    assert_eq!(
        w.process(&up, MAX_BYTES + 1).await,
        Processed::Refused(Refused::Size(MAX_BYTES + 1))
    );
    assert!(!w.exists(&up.key()).await);
    // An object under uploads/ whose key no grant makes.
    let bucket = w.app.bucket().unwrap();
    bucket
        .put("uploads/stray.png", png(2, 2), "image/png", "no-store")
        .await
        .unwrap();
    let created = local_api::s3::Created {
        event_name: "ObjectCreated:Put",
        bucket: w.bucket.clone(),
        key: "uploads/stray.png".into(),
        size: 10,
        etag: String::new(),
    };
    let event = serde_json::from_value(local_api::s3::event(&created, "us-east-1", "x")).unwrap();
    let outcomes = process_photos(&w.app, event).await.unwrap();
    assert_eq!(outcomes, vec![Processed::NotAnUpload]);
    assert!(!w.exists("uploads/stray.png").await);
    // Outside uploads/ (a wider event filter): not process-photo's to delete.
    bucket
        .put("photos/kept.png", png(2, 2), "image/png", "no-store")
        .await
        .unwrap();
    let created = local_api::s3::Created {
        key: "photos/kept.png".into(),
        ..created
    };
    let event = serde_json::from_value(local_api::s3::event(&created, "us-east-1", "x")).unwrap();
    let outcomes = process_photos(&w.app, event).await.unwrap();
    assert_eq!(outcomes, vec![Processed::NotAnUpload]);
    assert!(w.exists("photos/kept.png").await);
    assert_eq!(w.api.get(&id).await.body["version"], 1);
}

/// `events/process-photo.json` (what `sam local generate-event s3 put` prints, usable with
/// `sam local invoke ProcessPhotoFunction -e`) is the event process-photo reads, and the
/// runner's own events have its shape.
#[test]
fn the_s3_event_fixture_and_the_runners_events_name_an_upload() {
    let raw =
        std::fs::read_to_string(profiles_tests::repo_path("events/process-photo.json")).unwrap();
    let event: aws_lambda_events::event::s3::S3Event = serde_json::from_str(&raw).unwrap();
    let key = event.records[0].s3.object.key.as_deref().unwrap();
    let upload = Upload::parse(key).unwrap();
    assert_eq!(upload.tenant.as_str(), "tenant-a");
    let fixture: Value = serde_json::from_str(&raw).unwrap();
    let created = local_api::s3::Created {
        event_name: "ObjectCreated:Post",
        bucket: "b".into(),
        key: "uploads/t/a b+c".into(),
        size: 3,
        etag: "e".into(),
    };
    let ours = local_api::s3::event(&created, "us-east-1", "Uploaded");
    let shape = |v: &Value| -> Vec<String> {
        let r = &v["Records"][0];
        let mut keys: Vec<String> = r.as_object().unwrap().keys().cloned().collect();
        keys.extend(
            r["s3"]["object"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| format!("object.{k}")),
        );
        keys.sort();
        keys
    };
    assert_eq!(shape(&ours), shape(&fixture));
    // S3 sends keys URL-encoded, a space as `+`.
    assert_eq!(
        ours["Records"][0]["s3"]["object"]["key"],
        "uploads/t/a+b%2Bc"
    );
}

/// S3 down while an upload is processed: the invocation fails as unavailable (Lambda retries
/// it, and the upload is still there to retry with), within the function's time budget, and
/// the profile does not change.
#[tokio::test]
async fn s3_down_fails_the_invocation_for_a_retry_and_changes_nothing() {
    let mut w = Quiet::start().await;
    let id = id_of(&w.api.create(json!({"name": "Acme"})).await.body);
    let up = w.put_upload(&id, png(10, 10)).await;
    w.s3.stop().await;
    let started = Instant::now();
    let failed = process_photos(&w.app, w.event_of(&up, 10))
        .await
        .unwrap_err();
    assert!(failed.is_outage(), "{failed:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "within the budget"
    );
    let shown = w.api.get(&id).await.body;
    assert_eq!(shown["version"], 1);
    assert_eq!(shown["photo_url"], Value::Null);
}

/// Unsigned reads reach only the distribution's folder: not another folder, even through a
/// `..` segment sent as is (an HTTP client would normalise it away; a raw request does not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_reads_cannot_climb_out_of_the_photo_folder() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let api = Runner::start_default().await;
    let s3 = bucket_of(&api);
    let bucket = bucket_name();
    s3.put_object()
        .bucket(&bucket)
        .key("private/secret.txt")
        .body(b"secret".to_vec().into())
        .send()
        .await
        .unwrap();
    let host = api
        .server
        .s3
        .endpoint
        .trim_start_matches("http://")
        .to_owned();
    for path in [
        format!("/{bucket}/private/secret.txt"),
        format!("/{bucket}/photos/../private/secret.txt"),
        format!("/{bucket}/photos/%2E%2E/private/secret.txt"),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let status = answer.split(' ').nth(1).unwrap_or_default().to_owned();
        assert!(status.starts_with('4'), "{path}: {answer}");
        assert!(
            !answer.contains("secret\r\n") && !answer.ends_with("secret"),
            "{path}: {answer}"
        );
    }
}
