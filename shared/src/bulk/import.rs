//! An import: a JSONL file of profiles, each line a `POST /profiles` body, validated by the
//! same parser and written through the same store path as the API's own writes (so it
//! publishes the same change events). The file is read a byte range at a time, in chunks of
//! lines written concurrently; after each chunk the job item is saved (offset, line, counts)
//! on the condition that no other worker saved it first. A line's write is idempotent: its
//! profile id is made from the job and the line number ([`line_profile_id`]), so a line
//! written again after a crash finds its own profile and is counted once.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::{JSONL, Keys, WorkError, Worked, Worker};
use crate::ids::{JobId, ProfileId};
use crate::model::job::{INLINE_ERRORS, ImportCounts, Job, JobKind, LineError, Mode, Status};
use crate::model::{
    self, BodyKind, Contact, MAX_BODY_BYTES, Profile, ProfileFields, ProfileInput, Timestamp,
};
use crate::store::{ContactWrite, PrimaryMark, StoreError, StoredProfile, Unique};
use crate::validate::{FieldError, Invalid};

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

/// How many times a line whose profile moved under it (a concurrent write, a delete) is
/// tried again.
const LINE_ATTEMPTS: usize = 5;

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

/// One line's content, parsed.
struct Parsed {
    number: u64,
    input: ProfileInput,
    /// A new profile's fields: the input applied to none (its cross-field rules checked).
    fields: ProfileFields,
    external_id: Option<String>,
    slug: Option<String>,
}

/// What became of a line.
enum Outcome {
    Created,
    Updated,
    Failed(LineError),
}

/// The lines of one chunk as read from a window of the file.
struct Chunk<'a> {
    lines: Vec<(u64, Result<&'a str, LineError>)>,
    /// Bytes of the window the chunk takes (complete lines only).
    consumed: usize,
    /// The number of the last line the chunk takes.
    last: u64,
    /// Why the file is no JSONL, when a line says so: the job fails there.
    bad_file: Option<String>,
    /// The first line runs past the window: longer than any line may be.
    overlong: bool,
}

fn line_error(line: u64, code: &str, detail: String, errors: Vec<FieldError>) -> LineError {
    LineError {
        line,
        code: code.to_owned(),
        detail,
        errors,
    }
}

fn too_long(line: u64) -> LineError {
    line_error(
        line,
        "payload_too_large",
        format!("the line is longer than {MAX_LINE_BYTES} bytes, a request body's limit"),
        Vec::new(),
    )
}

/// Up to [`CHUNK_LINES`] lines of `window` (the file from the byte after line `last`): whole
/// lines only, the last one without its newline only at the file's end.
fn read_chunk(window: &[u8], last: u64, at_end: bool) -> Chunk<'_> {
    let mut chunk = Chunk {
        lines: Vec::new(),
        consumed: 0,
        last,
        bad_file: None,
        overlong: false,
    };
    while chunk.lines.len() < CHUNK_LINES && chunk.consumed < window.len() {
        let rest = &window[chunk.consumed..];
        let (mut raw, next) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], chunk.consumed + i + 1),
            None if at_end => (rest, window.len()),
            None => {
                chunk.overlong = chunk.consumed == 0;
                break;
            }
        };
        let number = chunk.last + 1;
        if number == 1 {
            raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        }
        raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > MAX_LINE_BYTES {
            chunk.lines.push((number, Err(too_long(number))));
        } else {
            match std::str::from_utf8(raw) {
                Ok(text) if text.trim().is_empty() => {}
                Ok(text) => chunk.lines.push((number, Ok(text))),
                Err(e) => {
                    chunk.bad_file = Some(format!(
                        "not UTF-8 text: line {number} has an invalid byte at column {}",
                        e.valid_up_to() + 1
                    ));
                    break;
                }
            }
        }
        chunk.consumed = next;
        chunk.last = number;
    }
    chunk
}

