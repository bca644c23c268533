//! An import: a JSONL file of profiles, each line a `POST /profiles` body, validated by the
//! same parser and written through the same store path as the API's own writes (so it
//! publishes the same change events). The file is read a byte range at a time (`read`), in
//! chunks of lines parsed (`parse`) and written concurrently (`write`); after each chunk the
//! job item is saved (offset, line, counts) on the condition that no other worker saved it
//! first. A line's write is idempotent: its profile id is made from the job and the line
//! number ([`line_profile_id`]), so a line written again after a crash finds its own
//! profile and is counted once.

mod parse;
mod read;
mod write;

pub use parse::IGNORED_IN_CONTACTS;

use serde_json::Value;

use super::{JSONL, Keys, WorkError, Worked, Worker};
use crate::ids::{JobId, ProfileId};
use crate::model::MAX_BODY_BYTES;
use crate::model::job::{INLINE_ERRORS, ImportCounts, Job, JobKind, LineError, Mode, Status};
use crate::store::StoreError;
use read::{read_chunk, too_long};
use write::{Outcome, write_chunk};

/// The longest line: a request body's limit.
pub const MAX_LINE_BYTES: usize = MAX_BODY_BYTES;

/// How much of the file one read takes.
const WINDOW: u64 = 8 << 20;

/// Lines per chunk: what is written between two checkpoints.
pub const CHUNK_LINES: usize = 500;

/// Lines written at once: enough that a worker is not bound by a write's latency before
/// the table's quota binds (4,000 creates a second at ~20 ms each is 80 in flight).
pub const IN_FLIGHT: usize = 128;

/// The parts of an error report (S3's least part but the last is 5 MiB).
const PART_BYTES: usize = 8 << 20;

/// The id of the profile line `line` of import `job` makes: a UUID v7 of the job's own
/// time, the line number in the bits after it (a job's profiles sort in line order) and 34
/// bits of the job id's hash. The same line of the same job always makes the same id, so
/// writing it again finds it ([`StoreError::IdInUse`]) instead of making a second profile.
pub fn line_profile_id(job: &JobId, line: u64) -> ProfileId {
    use sha2::Digest;
    let ms = job
        .as_uuid()
        .get_timestamp()
        .map(|t| t.to_unix())
        .map_or(0, |(secs, nanos)| {
            secs * 1000 + u64::from(nanos / 1_000_000)
        });
    let hash = sha2::Sha256::digest(job.as_uuid().as_bytes());
    let l = line & ((1 << 40) - 1);
    // The builder overwrites the version nibble (byte 0's high half) and the variant bits
    // (byte 2's top two): the line number goes around them.
    let bytes = [
        ((l >> 36) & 0x0F) as u8,
        (l >> 28) as u8,
        ((l >> 22) & 0x3F) as u8,
        (l >> 14) as u8,
        (l >> 6) as u8,
        (((l & 0x3F) << 2) as u8) | (hash[0] & 0x03),
        hash[1],
        hash[2],
        hash[3],
        hash[4],
    ];
    ProfileId::from(uuid::Builder::from_unix_timestamp_millis(ms, &bytes).into_uuid())
}

