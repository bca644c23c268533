//! The one retry loop: an attempt that met something that passes (a write that lost its race
//! to a concurrent one, a transaction that collided with another) is made again, a bounded
//! number of times. Each caller says what passes and what giving up answers.

use std::future::Future;

/// How many times a write is recomputed when a concurrent write to the same item wins.
pub const WRITE_ATTEMPTS: usize = 3;

/// Makes `attempt` at most `times` times (at least once) while its error is one that
/// `passes`; returns the first success, the first error that does not pass, or the last
/// error once every attempt is spent.
pub async fn retrying<T, E, Fut>(
    times: usize,
    passes: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let mut outcome = attempt().await;
    for _ in 1..times {
        match &outcome {
            Err(e) if passes(e) => outcome = attempt().await,
            _ => break,
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .map(|rt| rt.block_on(f))
            .unwrap_or_else(|e| panic!("a runtime: {e}"))
    }

    #[test]
    fn an_error_that_passes_is_retried_up_to_the_bound_and_no_further() {
        let calls = Cell::new(0);
        let outcome: Result<(), &str> = run(retrying(
            3,
            |e| *e == "lost",
            || {
                calls.set(calls.get() + 1);
                async { Err("lost") }
            },
        ));
        assert_eq!((outcome, calls.get()), (Err("lost"), 3));
    }

    #[test]
    fn success_or_an_error_that_does_not_pass_ends_the_loop_at_once() {
        let calls = Cell::new(0);
        let outcome: Result<u8, &str> = run(retrying(
            5,
            |e| *e == "lost",
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move { if n < 2 { Err("lost") } else { Ok(7) } }
            },
        ));
        assert_eq!((outcome, calls.get()), (Ok(7), 2));
        calls.set(0);
        let outcome: Result<u8, &str> = run(retrying(
            5,
            |e| *e == "lost",
            || {
                calls.set(calls.get() + 1);
                async { Err("broken") }
            },
        ));
        assert_eq!((outcome, calls.get()), (Err("broken"), 1));
    }
}
