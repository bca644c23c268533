//! Lists of profiles: a page of a tenant's profiles as one Query of each of its list
//! partitions (one per shard of each layout the tenant holds, all in parallel) merged by sort
//! key, and one BatchGetItem of the page's profiles; never a Scan. The list indexes are
//! keys-only, so a profile write touches an index only when a key it holds changes.

use std::collections::VecDeque;

use aws_sdk_dynamodb::types::AttributeValue;

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

/// Index entries taken per round while filters skip some: one BatchGetItem's most.
const FILTERED_CHUNK: usize = super::BATCH_GET_MOST;

/// What a list reads: one index, the tenant's partitions in it, and the key range.
struct Source {
    index: &'static str,
    pk_name: &'static str,
    sort_name: &'static str,
    partitions: Vec<AttributeValue>,
    /// The range of sort keys read (`begins_with`), when a filter narrows it.
    prefix: Option<String>,
    /// Whether the index gives exactly the profiles the filters admit (then nothing read
    /// is skipped, and a page reads one more entry than it shows, no more).
    exact: bool,
}

impl Source {
    /// The index `query` reads, and its partitions in each of `counts` (the tenant's
    /// layouts): the owner index in creation order when it filters by owner, else the
    /// index of the order it reads in.
    fn of(tenant: &TenantId, query: &ListQuery, counts: &[schema::ShardCount]) -> Self {
        let sort = query.reads_in();
        let created = matches!(sort, Sort::CreatedAt | Sort::Id);
        let owner = query.filters.iter().find_map(|f| match f {
            Filter::OwnerId(o) if created => Some(o),
            _ => None,
        });
        let shards = counts.iter().flat_map(|&c| (0..c).map(move |s| (c, s)));
        let (index, pk_name, partitions) = match owner {
            Some(o) => (
                schema::BY_OWNER,
                schema::OWNER_PK,
                shards
                    .map(|(c, s)| schema::owner_list_partition(tenant, o, c, s))
                    .collect(),
            ),
            None => (
                schema::sort_index(sort),
                schema::LIST_PK,
                shards
                    .map(|(c, s)| schema::list_partition(tenant, c, s))
                    .collect(),
            ),
        };
        let prefix = query.filters.iter().find_map(|f| f.key_prefix(sort));
        let exact = query.filters.iter().all(|f| match f {
            Filter::OwnerId(_) => owner.is_some(),
            Filter::NamePrefix(p) => sort == Sort::Name && p.chars().count() <= 200,
            Filter::EmailPrefix(_) => sort == Sort::Email,
            Filter::Email(_) => sort == Sort::Email,
            _ => false,
        });
        Self {
            index,
            pk_name,
            sort_name: schema::sort_attribute(sort),
            partitions,
            prefix,
            exact,
        }
    }

    /// An entry's position in the list: its sort key and its profile's id.
    fn position(&self, entry: &Item) -> Option<Position> {
        let sort_value = entry.get(self.sort_name)?.as_s().ok()?.clone();
        let id = schema::profile_id_of(entry.get(schema::PK)?.as_s().ok()?)?;
        Some(Position { sort_value, id })
    }
}

/// One partition being read: what a Query returned and not yet taken, and where it goes on.
struct Shard {
    pk: AttributeValue,
    buffer: VecDeque<Item>,
    start: Option<Item>,
    done: bool,
}

