//! Every function's IAM policy, proven against the calls it makes: each function runs its
//! scenarios (every path that reaches a different AWS action) in process, on a real engine
//! and a real embedded S3, through clients that record each call as IAM sees it (action and
//! resource ARN). Every call must be allowed by the function's own statements in
//! `template.yaml`, as the template reader resolves them; every action a statement grants
//! must have been used; and removing any one action from a policy must refuse a call.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use shared::config::env;
use std::collections::BTreeSet;

use profiles_tests::{Api, Engine, Event, IamRecorder, QuietS3, TestCaller, id_of, repo_path};
use serde_json::{Value, json};
use shared::app::App;
use shared::ids::TenantId;
use shared::photo::Upload;

type Calls = BTreeSet<(String, String)>;

/// Actions a policy grants that no call names, each with its reason.
const GRANTED_BUT_NOT_CALLED: &[(&str, &str, &str)] = &[(
    "ProcessPhotoFunction",
    "s3:ListBucket",
    "no call lists the bucket: it makes S3 answer a GetObject of an upload already processed \
     with 404, not 403 (an event delivered twice)",
)];

struct World {
    engine: Engine,
    _s3: local_api::s3::EmbeddedS3,
    config: shared::config::Config,
    bucket: String,
    jobs_bucket: String,
}

impl World {
    async fn start() -> Self {
        let template = local_api::template::Template::load(&repo_path("template.yaml")).unwrap();
        let buckets = template.buckets().unwrap();
        let name = |id: &str| buckets.iter().find(|(i, _)| i == id).unwrap().1.clone();
        let (bucket, jobs_bucket) = (name("PhotoBucket"), name("JobsBucket"));
        let q = QuietS3::start_with_jobs(&bucket, &jobs_bucket).await;
        Self {
            engine: q.engine,
            _s3: q.s3,
            config: q.config,
            bucket: q.bucket,
            jobs_bucket,
        }
    }

    /// The API as a function builds it, without recording: for a scenario's setup.
    fn plain(&self) -> Api {
        Api {
            engine: self.engine.clone(),
            app: App::new(self.config.clone()),
            caller: TestCaller::default(),
        }
    }

    /// The API whose DynamoDB and S3 clients record every call.
    fn recording(&self) -> (Api, IamRecorder) {
        let recorder = IamRecorder::default();
        let dynamodb = shared::store::dynamodb_client(&self.config);
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            dynamodb
                .config()
                .to_builder()
                .interceptor(recorder.clone())
                .build(),
        );
        let s3 = shared::store::s3_client(&self.config);
        let s3 = aws_sdk_s3::Client::from_conf(
            s3.config()
                .to_builder()
                .interceptor(recorder.clone())
                .build(),
        );
        let store = shared::store::Store::new(dynamodb, self.config.table_name.clone());
        let app = App::with_store(self.config.clone(), store)
            .with_bucket(shared::store::Bucket::with_client(s3.clone(), &self.bucket))
            .with_jobs_bucket(shared::store::Bucket::with_client(s3, &self.jobs_bucket));
        let api = Api {
            engine: self.engine.clone(),
            app,
            caller: TestCaller::default(),
        };
        (api, recorder)
    }

    /// An upload for `profile` in the bucket, and the event S3 sends for it.
    async fn upload(&self, app: &App, profile: &str) -> aws_lambda_events::event::s3::S3Event {
        let upload = Upload::new(TenantId::new("tenant-a").unwrap(), profile.parse().unwrap());
        let png = profiles_tests::png(2, 2);
        let size = png.len() as u64;
        app.bucket()
            .unwrap()
            .put(&upload.key(), png, "image/png", "no-store")
            .await
            .unwrap();
        let created = local_api::s3::Created {
            event_name: "ObjectCreated:Post",
            bucket: self.bucket.clone(),
            key: upload.key(),
            size,
            etag: String::new(),
        };
        serde_json::from_value(local_api::s3::event(&created, "us-east-1", "Uploaded")).unwrap()
    }
}

