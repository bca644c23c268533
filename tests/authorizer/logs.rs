//! The authorizer's log: one line per decision, with what an operator needs and no
//! credential. Its test installs the process-wide log subscriber (once, global).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use shared::config::env;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use profiles_tests::json;
use sha2::{Digest, Sha256};
use shared::apikeys;

use crate::{
    HS_SECRET, ISSUER, allowed, bearer, claims, event_json, hs256, jwt_app, refused, tenant,
    with_key,
};

/// Everything this test process logs (at INFO, the deployed level: the template's
/// ApplicationLogLevel; at TRACE the SDK logs request bodies, a GetItem key among them).
/// One global subscriber, set once: a per-test scoped one loses lines when other tests on
/// other threads register the same callsites first.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured_log() -> &'static Captured {
    static LOG: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = Captured::default();
        let out = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        log
    })
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn decisions_are_logged_without_any_credential() {
    let log = captured_log();
    let (_engine, key_app, key, record) = with_key().await;
    // This test's requests, told apart from other tests' by their request id.
    let trace_id = uuid::Uuid::now_v7().to_string();
    let event = |headers: &[(&str, &str)]| {
        let mut e = event_json(headers);
        e["requestContext"]["requestId"] = json!(trace_id);
        serde_json::from_value::<ApiGatewayCustomAuthorizerRequestTypeRequest>(e).unwrap()
    };

    let jwt_app = jwt_app(&[(env::JWT_HS256_SECRET, HS_SECRET)]);
    let token = hs256(&claims(json!({})), HS_SECRET);
    let forged = hs256(
        &claims(json!({})),
        "another-secret-of-at-least-32-bytes-long",
    );
    allowed(&key_app, event(&[("x-api-key", key.expose())])).await;
    allowed(&jwt_app, event(&[("Authorization", &bearer(&token))])).await;
    refused(&jwt_app, event(&[("Authorization", &bearer(&forged))])).await;
    let unknown = format!("prof_{}", URL_SAFE_NO_PAD.encode([9u8; 32]));
    refused(&key_app, event(&[("x-api-key", &unknown)])).await;
    apikeys::revoke(&key_app.store, &tenant("tenant-k"), &record.key_id)
        .await
        .unwrap();
    refused(&key_app, event(&[("x-api-key", key.expose())])).await;

    let text = log.text();
    let hash: String = Sha256::digest(key.expose().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let secrets = [
        &key.expose()[5..],
        &unknown[5..],
        &hash,
        HS_SECRET,
        token.rsplit('.').next().unwrap(),
        forged.rsplit('.').next().unwrap(),
        token.split('.').nth(1).unwrap(),
    ];
    for secret in secrets {
        assert!(!text.contains(secret), "the log holds a secret:\n{text}");
    }
    // One line per decision, under the request's id, with what an operator needs.
    let decisions: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&trace_id) && l.contains("authorizer decision"))
        .collect();
    assert_eq!(decisions.len(), 5, "{text}");
    let [key_allow, jwt_allow, jwt_deny, unknown_deny, revoked_deny] = decisions[..] else {
        unreachable!()
    };
    assert!(key_allow.contains("outcome=\"allow\"") && key_allow.contains(&record.key_id));
    assert!(key_allow.contains("tenant=tenant-k"), "{key_allow}");
    assert!(jwt_allow.contains("credential=\"jwt\"") && jwt_allow.contains("sub=user-42"));
    assert!(jwt_allow.contains(ISSUER) && jwt_allow.contains("tenant=tenant-j"));
    assert!(jwt_deny.contains("outcome=\"deny\"") && jwt_deny.contains("signature"));
    assert!(unknown_deny.contains("unknown API key"), "{unknown_deny}");
    assert!(revoked_deny.contains("revoked") && revoked_deny.contains(&record.key_id));
}
