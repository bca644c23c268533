//! The `keys` command line end to end against an engine: create, list, revoke and register,
//! by endpoint or `--local`, with the runner's embedded API Gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use shared::config::env;
use std::process::Output;

use profiles_tests::{ENGINE_ENV, Engine};
use shared::apikeys;

use crate::{NOWHERE, allowed, assert_allows, event, refused};

/// Runs the built `keys` binary. Asynchronously: the test's engine serves on this runtime.
async fn keys<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let bin = profiles_tests::binaries()
        .get("keys")
        .expect("the keys binary");
    tokio::process::Command::new(bin)
        .args(args)
        .env_remove(env::DYNAMODB_ENDPOINT)
        .env_remove(env::TABLE_NAME)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[tokio::test]
async fn keys_cli_creates_lists_and_revokes_keys() {
    let engine = Engine::start().await;
    let app = engine.app();
    let conn = ["--endpoint", &engine.endpoint, "--table", &engine.table];
    let with = |args: &[&str]| -> Vec<String> {
        conn.iter().chain(args).map(|s| (*s).to_owned()).collect()
    };

    let out = keys(&with(&[
        "create",
        "--tenant",
        "tenant-cli",
        "--principal",
        "svc-cli",
        "--scopes",
        "profiles.read,profiles.lists",
        "--name",
        "nightly export",
    ]))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let key = text.lines().next().unwrap().to_owned();
    assert!(
        apikeys::is_well_formed(&key),
        "first line is the key: {text}"
    );
    assert_eq!(
        text.matches(&key[5..]).count(),
        1,
        "the key is printed once"
    );
    let key_id = text
        .lines()
        .find_map(|l| l.strip_prefix("key id:"))
        .unwrap()
        .trim()
        .to_owned();
    let usage_key = format!("usage-{key_id}");
    assert!(text.contains(&format!("usage key:  {usage_key}")), "{text}");
    // A bare engine names no usage plan: it says so, and how to register later.
    assert!(text.contains("usage plan: none named"), "{text}");
    assert!(text.contains("keys register"), "{text}");

    // The printed key works.
    let answer = allowed(&app, event(&[("x-api-key", &key)])).await;
    assert_allows(
        &answer,
        "tenant-cli",
        "svc-cli",
        "profiles.read profiles.lists",
        &usage_key,
    );

    let out = keys(&with(&["list", "--tenant", "tenant-cli"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = stdout(&out);
    let row = listing.lines().find(|l| l.starts_with(&key_id)).unwrap();
    assert!(row.contains("svc-cli"), "{listing}");
    assert!(row.contains("profiles.read profiles.lists"), "{listing}");
    assert!(row.contains("nightly export"), "{listing}");
    assert!(row.trim_end().ends_with("no"), "not revoked: {listing}");
    assert!(!listing.contains(&key[5..]), "no key in the list");

    let out = keys(&with(&["revoke", "--tenant", "tenant-cli", &key_id])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("revoked {key_id}")));
    refused(&app, event(&[("x-api-key", &key)])).await;

    let out = keys(&with(&["list", "--tenant", "tenant-cli"])).await;
    let listing = stdout(&out);
    let row = listing.lines().find(|l| l.starts_with(&key_id)).unwrap();
    assert!(!row.trim_end().ends_with("no"), "revoked: {listing}");

    // Revoking an id the tenant does not have fails (1); a bad command line is 2.
    let out = keys(&with(&["revoke", "--tenant", "tenant-other", &key_id])).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("has no API key"), "{}", stderr(&out));
    // (the command line, what stderr names): no principal, a misspelt scope.
    for (args, named) in [
        (
            &[
                "create",
                "--tenant",
                "tenant-cli",
                "--scopes",
                "profiles.read",
            ][..],
            "--principal",
        ),
        (
            &[
                "create",
                "--tenant",
                "tenant-cli",
                "--principal",
                "p",
                "--scopes",
                "profiles.reed",
            ][..],
            "profiles.reed",
        ),
    ] {
        let out = keys(&with(args)).await;
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains(named), "{}", stderr(&out));
    }
    let out = keys(&["--help"]).await;
    assert!(out.status.success());
    assert!(stdout(&out).contains("usage: keys"));

    // An engine that is not there: 1, with the cause.
    let out = keys(&[
        "--endpoint",
        NOWHERE,
        "--table",
        "profiles",
        "list",
        "--tenant",
        "t",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));

    // --local: the endpoint from <dir>/engine-endpoint and the table `profiles`. (Only on
    // the test's own engine: a shared one may already have a `profiles` table.)
    if std::env::var(ENGINE_ENV).is_err() {
        profiles_tests::create_table_from_template(&engine.client, "profiles").await;
        let dir = std::env::temp_dir().join(format!("keys-local-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(shared::localstate::ENGINE_ENDPOINT),
            format!("{}\n", engine.endpoint),
        )
        .unwrap();
        // The runner's embedded API Gateway, with one usage plan, and its two files.
        let registry = std::sync::Arc::new(
            local_api::gateway::Registry::load(None, ["LocalPlan".to_owned()].into(), &[]).unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gateway_url = format!("http://{}", listener.local_addr().unwrap());
        let serving = local_api::gateway::serve(registry.clone(), listener);
        std::fs::write(
            dir.join(shared::localstate::APIGATEWAY_ENDPOINT),
            &gateway_url,
        )
        .unwrap();
        std::fs::write(dir.join(shared::localstate::USAGE_PLAN_ID), "LocalPlan\n").unwrap();
        let plans = ["LocalPlan".to_owned()];
        let dir_arg = dir.to_str().unwrap();
        let out = keys(&[
            "--local",
            dir_arg,
            "create",
            "--tenant",
            "tenant-local",
            "--principal",
            "dev",
            "--scopes",
            "profiles.read",
        ])
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let local_id = text
            .lines()
            .find_map(|l| l.strip_prefix("key id:"))
            .unwrap()
            .trim()
            .to_owned();
        let usage_key = format!("usage-{local_id}");
        assert!(text.contains("usage plan: joined as"), "{text}");
        assert_eq!(
            registry.plan_of(&usage_key, &plans).as_deref(),
            Some("LocalPlan"),
            "create put the usage key in the plan: {text}"
        );
        // register is idempotent: the key and its place in the plan are found, not doubled.
        let out = keys(&[
            "--local",
            dir_arg,
            "register",
            "--tenant",
            "tenant-local",
            &local_id,
        ])
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("already holds"), "{}", stdout(&out));
        assert_eq!(
            registry
                .keys_named(Some(&format!("profiles-{local_id}")))
                .len(),
            1
        );
        // `--local=DIR` anywhere, here right before the key id.
        let out = keys(&[
            "revoke",
            "--tenant",
            "tenant-local",
            &format!("--local={dir_arg}"),
            &local_id,
        ])
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).contains("taken out and deleted"),
            "{}",
            stdout(&out)
        );
        assert_eq!(
            registry.plan_of(&usage_key, &plans),
            None,
            "revoke took it out"
        );
        assert!(
            registry
                .keys_named(Some(&format!("profiles-{local_id}")))
                .is_empty()
        );
        // A revoked key is not registered again.
        let out = keys(&[
            "--local",
            dir_arg,
            "register",
            "--tenant",
            "tenant-local",
            &local_id,
        ])
        .await;
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
        serving.abort();
        let missing = dir.join("nothing-here");
        let out = keys(&[
            "--local",
            missing.to_str().unwrap(),
            "list",
            "--tenant",
            "t",
        ])
        .await;
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("engine-endpoint"), "{}", stderr(&out));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