/// What `binary` calls in its scenarios.
async fn scenarios(w: &World, binary: &str) -> Calls {
    let p = w.plain();
    let (r, rec) = w.recording();
    let profile = |body: Value| {
        let p = &p;
        async move { id_of(&p.created(body).await) }
    };
    let ok = |reply: profiles_tests::Reply| {
        assert!(
            reply.status < 300,
            "{binary}: {} {}",
            reply.status,
            reply.raw_body
        );
    };
    match binary {
        "authorizer" => {
            let (key, _) = shared::apikeys::create(
                &p.app.store,
                &TenantId::new("tenant-a").unwrap(),
                &shared::ids::PrincipalId::new("user-1").unwrap(),
                shared::auth::Scopes::all(),
                None,
            )
            .await
            .unwrap();
            let mut e: Value = serde_json::from_str(
                &std::fs::read_to_string(repo_path("events/authorizer.json")).unwrap(),
            )
            .unwrap();
            e["headers"]["Authorization"] = json!(format!("Bearer {}", key.expose()));
            e["multiValueHeaders"]["Authorization"] = json!([format!("Bearer {}", key.expose())]);
            let answer =
                edge::authorizer::authorize(&r.app, serde_json::from_value(e.clone()).unwrap())
                    .await;
            assert!(answer.is_ok(), "{answer:?}");
            // A JWT caller: its own rate limit in the table.
            let secret = "policy-test-hs256-secret-of-32-bytes-at-least";
            let base = r.app.config.clone();
            let jwt = shared::config::Config::from_lookup(|k| match k {
                env::TABLE_NAME => Some(base.table_name.clone()),
                env::DYNAMODB_ENDPOINT => base.dynamodb_endpoint.clone(),
                env::JWT_ISSUER => Some("https://issuer.test".into()),
                env::JWT_AUDIENCE => Some("profiles-api".into()),
                env::JWT_HS256_SECRET => Some(secret.into()),
                env::JWT_USAGE_KEY => Some("jwt-callers-policy-test-stack".into()),
                env::JWT_CALLER_BURST_LIMIT => Some("10".into()),
                env::JWT_CALLER_RATE_LIMIT => Some("2.5".into()),
                _ => None,
            })
            .unwrap()
            .jwt;
            let app = App::with_store(shared::config::Config { jwt, ..base }, r.app.store.clone());
            let token = crate::local_api::jwt(
                secret,
                "https://issuer.test",
                "profiles-api",
                "tenant-a",
                "user-2",
            );
            e["headers"]["Authorization"] = json!(format!("Bearer {token}"));
            e["multiValueHeaders"]["Authorization"] = json!([format!("Bearer {token}")]);
            let answer =
                edge::authorizer::authorize(&app, serde_json::from_value(e).unwrap()).await;
            assert!(answer.is_ok(), "{answer:?}");
        }
        "create-profile" => {
            ok(r.create(json!({"name": "A", "external_id": "x-1"})).await);
            // Claiming the primary mark reads the pointer.
            ok(r.create(json!({"name": "B", "is_primary": true})).await);
            // A taken external id: its holder is named.
            assert_eq!(
                r.create(json!({"name": "C", "external_id": "x-1"}))
                    .await
                    .status,
                409
            );
        }
        "get-profile" => ok(r.get(&profile(json!({"name": "A"})).await).await),
        "get-primary-profile" => {
            profile(json!({"name": "A"})).await;
            ok(r.me().await);
        }
        "list-profiles" => {
            profile(json!({"name": "A", "external_id": "x-list"})).await;
            ok(r.list(&[]).await);
            ok(r.list(&[("filter[external_id]", "x-list")]).await);
        }
        "update-profile" | "replace-profile" => {
            profile(json!({"name": "First"})).await;
            let id = profile(json!({"name": "Second", "slug": format!("{binary}-1")})).await;
            let body = json!({"name": "Second", "slug": format!("{binary}-2"), "is_primary": true});
            let reply = if binary == "update-profile" {
                r.patch(&id, body).await
            } else {
                r.put(&id, body).await
            };
            ok(reply);
        }
        "delete-profile" => {
            let id = profile(json!({"name": "A"})).await;
            let event = w.upload(&p.app, &id).await;
            shared::photo::process::process_photos(&p.app, event)
                .await
                .unwrap();
            ok(r.delete(&id).await);
        }
        "list-contacts" => ok(r.list_contacts(&profile(json!({"name": "A"})).await).await),
        "create-contact" => {
            let id = profile(json!({"name": "A"})).await;
            ok(
                r.create_contact(&id, json!({"key": "email", "value": "a@b.co"}))
                    .await,
            );
        }
        "get-contact" | "update-contact" | "delete-contact" => {
            let id = profile(json!({"name": "A"})).await;
            let contact = p
                .created_contact(&id, json!({"key": "email", "value": "a@b.co"}))
                .await;
            let cid = contact["id"].as_str().unwrap();
            ok(match binary {
                "get-contact" => r.get_contact(&id, cid).await,
                "update-contact" => {
                    r.update_contact("PATCH", &id, cid, json!({"value": "c@d.co"}))
                        .await
                }
                _ => r.delete_contact(&id, cid).await,
            });
        }
        "create-photo-upload" => {
            let id = profile(json!({"name": "A"})).await;
            let reply = r
                .send(
                    "create-photo-upload",
                    Event::load("create-photo-upload")
                        .profile_id(&id)
                        .header("Idempotency-Key", "policy-1"),
                )
                .await;
            assert_eq!(reply.status, 201, "{}", reply.raw_body);
            // The form is signed with this function's credentials: the client's POST is this
            // role's s3:PutObject.
            let key = reply.body["fields"]["key"].as_str().unwrap();
            let mut calls = rec.take();
            calls.insert((
                "s3:PutObject".into(),
                format!("arn:aws:s3:::{}/{key}", w.bucket),
            ));
            return calls;
        }
        "process-photo" => {
            let id = profile(json!({"name": "A"})).await;
            for _ in 0..2 {
                // The second replaces the first, whose object is deleted.
                let event = w.upload(&p.app, &id).await;
                let done = shared::photo::process::process_photos(&r.app, event)
                    .await
                    .unwrap();
                assert!(
                    matches!(done[0], shared::photo::process::Processed::Accepted { .. }),
                    "{done:?}"
                );
            }
        }
        "publish-events" => {
            // A stream batch (a profile created, renamed, deleted) onto the bus as the runner
            // serves it, through a client that records its calls.
            let template =
                local_api::template::Template::load(&repo_path("template.yaml")).unwrap();
            let (_, bus_name) = template.buses().unwrap().remove(0);
            let quiet: local_api::runtime::LogSink = std::sync::Arc::new(|_: &str| {});
            let local = local_api::bus::LocalBus::start(&template, "us-east-1", None, quiet)
                .await
                .unwrap();
            let config = shared::config::Config::from_lookup(|k| match k {
                env::TABLE_NAME => Some(w.engine.table.clone()),
                env::EVENT_BUS_NAME => Some(bus_name.clone()),
                env::EVENTBRIDGE_ENDPOINT => Some(local.endpoint.clone()),
                _ => None,
            })
            .unwrap();
            let plain = shared::bus::Bus::from_config(&config).unwrap();
            let client = aws_sdk_eventbridge::Client::from_conf(
                plain
                    .client()
                    .config()
                    .to_builder()
                    .interceptor(rec.clone())
                    .build(),
            );
            let bus = shared::bus::Bus::with_client(client, &bus_name);
            let batch: Value = serde_json::from_str(
                &std::fs::read_to_string(repo_path("events/publish-events.json")).unwrap(),
            )
            .unwrap();
            let answer = shared::events::publish(&bus, "profiles-api/profiles-local", &batch)
                .await
                .unwrap();
            assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
            local.stop();
        }
        "bulk-jobs" => {
            let reply = r
                .send(
                    "bulk-jobs",
                    Event::load("bulk-jobs").header("Idempotency-Key", "policy-import"),
                )
                .await;
            assert_eq!(reply.status, 201, "{}", reply.raw_body);
            // The form is signed with this function's credentials: the client's POST is this
            // role's s3:PutObject.
            let key = reply.body["upload"]["fields"]["key"].as_str().unwrap();
            let mut extra = vec![(
                "s3:PutObject".to_owned(),
                format!("arn:aws:s3:::{}/{key}", w.jobs_bucket),
            )];
            let import = reply.body["id"].as_str().unwrap().to_owned();
            ok(r.send(
                "bulk-jobs",
                Event::load("get-import").path_param("/imports/{job_id}", "job_id", &import),
            )
            .await);
            let reply = r
                .send(
                    "bulk-jobs",
                    Event::load("bulk-jobs")
                        .resource("/exports", "/exports")
                        .no_body(),
                )
                .await;
            assert_eq!(reply.status, 201, "{}", reply.raw_body);
            let export = reply.body["id"].as_str().unwrap().to_owned();
            // Its worker, then its download: presigned, so the client's GET is this role's.
            let wake = p.app.jobs_bucket().unwrap().keys("wake/").await.unwrap();
            let budget = shared::bulk::Budget {
                deadline: std::time::SystemTime::now() + std::time::Duration::from_secs(600),
            };
            shared::bulk::work(&p.app, wake.last().unwrap(), budget)
                .await
                .unwrap();
            let reply = r
                .send(
                    "bulk-jobs",
                    Event::load("get-import").path_param("/exports/{job_id}", "job_id", &export),
                )
                .await;
            assert_eq!(reply.status, 200, "{}", reply.raw_body);
            let job = p
                .app
                .store
                .job(
                    &TenantId::new("tenant-a").unwrap(),
                    &export.parse().unwrap(),
                )
                .await
                .unwrap()
                .unwrap();
            extra.push((
                "s3:GetObject".to_owned(),
                format!("arn:aws:s3:::{}/{}", w.jobs_bucket, job.result_key.unwrap()),
            ));
            let mut calls = rec.take();
            calls.extend(extra);
            return calls;
        }
        "run-jobs" => {
            let tenant = TenantId::new("tenant-a").unwrap();
            let stored =
                profile(json!({"name": "Held", "slug": "held", "external_id": "ext-held"})).await;
            let owner = shared::ids::PrincipalId::new("importer").unwrap();
            let run = |job: shared::model::job::Job, file: &'static str| {
                let (r, tenant) = (&r, &tenant);
                async move {
                    r.app.store.insert_job(tenant, &job, None).await.unwrap();
                    let keys = shared::bulk::Keys {
                        tenant,
                        job: &job.id,
                    };
                    let key = if file.is_empty() {
                        keys.wake()
                    } else {
                        keys.file()
                    };
                    r.app
                        .jobs_bucket()
                        .unwrap()
                        .put(
                            &key,
                            file.as_bytes().to_vec(),
                            "application/x-ndjson",
                            "no-store",
                        )
                        .await
                        .unwrap();
                    if !file.is_empty() {
                        // Short of time first: an import hands over with a wake object.
                        let spent = shared::bulk::Budget {
                            deadline: std::time::SystemTime::now(),
                        };
                        assert_eq!(
                            shared::bulk::work(&r.app, &key, spent).await.unwrap(),
                            shared::bulk::Worked::Continued
                        );
                    }
                    let budget = shared::bulk::Budget {
                        deadline: std::time::SystemTime::now()
                            + std::time::Duration::from_secs(600),
                    };
                    assert_eq!(
                        shared::bulk::work(&r.app, &key, budget).await.unwrap(),
                        shared::bulk::Worked::Done
                    );
                }
            };
            // An upsert: a new profile with a contact; the stored one renamed (its slug's
            // guard moved) and given a contact; a bad line (its report).
            let file = "{\"name\": \"New\", \"external_id\": \"ext-new\", \"contacts\": [{\"key\": \"email\", \"value\": \"n@example.com\"}]}\n\
                        {\"name\": \"Held\", \"slug\": \"held-2\", \"external_id\": \"ext-held\", \"contacts\": [{\"key\": \"email\", \"value\": \"h@example.com\"}]}\n\
                        {\"name\": \"Bad\"}\n";
            run(
                shared::model::job::Job::import(shared::model::job::Mode::Upsert, owner.clone()),
                file,
            )
            .await;
            assert!(!stored.is_empty());
            // An export: the list's pages and each profile's partition.
            run(shared::model::job::Job::export(owner), "").await;
        }
        other => panic!("no scenario for {other}: every function needs one"),
    }
    rec.take()
}

