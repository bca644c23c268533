//! Listing: what `GET /profiles` may ask (sort orders, exact-match filters, prefix searches,
//! page size) parsed into a [`ListQuery`], and the signed cursor that resumes a page, bound to
//! its tenant and to every parameter of the query that made it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::ids::{PrincipalId, ProfileId, TenantId};
use crate::model::Profile;
use crate::validate::{Email, Field, Name, Slug};
use crate::validate::{FieldErrors, Invalid};

/// Sort direction of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    Asc,
    Desc,
}

/// A sort order of `GET /profiles` (`sort_by`), and the email order an email prefix search
/// reads in. Each reads an index (`store::schema::sort_index`) whose sort key is
/// [`Sort::value`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    CreatedAt,
    UpdatedAt,
    Name,
    FirstName,
    MiddleName,
    LastName,
    Enabled,
    Id,
    /// By email address, case-insensitive: the order of `filter[email_prefix]`, which no
    /// `sort_by` names.
    Email,
}

impl Sort {
    pub const ALL: [Sort; 8] = [
        Sort::CreatedAt,
        Sort::UpdatedAt,
        Sort::Name,
        Sort::FirstName,
        Sort::MiddleName,
        Sort::LastName,
        Sort::Enabled,
        Sort::Id,
    ];

    /// Its name in `sort_by`.
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::CreatedAt => "created_at",
            Sort::UpdatedAt => "updated_at",
            Sort::Name => "name",
            Sort::FirstName => "first_name",
            Sort::MiddleName => "middle_name",
            Sort::LastName => "last_name",
            Sort::Enabled => "enabled",
            Sort::Id => "id",
            Sort::Email => "email",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// A profile's sort key in this order: its index's sort key, compared as bytes. Text
    /// sorts case-insensitively with absent values last (ascending); every key ends with the
    /// id, so equal values have one fixed order. Creation and id share their key: a profile's
    /// id is a UUID v7 made at its `created_at` (`crate::ids::ProfileId::created_at`). A
    /// profile without an email has no key in the email order (empty here).
    pub fn value(self, profile: &Profile) -> String {
        let id = profile.id;
        let f = &profile.fields;
        let text = |v: Option<&str>| match v {
            Some(v) => format!("1{}{TIE}{id}", fold(v)),
            None => format!("2{TIE}{id}"),
        };
        match self {
            // The id's own time, which is a profile's `created_at`: the order is the ids'
            // exactly, even for a profile stored with another `created_at` before that rule.
            Sort::CreatedAt | Sort::Id => {
                format!("{}#{id}", crate::model::Timestamp::of_id(&id))
            }
            Sort::UpdatedAt => format!("{}#{id}", profile.updated_at),
            Sort::Name => text(profile.display_name().as_deref()),
            Sort::FirstName => text(f.first_name.as_ref().map(|v| v.as_str())),
            Sort::MiddleName => text(f.middle_name.as_ref().map(|v| v.as_str())),
            Sort::LastName => text(f.last_name.as_ref().map(|v| v.as_str())),
            Sort::Enabled => {
                let on = if f.enabled.unwrap_or(true) { '1' } else { '0' };
                format!("{on}{TIE}{id}")
            }
            Sort::Email => f
                .email
                .as_ref()
                .map(|e| format!("{}{TIE}{id}", e.as_str().to_lowercase()))
                .unwrap_or_default(),
        }
    }
}

/// Separates a sort value from the id after it: below every character a value can hold, so
/// a value sorts before any longer value it is a prefix of.
const TIE: char = '\u{1}';

/// Case-folded, control characters blanked, at most [`FOLDED_CHARS`] characters: the
/// sortable form.
fn fold(v: &str) -> String {
    fold_all(v).chars().take(FOLDED_CHARS).collect()
}

/// How much of a text value its sort key keeps.
const FOLDED_CHARS: usize = 200;