/// The members of an export's line the server owns, which an import ignores so that an
/// export imports as it is: a profile's read-only fields and `is_primary` (an import makes
/// no primary profile), and each contact's own.
pub const IGNORED: [&str; 8] = [
    "id",
    "owner_id",
    "created_at",
    "updated_at",
    "version",
    "photo_url",
    "country",
    "is_primary",
];
pub const IGNORED_IN_CONTACTS: [&str; 4] = ["id", "created_at", "updated_at", "version"];

/// A line as a `POST /profiles` body (what [`IGNORED`] names left out), with what its
/// import mode asks of it.
fn parse(number: u64, text: &str, mode: Mode) -> Result<Parsed, LineError> {
    let body = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut map)) => {
            for name in IGNORED {
                map.remove(name);
            }
            if let Some(Value::Array(contacts)) = map.get_mut("contacts") {
                for contact in contacts.iter_mut().filter_map(Value::as_object_mut) {
                    for name in IGNORED_IN_CONTACTS {
                        contact.remove(name);
                    }
                }
            }
            map
        }
        Ok(_) => {
            return Err(line_error(
                number,
                "invalid_body",
                "the line must be a JSON object".into(),
                Vec::new(),
            ));
        }
        Err(e) => {
            return Err(line_error(
                number,
                "malformed_json",
                format!("the line is not valid JSON: {e}"),
                Vec::new(),
            ));
        }
    };
    let input = ProfileInput::parse(&body, BodyKind::Create).map_err(|e| invalid(number, e))?;
    let mut fields = ProfileFields::default();
    model::apply_patch(&mut fields, input.patch.clone()).map_err(|e| invalid(number, e))?;
    // As stored (trimmed, normalised): what the guards compare.
    let external_id = fields.external_id.as_ref().map(|v| v.as_str().to_owned());
    let slug = fields.slug.as_ref().map(|v| v.as_str().to_owned());
    if mode == Mode::Upsert && external_id.is_none() {
        return Err(invalid(
            number,
            Invalid::field(
                "external_id",
                "required in upsert mode: a line is matched to a profile on it",
            ),
        ));
    }
    Ok(Parsed {
        number,
        input,
        fields,
        external_id,
        slug,
    })
}

/// Validation's refusal of a line, as the API answers a body with it.
fn invalid(number: u64, err: Invalid) -> LineError {
    let detail = err.to_string();
    match err {
        Invalid::Fields(errors) => line_error(number, "validation_failed", detail, errors),
        Invalid::Content { code, .. } => line_error(number, code, detail, Vec::new()),
    }
}

/// The table's refusal of a line (a unique value held, a limit), as the API answers it.
fn refused(number: u64, err: &StoreError) -> Option<LineError> {
    err.refusal().map(|r| {
        let errors = r
            .field
            .map(|field| {
                vec![FieldError {
                    field: field.to_owned(),
                    message: r.detail.clone(),
                }]
            })
            .unwrap_or_default();
        line_error(number, r.code, r.detail, errors)
    })
}

