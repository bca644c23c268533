//! The upgrade backfill: rewrites profile items stored before the current key scheme (an
//! index added since, an index attribute missing) with every attribute the scheme gives
//! them now. One page of a Scan at a time (the only Scan in the code: an operator's command,
//! never a request), each rewrite conditional on the version read, so a profile written
//! meanwhile by the API (already in the current shape) is left as it is. Running it again
//! rewrites nothing; it resumes from the last page's cursor; its pace is bounded.

use std::time::{Duration, Instant};

use super::{Item, Store, StoreError, profiles, schema};

/// Where a backfill stands after one page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    /// Items read (of every kind).
    pub scanned: u64,
    /// Profile items rewritten with their missing attributes.
    pub rewritten: u64,
    /// Profile items already in the current shape (or changed by the API meanwhile).
    pub current: u64,
    /// Where the next page starts (`None`: the table is done). Resuming from it continues
    /// without redoing what is done.
    pub cursor: Option<Item>,
}

/// How a backfill runs.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// Items read per Scan page.
    pub page: i32,
    /// Items read per second at most (read and write capacity the backfill may take).
    pub items_per_second: f64,
}

impl Store {
    /// One page of the backfill from `start` (the beginning when `None`).
    pub async fn backfill_page(
        &self,
        start: Option<Item>,
        page: i32,
    ) -> Result<Progress, StoreError> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .limit(page)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| StoreError::sdk("scan", e))?;
        let mut progress = Progress {
            cursor: out.last_evaluated_key,
            ..Progress::default()
        };
        for item in out.items.unwrap_or_default() {
            progress.scanned += 1;
            let Some((tenant, _)) = schema::profile_of(&item) else {
                continue;
            };
            let stored = profiles::decode(item.clone())?;
            let count = Box::pin(self.layout(&tenant)).await?.writes();
            let want = self.profile_item(
                &tenant,
                &stored.profile,
                stored.contact_index().clone(),
                count,
            )?;
            if want == item {
                progress.current += 1;
                continue;
            }
            match self.rewrite(&tenant, &stored, count).await {
                Ok(()) => progress.rewritten += 1,
                // Written by the API since the page was read: in the current shape already.
                Err(StoreError::VersionChanged) => progress.current += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(progress)
    }

    /// The backfill from `start` to the end of the table at `pace`, telling `each_page` where
    /// it stands after every page (a caller that keeps the cursor can resume from it); it
    /// stops early when `each_page` answers `false`. The totals, with the last cursor.
    pub async fn backfill(
        &self,
        mut start: Option<Item>,
        pace: Pace,
        mut each_page: impl FnMut(&Progress) -> bool,
    ) -> Result<Progress, StoreError> {
        let began = Instant::now();
        let mut total = Progress::default();
        loop {
            let page = self.backfill_page(start.take(), pace.page).await?;
            total.scanned += page.scanned;
            total.rewritten += page.rewritten;
            total.current += page.current;
            total.cursor = page.cursor.clone();
            let go_on = each_page(&total);
            let Some(next) = page.cursor else {
                return Ok(total);
            };
            if !go_on {
                return Ok(total);
            }
            // Never ahead of the pace: wait until the items read so far were due.
            let due = Duration::from_secs_f64(total.scanned as f64 / pace.items_per_second);
            if let Some(wait) = due.checked_sub(began.elapsed()) {
                tokio::time::sleep(wait).await;
            }
            start = Some(next);
        }
    }
}
