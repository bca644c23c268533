//! Lists of profiles: a page of a tenant's profiles as a Query of one index, never a Scan.

use super::profiles::{decode, guard_owner};
use super::schema::{self, Item};
use super::{Store, StoreError};
use crate::ids::TenantId;
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

/// The index partition a list reads: the index, its partition key's name and value, and
/// the filter it already applies (an email or owner partition in creation order), if any.
struct Partition<'q> {
    index: &'static str,
    pk_name: &'static str,
    pk_value: aws_sdk_dynamodb::types::AttributeValue,
    narrowed_by: Option<&'q Filter>,
}

impl<'q> Partition<'q> {
    /// The sort's index partition of the tenant, or, in creation order, the `ByEmail` or
    /// `ByOwner` partition an email or owner filter names.
    fn of(tenant: &TenantId, query: &'q ListQuery) -> Self {
        let created = query.sort == Sort::CreatedAt;
        let narrowed = query.filters.iter().find_map(|f| match f {
            Filter::Email(e) if created => Some(Self {
                index: schema::BY_EMAIL,
                pk_name: schema::EMAIL_PK,
                pk_value: schema::email_partition(tenant, e),
                narrowed_by: Some(f),
            }),
            Filter::OwnerId(o) if created => Some(Self {
                index: schema::BY_OWNER,
                pk_name: schema::OWNER_PK,
                pk_value: schema::owner_partition(tenant, o),
                narrowed_by: Some(f),
            }),
            _ => None,
        });
        narrowed.unwrap_or_else(|| Self {
            index: schema::sort_index(query.sort),
            pk_name: schema::GSI1PK,
            pk_value: schema::list_partition(tenant),
            narrowed_by: None,
        })
    }

    /// The exclusive start key of the entry `p` names in this partition.
    fn start_key(&self, tenant: &TenantId, query: &ListQuery, p: &Position) -> Item {
        match self.narrowed_by {
            Some(_) => schema::created_start_key(
                tenant,
                self.pk_name,
                self.pk_value.clone(),
                &p.id,
                &p.sort_value,
            ),
            None => schema::list_start_key(tenant, query.sort, &p.id, &p.sort_value),
        }
    }
}

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
            return self.unique_page(tenant, query, after, guard).await;
        }
        let partition = Partition::of(tenant, query);
        let start = after.map(|p| partition.start_key(tenant, query, p));
        let (mut found, budget_end) = self.read(query, &partition, start).await?;
        let next = if found.len() > query.limit {
            found.truncate(query.limit);
            found.last().map(|p| Position {
                sort_value: query.sort.value(p),
                id: p.id,
            })
        } else {
            // Out of budget with the index not exhausted: resume where reading stopped.
            let sort_attr = schema::sort_attribute(query.sort);
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

    /// The page of a unique filter (`external_id`, `slug`): the profile its guard names, if
    /// it matches every filter. At most one profile holds a unique value: one page, never a
    /// second.
    async fn unique_page(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
        after: Option<&Position>,
        guard: Item,
    ) -> Result<Page, StoreError> {
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
        Ok(Page {
            profiles,
            next: None,
        })
    }

    /// Reads `partition` from `start` until the page has one profile more than asked (so a
    /// next page is known to exist), the partition ends, or, while filters skip entries,
    /// [`READ_BUDGET`] entries are read: the profiles that match, and where reading stopped
    /// when the budget ran out first.
    async fn read(
        &self,
        query: &ListQuery,
        partition: &Partition<'_>,
        mut start: Option<Item>,
    ) -> Result<(Vec<Profile>, Option<Item>), StoreError> {
        let filtering = query
            .filters
            .iter()
            .any(|f| partition.narrowed_by.is_none_or(|by| by != f));
        let mut found: Vec<Profile> = Vec::new();
        let mut read = 0;
        loop {
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
                .index_name(partition.index)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", partition.pk_name)
                .expression_attribute_values(":pk", partition.pk_value.clone())
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
                _ if found.len() > query.limit => return Ok((found, None)),
                Some(k) if !k.is_empty() && read >= READ_BUDGET => return Ok((found, Some(k))),
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok((found, None)),
            }
        }
    }
}