/// The waves a chunk's lines are written in: a line whose `external_id` or `slug` an
/// earlier line of the chunk also has waits for that line's wave to end, so the earlier
/// line always holds the value first, as if the file were written line by line.
fn waves(lines: Vec<Parsed>) -> Vec<Vec<Parsed>> {
    let mut last: HashMap<(bool, String), usize> = HashMap::new();
    let mut out: Vec<Vec<Parsed>> = Vec::new();
    for line in lines {
        let keys: Vec<(bool, String)> = [
            line.external_id.clone().map(|v| (true, v)),
            line.slug.clone().map(|v| (false, v)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let wave = keys
            .iter()
            .filter_map(|k| last.get(k).map(|w| w + 1))
            .max()
            .unwrap_or(0);
        for k in keys {
            last.insert(k, wave);
        }
        if out.len() <= wave {
            out.resize_with(wave + 1, Vec::new);
        }
        out[wave].push(line);
    }
    out
}

/// What a chunk's first wave reads in advance in upsert mode: the holders of its lines'
/// external ids and the profiles they name, in BatchGetItems, instead of two reads a line.
/// Only the first wave may use it: a later wave's line follows an earlier line with the same
/// value, whose write it must see.
#[derive(Default)]
struct Prefetched {
    holders: HashMap<String, ProfileId>,
    profiles: HashMap<ProfileId, StoredProfile>,
}

async fn prefetch(w: &Worker<'_>, job: &Job, wave: &[Parsed]) -> Result<Prefetched, StoreError> {
    let external_ids: Vec<&str> = wave
        .iter()
        .filter_map(|l| l.external_id.as_deref())
        .collect();
    let holders = w
        .app
        .store
        .external_id_holders(w.tenant, &external_ids)
        .await?;
    // A line's own profile (written by it before) needs no read.
    let others: Vec<ProfileId> = wave
        .iter()
        .filter_map(|l| {
            let holder = *holders.get(l.external_id.as_deref()?)?;
            (holder != line_profile_id(&job.id, l.number)).then_some(holder)
        })
        .collect();
    let profiles = w.app.store.profiles(w.tenant, &others).await?;
    Ok(Prefetched { holders, profiles })
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
            let failure = match w.bucket.size(&file).await? {
                None => Some("the file is gone: upload it again to a new import".to_owned()),
                Some(0) => Some("the file is empty".to_owned()),
                Some(n) if n > max => {
                    Some(format!("the file is {n} bytes; at most {max} are accepted"))
                }
                Some(n) => {
                    if let JobKind::Import { size, .. } = &mut job.kind {
                        *size = Some(n);
                    }
                    None
                }
            };
            if let Some(failure) = failure {
                return Ok(w.finish(job, Status::Failed, Some(failure)).await?);
            }
            match w.save(&job).await? {
                Some(saved) => job = saved,
                None => return Ok(Worked::Lost),
            }
            import_state(&job).size.unwrap_or(0)
        }
    };
    loop {
        let state = import_state(&job);
        if state.offset >= size {
            return finish(w, &keys, job, None).await;
        }
        if w.budget.running_low() {
            return Ok(w.hand_over(&job).await?);
        }
        let Some(window) = w.bucket.get_range(&file, state.offset, WINDOW).await? else {
            let gone = "the file was deleted while it was imported".to_owned();
            return finish(w, &keys, job, Some(gone)).await;
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
                Err(StoreError::Unavailable { cause, .. }) => {
                    tracing::warn!(%cause, "storage unavailable: handing the import over");
                    return Ok(w.hand_over(&job).await?);
                }
                Err(e) => return Err(e.into()),
            }
        };
        // The chunk's bad lines, kept until the report is made (written again, the same).
        let failed: Vec<&LineError> = outcomes
            .iter()
            .filter_map(|(_, o)| match o {
                Outcome::Failed(e) => Some(e),
                _ => None,
            })
            .collect();
        if !failed.is_empty() {
            let mut body = Vec::new();
            for e in &failed {
                serde_json::to_writer(&mut body, e).map_err(|e| StoreError::Backend {
                    context: "render an error line",
                    cause: e.to_string(),
                })?;
                body.push(b'\n');
            }
            w.bucket
                .put(&keys.chunk_errors(state.line + 1), body, JSONL, "no-store")
                .await?;
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
        match w.save(&job).await? {
            Some(saved) => job = saved,
            None => return Ok(Worked::Lost),
        }
    }
}

/// What an import job's item says of its progress.
struct ImportState {
    mode: Mode,
    offset: u64,
    line: u64,
    counts: ImportCounts,
    size: Option<u64>,
}

fn import_state(job: &Job) -> ImportState {
    match &job.kind {
        JobKind::Import {
            mode,
            offset,
            line,
            counts,
            size,
            ..
        } => ImportState {
            mode: *mode,
            offset: *offset,
            line: *line,
            counts: *counts,
            size: *size,
        },
        // Only imports come here (`crate::bulk::work` dispatches on the kind).
        JobKind::Export { .. } => ImportState {
            mode: Mode::Create,
            offset: 0,
            line: 0,
            counts: ImportCounts::default(),
            size: Some(0),
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
                    errors.push(e.clone());
                }
            }
        }
    }
}

