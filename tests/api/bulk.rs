//! Bulk imports and exports end to end: `POST /imports` grants a presigned S3 POST; the file
//! goes to the runner's embedded S3, which checks the policy (its size limit included); S3's
//! event invokes the real run-jobs binary, which writes the lines through the store and
//! saves its counts; `GET /imports/{id}` shows them with the error report's URL. Exports the
//! same way back. Then, in process on a real engine and a real embedded S3, a worker killed
//! mid-file and started again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant, SystemTime};

use profiles_tests::{QuietS3, Runner, repo_path};
use serde_json::{Value, json};
use shared::app::App;
use shared::bulk::{Budget, Keys, Worked, work};
use shared::ids::{PrincipalId, TenantId};
use shared::listing::{ListQuery, Sort, SortOrder};
use shared::model::job::{Job, Mode, Status};

/// The largest file the runner's S3 takes in these tests (the template's `ImportMaxBytes`).
const MAX_BYTES: u64 = 1_000_000;

async fn runner() -> Runner {
    let template = local_api::template::Template::load(&repo_path("template.yaml")).unwrap();
    let options = local_api::Options {
        parameter_overrides: vec![("ImportMaxBytes".into(), MAX_BYTES.to_string())],
        ..Default::default()
    };
    Runner::start_with(&template, options).await
}