/// Run on a thread of its own with a large stack: eighteen functions' handlers polled from one
/// future overflow a debug build's default 2 MB test-thread stack.
#[test]
fn every_function_calls_only_what_its_policy_allows_and_its_policy_allows_only_what_it_calls() {
    let run = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_stack_size(64 << 20)
            .enable_all()
            .build()
            .unwrap()
            .block_on(prove_policies())
    };
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}

async fn prove_policies() {
    let w = World::start().await;
    let template = local_api::template::Template::load(&repo_path("template.yaml"))
        .unwrap()
        .with_local("us-east-1", Some("http://127.0.0.1:9"));
    let functions = template.functions(&w.engine.table).unwrap();
    assert_eq!(functions.len(), 18, "every function has its scenarios");
    for f in &functions {
        let calls = Box::pin(scenarios(&w, &f.binary)).await;
        assert!(!calls.is_empty(), "{}: its scenarios called nothing", f.id);
        let policy = template.policies(&f.id, &w.engine.table).unwrap();
        prove(&f.id, &policy, &calls);
    }
}

/// Every call is allowed by `policy` (`id`'s), every action it grants is called (but the
/// excused ones), and without any one of them some call is refused.
fn prove(id: &str, policy: &[local_api::template::Allow], calls: &Calls) {
    let allowed = |policy: &[local_api::template::Allow], (action, resource): &(String, String)| {
        policy.iter().any(|s| s.allows(action, resource))
    };
    for call in calls {
        assert!(
            allowed(policy, call),
            "{id}: {} on {} is not in its policy",
            call.0,
            call.1
        );
    }
    let granted: BTreeSet<&str> = policy
        .iter()
        .flat_map(|s| s.actions.iter().map(String::as_str))
        .collect();
    for action in granted {
        let excused = GRANTED_BUT_NOT_CALLED
            .iter()
            .any(|(excused_id, a, _)| *excused_id == id && *a == action);
        let used = calls.iter().any(|(a, _)| a.eq_ignore_ascii_case(action));
        assert!(
            used || excused,
            "{id}: its policy grants {action}, which it never calls"
        );
        if excused {
            continue;
        }
        // Without this one action, some call is refused: the test would catch its removal.
        let reduced: Vec<local_api::template::Allow> = policy
            .iter()
            .map(|s| local_api::template::Allow {
                actions: s.actions.iter().filter(|a| *a != action).cloned().collect(),
                resources: s.resources.clone(),
            })
            .collect();
        assert!(
            calls.iter().any(|c| !allowed(&reduced, c)),
            "{id}: removing {action} refuses nothing"
        );
    }
}