/// Runs an import from its last checkpoint until the file ends, the job fails, or the
/// worker's time runs low (then a fresh invocation goes on).
pub async fn run(w: &Worker<'_>, job: Job) -> Result<Worked, WorkError> {
    let id = job.id;
    let keys = Keys {
        tenant: w.tenant,
        job: &id,
    };
    let file = keys.file();
    let Some(mut job) = w.start(job).await? else {
        return Ok(Worked::Lost);
    };
    let size = match import_state(&job).size {
        Some(size) => size,
        None => {
            let max = w.app.config.import_max_bytes;
            let failure = match w.bucket.head(&file).await? {
                None => Some("the file is gone: upload it again to a new import".to_owned()),
                Some((0, _)) => Some("the file is empty".to_owned()),
                Some((n, _)) if n > max => {
                    Some(format!("the file is {n} bytes; at most {max} are accepted"))
                }
                Some((n, tag)) => {
                    if let JobKind::Import { size, etag, .. } = &mut job.kind {
                        *size = Some(n);
                        *etag = tag;
                    }
                    None
                }
            };
            if let Some(failure) = failure {
                return Ok(w.finish(job, Status::Failed, Some(failure)).await?);
            }
            match w.save(&job).await {
                Ok(Some(saved)) => job = saved,
                Ok(None) => return Ok(Worked::Lost),
                Err(e) => return handed_over(w, &job, e).await,
            }
            import_state(&job).size.unwrap_or(0)
        }
    };
    loop {
        let state = import_state(&job);
        if w.budget.running_low() {
            return Ok(w.hand_over(&job).await?);
        }
        if state.offset >= size {
            return finish(w, &keys, job, None).await;
        }
        let window = match w.bucket.get_range(&file, state.offset, WINDOW).await {
            Ok(Some((bytes, tag)))
                if !bytes.is_empty() && (state.etag.is_none() || tag == state.etag) =>
            {
                bytes
            }
            Ok(None) => {
                let gone = "the file was deleted while it was imported".to_owned();
                return finish(w, &keys, job, Some(gone)).await;
            }
            // Another upload to the same key (its form used again): two files never mix.
            Ok(Some(_)) => {
                let replaced = "the file was replaced while it was imported".to_owned();
                return finish(w, &keys, job, Some(replaced)).await;
            }
            Err(e) => return handed_over(w, &job, e).await,
        };
        let at_end = state.offset + window.len() as u64 >= size;
        let chunk = read_chunk(&window, state.line, at_end);
        // (bytes taken, the last line taken, each line's outcome, why the file fails).
        let (consumed, last, outcomes, bad_file) = if chunk.overlong {
            let number = state.line + 1;
            let end = end_of_line(w, &file, state.offset, size).await?;
            let outcome = vec![(number, Outcome::Failed(too_long(number)))];
            (end - state.offset, number, outcome, None)
        } else if state.counts.read == 0
            && let Some((n, Ok(text))) = chunk.lines.first()
            && !serde_json::from_str::<Value>(text).is_ok_and(|v| v.is_object())
        {
            // The first line of content decides whether the file is JSONL at all.
            let reason = format!("not JSONL: line {n} is not a JSON object");
            (0, state.line, Vec::new(), Some(reason))
        } else {
            let (consumed, last, bad_file) = (chunk.consumed as u64, chunk.last, chunk.bad_file);
            match write_chunk(w, &job, state.mode, chunk.lines).await {
                Ok(outcomes) => (consumed, last, outcomes, bad_file),
                // An outage that outlasted this invocation's patience: a fresh one goes on
                // from the last checkpoint (every line is safe to write again).
                Err(e) => return handed_over(w, &job, e).await,
            }
        };
        // The chunk's bad lines, kept until the report is made; written for every chunk
        // (empty when none failed), so a chunk done again replaces what it said before.
        let mut body = Vec::new();
        for (_, outcome) in &outcomes {
            if let Outcome::Failed(e) = outcome {
                serde_json::to_writer(&mut body, e).map_err(|e| StoreError::Backend {
                    context: "render an error line",
                    cause: e.to_string(),
                })?;
                body.push(b'\n');
            }
        }
        let errors_key = keys.chunk_errors(state.line + 1);
        if let Err(e) = w.bucket.put(&errors_key, body, JSONL, "no-store").await {
            return handed_over(w, &job, e).await;
        }
        if let JobKind::Import {
            offset,
            line,
            counts,
            errors,
            ..
        } = &mut job.kind
        {
            *offset += consumed;
            *line = last;
            count(counts, errors, &outcomes);
        }
        if let Some(reason) = bad_file {
            return finish(w, &keys, job, Some(reason)).await;
        }
        match w.save(&job).await {
            Ok(Some(saved)) => job = saved,
            Ok(None) => return Ok(Worked::Lost),
            Err(e) => return handed_over(w, &job, e).await,
        }
    }
}

/// An outage met outside a line's write (a checkpoint, a read of the file, a chunk's
/// errors): the job goes on in a fresh invocation from its last checkpoint. Anything else
/// is the invocation's error (Lambda retries it).
async fn handed_over(w: &Worker<'_>, job: &Job, err: StoreError) -> Result<Worked, WorkError> {
    match err {
        StoreError::Unavailable { cause, .. } => {
            tracing::warn!(%cause, "storage unavailable: handing the import over");
            Ok(w.hand_over(job).await?)
        }
        other => Err(other.into()),
    }
}

