//! `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header, as Stripe practises it): a
//! key's value checked (the edge reads the header), the key's scope (tenant, principal, operation), the request's fingerprint
//! (method, path and the parsed body in canonical JSON), and the answer kept to replay. The
//! store commits a [`Claim`]'s record in the same transaction as the write it protects, so
//! the two cannot disagree.

use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ids::{PrincipalId, TenantId};

/// How long a key is remembered.
pub const LIFETIME_SECONDS: i64 = 24 * 60 * 60;

/// The longest key accepted, in characters.
pub const MAX_KEY: usize = 255;

/// A key as sent: 1–255 visible ASCII characters, bare or as a quoted string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses the header's value: a bare token of visible ASCII, or the draft's quoted form
    /// (`"abc"`, visible ASCII and spaces inside, no `"` or `\`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        // Spaces and tabs around a header's value are HTTP's (RFC 9110 §5.5), not the key's.
        let raw = raw.trim_matches([' ', '\t']);
        let (inner, quoted) = match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            Some(inner) => (inner, true),
            None => (raw, false),
        };
        let allowed = |c: char| match c {
            '"' | '\\' => false,
            ' ' => quoted,
            c => c.is_ascii_graphic(),
        };
        if inner.is_empty() || inner.len() > MAX_KEY || !inner.chars().all(allowed) {
            return Err(format!(
                "must be 1 to {MAX_KEY} visible ASCII characters, bare or in double quotes"
            ));
        }
        Ok(Self(inner.to_owned()))
    }
}

/// The clock keys expire by: the system's, plus an offset tests can move forward.
#[derive(Debug, Default)]
pub struct Clock {
    offset_seconds: AtomicI64,
}

impl Clock {
    /// Now, in seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
            + self.offset_seconds.load(Ordering::Relaxed)
    }

    /// Moves this clock `seconds` forward (tests: a key's expiry without waiting a day).
    pub fn advance(&self, seconds: i64) {
        self.offset_seconds.fetch_add(seconds, Ordering::Relaxed);
    }
}

/// What an idempotent write records beside itself: where (its scope's digest), what request
/// (its fingerprint), and until when.
#[derive(Clone, Debug)]
pub struct Claim {
    /// SHA-256 of principal, operation and key (base64url): the record's key within the
    /// tenant, whatever characters the key has.
    pub scope: String,
    /// SHA-256 of method, path and canonical body (base64url).
    pub fingerprint: String,
    /// When the claim is made (seconds since the epoch): an older record whose expiry has
    /// passed may be replaced.
    pub now: i64,
    /// When the record may be forgotten: the table's TTL attribute.
    pub expires_at: i64,
}

impl Claim {
    /// The claim of `key`, sent by `principal` of `tenant` to `operation` (a function's
    /// name: `/profiles` and its alias `/profiles/create` are one), for the request `method
    /// path` with `body`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        key: &IdempotencyKey,
        tenant: &TenantId,
        principal: &PrincipalId,
        operation: &str,
        method: &str,
        path: &str,
        body: &Value,
        now: i64,
    ) -> Self {
        let scope = digest(&[tenant.as_str(), principal.as_str(), operation, &key.0]);
        let fingerprint = digest(&[method, path, &canonical(body)]);
        Self {
            scope,
            fingerprint,
            now,
            expires_at: now + LIFETIME_SECONDS,
        }
    }
}

/// The first answer of an idempotent write, as kept to replay it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    /// The body's JSON text, as sent.
    pub body: String,
    /// The headers that matter to a client (`Location`, `ETag`), as sent.
    pub headers: Vec<(String, String)>,
}

/// A key found already used: its request's fingerprint and first answer.
#[derive(Clone, Debug)]
pub struct UsedKey {
    pub fingerprint: String,
    pub answer: StoredAnswer,
}

/// SHA-256 of `parts`, each length-prefixed so no two lists of parts collide, base64url.
fn digest(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(hash.finalize())
}

/// `value` as canonical JSON: object keys sorted, no white space, so two bodies that differ
/// only in key order or spacing have one fingerprint.
pub fn canonical(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(&map[key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_key_is_visible_ascii_bare_or_quoted() {
        for (raw, key) in [
            ("abc-123", "abc-123"),
            (
                "  8e03978e-40d5-43e8-bc93-6894a57f9324 ",
                "8e03978e-40d5-43e8-bc93-6894a57f9324",
            ),
            ("\"abc\"", "abc"),
            ("\"with space\"", "with space"),
        ] {
            assert_eq!(IdempotencyKey::parse(raw).unwrap().0, key, "{raw}");
        }
        let long = "k".repeat(MAX_KEY + 1);
        for bad in [
            "",
            "\"\"",
            "with space",
            "é",
            "tab\there",
            "\"a\"b\"",
            long.as_str(),
        ] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::parse(&"k".repeat(MAX_KEY)).is_ok());
    }

    fn claim(key: &str, principal: &str, operation: &str, body: Value) -> Claim {
        Claim::new(
            &IdempotencyKey::parse(key).unwrap(),
            &TenantId::new("t").unwrap(),
            &PrincipalId::new(principal).unwrap(),
            operation,
            "POST",
            "/profiles",
            &body,
            1_000,
        )
    }

    #[test]
    fn a_keys_scope_is_its_principal_and_operation_and_its_fingerprint_the_parsed_body() {
        let a = claim(
            "k",
            "alice",
            "create-profile",
            json!({"name": "A", "tags": ["x"]}),
        );
        let reordered: Value = serde_json::from_str(r#"{ "tags" : ["x"], "name":"A" }"#).unwrap();
        let same = claim("k", "alice", "create-profile", reordered);
        assert_eq!((&a.scope, &a.fingerprint), (&same.scope, &same.fingerprint));
        let other_body = claim("k", "alice", "create-profile", json!({"name": "B"}));
        assert_eq!(a.scope, other_body.scope);
        assert_ne!(a.fingerprint, other_body.fingerprint);
        assert_ne!(
            a.scope,
            claim("k", "bob", "create-profile", json!({})).scope
        );
        assert_ne!(
            a.scope,
            claim("k", "alice", "create-contact", json!({})).scope
        );
        assert_ne!(
            a.scope,
            claim("k2", "alice", "create-profile", json!({})).scope
        );
        assert_eq!(a.expires_at, 1_000 + LIFETIME_SECONDS);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z\"\\\\ é]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Canonical JSON is JSON that parses back to the same value, and two values have
        /// the same canonical text exactly when they are equal.
        #[test]
        fn canonical_json_is_the_value_and_only_it(a in json_value(), b in json_value()) {
            let text = canonical(&a);
            prop_assert_eq!(&serde_json::from_str::<Value>(&text).unwrap(), &a);
            prop_assert_eq!(text == canonical(&b), a == b);
        }
    }
}