/// The `keys` command's managed policy (`KeysOperatorPolicy`), proven as the functions' are,
/// against the calls `keys` makes: create (the key's record, its usage key registered),
/// register again (found, already in the plan), list, revoke (the record, then out of the
/// plan) and migrate (a profile of an older shape rewritten).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_operator_policy_allows_what_keys_calls_and_nothing_more() {
    let w = World::start().await;
    let p = w.plain();
    let id = id_of(&p.created(json!({"name": "Old shape"})).await);
    for mut item in w.engine.all_items().await {
        if shared::store::schema::profile_of(&item).is_some() {
            item.retain(|k, _| !k.starts_with("S_"));
            w.engine
                .client
                .put_item()
                .table_name(&w.engine.table)
                .set_item(Some(item))
                .send()
                .await
                .unwrap();
        }
    }
    let (r, rec) = w.recording();
    let registry = std::sync::Arc::new(
        local_api::gateway::Registry::load(None, ["ProfilesUsagePlan".to_owned()].into(), &[])
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let serving = local_api::gateway::serve(registry, listener);
    let gateway = keys::gateway::Gateway::new(&r.app.config, Some(&url), "ProfilesUsagePlan")
        .with_interceptor(rec.clone());

    let tenant = TenantId::new("tenant-a").unwrap();
    let (_, record) = shared::apikeys::create(
        &r.app.store,
        &tenant,
        &shared::ids::PrincipalId::new("ops").unwrap(),
        shared::auth::Scopes::all(),
        Some("operator"),
    )
    .await
    .unwrap();
    let name = keys::gateway::key_name(&record.key_id);
    assert!(
        gateway
            .register(&name, &record.usage_key)
            .await
            .unwrap()
            .joined_plan
    );
    let listed = shared::apikeys::list(&r.app.store, &tenant).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        !gateway
            .register(&name, &record.usage_key)
            .await
            .unwrap()
            .joined_plan
    );
    assert!(
        shared::apikeys::revoke(&r.app.store, &tenant, &record.key_id)
            .await
            .unwrap()
    );
    assert!(gateway.unregister(&name).await.unwrap());
    let pace = shared::store::Pace {
        page: 10,
        items_per_second: 1000.0,
    };
    let done = r.app.store.backfill(None, pace, |_| true).await.unwrap();
    assert_eq!(done.rewritten, 1, "the old-shape profile {id}");
    let now = shared::store::MovePace {
        settle: std::time::Duration::ZERO,
        page: 10,
    };
    let moved = r.app.store.relayout(&tenant, 2, now, |_| {}).await.unwrap();
    assert_eq!(moved.rewritten, 1, "`keys shards` moved the profile");
    serving.abort();

    let calls = rec.take();
    let template = local_api::template::Template::load(&repo_path("template.yaml"))
        .unwrap()
        .with_local("us-east-1", Some("http://127.0.0.1:9"));
    let policy = template
        .policies("KeysOperatorPolicy", &w.engine.table)
        .unwrap();
    assert!(
        calls.iter().any(|(a, _)| a.starts_with("apigateway:")),
        "{calls:?}"
    );
    prove("KeysOperatorPolicy", &policy, &calls);
}