/// Case-folded, control characters blanked, whole: what a prefix search compares.
fn fold_all(v: &str) -> String {
    v.chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

/// One exact-match filter, its value validated and normalized as the field is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    Enabled(bool),
    /// The shown name (`name`, or the parts joined).
    Name(String),
    FirstName(String),
    MiddleName(String),
    LastName(String),
    Email(String),
    ExternalId(String),
    OrganizationId(String),
    Slug(String),
    /// One of `tags`.
    Tag(String),
    /// One of `lists`.
    List(String),
    OwnerId(PrincipalId),
    /// The shown name starts with this, case-insensitively (kept folded).
    NamePrefix(String),
    /// The email address starts with this, case-insensitively (kept lower-cased).
    EmailPrefix(String),
}

/// The fields `filter[...]` accepts.
pub const FILTER_FIELDS: [&str; 14] = [
    "enabled",
    "name",
    "first_name",
    "middle_name",
    "last_name",
    "email",
    "external_id",
    "organization_id",
    "slug",
    "tag",
    "list",
    "owner_id",
    "name_prefix",
    "email_prefix",
];

/// The longest email prefix: an address's own limit.
pub const MAX_EMAIL_PREFIX: usize = 254;

impl Filter {
    fn parse(field: &str, raw: &str, errors: &mut FieldErrors) -> Option<Self> {
        let name = format!("filter[{field}]");
        let value = serde_json::Value::String(raw.to_owned());
        let text = |errors: &mut FieldErrors| {
            Name::parse(&value, &name, errors).map(|v| v.as_str().to_owned())
        };
        Some(match field {
            "enabled" => match raw {
                "true" => Filter::Enabled(true),
                "false" => Filter::Enabled(false),
                _ => {
                    errors.push(name, "must be true or false");
                    return None;
                }
            },
            "name" => Filter::Name(text(errors)?),
            "first_name" => Filter::FirstName(text(errors)?),
            "middle_name" => Filter::MiddleName(text(errors)?),
            "last_name" => Filter::LastName(text(errors)?),
            "email" => Filter::Email(Email::parse(&value, &name, errors)?.as_str().to_owned()),
            "external_id" => Filter::ExternalId(text(errors)?),
            "organization_id" => Filter::OrganizationId(text(errors)?),
            "slug" => Filter::Slug(Slug::parse(&value, &name, errors)?.as_str().to_owned()),
            "tag" => Filter::Tag(text(errors)?),
            "list" => Filter::List(text(errors)?),
            "name_prefix" => Filter::NamePrefix(fold_all(&text(errors)?)),
            "email_prefix" => {
                // Counted as sent, as the document's maxLength counts it; then trimmed.
                let n = raw.chars().count();
                let raw = raw.trim();
                if raw.is_empty()
                    || n > MAX_EMAIL_PREFIX
                    || raw.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    errors.push(
                        name,
                        format!(
                            "must be 1 to {MAX_EMAIL_PREFIX} characters without spaces or control characters"
                        ),
                    );
                    return None;
                }
                Filter::EmailPrefix(raw.to_lowercase())
            }
            // Exactly as stored: a principal id is not trimmed text, so neither is its filter.
            "owner_id" => match PrincipalId::new(raw) {
                Ok(owner) => Filter::OwnerId(owner),
                Err(why) => {
                    errors.push(name, why);
                    return None;
                }
            },
            _ => {
                errors.push(
                    name,
                    format!("is not a filter; filterable: {}", FILTER_FIELDS.join(", ")),
                );
                return None;
            }
        })
    }

    /// Whether `profile` passes this filter (exact match; `tag` and `list` as one element).
    pub fn matches(&self, profile: &Profile) -> bool {
        let f = &profile.fields;
        let is = |field: Option<&str>, v: &str| field == Some(v);
        let has = |list: Option<&crate::validate::Tags>, v: &str| {
            list.is_some_and(|l| l.items().iter().any(|t| t.as_str() == v))
        };
        match self {
            Filter::Enabled(b) => f.enabled.unwrap_or(true) == *b,
            Filter::Name(v) => profile.display_name().as_deref() == Some(v.as_str()),
            Filter::FirstName(v) => is(f.first_name.as_ref().map(|x| x.as_str()), v),
            Filter::MiddleName(v) => is(f.middle_name.as_ref().map(|x| x.as_str()), v),
            Filter::LastName(v) => is(f.last_name.as_ref().map(|x| x.as_str()), v),
            Filter::Email(v) => is(f.email.as_ref().map(|x| x.as_str()), v),
            Filter::ExternalId(v) => is(f.external_id.as_ref().map(|x| x.as_str()), v),
            Filter::OrganizationId(v) => is(f.organization_id.as_ref().map(|x| x.as_str()), v),
            Filter::Slug(v) => is(f.slug.as_ref().map(|x| x.as_str()), v),
            Filter::Tag(v) => has(f.tags.as_ref(), v),
            Filter::List(v) => has(f.lists.as_ref(), v),
            Filter::OwnerId(v) => profile.owner_id == *v,
            Filter::NamePrefix(p) => profile
                .display_name()
                .is_some_and(|n| fold_all(&n).starts_with(p.as_str())),
            Filter::EmailPrefix(p) => f
                .email
                .as_ref()
                .is_some_and(|e| e.as_str().to_lowercase().starts_with(p.as_str())),
        }
    }

    /// The start of the sort key every profile this filter admits has, in the index its
    /// list reads (`ListQuery::reads_in`): what a Query asks with `begins_with` so it reads
    /// only that range. `None` for a filter the index does not narrow.
    pub fn key_prefix(&self, sort: Sort) -> Option<String> {
        match (self, sort) {
            (Filter::NamePrefix(p), Sort::Name) => Some(format!(
                "1{}",
                p.chars().take(FOLDED_CHARS).collect::<String>()
            )),
            (Filter::EmailPrefix(p), Sort::Email) => Some(p.clone()),
            (Filter::Email(e), Sort::Email) => Some(format!("{}{TIE}", e.to_lowercase())),
            _ => None,
        }
    }

    /// `(field, value)` as the query string gives it (after normalization).
    fn canonical(&self) -> (&'static str, String) {
        match self {
            Filter::Enabled(b) => ("enabled", b.to_string()),
            Filter::Name(v) => ("name", v.clone()),
            Filter::FirstName(v) => ("first_name", v.clone()),
            Filter::MiddleName(v) => ("middle_name", v.clone()),
            Filter::LastName(v) => ("last_name", v.clone()),
            Filter::Email(v) => ("email", v.clone()),
            Filter::ExternalId(v) => ("external_id", v.clone()),
            Filter::OrganizationId(v) => ("organization_id", v.clone()),
            Filter::Slug(v) => ("slug", v.clone()),
            Filter::Tag(v) => ("tag", v.clone()),
            Filter::List(v) => ("list", v.clone()),
            Filter::OwnerId(v) => ("owner_id", v.to_string()),
            Filter::NamePrefix(v) => ("name_prefix", v.clone()),
            Filter::EmailPrefix(v) => ("email_prefix", v.clone()),
        }
    }
}

