//! The ids of the model, each its own type so one cannot stand in for another: a tenant, a
//! principal (who acts), a profile, a contact and a bulk job. Tenant and principal ids are checked text
//! (they stand inside keys); profile, contact and job ids are UUID v7, so they sort by creation.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A tenant id: 1 to 128 characters of `[A-Za-z0-9_.-]`, so it can stand inside a key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TenantId(String);

impl TenantId {
    pub fn new(raw: &str) -> Result<Self, String> {
        let ok = (1..=128).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be 1 to 128 characters of A-Z, a-z, 0-9, _ . -".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A principal id: 1 to 256 characters (Unicode scalar values, as JSON Schema's `maxLength`
/// counts them), none of them a control character (a JWT `sub`, or the principal an API key
/// was made for). It is stored as a profile's `owner_id` and inside the owner's partition
/// keys: at most 1,024 bytes of UTF-8, well inside DynamoDB's 2,048 for a partition key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PrincipalId(String);

impl PrincipalId {
    pub fn new(raw: &str) -> Result<Self, String> {
        let ok = (1..=256).contains(&raw.chars().count()) && !raw.chars().any(char::is_control);
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be 1 to 256 characters, none of them control characters".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PrincipalId {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        Self::new(&raw)
    }
}

impl From<PrincipalId> for String {
    fn from(id: PrincipalId) -> Self {
        id.0
    }
}

/// A UUID v7 id type: made new, parsed from a path or key, shown as its hyphenated form,
/// stored as that text.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new id (UUID v7: later ids sort after earlier ones).
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// The id written in a path or a key; `None` for text that is no UUID.
            pub fn parse(raw: &str) -> Option<Self> {
                Uuid::try_parse(raw).ok().map(Self)
            }

            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;

            fn from_str(raw: &str) -> Result<Self, uuid::Error> {
                Uuid::try_parse(raw).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A profile's id.
    ProfileId
);
uuid_id!(
    /// A contact's id.
    ContactId
);
uuid_id!(
    /// A bulk import's or export's id.
    JobId
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_principal_id_is_counted_in_characters_not_bytes() {
        // 256 four-byte characters: 1,024 bytes, the most a principal id holds.
        assert!(PrincipalId::new(&"𝄞".repeat(256)).is_ok());
        assert!(PrincipalId::new(&"a".repeat(257)).is_err());
        assert!(PrincipalId::new("").is_err());
        assert!(
            PrincipalId::new(" ").is_ok(),
            "spaces are not control characters"
        );
    }

    proptest! {
        /// Any text of 1 to 256 characters is a principal id exactly when no character of it
        /// is in Unicode's Cc category (U+0000–U+001F, U+007F–U+009F), the rule
        /// docs/openapi.yaml's `PrincipalId` pattern states.
        #[test]
        fn a_principal_id_is_refused_exactly_for_a_control_character(raw in "\\PC{0,3}[\\x00-\\x1F\\x7F-\\u{9F} a-z]?\\PC{0,3}") {
            let cc = raw.chars().any(|c| matches!(c, '\u{0}'..='\u{1F}' | '\u{7F}'..='\u{9F}'));
            prop_assert_eq!(PrincipalId::new(&raw).is_ok(), !raw.is_empty() && !cc);
        }
    }
}