/// Posts `grant`'s form with `bytes` as its file, as `curl -F` would: S3's status.
async fn upload(grant: &Value, bytes: Vec<u8>) -> u16 {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in grant["fields"].as_object().unwrap() {
        form = form.text(name.clone(), value.as_str().unwrap().to_owned());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("profiles.jsonl"),
    );
    let r = reqwest::Client::new()
        .post(grant["url"].as_str().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

/// A `GET` answered 200 (after the key's throttle, if it answers 429, lets it by).
async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    loop {
        let r = client.get(url).send().await.unwrap();
        if r.status() == 429 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        assert_eq!(r.status(), 200, "{url}");
        return r.json().await.unwrap();
    }
}

/// `GET` of a job until it is completed or failed.
async fn finished(api: &Runner, location: &str) -> Value {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let job = get_json(&api.http, &api.follow(location)).await;
        if job["status"] == "completed" || job["status"] == "failed" {
            return job;
        }
        assert!(Instant::now() < until, "the job never finished: {job}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An import of `file` in `mode`, to its end: the job as `GET /imports/{id}` shows it.
async fn import(api: &Runner, mode: &str, file: &str) -> Value {
    let r = api
        .http
        .post(api.url("/imports"))
        .json(&json!({ "mode": mode }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let job: Value = r.json().await.unwrap();
    assert_eq!(job["status"], "queued");
    assert_eq!(job["upload"]["max_bytes"], MAX_BYTES);
    assert_eq!(upload(&job["upload"], file.as_bytes().to_vec()).await, 204);
    finished(api, &location).await
}

/// The lines of a download URL's file.
async fn download(url: &Value) -> Vec<Value> {
    let text = reqwest::get(url.as_str().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every profile of the runner's default tenant, oldest first.
async fn all_profiles(api: &Runner) -> Vec<Value> {
    let mut out = Vec::new();
    let mut url = api.url("/profiles?limit=100&sort_by=created_at&sort_order=asc");
    loop {
        let mut page = get_json(&api.http, &url).await;
        out.append(page["data"].as_array_mut().unwrap());
        match page["next_cursor"].as_str() {
            Some(c) => {
                url = api.url(&format!(
                    "/profiles?limit=100&sort_by=created_at&sort_order=asc&cursor={c}"
                ))
            }
            None => return out,
        }
    }
}

#[tokio::test]
async fn an_import_writes_good_lines_names_every_bad_one_and_upserts_without_duplicates() {
    let api = runner().await;
    // One already stored: a create-mode line with its external id fails.
    let r = api
        .http
        .post(api.url("/profiles"))
        .json(&json!({"name": "Stored", "external_id": "stored-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let file = [
        r#"{"name": "Ada Lovelace", "external_id": "crm-1", "email": "ada@example.com", "contacts": [{"key": "email", "value": "ada@example.com"}]}"#,
        r#"{"name": "Bad JSON", "external_id": "crm-2""#,
        "",
        r#"{"name": "Unknown", "favourite_colour": "blue"}"#,
        r#"{"name": "Bad email", "email": "not-an-email", "external_id": "crm-4"}"#,
        r#"{"name": "Duplicate of line 1", "external_id": "crm-1"}"#,
        r#"{"name": "Stored elsewhere", "external_id": "stored-1"}"#,
        r#"{"name": "Grace Hopper", "external_id": "crm-7", "tags": ["navy"]}"#,
        r#"["not", "an", "object"]"#,
    ]
    .join("\n");
    let job = import(&api, "create", &file).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        job["counts"],
        json!({"read": 8, "created": 2, "updated": 0, "failed": 6}),
        "{job}"
    );
    assert_eq!(job["lines"], 9);
    let codes: Vec<(u64, &str)> = job["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            (2, "malformed_json"),
            (4, "validation_failed"),
            (5, "validation_failed"),
            (6, "external_id_taken"),
            (7, "external_id_taken"),
            (9, "invalid_body"),
        ]
    );
    // The report names every bad line with its fields, as the API words them.
    let report = download(&job["error_report_url"]).await;
    assert_eq!(report.len(), 6);
    assert_eq!(report[1]["errors"][0]["field"], "favourite_colour");
    assert_eq!(report[1]["errors"][0]["message"], "unknown field");
    assert_eq!(report[2]["errors"][0]["field"], "email");
    assert_eq!(report[3]["errors"][0]["field"], "external_id");
    // Written as a POST writes: with its contacts, found by its external id.
    let profiles = all_profiles(&api).await;
    assert_eq!(profiles.len(), 3);
    let ada = &profiles[1];
    assert_eq!(ada["name"], "Ada Lovelace");
    let url = api.url(&format!("/profiles/{}", ada["id"].as_str().unwrap()));
    let full = get_json(&api.http, &url).await;
    assert_eq!(full["contacts"][0]["value"], "ada@example.com");

    // Upsert: matched on external_id, twice over, never a duplicate.
    let upsert = [
        r#"{"name": "Ada King", "external_id": "crm-1", "contacts": [{"key": "phone", "value": "+44 20 7946 0000"}]}"#,
        r#"{"name": "Stored", "headline": "Now with a headline", "external_id": "stored-1"}"#,
        r#"{"name": "New in upsert", "external_id": "crm-9"}"#,
        r#"{"name": "No external id"}"#,
    ]
    .join("\n");
    let first = import(&api, "upsert", &upsert).await;
    assert_eq!(
        first["counts"],
        json!({"read": 4, "created": 1, "updated": 2, "failed": 1}),
        "{first}"
    );
    assert_eq!(first["errors"][0]["errors"][0]["field"], "external_id");
    let second = import(&api, "upsert", &upsert).await;
    assert_eq!(
        second["counts"],
        json!({"read": 4, "created": 0, "updated": 3, "failed": 1}),
        "{second}"
    );
    let profiles = all_profiles(&api).await;
    assert_eq!(profiles.len(), 4, "upsert twice makes one new profile");
    let ada = profiles
        .iter()
        .find(|p| p["external_id"] == "crm-1")
        .unwrap();
    assert_eq!(ada["name"], "Ada King");
    let url = api.url(&format!("/profiles/{}", ada["id"].as_str().unwrap()));
    let full = get_json(&api.http, &url).await;
    assert_eq!(full["contacts"].as_array().unwrap().len(), 2, "{full}");
    let stored = profiles
        .iter()
        .find(|p| p["external_id"] == "stored-1")
        .unwrap();
    assert_eq!(stored["headline"], "Now with a headline");
}

#[tokio::test]
async fn a_bad_file_fails_the_job_with_its_reason_and_s3_refuses_one_over_the_limit() {
    let api = runner().await;
    let csv = import(&api, "create", "name,email\nAda,ada@example.com\n").await;
    assert_eq!(csv["status"], "failed");
    assert_eq!(csv["failure"], "not JSONL: line 1 is not a JSON object");
    assert_eq!(csv["counts"]["created"], 0);

    let latin1 = b"{\"name\": \"Ok\"}\n{\"name\": \"Jos\xe9\"}\n{\"name\": \"Never read\"}\n";
    let r = api.http.post(api.url("/imports")).send().await.unwrap();
    assert_eq!(r.status(), 201, "a body is optional: mode is create");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let job: Value = r.json().await.unwrap();
    assert_eq!(job["mode"], "create");
    assert_eq!(upload(&job["upload"], latin1.to_vec()).await, 204);
    let job = finished(&api, &location).await;
    assert_eq!(job["status"], "failed");
    assert!(
        job["failure"].as_str().unwrap().contains("not UTF-8"),
        "{job}"
    );
    assert_eq!(job["counts"]["created"], 1, "lines before the bad one stay");

    // Over the form's limit: S3 itself refuses it, and the job stays queued.
    let r = api.http.post(api.url("/imports")).send().await.unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let job: Value = r.json().await.unwrap();
    let big = "{}\n".repeat(MAX_BYTES as usize / 3 + 1);
    assert_eq!(upload(&job["upload"], big.into_bytes()).await, 400);
    let job = get_json(&api.http, &api.follow(&location)).await;
    assert_eq!(job["status"], "queued");

    // Bad options: a 400 naming the field.
    for (body, field) in [
        (json!({"mode": "merge"}), "mode"),
        (json!({"mode": "create", "dry_run": true}), "dry_run"),
    ] {
        let r = api
            .http
            .post(api.url("/imports"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
}

#[tokio::test]
async fn another_tenants_job_is_a_404_an_export_needs_read_and_round_trips_into_an_import() {
    let api = runner().await;
    let file: String = (1..=250)
        .map(|i| {
            json!({
                "name": format!("Person {i}"),
                "external_id": format!("p-{i}"),
                "contacts": [{"key": "email", "value": format!("p{i}@example.com")}],
            })
            .to_string()
                + "\n"
        })
        .collect();
    let job = import(&api, "create", &file).await;
    assert_eq!(job["counts"]["created"], 250, "{job}");
    assert_eq!(job["error_report_url"], Value::Null);

    // Another tenant sees neither job.
    let other_key = api
        .create_key("tenant-b", "user-b", shared::auth::Scopes::all())
        .await;
    let other = profiles_tests::client_with_key(&other_key);
    let import_id = job["id"].as_str().unwrap();
    let r = other
        .get(api.url(&format!("/imports/{import_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // An import's id is no export's.
    let r = api
        .http
        .get(api.url(&format!("/exports/{import_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The file holds every contact: a key that may list but not read gets no export.
    let lister = api
        .create_key(
            "default",
            "lister",
            shared::auth::Scopes::default().with(shared::auth::Scope::Lists),
        )
        .await;
    let lister = profiles_tests::client_with_key(&lister);
    let r = lister.post(api.url("/exports")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = api.http.post(api.url("/exports")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let export = finished(&api, &location).await;
    assert_eq!(export["status"], "completed", "{export}");
    assert_eq!(export["count"], 250);
    assert_eq!(export["consistency"], "per_profile");
    let lines = download(&export["download_url"]).await;
    assert_eq!(lines.len(), 250);
    assert_eq!(lines[0]["external_id"], "p-1", "oldest first");
    assert_eq!(lines[0]["contacts"][0]["value"], "p1@example.com");
    let export_id = export["id"].as_str().unwrap();
    let r = other
        .get(api.url(&format!("/exports/{export_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The export, as it is, imported into the other tenant: every profile again (the
    // server's own fields ignored), with its contacts.
    let again: String = lines.iter().map(|p| p.to_string() + "\n").collect();
    let r = other
        .post(api.url("/imports"))
        .json(&json!({"mode": "create"}))
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let grant: Value = r.json().await.unwrap();
    assert_eq!(upload(&grant["upload"], again.into_bytes()).await, 204);
    let until = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let job = get_json(&other, &api.follow(&location)).await;
        if job["status"] == "completed" || job["status"] == "failed" {
            break job;
        }
        assert!(Instant::now() < until, "{job}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        job["counts"],
        json!({"read": 250, "created": 250, "updated": 0, "failed": 0}),
        "{job}"
    );
    let theirs = get_json(&other, &api.url("/profiles?filter[external_id]=p-7")).await;
    let theirs = &theirs["data"][0];
    assert_eq!(theirs["name"], lines[6]["name"]);
    assert_ne!(theirs["id"], lines[6]["id"], "a new profile, its own id");
}

/// In process: a worker is dropped mid-chunk (its lines partly written, no checkpoint
/// saved), as a crashed or timed-out instance would be; a worker given the same event again
/// resumes from the checkpoint and every line is written once, counted once.
#[tokio::test]
async fn a_worker_killed_mid_file_resumes_without_a_duplicate() {
    let q = QuietS3::start_with_jobs("photos-killed", "jobs-killed").await;
    let app = App::new(q.config.clone());
    let tenant = TenantId::new("tenant-k").unwrap();
    let job = Job::import(Mode::Create, PrincipalId::new("importer").unwrap());
    app.store.insert_job(&tenant, &job, None).await.unwrap();
    let keys = Keys {
        tenant: &tenant,
        job: &job.id,
    };
    let lines = 3_000;
    let file: String = (1..=lines)
        .map(|i| {
            json!({"name": format!("P {i}"), "external_id": format!("k-{i}")}).to_string() + "\n"
        })
        .collect();
    app.jobs_bucket()
        .unwrap()
        .put(
            &keys.file(),
            file.into_bytes(),
            "application/x-ndjson",
            "no-store",
        )
        .await
        .unwrap();
    let budget = Budget {
        deadline: SystemTime::now() + Duration::from_secs(600),
    };
    let key = keys.file();
    // Killed once some lines of the second chunk are written, before its checkpoint.
    let killed = tokio::time::timeout(Duration::from_secs(60), async {
        let worker = work(&app, &key, budget);
        tokio::pin!(worker);
        loop {
            tokio::select! {
                _ = &mut worker => panic!("the worker finished before it was killed"),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {
                    let count = count_profiles(&app, &tenant).await;
                    if count > 520 {
                        return count;
                    }
                }
            }
        }
    })
    .await
    .unwrap();
    let saved = app.store.job(&tenant, &job.id).await.unwrap().unwrap();
    assert_eq!(saved.status, Status::Processing);
    let written_past_checkpoint = killed as u64 - checkpoint_created(&saved);
    assert!(written_past_checkpoint > 0, "killed mid-chunk: {killed}");

    // The same event again (Lambda's retry): from the checkpoint to the end.
    assert_eq!(work(&app, &key, budget).await.unwrap(), Worked::Done);
    let done = app.store.job(&tenant, &job.id).await.unwrap().unwrap();
    assert_eq!(done.status, Status::Completed);
    assert_eq!(checkpoint_created(&done), lines as u64);
    assert_eq!(count_profiles(&app, &tenant).await, lines);
    // And once more (a duplicate event): nothing changes.
    assert_eq!(work(&app, &key, budget).await.unwrap(), Worked::Done);
    assert_eq!(count_profiles(&app, &tenant).await, lines);
}

/// A worker whose time runs low checkpoints and hands over: its wake object starts the next.
#[tokio::test]
async fn a_worker_short_of_time_hands_over_and_the_next_goes_on() {
    let q = QuietS3::start_with_jobs("photos-handover", "jobs-handover").await;
    let app = App::new(q.config.clone());
    let tenant = TenantId::new("tenant-h").unwrap();
    let job = Job::import(Mode::Create, PrincipalId::new("importer").unwrap());
    app.store.insert_job(&tenant, &job, None).await.unwrap();
    let keys = Keys {
        tenant: &tenant,
        job: &job.id,
    };
    app.jobs_bucket()
        .unwrap()
        .put(
            &keys.file(),
            b"{\"name\": \"A\"}\n".to_vec(),
            "application/x-ndjson",
            "no-store",
        )
        .await
        .unwrap();
    let spent = Budget {
        deadline: SystemTime::now(),
    };
    assert_eq!(
        work(&app, &keys.file(), spent).await.unwrap(),
        Worked::Continued
    );
    let wakes = app
        .jobs_bucket()
        .unwrap()
        .keys(&format!("wake/{tenant}/{}/", job.id))
        .await
        .unwrap();
    assert_eq!(wakes.len(), 1);
    let budget = Budget {
        deadline: SystemTime::now() + Duration::from_secs(600),
    };
    assert_eq!(work(&app, &wakes[0], budget).await.unwrap(), Worked::Done);
    assert_eq!(count_profiles(&app, &tenant).await, 1);
}

fn checkpoint_created(job: &Job) -> u64 {
    match &job.kind {
        shared::model::job::JobKind::Import { counts, .. } => counts.created,
        shared::model::job::JobKind::Export { .. } => 0,
    }
}

async fn count_profiles(app: &App, tenant: &TenantId) -> usize {
    let query = ListQuery {
        limit: 100,
        sort: Sort::CreatedAt,
        order: SortOrder::Asc,
        filters: Vec::new(),
        own: false,
    };
    let mut after = None;
    let mut n = 0;
    loop {
        let page = app
            .store
            .list(tenant, &query, after.as_ref())
            .await
            .unwrap();
        n += page.profiles.len();
        match page.next {
            Some(p) => after = Some(p),
            None => return n,
        }
    }
}

#[tokio::test]
async fn a_retried_import_with_its_idempotency_key_is_the_same_job_and_form() {
    let api = runner().await;
    let post = |body: Value| {
        api.http
            .post(api.url("/imports"))
            .header("Idempotency-Key", "import-1")
            .json(&body)
            .send()
    };
    let first = post(json!({"mode": "upsert"})).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = post(json!({"mode": "upsert"})).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["upload"], first["upload"]);
    // The key with another body: refused, no second job.
    let other = post(json!({"mode": "create"})).await.unwrap();
    assert_eq!(other.status(), 422);
}

/// run-jobs' fixture, S3's event of an import's file, as the function receives it: read into
/// the runtime's event type and worked (no such job in a fresh table: nothing to do, no error).
#[tokio::test]
async fn run_jobs_reads_s3s_event_of_an_imports_file() {
    let q = QuietS3::start_with_jobs("photos-fixture", "jobs-fixture").await;
    let app = App::new(q.config.clone());
    let event: aws_lambda_events::event::s3::S3Event =
        serde_json::from_str(&std::fs::read_to_string(repo_path("events/run-jobs.json")).unwrap())
            .unwrap();
    let key = event.records[0].s3.object.key.clone().unwrap();
    assert!(shared::bulk::job_of(&key).is_some(), "{key}");
    let budget = Budget {
        deadline: SystemTime::now() + Duration::from_secs(60),
    };
    let worked = shared::bulk::run_jobs(&app, event, budget).await.unwrap();
    assert_eq!(worked, [Worked::NoJob]);
}
