//! A webhook receiver on 127.0.0.1: what a team's endpoint is to the bus's API destination,
//! for the tests and the bench (docs/events.md shows the same in a few lines of Python). It
//! keeps every request it takes (when, headers, JSON body) and answers each with the next
//! status of a script (204 once the script is used up), so a test can make it fail first.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use tokio::sync::Notify;

/// One request the receiver took.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Value::Null` when it is not).
    pub body: Value,
    /// The status it was answered with.
    pub status: u16,
}

impl Received {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<u16>>,
    arrived: Notify,
}

/// A running receiver; it stops when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:<port>/hook`.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listens on a free port of 127.0.0.1, answering every request 204.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let app = axum::Router::new()
            .fallback(take)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            // The listener was bound above; serve ends only with the task.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, shared, task })
    }

    /// Answers the next requests with these statuses, in order, then 204 again.
    pub fn answer_next(&self, statuses: &[u16]) {
        let mut script = lock(&self.shared.script);
        script.extend(statuses.iter().copied());
    }

    /// Every request taken so far, in the order they came.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.received).clone()
    }

    /// Waits until `ready` holds for the requests taken (checked at each arrival), at most
    /// `timeout`; what was taken by then, and whether `ready` held.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        ready: impl Fn(&[Received]) -> bool,
    ) -> (Vec<Received>, bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.shared.arrived.notified();
            let now = self.received();
            if ready(&now) {
                return (now, true);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let last = self.received();
                let held = ready(&last);
                return (last, held);
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A lock whose holder cannot panic while holding it (it only pushes and pops), so poisoning
/// is taken as is.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn take(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = lock(&shared.script).pop_front().unwrap_or(204);
    let received = Received {
        at: Instant::now(),
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        status,
    };
    lock(&shared.received).push(received);
    shared.arrived.notify_waiters();
    StatusCode::from_u16(status).unwrap_or(StatusCode::NO_CONTENT)
}
