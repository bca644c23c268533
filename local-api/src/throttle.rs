//! Usage-plan throttling, as API Gateway applies it per usage key: a token bucket holding
//! `BurstLimit` tokens, refilled at `RateLimit` per second, one token per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::template::Throttle;

/// One bucket per (API, usage key).
#[derive(Default)]
pub struct Buckets {
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Buckets {
    /// Takes a token from `key`'s bucket on `api`: `false` when there is none (throttled).
    /// A new key starts with a full bucket.
    pub fn take(&self, api: &str, key: &str, throttle: Throttle) -> bool {
        self.take_at(api, key, throttle, Instant::now())
    }

    fn take_at(&self, api: &str, key: &str, throttle: Throttle, now: Instant) -> bool {
        let capacity = f64::from(throttle.burst);
        // Plain numbers: a panic elsewhere while holding the lock leaves them usable.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets
            .entry((api.to_owned(), key.to_owned()))
            .or_insert(Bucket {
                tokens: capacity,
                at: now,
            });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * throttle.rate).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate() {
        let b = Buckets::default();
        let t = Throttle {
            burst: 10,
            rate: 2.5,
        };
        let start = Instant::now();
        for i in 0..10 {
            assert!(b.take_at("api", "k", t, start), "request {i}");
        }
        assert!(!b.take_at("api", "k", t, start), "the 11th");
        assert!(
            b.take_at("api", "other", t, start),
            "another key has its own"
        );
        assert!(!b.take_at("api", "k", t, start + Duration::from_millis(300)));
        assert!(b.take_at("api", "k", t, start + Duration::from_millis(400)));
        assert!(!b.take_at("api", "k", t, start + Duration::from_millis(500)));
        // Never more than the burst, however long it rests.
        let later = start + Duration::from_secs(3600);
        let passed = (0..20).filter(|_| b.take_at("api", "k", t, later)).count();
        assert_eq!(passed, 10);
    }
}
