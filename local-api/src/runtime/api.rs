//! The Lambda Runtime API one instance polls (`/2018-06-01/runtime/…`): `next` hands it the
//! pending invocation with Lambda's headers, and its response, invocation error or init
//! error goes back to the pool as the invocation's [`Outcome`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::Outcome;

/// An invocation handed to an instance's `/next`.
pub(super) struct Job {
    pub(super) request_id: String,
    pub(super) trace_id: String,
    pub(super) event: Vec<u8>,
    pub(super) delivered: oneshot::Sender<()>,
    pub(super) reply: oneshot::Sender<Outcome>,
}

/// What an instance's Runtime API endpoint shares with the pool.
pub(super) struct RuntimeState {
    pub(super) arn: String,
    pub(super) timeout: Duration,
    pub(super) jobs: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    /// The invocation being run: its request id and where its outcome goes.
    pub(super) pending: Mutex<Option<(String, oneshot::Sender<Outcome>)>>,
    pub(super) init_error: Mutex<Option<String>>,
    pub(super) first_poll: Mutex<Option<Instant>>,
    /// Notified when the process first asks for work: its init is over.
    pub(super) ready: tokio::sync::Notify,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind, never a broken
    // invariant, so the guard is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn epoch_ms(at: SystemTime) -> u128 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

pub(super) async fn next(State(state): State<Arc<RuntimeState>>) -> Response {
    {
        let mut first = lock(&state.first_poll);
        if first.is_none() {
            *first = Some(Instant::now());
            state.ready.notify_one();
        }
    }
    let mut jobs = state.jobs.lock().await;
    let Some(job) = jobs.recv().await else {
        // The pool dropped this instance; it is being stopped.
        return StatusCode::GONE.into_response();
    };
    drop(jobs);
    let deadline = epoch_ms(SystemTime::now() + state.timeout);
    *lock(&state.pending) = Some((job.request_id.clone(), job.reply));
    let _ = job.delivered.send(());
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    put("lambda-runtime-aws-request-id", &job.request_id);
    put("lambda-runtime-deadline-ms", &deadline.to_string());
    put("lambda-runtime-invoked-function-arn", &state.arn);
    put("lambda-runtime-trace-id", &job.trace_id);
    put("content-type", "application/json");
    (headers, job.event).into_response()
}

fn finish(state: &RuntimeState, id: &str, outcome: Outcome) -> Response {
    let mut pending = lock(&state.pending);
    match pending.take() {
        Some((pending_id, reply)) if pending_id == id => {
            let _ = reply.send(outcome);
            (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
        }
        other => {
            *pending = other;
            let body = r#"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#;
            (StatusCode::BAD_REQUEST, body).into_response()
        }
    }
}

fn error_of(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error_type = parsed["errorType"]
        .as_str()
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
        })
        .unwrap_or("Unhandled")
        .to_owned();
    let message = parsed["errorMessage"].as_str().unwrap_or("").to_owned();
    (error_type, message)
}

pub(super) async fn response(
    State(state): State<Arc<RuntimeState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    finish(&state, &id, Outcome::Response(body.to_vec()))
}

pub(super) async fn invocation_error(
    State(state): State<Arc<RuntimeState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (error_type, message) = error_of(&headers, &body);
    finish(
        &state,
        &id,
        Outcome::Error {
            error_type,
            message,
        },
    )
}

pub(super) async fn init_error(
    State(state): State<Arc<RuntimeState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (error_type, message) = error_of(&headers, &body);
    *lock(&state.init_error) = Some(format!("{error_type}: {message}"));
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}
