//! Lists of profiles: a page of a tenant's profiles as a Query of one index, never a Scan.

use super::profiles::{decode, guard_owner};
use super::schema;
use super::{Store, StoreError};
use crate::auth::TenantId;
use crate::listing::{Filter, ListQuery, Position, Sort, SortOrder};
use crate::model::Profile;

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    pub profiles: Vec<Profile>,
    /// Where the next page starts, when more may follow.
    pub next: Option<Position>,
}

/// How many index entries one list request reads at most while filters skip entries; a page
/// that runs out of budget is short and carries a cursor.
pub const READ_BUDGET: usize = 1000;

/// Entries per Query while a filter skips some.
const FILTERED_CHUNK: usize = 200;

impl Store {
    /// One page of a tenant's profiles in `query`'s order, after `after`: a Query of the
    /// sort's index (or, for `filter[email]` or `filter[owner_id]` in creation order, of
    /// `ByEmail` or `ByOwner`), never a Scan.
    /// Filters that are unique lookups (`external_id`, `slug`) read their guard instead.
    /// Other filters skip entries as they are read, within [`READ_BUDGET`].
    pub async fn list(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
        after: Option<&Position>,
    ) -> Result<Page, StoreError> {
        let lookup = query.filters.iter().find_map(|f| match f {
            Filter::ExternalId(v) => Some(schema::external_id_guard_of(tenant, v)),
            Filter::Slug(v) => Some(schema::slug_guard_of(tenant, v)),
            _ => None,
        });
        if let Some(guard) = lookup {
            // At most one profile holds a unique value: one page, never a second.
            let mut profiles = Vec::new();
            if after.is_none() {
                let owner = self.get_item(guard).await?.as_ref().and_then(guard_owner);
                if let Some(id) = owner
                    && let Some(p) = self.get(tenant, &id).await?
                    && query.filters.iter().all(|f| f.matches(&p.profile))
                {
                    profiles.push(p.profile);
                }
            }
            return Ok(Page {
                profiles,
                next: None,
            });
        }

        // In creation order, an email or owner filter has its own index partition.
        let created = query.sort == Sort::CreatedAt;
        let narrowed = query.filters.iter().find_map(|f| match f {
            Filter::Email(e) if created => Some((
                f,
                schema::BY_EMAIL,
                schema::EMAIL_PK,
                schema::email_partition(tenant, e),
            )),
            Filter::OwnerId(o) if created => Some((
                f,
                schema::BY_OWNER,
                schema::OWNER_PK,
                schema::owner_partition(tenant, o),
            )),
            _ => None,
        });
        let (index, pk_name, pk_value) = match &narrowed {
            Some((_, index, pk_name, pk)) => (*index, *pk_name, pk.clone()),
            None => (
                schema::sort_index(query.sort),
                schema::GSI1PK,
                schema::list_partition(tenant),
            ),
        };
        let sort_attr = schema::sort_attribute(query.sort);
        let filtering = query
            .filters
            .iter()
            .any(|f| narrowed.as_ref().is_none_or(|(by, ..)| *by != f));
        let mut start = after.map(|p| match &narrowed {
            Some(_) => {
                schema::created_start_key(tenant, pk_name, pk_value.clone(), &p.id, &p.sort_value)
            }
            None => schema::list_start_key(tenant, query.sort, &p.id, &p.sort_value),
        });
        let mut found: Vec<Profile> = Vec::new();
        let mut read = 0;
        let budget_end = loop {
            // Unfiltered: one more than asked tells whether a next page exists.
            let want = if filtering {
                FILTERED_CHUNK.min(READ_BUDGET - read)
            } else {
                query.limit + 1 - found.len()
            };
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_values(":pk", pk_value.clone())
                .scan_index_forward(query.order == SortOrder::Asc)
                .limit(i32::try_from(want).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::sdk("query list", e))?;
            read += out.items().len();
            for item in out.items.unwrap_or_default() {
                let profile = decode(item)?.profile;
                if query.filters.iter().all(|f| f.matches(&profile)) {
                    found.push(profile);
                }
            }
            match out.last_evaluated_key {
                _ if found.len() > query.limit => break None,
                Some(k) if !k.is_empty() => {
                    if read >= READ_BUDGET {
                        break Some(k);
                    }
                    start = Some(k);
                }
                _ => break None,
            }
        };
        let next = if found.len() > query.limit {
            found.truncate(query.limit);
            found.last().map(|p| Position {
                sort_value: query.sort.value(p),
                id: p.id,
            })
        } else {
            // Out of budget with the index not exhausted: resume where reading stopped.
            budget_end.and_then(|k| {
                let sort_value = k.get(sort_attr)?.as_s().ok()?.clone();
                let id = schema::profile_id_of(k.get(schema::PK)?.as_s().ok()?)?;
                Some(Position { sort_value, id })
            })
        };
        Ok(Page {
            profiles: found,
            next,
        })
    }
}
