//! The time budget of a request: how long one DynamoDB call, one attempt of it and the whole
//! handler may take, derived from the function's `Timeout`, so that a stuck or slow
//! dependency gives the caller a 503 problem+json (`crate::lambda::respond`) well before
//! Lambda kills the invocation and API Gateway answers its bare 502.
//!
//! How the numbers are chosen, for the template's `Timeout` of 10 s (`budget_for_10s` below
//! pins them):
//!
//! - **The handler** stops [`ANSWER_MARGIN`] (500 ms) before the invocation's deadline: the
//!   time to write the log line and post the answer to the Runtime API (a few ms) with room
//!   for an instance starved of CPU. 9.5 s.
//! - **One DynamoDB call** (all its attempts and back-offs) gets a third of that, capped at
//!   3 s: a write is a read, a write and at most one more lookup, each of which may be slow
//!   and still leave the request time to answer. DynamoDB answers in single-digit ms (p99
//!   tens of ms), so 3 s is only ever reached by an outage.
//! - **One attempt** gets half the call's time (1.5 s): a hung connection is abandoned while
//!   a retry on a fresh connection still fits in the call.
//! - **Retries**: 3 attempts (the SDK's standard count), with jittered back-off from 25 ms to
//!   250 ms (a quarter of an attempt at most) instead of the SDK's 1 s to 20 s, which would
//!   spend the whole budget waiting out one throttled call.
//! - **Connecting** gets at most 1 s (the SDK's default is 3.1 s): within a region a TCP and
//!   TLS handshake takes milliseconds.

use std::time::{Duration, SystemTime};

/// What a caller is told to wait (`Retry-After`) before retrying a request that met an
/// outage, throttling or a collision that may pass: DynamoDB's throttling and transaction
/// conflicts clear in well under a second, and the SDK has already retried.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// What is kept back from the invocation's deadline to answer.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// The longest a function's init waits for its DynamoDB connection to open
/// (`crate::store::Store::open_connection`). Within a region a TCP and TLS handshake takes
/// a few ms of network and, at 128 MB, a few ms of CPU made ~14× longer by the CPU share
/// (docs/performance.md, "Cold start over TLS"); past this an
/// endpoint is slow or unreachable, and the first request connects (or fails) as it would
/// have without the attempt. Lambda gives init 10 s, so waiting this long costs a cold start
/// at most this much and cannot fail it.
pub const INIT_CONNECT: Duration = Duration::from_millis(300);

/// The longest one DynamoDB call may take, whatever the function's timeout.
const MAX_OPERATION: Duration = Duration::from_secs(3);

/// The longest a connection may take to open.
const MAX_CONNECT: Duration = Duration::from_secs(1);

/// The DynamoDB client's timeouts and retries for a function's `Timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The whole handler: the function's timeout less [`ANSWER_MARGIN`].
    pub handler: Duration,
    /// One SDK call, every attempt and back-off included.
    pub operation: Duration,
    /// One attempt of a call.
    pub attempt: Duration,
    /// Opening one connection.
    pub connect: Duration,
    /// Attempts of one call, the first included.
    pub max_attempts: u32,
    /// The first retry's back-off (jittered), doubling up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Budget {
    /// The budget of a function whose `Timeout` is `timeout` (at least 1 s; Lambda's minimum).
    pub fn for_timeout(timeout: Duration) -> Self {
        let handler = timeout.saturating_sub(ANSWER_MARGIN).max(ANSWER_MARGIN);
        let operation = (handler / 3).min(MAX_OPERATION);
        let attempt = operation / 2;
        let max_backoff = (attempt / 4).min(Duration::from_millis(250));
        Self {
            handler,
            operation,
            attempt,
            connect: attempt.min(MAX_CONNECT),
            max_attempts: 3,
            initial_backoff: max_backoff / 10,
            max_backoff,
        }
    }
}

/// How long a handler may still run in an invocation that must answer by `deadline`: up to
/// [`ANSWER_MARGIN`] before it, nothing once that is past.
pub fn time_left(deadline: SystemTime, now: SystemTime) -> Duration {
    deadline
        .duration_since(now)
        .unwrap_or(Duration::ZERO)
        .saturating_sub(ANSWER_MARGIN)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn budget_for_10s() {
        let b = Budget::for_timeout(Duration::from_secs(10));
        assert_eq!(b.handler, Duration::from_millis(9_500));
        assert_eq!(b.operation, Duration::from_secs(3));
        assert_eq!(b.attempt, Duration::from_millis(1_500));
        assert_eq!(b.connect, Duration::from_secs(1));
        assert_eq!(b.max_attempts, 3);
        assert_eq!(b.initial_backoff, Duration::from_millis(25));
        assert_eq!(b.max_backoff, Duration::from_millis(250));
    }

    #[test]
    fn a_handler_stops_the_margin_before_the_deadline() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let left = |ms| time_left(now + Duration::from_millis(ms), now);
        assert_eq!(left(10_000), Duration::from_millis(9_500));
        assert_eq!(left(500), Duration::ZERO);
        assert_eq!(left(0), Duration::ZERO);
        assert_eq!(time_left(now - Duration::from_secs(1), now), Duration::ZERO);
    }

    proptest! {
        /// Whatever the timeout Lambda allows (1 s to 15 min), the parts nest: an attempt
        /// fits in a call with time for a retry, three calls fit in the handler, and the
        /// handler stops before the function's timeout.
        #[test]
        fn the_parts_nest_inside_the_functions_timeout(ms in 1_000u64..=900_000) {
            let timeout = Duration::from_millis(ms);
            let b = Budget::for_timeout(timeout);
            prop_assert!(b.handler + ANSWER_MARGIN <= timeout);
            prop_assert!(b.operation * 3 <= b.handler);
            prop_assert!(b.attempt * 2 <= b.operation);
            prop_assert!(b.connect <= b.attempt);
            prop_assert!(b.max_backoff * 4 <= b.attempt);
            prop_assert!(b.initial_backoff <= b.max_backoff);
            prop_assert!(b.operation <= MAX_OPERATION);
        }
    }
}