/// The offset after the newline that ends the line starting at `from` (or the file's end).
async fn end_of_line(w: &Worker<'_>, file: &str, from: u64, size: u64) -> Result<u64, WorkError> {
    let mut at = from;
    while at < size {
        let window = w
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

/// What a line's write needs, owned, so lines run as tasks of their own: on a
/// multi-threaded runtime (run-jobs' is) they spread over the function's vCPUs.
#[derive(Clone)]
struct Writer {
    store: crate::store::Store,
    tenant: crate::ids::TenantId,
    job: JobId,
    owner: crate::ids::PrincipalId,
    mode: Mode,
    budget: super::Budget,
}

/// Parses `lines` as tasks, a share for each of the runtime's threads.
async fn parse_all(
    lines: Vec<(u64, Result<&str, LineError>)>,
    mode: Mode,
) -> Result<Vec<(u64, Result<Parsed, LineError>)>, StoreError> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let share = lines.len().div_ceil(threads).max(1);
    let owned: Vec<(u64, Result<String, LineError>)> = lines
        .into_iter()
        .map(|(n, l)| (n, l.map(str::to_owned)))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    let mut rest = owned;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(share));
        let mine = std::mem::replace(&mut rest, tail);
        tasks.spawn(async move {
            mine.into_iter()
                .map(|(n, l)| (n, l.and_then(|text| parse(n, &text, mode))))
                .collect::<Vec<_>>()
        });
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        out.extend(done.map_err(|e| StoreError::Backend {
            context: "parse an import's lines",
            cause: e.to_string(),
        })?);
    }
    out.sort_by_key(|(n, _)| *n);
    Ok(out)
}

/// Writes a chunk's lines, [`IN_FLIGHT`] at once in [`waves`], each a task; each line's
/// outcome, in line order. An outage that outlasts the worker's time is the chunk's error
/// (nothing of it is counted; every line is safe to write again).
async fn write_chunk(
    w: &Worker<'_>,
    job: &Job,
    mode: Mode,
    lines: Vec<(u64, Result<&str, LineError>)>,
) -> Result<Vec<(u64, Outcome)>, StoreError> {
    let mut outcomes = Vec::with_capacity(lines.len());
    let mut parsed = Vec::new();
    for (number, line) in parse_all(lines, mode).await? {
        match line {
            Ok(p) => parsed.push(p),
            Err(e) => outcomes.push((number, Outcome::Failed(e))),
        }
    }
    let waves = waves(parsed);
    let prefetched = std::sync::Arc::new(match (mode, waves.first()) {
        (Mode::Upsert, Some(first)) => prefetch(w, job, first).await?,
        _ => Prefetched::default(),
    });
    let writer = Writer {
        store: w.app.store.clone(),
        tenant: w.tenant.clone(),
        job: job.id,
        owner: job.owner_id.clone(),
        mode,
        budget: w.budget,
    };
    for (i, wave) in waves.into_iter().enumerate() {
        let pre = (i == 0 && mode == Mode::Upsert).then(|| prefetched.clone());
        let mut lines = wave.into_iter();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            while tasks.len() < IN_FLIGHT {
                let Some(line) = lines.next() else { break };
                let (writer, pre) = (writer.clone(), pre.clone());
                tasks.spawn(async move {
                    let outcome = write_line_patiently(&writer, &line, pre.as_deref()).await;
                    (line.number, outcome)
                });
            }
            let Some(done) = tasks.join_next().await else {
                break;
            };
            let (number, result) = done.map_err(|e| StoreError::Backend {
                context: "write an import's line",
                cause: e.to_string(),
            })?;
            outcomes.push((number, result?));
        }
    }
    outcomes.sort_by_key(|(n, _)| *n);
    Ok(outcomes)
}