/// What an import job's item says of its progress.
struct ImportState {
    mode: Mode,
    offset: u64,
    line: u64,
    counts: ImportCounts,
    size: Option<u64>,
    etag: Option<String>,
}

fn import_state(job: &Job) -> ImportState {
    match &job.kind {
        JobKind::Import {
            mode,
            offset,
            line,
            counts,
            size,
            etag,
            ..
        } => ImportState {
            mode: *mode,
            offset: *offset,
            line: *line,
            counts: *counts,
            size: *size,
            etag: etag.clone(),
        },
        // Only imports come here (`crate::bulk::work` dispatches on the kind).
        JobKind::Export { .. } => ImportState {
            mode: Mode::Create,
            offset: 0,
            line: 0,
            counts: ImportCounts::default(),
            size: Some(0),
            etag: None,
        },
    }
}

/// Adds a chunk's outcomes to the counts, and its first bad lines to the inline ones.
fn count(counts: &mut ImportCounts, errors: &mut Vec<LineError>, outcomes: &[(u64, Outcome)]) {
    for (_, outcome) in outcomes {
        counts.read += 1;
        match outcome {
            Outcome::Created => counts.created += 1,
            Outcome::Updated => counts.updated += 1,
            Outcome::Failed(e) => {
                counts.failed += 1;
                if errors.len() < INLINE_ERRORS {
                    errors.push(e.clipped());
                }
            }
        }
    }
}

/// The offset after the newline that ends the line starting at `from` (or the file's end).
async fn end_of_line(w: &Worker<'_>, file: &str, from: u64, size: u64) -> Result<u64, WorkError> {
    let mut at = from;
    while at < size {
        let (window, _) = w
            .bucket
            .get_range(file, at, WINDOW)
            .await?
            .unwrap_or_default();
        if window.is_empty() {
            break;
        }
        if let Some(i) = window.iter().position(|b| *b == b'\n') {
            return Ok(at + i as u64 + 1);
        }
        at += window.len() as u64;
    }
    Ok(size)
}

/// Ends an import: its error report made from the chunks' bad lines (when a line failed),
/// then completed, or failed with `failure`.
async fn finish(
    w: &Worker<'_>,
    keys: &Keys<'_>,
    mut job: Job,
    failure: Option<String>,
) -> Result<Worked, WorkError> {
    if import_state(&job).counts.failed > 0 {
        let report = keys.report();
        let mut parts = w.bucket.start_parts(&report, JSONL).await?;
        let mut buffer = Vec::new();
        // Only the chunks that had a bad line: the others' objects are empty.
        for (key, _) in w
            .bucket
            .objects(&keys.chunk_errors_prefix())
            .await?
            .into_iter()
            .filter(|(_, size)| *size > 0)
        {
            buffer.extend(w.bucket.get(&key).await?.unwrap_or_default());
            if buffer.len() >= PART_BYTES {
                w.bucket
                    .put_part(&mut parts, std::mem::take(&mut buffer))
                    .await?;
            }
        }
        w.bucket.put_part(&mut parts, buffer).await?;
        w.bucket.finish_parts(parts).await?;
        job.result_key = Some(report);
    }
    let status = match failure {
        None => Status::Completed,
        Some(_) => Status::Failed,
    };
    Ok(w.finish(job, status, failure).await?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A job's line ids: the same line always the same id, distinct lines distinct ids,
        /// in line order, at the job's time, and a valid UUID v7.
        #[test]
        fn line_ids_are_stable_distinct_and_in_line_order(a in 1u64..(1 << 40), b in 1u64..(1 << 40)) {
            let job = JobId::generate();
            let (ia, ib) = (line_profile_id(&job, a), line_profile_id(&job, b));
            prop_assert_eq!(ia, line_profile_id(&job, a));
            prop_assert_eq!(a == b, ia == ib);
            prop_assert_eq!(a.cmp(&b), ia.cmp(&ib));
            prop_assert_eq!(ia.as_uuid().get_version_num(), 7);
            prop_assert_eq!(
                ia.as_uuid().get_timestamp().map(|t| t.to_unix().0),
                job.as_uuid().get_timestamp().map(|t| t.to_unix().0)
            );
        }
    }
}