impl Store {
    /// One page of a tenant's profiles in `query`'s order, after `after`: a Query of each of
    /// the tenant's partitions of the order's index (or of its email, owner or name index
    /// where a filter or search narrows to it), merged, then the page's profiles in one
    /// BatchGetItem. Filters that are unique lookups (`external_id`, `slug`) read their guard
    /// instead. Filters the index does not apply skip profiles as they are read, within
    /// [`READ_BUDGET`] entries.
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
        let layout = Box::pin(self.layout(tenant)).await?;
        let source = Source::of(tenant, query, &layout.read_counts());
        let mut shards: Vec<Shard> = source
            .partitions
            .iter()
            .map(|pk| Shard {
                pk: pk.clone(),
                buffer: VecDeque::new(),
                start: after.map(|p| {
                    let sort = source.sort_name;
                    schema::start_key(
                        tenant,
                        source.pk_name,
                        pk.clone(),
                        sort,
                        &p.id,
                        &p.sort_value,
                    )
                }),
                done: false,
            })
            .collect();
        let mut found: Vec<(Position, Profile)> = Vec::new();
        let mut read = 0;
        let mut last = None;
        loop {
            let want = if source.exact {
                query.limit + 1 - found.len()
            } else {
                FILTERED_CHUNK.min(READ_BUDGET - read)
            };
            let entries = self.take(&source, query.order, &mut shards, want).await?;
            if entries.is_empty() {
                break;
            }
            read += entries.len();
            last = entries.last().and_then(|e| source.position(e));
            for (position, profile) in self.fetch(&source, &entries).await? {
                if query.filters.iter().all(|f| f.matches(&profile)) {
                    found.push((position, profile));
                }
            }
            if found.len() > query.limit || (!source.exact && read >= READ_BUDGET) {
                break;
            }
        }
        let next = if found.len() > query.limit {
            found.truncate(query.limit);
            found.last().map(|(p, _)| p.clone())
        } else if !source.exact
            && read >= READ_BUDGET
            && shards.iter().any(|s| !s.done || !s.buffer.is_empty())
        {
            // Out of budget with the index not exhausted: resume where reading stopped.
            last
        } else {
            None
        };
        Ok(Page {
            profiles: found.into_iter().map(|(_, p)| p).collect(),
            next,
        })
    }

    /// The next `want` entries of the merged partitions in `order`: each partition whose
    /// buffer is empty is queried first (all at once), so every partition with entries left
    /// has its next one at hand when the smallest (or largest) is taken.
    async fn take(
        &self,
        source: &Source,
        order: SortOrder,
        shards: &mut [Shard],
        want: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::with_capacity(want);
        while out.len() < want {
            self.refill(source, order, shards, want - out.len()).await?;
            let key = |s: &Shard| {
                s.buffer
                    .front()
                    .and_then(|e| e.get(source.sort_name))
                    .and_then(|v| v.as_s().ok())
                    .cloned()
            };
            let heads = shards
                .iter()
                .enumerate()
                .filter_map(|(i, s)| Some((i, key(s)?)));
            let pick = match order {
                SortOrder::Asc => heads.min_by(|a, b| a.1.cmp(&b.1)),
                SortOrder::Desc => heads.max_by(|a, b| a.1.cmp(&b.1)),
            };
            let Some((i, head)) = pick else {
                break;
            };
            let entry = shards[i].buffer.pop_front();
            // While a tenant's layout moves, the index may show a rewritten profile in its
            // old and its new partition for a moment: the two entries carry one sort key
            // (it ends in the id), come out of the merge side by side, and the page shows
            // the profile once.
            let repeated = out
                .last()
                .and_then(|e: &Item| e.get(source.sort_name))
                .and_then(|v| v.as_s().ok())
                .is_some_and(|last| *last == head);
            if !repeated {
                out.extend(entry);
            }
        }
        Ok(out)
    }

    /// One Query, all at once, of every partition whose buffer is empty and that has more.
    async fn refill(
        &self,
        source: &Source,
        order: SortOrder,
        shards: &mut [Shard],
        want: usize,
    ) -> Result<(), StoreError> {
        let empty: Vec<usize> = (0..shards.len())
            .filter(|&i| shards[i].buffer.is_empty() && !shards[i].done)
            .collect();
        let queries = empty
            .iter()
            .map(|&i| self.query_partition(source, order, &shards[i], want));
        let results = futures_util::future::join_all(queries).await;
        for (i, result) in empty.into_iter().zip(results) {
            let (items, next) = result?;
            let shard = &mut shards[i];
            shard.buffer.extend(items);
            shard.done = next.is_none();
            shard.start = next;
        }
        Ok(())
    }

    /// One Query of one partition from where it stands: up to `want` entries, and where it
    /// goes on (`None`: the partition is read to its end).
    async fn query_partition(
        &self,
        source: &Source,
        order: SortOrder,
        shard: &Shard,
        want: usize,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(source.index)
            .expression_attribute_names("#pk", source.pk_name)
            .expression_attribute_values(":pk", shard.pk.clone())
            .scan_index_forward(order == SortOrder::Asc)
            .limit(i32::try_from(want).unwrap_or(i32::MAX))
            .set_exclusive_start_key(shard.start.clone());
        q = match &source.prefix {
            Some(prefix) => q
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#sk", source.sort_name)
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.clone())),
            None => q.key_condition_expression("#pk = :pk"),
        };
        let out = q
            .send()
            .await
            .map_err(|e| StoreError::sdk("query list", e))?;
        let next = out.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((out.items.unwrap_or_default(), next))
    }

    /// The profiles `entries` name, in their order, each with its entry's position; an entry
    /// whose profile is gone (deleted, the index not yet caught up) is passed over. One
    /// BatchGetItem (eventually consistent, as the index is).
    async fn fetch(
        &self,
        source: &Source,
        entries: &[Item],
    ) -> Result<Vec<(Position, Profile)>, StoreError> {
        let keys: Vec<Item> = entries.iter().map(schema::key_of).collect();
        let mut by_pk = self.batch_get(keys, false).await?;
        let mut profiles = Vec::with_capacity(entries.len());
        for entry in entries {
            let pk = entry.get(schema::PK).and_then(|v| v.as_s().ok());
            let (Some(item), Some(position)) =
                (pk.and_then(|pk| by_pk.remove(pk)), source.position(entry))
            else {
                continue;
            };
            profiles.push((position, decode(item)?.profile));
        }
        Ok(profiles)
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
}
