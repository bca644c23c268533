//! The authorizer's JWT configuration as it loads at init: settings and their defaults, keys
//! checked, the usage key and the per-caller limits; every misconfiguration an error.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use shared::config::{Config, env};

use crate::{AUDIENCE, HS_SECRET, ISSUER, JWT_USAGE, NOWHERE, config_with, fixture, rs_public};

/// The configuration as the authorizer loads it at init: the loader, then the JWT key check.
fn jwt_config(vars: &[(&str, &str)]) -> Result<Config, String> {
    let config = config_with(NOWHERE, "profiles", vars).map_err(|e| e.to_string())?;
    if let Some(jwt) = &config.jwt {
        jwt.check().map_err(|e| e.to_string())?;
    }
    Ok(config)
}

#[test]
fn jwt_usage_key_and_caller_limits_are_checked_at_init() {
    let base = [
        (env::JWT_ISSUER, ISSUER),
        (env::JWT_AUDIENCE, AUDIENCE),
        (env::JWT_HS256_SECRET, HS_SECRET),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut vars = base.to_vec();
        vars.extend_from_slice(extra);
        jwt_config(&vars)
    };
    let e = with(&[(env::JWT_USAGE_KEY, "")]).unwrap_err();
    assert!(e.contains("JWT_USAGE_KEY is not set"), "{e}");
    let jwt = with(&[]).unwrap().jwt.unwrap();
    assert_eq!(jwt.usage_key, JWT_USAGE);
    assert_eq!(
        jwt.caller_rate, None,
        "unset: JWT callers limited only together"
    );
    let jwt = with(&[
        (env::JWT_CALLER_BURST_LIMIT, "10"),
        (env::JWT_CALLER_RATE_LIMIT, "2.5"),
    ])
    .unwrap()
    .jwt
    .unwrap();
    assert_eq!(
        jwt.caller_rate,
        Some(shared::config::Rate {
            burst: 10,
            per_second: 2.5
        })
    );
    for bad in [
        vec![(env::JWT_CALLER_BURST_LIMIT, "10")],
        vec![(env::JWT_CALLER_RATE_LIMIT, "2.5")],
        vec![
            (env::JWT_CALLER_BURST_LIMIT, "0"),
            (env::JWT_CALLER_RATE_LIMIT, "2.5"),
        ],
        vec![
            (env::JWT_CALLER_BURST_LIMIT, "10"),
            (env::JWT_CALLER_RATE_LIMIT, "0"),
        ],
        vec![
            (env::JWT_CALLER_BURST_LIMIT, "10"),
            (env::JWT_CALLER_RATE_LIMIT, "fast"),
        ],
    ] {
        let e = with(&bad).unwrap_err();
        assert!(e.contains("JWT_CALLER_"), "{bad:?}: {e}");
    }
}

#[test]
fn functions_without_jwt_settings_still_load() {
    let config = jwt_config(&[]).unwrap();
    assert!(config.jwt.is_none());
    // The template gives every variable to the authorizer, empty when unused.
    let config = jwt_config(&[
        (env::JWT_ISSUER, ""),
        (env::JWT_AUDIENCE, ""),
        (env::JWT_TENANT_CLAIM, "tenant_id"),
        (env::JWT_HS256_SECRET, ""),
        (env::JWT_RS256_PUBLIC_KEY, ""),
        (env::JWT_LEEWAY_SECONDS, "30"),
    ])
    .unwrap();
    assert!(config.jwt.is_none());
}

#[test]
fn jwt_key_without_issuer_or_audience_is_a_config_error() {
    let public = rs_public();
    // (the settings, what the error says)
    for (vars, expected) in [
        (
            [
                (env::JWT_HS256_SECRET, HS_SECRET),
                (env::JWT_AUDIENCE, AUDIENCE),
            ],
            "JWT_ISSUER is not set",
        ),
        (
            [
                (env::JWT_RS256_PUBLIC_KEY, &public),
                (env::JWT_ISSUER, ISSUER),
            ],
            "JWT_AUDIENCE is not set",
        ),
    ] {
        let e = jwt_config(&vars).unwrap_err();
        assert!(e.contains(expected), "{e}");
    }
}

#[test]
fn bad_jwt_keys_are_config_errors() {
    let with = |k: &str, v: &str| {
        jwt_config(&[
            (env::JWT_ISSUER, ISSUER),
            (env::JWT_AUDIENCE, AUDIENCE),
            (k, v),
        ])
    };
    let e = with(env::JWT_HS256_SECRET, "too-short").unwrap_err();
    assert!(e.contains("at least 32 bytes"), "{e}");
    assert!(
        !e.contains("too-short"),
        "the secret is not in the message: {e}"
    );
    // (the RS256 public key, what the error says): not a key, a private key, too short.
    for (pem, expected) in [
        (
            "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----".to_owned(),
            env::JWT_RS256_PUBLIC_KEY,
        ),
        (fixture("test-only-rs256-private.pem"), "private key"),
        (fixture("test-only-rs1024-public.pem"), "1024-bit"),
    ] {
        let e = with(env::JWT_RS256_PUBLIC_KEY, &pem).unwrap_err();
        assert!(e.contains(expected), "{e}");
    }
    let e = jwt_config(&[
        (env::JWT_ISSUER, ISSUER),
        (env::JWT_AUDIENCE, AUDIENCE),
        (env::JWT_HS256_SECRET, HS_SECRET),
        (env::JWT_LEEWAY_SECONDS, "soon"),
    ])
    .unwrap_err();
    assert!(e.contains(env::JWT_LEEWAY_SECONDS), "{e}");
}

#[test]
fn jwt_settings_load_with_their_defaults() {
    // A one-line PEM (a CloudFormation parameter) with literal \n.
    let one_line = rs_public().trim().replace('\n', "\\n");
    assert!(!one_line.contains('\n'));
    let config = jwt_config(&[
        (env::JWT_ISSUER, ISSUER),
        (env::JWT_AUDIENCE, AUDIENCE),
        (env::JWT_RS256_PUBLIC_KEY, &one_line),
    ])
    .unwrap();
    let jwt = config.jwt.unwrap();
    assert_eq!(jwt.tenant_claim, "tenant_id");
    assert_eq!(jwt.leeway_seconds, 30);
    assert!(jwt.rs256_public_key.is_some());
    assert!(jwt.hs256_secret.is_none());
    let config = jwt_config(&[
        (env::JWT_ISSUER, ISSUER),
        (env::JWT_AUDIENCE, AUDIENCE),
        (env::JWT_HS256_SECRET, HS_SECRET),
        (env::JWT_LEEWAY_SECONDS, "5"),
    ])
    .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains(HS_SECRET), "Debug shows no secret: {debug}");
    assert_eq!(config.jwt.unwrap().leeway_seconds, 5);
}
