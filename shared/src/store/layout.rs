//! A tenant's list layout: how many shards its list index partitions are spread over
//! (`schema::shard_of`), and, while that changes, the count it moves to. Every list reads the
//! partitions of the layouts it holds; every profile write puts its index entries in the
//! layout it moves to. Both read it through a per-process cache of [`Store::layout_ttl`], so
//! a change is seen by every instance within that time, and [`Store::relayout`] waits it out
//! before it moves anything: while a tenant moves, each profile is in exactly one layout, and
//! a list that reads both sees it once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;

use super::schema::{self, ShardCount};
use super::{Item, Store, StoreError, profiles};
use crate::ids::TenantId;

/// How long an instance keeps a tenant's layout before it reads it again.
pub const LAYOUT_TTL: Duration = Duration::from_secs(60);

/// The most shards a tenant's list may have: a page reads every shard's partition.
pub const MAX_SHARDS: ShardCount = 64;

/// A tenant's list layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The shard count the profiles are in.
    pub count: ShardCount,
    /// While the tenant moves: the count new and rewritten profiles go to.
    pub next: Option<ShardCount>,
    /// When it last changed (ms since the epoch): a move starts its work a TTL after.
    pub changed_at_ms: i64,
}

impl Layout {
    /// A tenant with no layout item: one shard, one Query per page.
    pub const SINGLE: Layout = Layout {
        count: 1,
        next: None,
        changed_at_ms: 0,
    };

    /// The count a profile write puts its index entries in.
    pub fn writes(&self) -> ShardCount {
        self.next.unwrap_or(self.count)
    }

    /// Every list partition a page reads: each shard of each layout the tenant holds.
    pub fn read_counts(&self) -> Vec<ShardCount> {
        match self.next {
            Some(next) if next != self.count => vec![self.count, next],
            _ => vec![self.count],
        }
    }

    fn from_item(item: &Item) -> Option<Self> {
        let n = |name: &str| item.get(name)?.as_n().ok()?.parse::<i64>().ok();
        let count = ShardCount::try_from(n("count")?).ok()?;
        let next = n("next").and_then(|v| ShardCount::try_from(v).ok());
        Some(Self {
            count,
            next,
            changed_at_ms: n("changed_at").unwrap_or(0),
        })
    }
}

/// The layouts an instance knows, by tenant, with when it read each.
#[derive(Debug, Default)]
pub(super) struct LayoutCache(std::sync::Mutex<HashMap<TenantId, (Layout, Instant)>>);

impl LayoutCache {
    fn get(&self, tenant: &TenantId, ttl: Duration) -> Option<Layout> {
        let cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(tenant)
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(l, _)| *l)
    }

    fn put(&self, tenant: &TenantId, layout: Layout) {
        let mut cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.insert(tenant.clone(), (layout, Instant::now()));
    }
}

/// How a move of a layout runs.
#[derive(Clone, Copy, Debug)]
pub struct MovePace {
    /// How long after marking the move it starts rewriting: at least the instances' layout
    /// TTL ([`LAYOUT_TTL`] in a deployed stack).
    pub settle: Duration,
    /// Index entries read per Query of an old partition.
    pub page: i32,
}