/// One line's write, tried again while the table is unavailable (throttling, an outage),
/// backing off, until the worker's time runs low.
async fn write_line_patiently(
    w: &Writer,
    line: &Parsed,
    mut pre: Option<&Prefetched>,
) -> Result<Outcome, StoreError> {
    let mut pause = Duration::from_millis(100);
    loop {
        // What was read in advance serves the first attempt only.
        match write_line(w, line, pre.take()).await {
            Err(StoreError::Unavailable { .. }) if !w.budget.running_low() => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e @ StoreError::Unavailable { .. }) => return Err(e),
            // Our bug or a damaged item: the line fails, the job goes on.
            Err(e) => {
                tracing::error!(line = line.number, error = %e, "import line failed");
                return Ok(Outcome::Failed(line_error(
                    line.number,
                    "internal_error",
                    "the line could not be written; the error is logged".into(),
                    Vec::new(),
                )));
            }
            ok => return ok,
        }
    }
}

/// One line's write: a new profile, or (upsert) the one holding its `external_id` updated.
/// `pre`, when given, is what was read in advance for the first attempt.
async fn write_line(
    w: &Writer,
    line: &Parsed,
    mut pre: Option<&Prefetched>,
) -> Result<Outcome, StoreError> {
    let mode = w.mode;
    let own = line_profile_id(&w.job, line.number);
    for _ in 0..LINE_ATTEMPTS {
        let first = pre.take();
        let holder = match (&mode, &line.external_id, first) {
            (Mode::Upsert, Some(ext), Some(pre)) => pre.holders.get(ext).copied(),
            (Mode::Upsert, Some(ext), None) => {
                w.store.external_id_holder_of(&w.tenant, ext).await?
            }
            _ => None,
        };
        let outcome = match holder {
            // Written by this very line before (a retried chunk).
            Some(h) if h == own => Some(Outcome::Created),
            Some(h) => {
                let read = first.and_then(|pre| pre.profiles.get(&h));
                update(w, h, line, read).await?
            }
            None => match create(w, own, line).await {
                Ok(()) | Err(StoreError::IdInUse) => Some(Outcome::Created),
                // Taken meanwhile by another line or request: match it again (upsert).
                Err(StoreError::Taken {
                    what: Unique::ExternalId,
                    ..
                }) if mode == Mode::Upsert => None,
                Err(e) => match refused(line.number, &e) {
                    Some(refusal) => Some(Outcome::Failed(refusal)),
                    None => return Err(e),
                },
            },
        };
        if let Some(outcome) = outcome {
            return Ok(outcome);
        }
    }
    Err(StoreError::unavailable(
        "the line's profile kept changing while it was written",
    ))
}

/// The line's profile, made as `POST /profiles` makes one (its owner the job's).
async fn create(w: &Writer, id: ProfileId, line: &Parsed) -> Result<(), StoreError> {
    let profile = Profile::new(id, line.fields.clone(), w.owner.clone());
    let contacts: Vec<Contact> = line
        .input
        .contacts
        .iter()
        .map(|c| Contact::new(c.clone(), profile.created_at))
        .collect();
    w.store
        .write_profile(&w.tenant, None, profile, &contacts, PrimaryMark::Keep, None)
        .await
        .map(|_| ())
}