/// A validated list request.
#[derive(Clone, Debug)]
pub struct ListQuery {
    pub limit: usize,
    pub sort: Sort,
    pub order: SortOrder,
    /// At most one per field, in field order.
    pub filters: Vec<Filter>,
    /// `/profiles/all`: the owner filter is the route's, not the caller's, so a Link leaves
    /// it out. (A cursor binds the filter itself: `/profiles/all` and
    /// `/profiles?filter[owner_id]=<caller>` are the same list and share cursors.)
    pub own: bool,
}

/// A validated list request with where it resumes.
#[derive(Debug)]
pub struct ListRequest {
    pub query: ListQuery,
    pub after: Option<Position>,
}

impl ListQuery {
    /// Parses the query string of `GET /profiles`, reporting every bad parameter by name,
    /// and checks its cursor against `tenant` and `key`. `own` is the caller of
    /// `GET /profiles/all`, whose profiles alone it lists.
    pub fn parse(
        pairs: &[(String, String)],
        tenant: &TenantId,
        key: &Secret,
        own: Option<&PrincipalId>,
    ) -> Result<ListRequest, Invalid> {
        let mut errors = FieldErrors::default();
        let mut seen = std::collections::HashSet::new();
        let mut query = ListQuery {
            limit: DEFAULT_LIMIT,
            sort: Sort::CreatedAt,
            order: SortOrder::Desc,
            filters: Vec::new(),
            own: own.is_some(),
        };
        let mut raw_cursor = None;
        let (mut sort_given, mut order_given) = (false, false);
        for (name, value) in pairs {
            if !seen.insert(name.as_str()) {
                errors.push(name.as_str(), "may be given only once");
                continue;
            }
            match name.as_str() {
                "limit" => match value.parse::<usize>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => query.limit = n,
                    _ => errors.push("limit", format!("must be an integer from 1 to {MAX_LIMIT}")),
                },
                "sort_by" => match Sort::parse(value) {
                    Some(s) => {
                        query.sort = s;
                        sort_given = true;
                    }
                    None => errors.push(
                        "sort_by",
                        format!(
                            "{value:?} is not a sort; supported: {}",
                            Sort::ALL.map(Sort::as_str).join(", ")
                        ),
                    ),
                },
                "sort_order" => {
                    order_given = true;
                    match value.as_str() {
                        "asc" => query.order = SortOrder::Asc,
                        "desc" => query.order = SortOrder::Desc,
                        _ => errors.push("sort_order", "must be asc or desc"),
                    }
                }
                "cursor" => raw_cursor = Some(value.as_str()),
                "offset" => errors.push(
                    "offset",
                    "offset paging is not supported; use cursor with the next_cursor of the previous page",
                ),
                other => match other
                    .strip_prefix("filter[")
                    .and_then(|f| f.strip_suffix(']'))
                {
                    Some(field) => {
                        if let Some(f) = Filter::parse(field, value, &mut errors) {
                            query.filters.push(f);
                        }
                    }
                    None => errors.push(other, "unknown query parameter"),
                },
            }
        }
        query.searching(sort_given, order_given, &mut errors);
        if let Some(owner) = own {
            if query
                .filters
                .iter()
                .any(|f| matches!(f, Filter::OwnerId(_)))
            {
                errors.push(
                    "filter[owner_id]",
                    "/profiles/all lists only your own profiles; filter by owner on /profiles",
                );
            }
            query.filters.push(Filter::OwnerId(owner.clone()));
        }
        query
            .filters
            .sort_by_key(|f| FILTER_FIELDS.iter().position(|n| *n == f.canonical().0));
        let after = match raw_cursor {
            None => None,
            Some(raw) => match Position::open(raw, &query, tenant, key) {
                Some(p) => Some(p),
                None => {
                    errors.push(
                        "cursor",
                        "is not a cursor of this list; pass next_cursor unchanged, with the same sort, order and filters",
                    );
                    None
                }
            },
        };
        errors.into_result(ListRequest { query, after })
    }

    /// A prefix search reads its own index, in that index's order: the shown name's
    /// (`sort_by=name`, or none), or the email's (no `sort_by`); ascending unless
    /// `sort_order` says otherwise. The two cannot be combined, nor a search with another
    /// order: each is a 400 naming the filter.
    fn searching(&mut self, sort_given: bool, order_given: bool, errors: &mut FieldErrors) {
        let has = |f: fn(&Filter) -> bool| self.filters.iter().any(f);
        let name = has(|f| matches!(f, Filter::NamePrefix(_)));
        let email = has(|f| matches!(f, Filter::EmailPrefix(_)));
        let sort = match (name, email) {
            (false, false) => return,
            (true, true) => {
                errors.push(
                    "filter[email_prefix]",
                    "cannot be combined with filter[name_prefix]: each searches its own index",
                );
                return;
            }
            (true, false) if sort_given && self.sort != Sort::Name => {
                errors.push(
                    "filter[name_prefix]",
                    "lists in name order: use sort_by=name or leave sort_by out",
                );
                return;
            }
            (false, true) if sort_given => {
                errors.push(
                    "filter[email_prefix]",
                    "lists in email order: leave sort_by out",
                );
                return;
            }
            (true, false) => Sort::Name,
            (false, true) => Sort::Email,
        };
        self.sort = sort;
        if !order_given {
            self.order = SortOrder::Asc;
        }
    }

    /// The order the list's index is read in: the query's, or, for an exact email filter in
    /// creation (or id) order, the email index's, whose entries for one address are in id
    /// order, which is creation order.
    pub fn reads_in(&self) -> Sort {
        let exact_email = self.filters.iter().any(|f| matches!(f, Filter::Email(_)));
        match self.sort {
            Sort::CreatedAt | Sort::Id if exact_email => Sort::Email,
            sort => sort,
        }
    }

    /// The query string of the page after `next` (the `Link: rel="next"` target).
    pub fn next_query(&self, next: &str) -> String {
        let order = match self.order {
            SortOrder::Asc => "asc",
            SortOrder::Desc => "desc",
        };
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("limit", &self.limit.to_string());
        // The email order is an email search's own; no sort_by names it.
        if self.sort != Sort::Email {
            q.append_pair("sort_by", self.sort.as_str());
        }
        q.append_pair("sort_order", order);
        for f in &self.filters {
            if self.own && matches!(f, Filter::OwnerId(_)) {
                continue;
            }
            let (field, value) = f.canonical();
            q.append_pair(&format!("filter[{field}]"), &value);
        }
        q.append_pair("cursor", next);
        q.finish()
    }

    /// What a cursor is bound to besides its tenant: the sort, the order and the filters.
    fn binding(&self) -> String {
        let mut b = format!("{}|{:?}", self.sort.as_str(), self.order);
        for f in &self.filters {
            let (field, value) = f.canonical();
            b.push_str(&format!("|{field}={value}"));
        }
        b
    }
}

