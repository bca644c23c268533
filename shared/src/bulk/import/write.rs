//! Writing a chunk's lines: each a task (so they spread over a multi-threaded runtime's
//! threads), 128 at once, in waves; a line created as `POST /profiles` creates, or (upsert)
//! the profile holding its `external_id` updated, tried again while the table is
//! unavailable.

use std::collections::HashMap;
use std::time::Duration;

use super::parse::{Parsed, invalid, parse, refused, waves};
use super::read::line_error;
use super::{IN_FLIGHT, line_profile_id};
use crate::bulk::Worker;
use crate::ids::{JobId, PrincipalId, ProfileId, TenantId};
use crate::model::job::{Job, LineError, Mode};
use crate::model::{self, Contact, Profile, Timestamp};
use crate::store::{ContactWrite, PrimaryMark, Store, StoreError, StoredProfile, Unique};

/// How many times a line whose profile moved under it (a concurrent write, a delete) is
/// tried again.
const LINE_ATTEMPTS: usize = 5;

/// What became of a line.
pub(super) enum Outcome {
    Created,
    Updated,
    Failed(LineError),
}

/// What a chunk's first wave reads in advance in upsert mode: the holders of its lines'
/// external ids and the profiles they name, in BatchGetItems, instead of two reads a line.
/// Only the first wave may use it: a later wave's line follows an earlier line with the same
/// value, whose write it must see.
#[derive(Default)]
pub(super) struct Prefetched {
    holders: HashMap<String, ProfileId>,
    profiles: HashMap<ProfileId, StoredProfile>,
}

pub(super) async fn prefetch(
    w: &Worker<'_>,
    job: &Job,
    wave: &[Parsed],
) -> Result<Prefetched, StoreError> {
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

/// What a line's write needs, owned, so lines run as tasks of their own: on a
/// multi-threaded runtime (run-jobs' is) they spread over the function's vCPUs.
#[derive(Clone)]
pub(super) struct Writer {
    store: Store,
    tenant: TenantId,
    job: JobId,
    owner: PrincipalId,
    mode: Mode,
    budget: crate::bulk::Budget,
}

/// Parses `lines` as tasks, a share for each of the runtime's threads.
pub(super) async fn parse_all(
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
pub(super) async fn write_chunk(
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
pub(super) async fn write_line_patiently(
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
pub(super) async fn write_line(
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
pub(super) async fn create(w: &Writer, id: ProfileId, line: &Parsed) -> Result<(), StoreError> {
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
pub(super) async fn update(
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