/// Operations: every function has an errors and a throttles alarm on its own metrics, and
/// every alarm notifies the optional topic (docs/deploy.md).
#[test]
fn every_function_has_its_errors_and_throttles_alarms() {
    let raw = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    let doc: yaml_serde::Value = yaml_serde::from_str(&raw).unwrap();
    let resources = doc["Resources"].as_mapping().unwrap();
    let of_type = |t: &str| -> Vec<(String, yaml_serde::Value)> {
        resources
            .iter()
            .filter(|(_, r)| r["Type"].as_str() == Some(t))
            .map(|(k, r)| (k.as_str().unwrap().to_owned(), r.clone()))
            .collect()
    };
    let alarms = of_type("AWS::CloudWatch::Alarm");
    // Every function of the file, the conditional ones (cors-preflight) included.
    let functions = of_type("AWS::Serverless::Function");
    assert_eq!(functions.len(), 19);
    for (id, f) in &functions {
        for metric in ["Errors", "Throttles"] {
            let found = alarms.iter().any(|(_, a)| {
                let p = &a["Properties"];
                let dims = format!("{:?}", p["Dimensions"]);
                p["Namespace"].as_str() == Some("AWS/Lambda")
                    && p["MetricName"].as_str() == Some(metric)
                    && dims.contains(&format!("\"{id}\""))
            });
            assert!(found, "{id} has no {metric} alarm");
            // A conditional function's alarms share its condition (else they would watch
            // a function that is not there).
            let conditions: Vec<_> = alarms
                .iter()
                .filter(|(_, a)| {
                    format!("{:?}", a["Properties"]["Dimensions"]).contains(&format!("\"{id}\""))
                })
                .map(|(_, a)| a["Condition"].clone())
                .collect();
            assert!(
                conditions.iter().all(|c| *c == f["Condition"]),
                "{id}: {conditions:?}"
            );
        }
    }
    for (name, alarm) in &alarms {
        let actions = format!("{:?}", alarm["Properties"]["AlarmActions"]);
        assert!(actions.contains("AlarmTopicArn"), "{name} notifies no one");
    }
}

