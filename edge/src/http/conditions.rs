//! Conditional requests (RFC 9110 §13): the entity tags of `If-Match` and `If-None-Match`,
//! parsed at the edge, and how a write's conditions hold against a version.

use lambda_http::Request;
use lambda_http::http::header;

use crate::error::ApiError;

/// One entity tag of a conditional header (RFC 9110 §8.8.3): its opaque tag, and whether it
/// is weak (`W/"…"`). Ours are strong: `"<version>"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityTag {
    pub weak: bool,
    pub opaque: String,
}

/// What an `If-Match` or `If-None-Match` header names: `*`, or a list of entity tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// `*`: any current representation.
    Any,
    Tags(Vec<EntityTag>),
}

impl Precondition {
    /// The strong comparison (`If-Match`): `*`, or a listed strong tag that is this version's.
    /// A weak tag never matches.
    pub fn matches_strong(&self, version: u64) -> bool {
        match self {
            Self::Any => true,
            Self::Tags(tags) => tags
                .iter()
                .any(|t| !t.weak && t.opaque == version.to_string()),
        }
    }

    /// The weak comparison (`If-None-Match`): `*`, or a listed tag, weak or strong, whose
    /// opaque tag is this version's.
    pub fn matches_weak(&self, version: u64) -> bool {
        match self {
            Self::Any => true,
            Self::Tags(tags) => tags.iter().any(|t| t.opaque == version.to_string()),
        }
    }
}

/// The entity tags of a header value (`#entity-tag`: comma-separated, empty elements and
/// whitespace allowed), or `None` when it is not such a list.
fn entity_tags(raw: &str) -> Option<Vec<EntityTag>> {
    let mut tags = Vec::new();
    let mut rest = raw;
    loop {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        if rest.is_empty() {
            break;
        }
        let (weak, tag) = match rest.strip_prefix("W/") {
            Some(tag) => (true, tag),
            None => (false, rest),
        };
        let tag = tag.strip_prefix('"')?;
        let end = tag.find('"')?;
        let opaque = &tag[..end];
        // etagc: %x21 / %x23-7E / obs-text
        let valid = |b: u8| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80;
        if !opaque.bytes().all(valid) {
            return None;
        }
        tags.push(EntityTag {
            weak,
            opaque: opaque.to_owned(),
        });
        rest = tag[end + 1..].trim_start_matches([' ', '\t']);
        if !rest.is_empty() && !rest.starts_with(',') {
            return None;
        }
    }
    (!tags.is_empty()).then_some(tags)
}

fn precondition(req: &Request, name: header::HeaderName) -> Result<Option<Precondition>, ApiError> {
    let Some(raw) = req.headers().get(&name) else {
        return Ok(None);
    };
    let field = name.as_str();
    let malformed = || {
        ApiError::bad_field(
            field,
            "must be * or entity tags from ETag headers, such as \"3\"",
        )
    };
    let raw = raw.to_str().map_err(|_| malformed())?.trim();
    if raw == "*" {
        return Ok(Some(Precondition::Any));
    }
    entity_tags(raw)
        .map(|tags| Some(Precondition::Tags(tags)))
        .ok_or_else(malformed)
}

/// The conditions of a request that changes a resource (RFC 9110 §13.1): `If-Match`, checked
/// with the strong comparison, and `If-None-Match`, with the weak one.
#[derive(Clone, Debug, Default)]
pub struct WriteConditions {
    pub if_match: Option<Precondition>,
    pub if_none_match: Option<Precondition>,
}

impl WriteConditions {
    /// The request's conditions; a malformed header is a 400 naming it.
    pub fn of(req: &Request) -> Result<Self, ApiError> {
        Ok(Self {
            if_match: if_match(req)?,
            if_none_match: if_none_match(req)?,
        })
    }

    /// `Ok` when a write may go ahead on the current `version`, else 412.
    pub fn check(&self, version: u64) -> Result<(), ApiError> {
        let if_match_fails = self
            .if_match
            .as_ref()
            .is_some_and(|p| !p.matches_strong(version));
        let if_none_match_fails = self
            .if_none_match
            .as_ref()
            .is_some_and(|p| p.matches_weak(version));
        if if_match_fails || if_none_match_fails {
            Err(ApiError::PreconditionFailed)
        } else {
            Ok(())
        }
    }

    /// Whether the write holds to the version the client named (`If-Match` with tags): then
    /// a write that lost a race cannot be recomputed, and is a 412.
    pub fn holds_to_a_version(&self) -> bool {
        matches!(self.if_match, Some(Precondition::Tags(_)))
    }
}

pub fn if_match(req: &Request) -> Result<Option<Precondition>, ApiError> {
    precondition(req, header::IF_MATCH)
}

pub fn if_none_match(req: &Request) -> Result<Option<Precondition>, ApiError> {
    precondition(req, header::IF_NONE_MATCH)
}
