//! The presigned S3 POST of an upload (a photo, an import's file) (AWS Signature Version 4, "browser-based upload
//! with POST"). The SDK for Rust presigns GET and PUT but not POST, so the policy is written
//! here and signed with the signing key the SDK's own signer derives (`aws-sigv4`): the
//! signature is HMAC-SHA256 of the base64 policy under the key of the credential's day,
//! region and service `s3`. The policy allows one exact object key, one stated media type,
//! 1 to a stated number of bytes ([`MAX_BYTES`] for a photo), until a short expiry; S3
//! refuses anything else.

use std::time::{Duration, SystemTime};

use base64::Engine;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use super::{ImageType, MAX_BYTES};
use crate::config::StaticCredentials;
use crate::model::Timestamp;

/// How long a granted upload stays usable (S3 refuses the POST after it).
pub const UPLOAD_TTL: Duration = Duration::from_secs(10 * 60);

/// Where the form goes and what it must carry.
#[derive(Clone, Debug, PartialEq)]
pub struct PostForm {
    /// The URL to POST the multipart form to.
    pub upload_url: String,
    /// The form's fields, to send before the `file` field, as given.
    pub fields: Map<String, Value>,
    /// When S3 stops accepting it.
    pub expires_at: OffsetDateTime,
}

/// The bucket a form uploads to, and how it is reached.
pub struct Target<'a> {
    pub bucket: &'a str,
    pub region: &'a str,
    /// A local S3-compatible endpoint (path-style URLs), or `None` for AWS's own.
    pub endpoint: Option<&'a str>,
}

impl Target<'_> {
    /// The form's URL: AWS's virtual-hosted-style bucket endpoint, or the local endpoint's
    /// path-style bucket URL.
    pub fn url(&self) -> String {
        match self.endpoint {
            Some(endpoint) => format!("{}/{}", endpoint.trim_end_matches('/'), self.bucket),
            None => format!("https://{}.s3.{}.amazonaws.com/", self.bucket, self.region),
        }
    }
}

/// A form that uploads one photo, `key`, of media type `kind`, signed with `credentials` at
/// `now`, usable for [`UPLOAD_TTL`]: 1 to [`MAX_BYTES`] bytes.
pub fn post_form(
    target: &Target<'_>,
    credentials: &StaticCredentials,
    key: &str,
    kind: ImageType,
    now: SystemTime,
) -> PostForm {
    let object = Object {
        key,
        content_type: kind.content_type(),
        max_bytes: MAX_BYTES,
    };
    form(target, credentials, &object, now)
}

/// What one presigned POST may upload: exactly this key and media type, 1 to `max_bytes`
/// bytes.
pub struct Object<'a> {
    pub key: &'a str,
    pub content_type: &'a str,
    pub max_bytes: u64,
}