/// Logs: every function writes to a log group of its own that the stack makes (its
/// `LoggingConfig.LogGroup` a `!Ref` to it, so Lambda never makes one that keeps lines
/// forever), named after the stack and the function's binary, kept `LogRetentionDays`, with
/// the function's condition. The functions' roles may write there: SAM gives each the
/// managed policy AWSLambdaBasicExecutionRole (logs on `*`), which this test cannot see.
#[test]
fn every_function_logs_to_a_group_of_its_own_kept_log_retention_days() {
    let raw = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    let doc: yaml_serde::Value = yaml_serde::from_str(&raw).unwrap();
    let resources = doc["Resources"].as_mapping().unwrap();
    let mut groups = BTreeSet::new();
    for (id, f) in resources {
        if f["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().unwrap();
        let group_ref = format!("{:?}", f["Properties"]["LoggingConfig"]["LogGroup"]);
        let group_id = resources
            .iter()
            .map(|(k, _)| k.as_str().unwrap())
            .find(|k| group_ref == format!("{:?}", yaml_ref(k)))
            .unwrap_or_else(|| panic!("{id}: its LogGroup is not a !Ref to a resource"));
        let group = &doc["Resources"][group_id];
        assert_eq!(group["Type"].as_str(), Some("AWS::Logs::LogGroup"), "{id}");
        assert!(groups.insert(group_id.to_owned()), "{id} shares {group_id}");
        assert_eq!(group["Condition"], f["Condition"], "{id}: {group_id}");
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        let name = format!("{:?}", group["Properties"]["LogGroupName"]);
        assert!(
            name.contains(&format!("/aws/lambda/${{AWS::StackName}}/{binary}\"")),
            "{group_id}: {name}"
        );
        assert_eq!(
            format!("{:?}", group["Properties"]["RetentionInDays"]),
            format!("{:?}", yaml_ref("LogRetentionDays")),
            "{group_id}"
        );
    }
    assert_eq!(groups.len(), 19);
}

/// The authorizer always runs its current configuration: API Gateway invokes the function
/// itself, never an alias. SAM publishes a version only when the function as the template
/// writes it changes, not when a parameter's value does, so an alias would go on running
/// the JWT settings before a deploy, a rotated `JwtHs256Secret` among them
/// (docs/deploy.md#provisioned-concurrency-readprovisionedconcurrency).
#[test]
fn the_authorizer_is_invoked_as_itself_never_through_an_alias() {
    let raw = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    let doc: yaml_serde::Value = yaml_serde::from_str(&raw).unwrap();
    let auth = &doc["Resources"]["ProfilesApi"]["Properties"]["Auth"];
    let arn = &auth["Authorizers"]["ProfilesAuthorizer"]["FunctionArn"];
    let get_att = yaml_serde::Value::Tagged(Box::new(yaml_serde::value::TaggedValue {
        tag: yaml_serde::value::Tag::new("GetAtt"),
        value: yaml_serde::Value::String("AuthorizerFunction.Arn".to_owned()),
    }));
    assert_eq!(format!("{arn:?}"), format!("{get_att:?}"));
    let props = &doc["Resources"]["AuthorizerFunction"]["Properties"];
    for key in [
        "AutoPublishAlias",
        "AutoPublishAliasAllProperties",
        "AutoPublishCodeSha256",
        "ProvisionedConcurrencyConfig",
    ] {
        assert!(props[key].is_null(), "AuthorizerFunction has {key}");
        assert!(
            doc["Globals"]["Function"][key].is_null(),
            "Globals.Function has {key}"
        );
    }
}

/// `!Ref name`, as the YAML reader gives it.
fn yaml_ref(name: &str) -> yaml_serde::Value {
    yaml_serde::Value::Tagged(Box::new(yaml_serde::value::TaggedValue {
        tag: yaml_serde::value::Tag::new("Ref"),
        value: yaml_serde::Value::String(name.to_owned()),
    }))
}