/// The profile `id` (which holds the line's `external_id`; `read` when it was read in
/// advance) with the line merged in: its fields as a merge patch, its contacts added where
/// the value is new. Written only when something changes. `None` when the profile moved
/// under it (try the line again).
async fn update(
    w: &Writer,
    id: ProfileId,
    line: &Parsed,
    read: Option<&StoredProfile>,
) -> Result<Option<Outcome>, StoreError> {
    let store = &w.store;
    let stored = match read {
        Some(stored) => stored.clone(),
        None => match store.get(&w.tenant, &id).await? {
            Some(stored) => stored,
            None => return Ok(None),
        },
    };
    let current = &stored.profile;
    let mut fields = current.fields.clone();
    if let Err(e) = model::apply_patch(&mut fields, line.input.patch.clone()) {
        return Ok(Some(Outcome::Failed(invalid(line.number, e))));
    }
    if fields != current.fields {
        let next = Profile {
            fields,
            updated_at: Timestamp::now_after(current.updated_at),
            version: current.version + 1,
            ..current.clone()
        };
        match store
            .write_profile(&w.tenant, Some(&stored), next, &[], PrimaryMark::Keep, None)
            .await
        {
            Ok(_) => {}
            Err(StoreError::VersionChanged) => return Ok(None),
            Err(e) => {
                return match refused(line.number, &e) {
                    Some(refusal) => Ok(Some(Outcome::Failed(refusal))),
                    None => Err(e),
                };
            }
        }
    }
    for new in &line.input.contacts {
        if stored.has_contact(&new.value) {
            continue;
        }
        let contact = Contact::new(new.clone(), Timestamp::now());
        match store
            .write_contact(&w.tenant, &id, ContactWrite::Create(&contact, None))
            .await
        {
            Ok(()) | Err(StoreError::ContactExists { .. }) => {}
            Err(StoreError::ProfileMissing) => return Ok(None),
            Err(e) => {
                return match refused(line.number, &e) {
                    Some(refusal) => Ok(Some(Outcome::Failed(refusal))),
                    None => Err(e),
                };
            }
        }
    }
    Ok(Some(Outcome::Updated))
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
        for key in w.bucket.keys(&keys.chunk_errors_prefix()).await? {
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

    #[test]
    fn a_chunk_takes_whole_lines_skips_blank_ones_and_stops_at_a_partial_one() {
        let window = b"{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":";
        let chunk = read_chunk(window, 0, false);
        let lines: Vec<(u64, &str)> = chunk
            .lines
            .iter()
            .map(|(n, l)| (*n, *l.as_ref().unwrap()))
            .collect();
        assert_eq!(lines, [(1, "{\"a\":1}"), (4, "{\"b\":2}")]);
        assert_eq!(chunk.consumed, window.len() - "{\"c\":".len());
        assert_eq!(chunk.last, 4);
        // At the file's end, the last line needs no newline.
        let chunk = read_chunk(window, 0, true);
        assert_eq!(chunk.lines.len(), 3);
        assert_eq!(chunk.consumed, window.len());
    }

    #[test]
    fn a_line_that_is_not_utf8_ends_the_chunk_before_it_and_fails_the_file() {
        let chunk = read_chunk(b"{}\n{\"a\":\"\xff\"}\n{}\n", 7, false);
        assert_eq!(chunk.lines.len(), 1);
        assert_eq!(chunk.last, 8);
        assert_eq!(chunk.consumed, 3);
        assert!(chunk.bad_file.unwrap().contains("line 9"));
    }

    #[test]
    fn a_byte_order_mark_opens_the_first_line_only() {
        let chunk = read_chunk(b"\xEF\xBB\xBF{}\n", 0, false);
        assert_eq!(chunk.lines[0].1.as_ref().unwrap(), &"{}");
    }

    #[test]
    fn a_line_past_the_window_is_overlong_and_one_past_the_limit_fails_alone() {
        assert!(read_chunk(b"{\"a\":", 0, false).overlong);
        let mut long = vec![b' '; MAX_LINE_BYTES + 1];
        long.extend(b"\n{}\n");
        let chunk = read_chunk(&long, 0, false);
        assert_eq!(chunk.lines.len(), 2);
        assert_eq!(
            chunk.lines[0].1.as_ref().unwrap_err().code,
            "payload_too_large"
        );
    }

    #[test]
    fn a_later_line_with_an_earlier_ones_unique_value_waits_for_its_wave() {
        let line = |n: u64, ext: Option<&str>, slug: Option<&str>| Parsed {
            number: n,
            input: ProfileInput::default(),
            fields: ProfileFields::default(),
            external_id: ext.map(str::to_owned),
            slug: slug.map(str::to_owned),
        };
        let waves = waves(vec![
            line(1, Some("x"), None),
            line(2, Some("y"), Some("s")),
            line(3, Some("x"), None),
            line(4, None, Some("s")),
            line(5, Some("x"), Some("t")),
            line(6, None, None),
        ]);
        let numbers: Vec<Vec<u64>> = waves
            .iter()
            .map(|w| w.iter().map(|l| l.number).collect())
            .collect();
        assert_eq!(numbers, [vec![1, 2, 6], vec![3, 4], vec![5]]);
    }

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