/// Where a page resumes: after the profile `id` whose sort key in the list's index is
/// `sort_value`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    #[serde(rename = "k")]
    pub sort_value: String,
    #[serde(rename = "i")]
    pub id: ProfileId,
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Bytes of the HMAC-SHA256 tag a cursor carries (128 bits).
const TAG_BYTES: usize = 16;

fn mac(key: &Secret, tenant: &TenantId, query: &ListQuery, payload: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail; `Config` also insists on 32+.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(tenant.as_str().as_bytes());
    mac.update(b"\n");
    mac.update(query.binding().as_bytes());
    mac.update(b"\n");
    mac.update(payload);
    mac
}

impl Position {
    /// The opaque cursor for this position: its JSON, base64url, then a truncated
    /// HMAC-SHA256 over the tenant, the query's binding and that JSON.
    pub fn seal(&self, query: &ListQuery, tenant: &TenantId, key: &Secret) -> String {
        // A string and a UUID always serialize.
        let payload = serde_json::to_vec(self).unwrap_or_default();
        let tag = mac(key, tenant, query, &payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES])
        )
    }

    /// The position in `raw`, if this tenant's key signed it for this very query.
    pub fn open(raw: &str, query: &ListQuery, tenant: &TenantId, key: &Secret) -> Option<Self> {
        let (payload, tag) = raw.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if tag.len() != TAG_BYTES {
            return None;
        }
        // Constant-time comparison.
        mac(key, tenant, query, &payload)
            .verify_truncated_left(&tag)
            .ok()?;
        let p: Self = serde_json::from_slice(&payload).ok()?;
        (p.sort_value.len() <= 1024).then_some(p)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

    use proptest::prelude::*;

    use super::*;
    use crate::model::{ProfileFields, Timestamp};

    fn key() -> Secret {
        Secret::new("a-test-key-of-thirty-two-characters!".into())
    }

    fn tenant(t: &str) -> TenantId {
        TenantId::new(t).unwrap()
    }

    fn query(pairs: &[(&str, &str)]) -> ListQuery {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ListQuery::parse(&pairs, &tenant("t"), &key(), None)
            .unwrap()
            .query
    }

    fn profile(id: u128, name: Option<&str>) -> Profile {
        let now = Timestamp::now();
        Profile {
            id: uuid::Uuid::from_u128(id).into(),
            fields: ProfileFields {
                name: name.map(|n| Name::new(n).unwrap()),
                ..Default::default()
            },
            photo: None,
            owner_id: PrincipalId::new("owner").unwrap(),
            created_at: now,
            updated_at: now,
            version: 1,
            is_primary: false,
        }
    }

    fn any_query() -> impl Strategy<Value = ListQuery> {
        (
            0..Sort::ALL.len(),
            any::<bool>(),
            1..=MAX_LIMIT,
            any::<bool>(),
        )
            .prop_map(|(sort, asc, limit, tagged)| {
                let limit = limit.to_string();
                let mut pairs = vec![
                    ("sort_by", Sort::ALL[sort].as_str()),
                    ("sort_order", if asc { "asc" } else { "desc" }),
                    ("limit", limit.as_str()),
                ];
                if tagged {
                    pairs.push(("filter[tag]", "vip"));
                }
                query(&pairs)
            })
    }

    fn any_position() -> impl Strategy<Value = Position> {
        ("\\PC{0,300}", any::<u128>()).prop_map(|(sort_value, id)| Position {
            sort_value,
            id: uuid::Uuid::from_u128(id).into(),
        })
    }

    proptest! {
        #[test]
        fn a_sealed_cursor_opens_to_the_position_that_sealed_it(
            position in any_position(),
            query in any_query(),
        ) {
            let cursor = position.seal(&query, &tenant("t"), &key());
            prop_assert_eq!(Position::open(&cursor, &query, &tenant("t"), &key()), Some(position));
        }

        #[test]
        fn a_cursor_with_any_byte_changed_is_refused(
            position in any_position(),
            query in any_query(),
            at in any::<prop::sample::Index>(),
            replacement in 0x21u8..0x7f,
        ) {
            let cursor = position.seal(&query, &tenant("t"), &key());
            let mut bytes = cursor.clone().into_bytes();
            let i = at.index(bytes.len());
            prop_assume!(bytes[i] != replacement);
            bytes[i] = replacement;
            let altered = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(Position::open(&altered, &query, &tenant("t"), &key()), None);
        }

        #[test]
        fn a_cursor_opens_only_for_its_own_tenant_and_query(
            position in any_position(),
            query in any_query(),
            other in any_query(),
        ) {
            let cursor = position.seal(&query, &tenant("t"), &key());
            prop_assert_eq!(Position::open(&cursor, &query, &tenant("u"), &key()), None);
            let other_key = Secret::new("another-key-of-thirty-two-characters".into());
            prop_assert_eq!(Position::open(&cursor, &query, &tenant("t"), &other_key), None);
            if other.binding() != query.binding() {
                prop_assert_eq!(Position::open(&cursor, &other, &tenant("t"), &key()), None);
            }
        }

        /// `Sort::Name` orders as this independent statement of the rule does: absent names
        /// last, then each character lower-cased (one by one, as `char::to_lowercase` does)
        /// with control characters as spaces, the first 200 of those compared as characters,
        /// then the id's text.
        #[test]
        fn name_sort_keys_order_as_the_rule_says(
            a in proptest::option::of("[ -~\\t\\nÀ-ÿΑ-ωİ]{1,260}"),
            b in proptest::option::of("[ -~\\t\\nÀ-ÿΑ-ωİ]{1,260}"),
            ids in any::<(u128, u128)>(),
        ) {
            let valid = |n: &Option<String>| n.as_deref().is_none_or(|n| Name::new(n).is_ok());
            prop_assume!(valid(&a) && valid(&b));
            let (pa, pb) = (profile(ids.0, a.as_deref()), profile(ids.1, b.as_deref()));
            let rule = |p: &Profile| {
                let name = p.display_name();
                let folded: Option<Vec<char>> = name.map(|n| {
                    let mut chars = Vec::new();
                    for c in n.chars() {
                        for l in c.to_lowercase() {
                            chars.push(if l.is_control() { ' ' } else { l });
                        }
                    }
                    chars.truncate(200);
                    chars
                });
                (folded.is_none(), folded, p.id.to_string())
            };
            prop_assert_eq!(
                Sort::Name.value(&pa).cmp(&Sort::Name.value(&pb)),
                rule(&pa).cmp(&rule(&pb))
            );
        }
    }

    #[test]
    fn sort_keys_fold_case_and_controls_and_keep_200_characters() {
        assert_eq!(fold("MiXeD Case"), "mixed case");
        assert_eq!(fold("tab\there\nnewline"), "tab here newline");
        assert_eq!(fold(&"Z".repeat(300)), "z".repeat(200));
        // One character can lower-case to two; the limit counts what is kept.
        assert_eq!(fold("İ").chars().count(), 2);
    }

    #[test]
    fn a_name_sorts_before_every_longer_name_it_begins() {
        let short = profile(u128::MAX, Some("Ann"));
        let long = profile(0, Some("Ann B"));
        assert!(Sort::Name.value(&short) < Sort::Name.value(&long));
        let absent = profile(0, None);
        assert!(Sort::Name.value(&long) < Sort::Name.value(&absent));
    }

    /// A UUID v7 made at `ms` (milliseconds since the epoch) with `random` as its last bits.
    fn v7(ms: u128, random: u128) -> u128 {
        (ms << 80) | (0x7 << 76) | (0b10 << 62) | random
    }

    #[test]
    fn time_sort_keys_order_by_time_then_id() {
        // created_at is the id's time (a UUID v7's), so it orders by the id's time first.
        let mut early = profile(v7(1_000, 9), None);
        let mut late = profile(v7(1_001, 1), None);
        assert!(Sort::CreatedAt.value(&early) < Sort::CreatedAt.value(&late));
        let same_time = profile(v7(1_001, 9), None);
        assert!(Sort::CreatedAt.value(&late) < Sort::CreatedAt.value(&same_time));
        // updated_at is the field's, then the id.
        late.updated_at = Timestamp::now_after(early.updated_at);
        assert!(Sort::UpdatedAt.value(&early) < Sort::UpdatedAt.value(&late));
        early.updated_at = late.updated_at;
        assert!(Sort::UpdatedAt.value(&early) < Sort::UpdatedAt.value(&late));
    }

    #[test]
    fn every_sort_name_parses_back() {
        for sort in Sort::ALL {
            assert_eq!(Sort::parse(sort.as_str()), Some(sort));
        }
        assert_eq!(Sort::parse("email"), None);
    }

    #[test]
    fn a_query_reports_every_bad_parameter_by_name() {
        let pairs: Vec<(String, String)> = [
            ("limit", "0"),
            ("sort_by", "email"),
            ("sort_order", "up"),
            ("filter[enabled]", "yes"),
            ("offset", "10"),
            ("cursor", "not-a-cursor"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let Err(Invalid::Fields(errors)) = ListQuery::parse(&pairs, &tenant("t"), &key(), None)
        else {
            panic!("expected a validation error");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "limit",
                "sort_by",
                "sort_order",
                "filter[enabled]",
                "offset",
                "cursor"
            ]
        );
    }
}