/// A form that uploads `object`, signed with `credentials` at `now`, usable for
/// [`UPLOAD_TTL`]. The session token a role's credentials carry is a field, and a condition
/// of the policy, as S3 requires.
pub fn form(
    target: &Target<'_>,
    credentials: &StaticCredentials,
    object: &Object<'_>,
    now: SystemTime,
) -> PostForm {
    let now_utc = OffsetDateTime::from(now);
    let expires_at = now_utc + UPLOAD_TTL;
    // Both formats are fixed and every date in range formats: `format` cannot fail here.
    let amz_date = now_utc
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    let day = &amz_date[..amz_date.len().min(8)];
    let expiration = Timestamp::from(expires_at).to_string();
    let credential = format!(
        "{}/{day}/{}/s3/aws4_request",
        credentials.access_key_id, target.region
    );

    let mut fields = Map::new();
    let mut field = |name: &str, value: &str| {
        fields.insert(name.to_owned(), Value::String(value.to_owned()));
    };
    field("key", object.key);
    field("Content-Type", object.content_type);
    field("x-amz-algorithm", "AWS4-HMAC-SHA256");
    field("x-amz-credential", &credential);
    field("x-amz-date", &amz_date);
    if let Some(token) = &credentials.session_token {
        field("x-amz-security-token", token.expose());
    }
    // Every field above is an exact condition; the bucket and the size range too.
    let mut conditions = vec![
        json!({ "bucket": target.bucket }),
        json!(["content-length-range", 1, object.max_bytes]),
    ];
    conditions.extend(
        fields
            .iter()
            .map(|(name, value)| json!(["eq", format!("${name}"), value])),
    );
    let policy = json!({ "expiration": expiration, "conditions": conditions });
    let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let signing_key = aws_sigv4::sign::v4::generate_signing_key(
        credentials.secret_access_key.expose(),
        now,
        target.region,
        "s3",
    );
    let signature = aws_sigv4::sign::v4::calculate_signature(signing_key, policy.as_bytes());
    fields.insert("policy".into(), Value::String(policy));
    fields.insert("x-amz-signature".into(), Value::String(signature));
    PostForm {
        upload_url: target.url(),
        fields,
        expires_at,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;
    use crate::config::Secret;

    fn credentials(token: Option<&str>) -> StaticCredentials {
        StaticCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
            session_token: token.map(|t| Secret::new(t.into())),
        }
    }

    fn target() -> Target<'static> {
        Target {
            bucket: "photos-bucket",
            region: "eu-west-1",
            endpoint: None,
        }
    }

    fn policy_of(form: &PostForm) -> Value {
        let b64 = form.fields["policy"].as_str().unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        serde_json::from_slice(&raw).unwrap()
    }

    /// AWS's own worked example of the signing key (Signature Version 4 documentation,
    /// "Examples of how to derive a signing key"): the derivation the form's signature uses.
    #[test]
    fn the_signing_key_is_awss_documented_derivation() {
        use time::macros::datetime;
        let day = SystemTime::from(datetime!(2012-02-15 00:00 UTC));
        let key = aws_sigv4::sign::v4::generate_signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            day,
            "us-east-1",
            "iam",
        );
        let hex: String = key.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn the_policy_pins_key_type_size_bucket_and_every_field() {
        let now = SystemTime::now();
        let form = post_form(
            &target(),
            &credentials(Some("TOKEN")),
            "uploads/t/p/u",
            ImageType::Png,
            now,
        );
        let policy = policy_of(&form);
        let conditions = policy["conditions"].as_array().unwrap();
        assert!(conditions.contains(&json!({"bucket": "photos-bucket"})));
        assert!(conditions.contains(&json!(["content-length-range", 1, 5_242_880])));
        for name in [
            "key",
            "Content-Type",
            "x-amz-algorithm",
            "x-amz-credential",
            "x-amz-date",
            "x-amz-security-token",
        ] {
            let value = &form.fields[name];
            assert!(
                conditions.contains(&json!(["eq", format!("${name}"), value])),
                "{name}"
            );
        }
        assert_eq!(form.fields["Content-Type"], "image/png");
        assert_eq!(form.fields["key"], "uploads/t/p/u");
        assert_eq!(
            form.upload_url,
            "https://photos-bucket.s3.eu-west-1.amazonaws.com/"
        );
        let lasts = form.expires_at - OffsetDateTime::from(now);
        assert!(lasts > time::Duration::minutes(1) && lasts <= time::Duration::minutes(15));
        let expiration = policy["expiration"].as_str().unwrap();
        assert_eq!(expiration, Timestamp::from(form.expires_at).to_string());
        assert!(
            expiration.ends_with('Z') && expiration.len() == 24,
            "{expiration}"
        );
    }

    #[test]
    fn the_signature_is_hmac_of_the_policy_under_the_days_s3_key() {
        use hmac::{KeyInit, Mac};
        let now = SystemTime::now();
        let form = post_form(&target(), &credentials(None), "k", ImageType::Jpeg, now);
        assert!(!form.fields.contains_key("x-amz-security-token"));
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let date = form.fields["x-amz-date"].as_str().unwrap();
        let mac = |key: &[u8], data: &str| {
            let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
            m.update(data.as_bytes());
            m.finalize().into_bytes().to_vec()
        };
        let k = mac(format!("AWS4{secret}").as_bytes(), &date[..8]);
        let k = mac(&k, "eu-west-1");
        let k = mac(&k, "s3");
        let k = mac(&k, "aws4_request");
        let sig: String = mac(&k, form.fields["policy"].as_str().unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(form.fields["x-amz-signature"], sig.as_str());
        assert_eq!(
            form.fields["x-amz-credential"],
            format!("AKIDEXAMPLE/{}/eu-west-1/s3/aws4_request", &date[..8]).as_str()
        );
    }

    #[test]
    fn a_local_endpoint_gets_a_path_style_url() {
        let t = Target {
            endpoint: Some("http://127.0.0.1:9000/"),
            ..target()
        };
        assert_eq!(t.url(), "http://127.0.0.1:9000/photos-bucket");
    }
}