/// Where a move of a tenant's layout stands.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Moved {
    /// Profiles rewritten into the new layout.
    pub rewritten: u64,
    /// Index entries read in the old layout (each one profile).
    pub read: u64,
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl Store {
    /// How long this store trusts a tenant's layout it read (tests make it short).
    pub fn with_layout_ttl(mut self, ttl: Duration) -> Self {
        self.layout_ttl = ttl;
        self
    }

    /// The tenant's layout: cached, else read (one GetItem; none stored is one shard).
    pub async fn layout(&self, tenant: &TenantId) -> Result<Layout, StoreError> {
        if let Some(layout) = self.layouts.get(tenant, self.layout_ttl) {
            return Ok(layout);
        }
        let layout = self.read_layout(tenant).await?;
        self.layouts.put(tenant, layout);
        Ok(layout)
    }

    async fn read_layout(&self, tenant: &TenantId) -> Result<Layout, StoreError> {
        let item = self.get_item(schema::layout_item(tenant)).await?;
        Ok(item
            .as_ref()
            .and_then(Layout::from_item)
            .unwrap_or(Layout::SINGLE))
    }

    /// Writes `new` over `old` (as read), failing with `VersionChanged` when it moved on.
    async fn set_layout(
        &self,
        tenant: &TenantId,
        old: &Layout,
        new: &Layout,
    ) -> Result<(), StoreError> {
        let mut item = schema::layout_item(tenant);
        let n = |v: i64| AttributeValue::N(v.to_string());
        item.insert("count".into(), n(i64::from(new.count)));
        if let Some(next) = new.next {
            item.insert("next".into(), n(i64::from(next)));
        }
        item.insert("changed_at".into(), n(new.changed_at_ms));
        let condition = if *old == Layout::SINGLE {
            "attribute_not_exists(PK) OR changed_at = :was".to_owned()
        } else {
            "changed_at = :was".to_owned()
        };
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .expression_attribute_values(":was", n(old.changed_at_ms))
            .send()
            .await;
        match out {
            Ok(_) => {
                self.layouts.put(tenant, *new);
                Ok(())
            }
            Err(e) if is_condition_failure(&e) => Err(StoreError::VersionChanged),
            Err(e) => Err(StoreError::sdk("put layout", e)),
        }
    }

    /// Moves `tenant`'s list to `to` shards, online: marks the move (new and rewritten
    /// profiles go to `to` from then on), waits `settle` (at least the instances' layout TTL,
    /// so every instance lists both layouts and writes the new one), rewrites every profile
    /// still in the old layout, then marks the move done. A list during the move reads both
    /// layouts, where each profile is exactly once: no page repeats or skips one. Run again
    /// after an interruption, it resumes (a move under way is finished first; a finished one
    /// rewrites nothing). `each` hears how far it got after every page.
    pub async fn relayout(
        &self,
        tenant: &TenantId,
        to: ShardCount,
        pace: MovePace,
        mut each: impl FnMut(&Moved),
    ) -> Result<Moved, StoreError> {
        self.move_layout(tenant, to, pace, &mut each).await
    }

    /// [`Store::relayout`], with its listener as a trait object: a move under way elsewhere
    /// is finished by this same function first.
    async fn move_layout(
        &self,
        tenant: &TenantId,
        to: ShardCount,
        pace: MovePace,
        each: &mut dyn FnMut(&Moved),
    ) -> Result<Moved, StoreError> {
        if !(1..=MAX_SHARDS).contains(&to) {
            return Err(StoreError::backend(
                "relayout",
                format!("a list has 1 to {MAX_SHARDS} shards, not {to}"),
            ));
        }
        let mut layout = self.read_layout(tenant).await?;
        let mut moved = Moved::default();
        if layout.count == to && layout.next.is_none() {
            return Ok(moved);
        }
        if layout.next != Some(to) {
            // A move elsewhere is finished first: one move at a time.
            if let Some(other) = layout.next {
                Box::pin(self.move_layout(tenant, other, pace, each)).await?;
                layout = self.read_layout(tenant).await?;
            }
            let moving = Layout {
                count: layout.count,
                next: Some(to),
                changed_at_ms: now_ms().max(layout.changed_at_ms + 1),
            };
            self.set_layout(tenant, &layout, &moving).await?;
            layout = moving;
        }
        // Every instance reads the layout again within its TTL: wait that out from the mark.
        let since =
            Duration::from_millis(u64::try_from(now_ms() - layout.changed_at_ms).unwrap_or(0));
        if let Some(wait) = pace.settle.checked_sub(since) {
            tokio::time::sleep(wait).await;
        }
        for shard in 0..layout.count {
            let old = schema::list_partition(tenant, layout.count, shard);
            self.move_partition(tenant, &old, (to, pace.page), &mut moved, each)
                .await?;
        }
        let done = Layout {
            count: to,
            next: None,
            changed_at_ms: now_ms().max(layout.changed_at_ms + 1),
        };
        self.set_layout(tenant, &layout, &done).await?;
        Ok(moved)
    }

    /// Rewrites every profile in one old shard's partition `pk` into the layout of `to` shards:
    /// passes over the partition until one rewrites nothing (an entry the index still shows
    /// after its profile moved, the index lagging, is passed over).
    async fn move_partition(
        &self,
        tenant: &TenantId,
        pk: &AttributeValue,
        (to, page): (ShardCount, i32),
        moved: &mut Moved,
        each: &mut dyn FnMut(&Moved),
    ) -> Result<(), StoreError> {
        loop {
            let before = moved.rewritten;
            let mut start = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(schema::sort_index(crate::listing::Sort::CreatedAt))
                    .key_condition_expression("#pk = :pk")
                    .expression_attribute_names("#pk", schema::LIST_PK)
                    .expression_attribute_values(":pk", pk.clone())
                    .limit(page)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| StoreError::sdk("query old layout", e))?;
                for entry in out.items.unwrap_or_default() {
                    moved.read += 1;
                    self.move_one(tenant, pk, &entry, to, moved).await?;
                }
                each(moved);
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
            if moved.rewritten == before {
                return Ok(());
            }
        }
    }

    /// Rewrites the profile an old layout's `entry` names into the layout of `to` shards,
    /// unless it has left the old partition `pk` already (moved, or deleted).
    async fn move_one(
        &self,
        tenant: &TenantId,
        pk: &AttributeValue,
        entry: &Item,
        to: ShardCount,
        moved: &mut Moved,
    ) -> Result<(), StoreError> {
        let Some(item) = self.get_item(schema::key_of(entry)).await? else {
            return Ok(());
        };
        if item.get(schema::LIST_PK) != Some(pk) {
            return Ok(());
        }
        let stored = profiles::decode(item)?;
        match self.rewrite(tenant, &stored, to).await {
            Ok(()) => moved.rewritten += 1,
            // Written meanwhile: a write puts it in the new layout itself.
            Err(StoreError::VersionChanged) => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

fn is_condition_failure<R>(
    e: &aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError, R>,
) -> bool {
    matches!(
        e.as_service_error(),
        Some(
            aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(_)
        )
    )
}
