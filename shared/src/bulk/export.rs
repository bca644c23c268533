//! An export: every profile of a tenant, with its contacts, one JSON object a line in
//! creation order, as `GET /profiles/{id}` shows it. Pages of the list in creation order are
//! read one after another, and each profile with its contacts in one consistent Query of
//! its partition: every line is one profile as it was at one moment. A profile created
//! while the export runs may be in it or not; one deleted while it runs is left out if it
//! is gone by the time its page is read.

use futures_util::stream::{self, StreamExt};

use super::{JSONL, Keys, WorkError, Worked, Worker};
use crate::listing::{ListQuery, Position, Sort, SortOrder};
use crate::model::job::{Job, JobKind, Status};
use crate::store::{Parts, StoreError};

/// Profiles read at once.
const IN_FLIGHT: usize = 16;

/// The export's parts (S3's least part but the last is 5 MiB).
const PART_BYTES: usize = 8 << 20;

/// The list an export reads: every profile, oldest first, a full page at a time.
fn everything() -> ListQuery {
    ListQuery {
        limit: 100,
        sort: Sort::CreatedAt,
        order: SortOrder::Asc,
        filters: Vec::new(),
        own: false,
    }
}

/// Runs an export to its end in this invocation; one that cannot finish in a worker's time
/// fails, saying so.
pub async fn run(w: &Worker<'_>, job: Job) -> Result<Worked, WorkError> {
    let id = job.id;
    let keys = Keys {
        tenant: w.tenant,
        job: &id,
    };
    let Some(mut job) = w.start(job).await? else {
        return Ok(Worked::Lost);
    };
    let key = keys.export();
    let query = everything();
    let store = &w.app.store;
    let mut parts: Option<Parts> = None;
    let mut buffer = Vec::new();
    let mut count = 0u64;
    let mut after: Option<Position> = None;
    loop {
        if w.budget.running_low() {
            let failure = format!(
                "the export did not finish in one worker's time ({count} profiles written); \
                 ask for it again, or split the tenant's data by a list filter"
            );
            return Ok(w.finish(job, Status::Failed, Some(failure)).await?);
        }
        let page = store.list(w.tenant, &query, after.as_ref()).await?;
        let reads: Vec<_> = stream::iter(page.profiles.iter())
            .map(|p| store.partition(w.tenant, &p.id))
            .buffered(IN_FLIGHT)
            .collect()
            .await;
        for read in reads {
            // Gone since the page was read: deleted while the export ran.
            let Some(read) = read? else { continue };
            let line =
                read.profile
                    .to_json(Some(&read.contacts))
                    .map_err(|e| StoreError::Backend {
                        context: "render an exported profile",
                        cause: e.to_string(),
                    })?;
            serde_json::to_writer(&mut buffer, &line).map_err(|e| StoreError::Backend {
                context: "write an exported profile",
                cause: e.to_string(),
            })?;
            buffer.push(b'\n');
            count += 1;
        }
        if buffer.len() >= PART_BYTES {
            let p = match &mut parts {
                Some(p) => p,
                None => parts.insert(w.bucket.start_parts(&key, JSONL).await?),
            };
            w.bucket.put_part(p, std::mem::take(&mut buffer)).await?;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    match parts {
        Some(mut p) => {
            w.bucket.put_part(&mut p, buffer).await?;
            w.bucket.finish_parts(p).await?;
        }
        None => w.bucket.put(&key, buffer, JSONL, "no-store").await?,
    }
    job.kind = JobKind::Export { count };
    job.result_key = Some(key);
    Ok(w.finish(job, Status::Completed, None).await?)
}
