//! The event bus: puts events (each a source, a detail type and a JSON detail) on the
//! stack's EventBridge bus, in order, at most 10 entries and 256 KB a request as PutEvents takes them, and again for the
//! entries EventBridge answers as throttled or failed, a bounded number of times.

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::config::Config;

/// The most entries one PutEvents takes.
const MAX_ENTRIES: usize = 10;

/// The most bytes one PutEvents takes, all entries together (EventBridge's 256 KB).
const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// How many times entries EventBridge did not take are sent again, and the pause before the
/// first such round (doubling after): its throttling passes in well under a second.
const ENTRY_ROUNDS: u32 = 3;
const ENTRY_PAUSE: Duration = Duration::from_millis(100);

/// The bus a publisher puts events on.
#[derive(Clone, Debug)]
pub struct Bus {
    client: aws_sdk_eventbridge::Client,
    name: String,
}

/// One event as the bus takes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub source: String,
    pub detail_type: String,
    /// The event itself, JSON.
    pub detail: String,
}

/// Events the bus did not take: every one before `first_unsent` (an index into what was
/// given) was put; that one was not; some after it may have been (an entry EventBridge
/// throttled is sent again after its neighbours), so putting them again from there may
/// put some twice, never none.
#[derive(Debug)]
pub struct BusError {
    pub first_unsent: usize,
    pub cause: String,
}

impl Bus {
    /// The bus `EVENT_BUS_NAME` names, through the configured client.
    pub fn from_config(config: &Config) -> Result<Self, crate::config::ConfigError> {
        Ok(Self {
            client: crate::store::eventbridge_client(config),
            name: config.event_bus()?.to_owned(),
        })
    }

    /// The bus named `name` through `client` (a test's, whose calls it records).
    pub fn with_client(client: aws_sdk_eventbridge::Client, name: &str) -> Self {
        Self {
            client,
            name: name.to_owned(),
        }
    }

    /// The client the bus is reached through.
    pub fn client(&self) -> &aws_sdk_eventbridge::Client {
        &self.client
    }

    /// Puts `events` in order: a request of at most 10 (and 256 KB) at a time, each sent
    /// after the one before was taken whole.
    pub async fn put(&self, events: &[Entry]) -> Result<(), BusError> {
        let mut start = 0;
        while start < events.len() {
            let mut end = start;
            let mut bytes = 0;
            let mut entries = Vec::new();
            while end < events.len() && end - start < MAX_ENTRIES {
                let entry = self.entry(&events[end]);
                let size = entry_size(&entry);
                if !entries.is_empty() && bytes + size > MAX_REQUEST_BYTES {
                    break;
                }
                bytes += size;
                entries.push(entry);
                end += 1;
            }
            self.put_entries(entries)
                .await
                .map_err(|(offset, cause)| BusError {
                    first_unsent: start + offset,
                    cause,
                })?;
            start = end;
        }
        Ok(())
    }

    fn entry(&self, event: &Entry) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.name)
            .source(&event.source)
            .detail_type(&event.detail_type)
            .detail(&event.detail)
            .build()
    }

    /// Sends one request's entries, and again those EventBridge answers as failed (a bounded
    /// number of rounds); the index of the first entry not taken, when one is left.
    async fn put_entries(
        &self,
        entries: Vec<PutEventsRequestEntry>,
    ) -> Result<(), (usize, String)> {
        // Positions (in `entries`) still to send.
        let mut left: Vec<usize> = (0..entries.len()).collect();
        let mut pause = ENTRY_PAUSE;
        for round in 0..=ENTRY_ROUNDS {
            if round > 0 {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            let out = self
                .client
                .put_events()
                .set_entries(Some(left.iter().map(|&i| entries[i].clone()).collect()))
                .send()
                .await;
            let out = match out {
                Ok(out) => out,
                Err(e) => {
                    let cause = aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string();
                    return Err((left[0], format!("PutEvents: {cause}")));
                }
            };
            let answers = out.entries.unwrap_or_default();
            let failed: Vec<(usize, String)> = left
                .iter()
                .zip(answers.iter().map(Some).chain(std::iter::repeat(None)))
                .filter_map(|(&i, answer)| match answer {
                    Some(a) if a.error_code.is_none() && a.event_id.is_some() => None,
                    Some(a) => Some((
                        i,
                        format!(
                            "{}: {}",
                            a.error_code.as_deref().unwrap_or("no event id"),
                            a.error_message.as_deref().unwrap_or_default()
                        ),
                    )),
                    None => Some((i, "no answer for the entry".to_owned())),
                })
                .collect();
            match failed.first() {
                None => return Ok(()),
                Some((first, cause)) if round == ENTRY_ROUNDS => {
                    return Err((*first, format!("PutEvents entry: {cause}")));
                }
                Some(_) => left = failed.into_iter().map(|(i, _)| i).collect(),
            }
        }
        Ok(())
    }
}

/// An entry's size as EventBridge counts it: its source, detail type, detail and bus name.
fn entry_size(entry: &PutEventsRequestEntry) -> usize {
    [
        entry.source.as_deref(),
        entry.detail_type.as_deref(),
        entry.detail.as_deref(),
        entry.event_bus_name.as_deref(),
    ]
    .iter()
    .map(|s| s.map_or(0, str::len))
    .sum()
}
