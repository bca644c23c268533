//! The DynamoDB connection a function opens during init (`Store::open_connection`), on a
//! real engine: it is the connection the first call uses, it is bounded when the endpoint
//! does not answer, and a pooled connection the far end closed while the instance waited
//! is replaced by the call's retry, the call answered as if nothing had happened.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use profiles_tests::{Engine, config_for};
use shared::app::App;
use shared::ids::{ProfileId, TenantId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP relay to the engine that counts the connections it is given and can close every
/// open one the next time its client writes on it: a pooled connection the far end (an
/// idle timeout, a NAT) dropped while a frozen instance could not notice.
struct Relay {
    url: String,
    connections: Arc<AtomicUsize>,
    /// Connections numbered below this are closed at their next request.
    dead_below: Arc<AtomicUsize>,
    /// Requests closed under, unanswered.
    dropped: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let dead_below = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (count, dead, drops) = (connections.clone(), dead_below.clone(), dropped.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let number = count.fetch_add(1, Ordering::SeqCst);
                let server = TcpStream::connect(&upstream).await.unwrap();
                tokio::spawn(relay(client, server, number, dead.clone(), drops.clone()));
            }
        });
        Self {
            url,
            connections,
            dead_below,
            dropped,
            task,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Every connection open now dies at its next request, unanswered.
    fn kill_open_connections(&self) {
        self.dead_below.store(self.connections(), Ordering::SeqCst);
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    number: usize,
    dead: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let back = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match client_read.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if number < dead.load(Ordering::SeqCst) {
            // Dropping both halves closes the connection under the request just sent.
            dropped.fetch_add(1, Ordering::SeqCst);
            break;
        }
        if server_write.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    back.abort();
}

/// An App on the engine behind a relay, its connection opened as a function's init opens
/// it: exactly one connection.
async fn initialised() -> (Engine, Relay, App) {
    let engine = Engine::start().await;
    let relay = Relay::start(&engine.endpoint).await;
    let app = App::new(config_for(&relay.url, &engine.table));
    app.store
        .open_connection(shared::budget::INIT_CONNECT)
        .await
        .expect("the engine answers its health check");
    assert_eq!(relay.connections(), 1, "init opened one connection");
    (engine, relay, app)
}

fn absent() -> (TenantId, ProfileId) {
    (
        TenantId::new("init-connection").unwrap(),
        "00000000-0000-7000-8000-000000000000".parse().unwrap(),
    )
}

#[tokio::test]
async fn the_connection_opened_at_init_is_the_one_the_first_call_uses() {
    let (_engine, relay, app) = initialised().await;

    let (tenant, id) = absent();
    assert!(app.store.get(&tenant, &id).await.unwrap().is_none());
    assert_eq!(
        relay.connections(),
        1,
        "the first call found the connection open and made none"
    );
}

#[tokio::test]
async fn a_pooled_connection_closed_while_idle_is_replaced_by_the_calls_retry() {
    let (_engine, relay, app) = initialised().await;
    relay.kill_open_connections();

    let (tenant, id) = absent();
    let read = app.store.get(&tenant, &id).await;
    assert!(
        matches!(read, Ok(None)),
        "answered as if nothing happened: {read:?}"
    );
    assert_eq!(
        relay.dropped(),
        1,
        "the call was sent on the pooled connection, which died under it"
    );
    assert_eq!(
        relay.connections(),
        2,
        "the dead connection was replaced by one new one"
    );
}

#[tokio::test]
async fn an_endpoint_that_never_answers_delays_init_only_by_the_limit() {
    // Accepts connections and never answers on them.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let app = App::new(config_for(&url, "no-table"));
    let limit = Duration::from_millis(200);
    let started = Instant::now();
    let opened = app.store.open_connection(limit).await;
    let took = started.elapsed();
    held.abort();
    assert!(
        matches!(opened, Err(shared::store::StoreError::Unavailable { .. })),
        "{opened:?}"
    );
    assert!(took >= limit, "it waited for the limit: {took:?}");
    // Generous: only a wait well past the limit (the client's own 1 s connect timeout, or
    // its retries) would mean the bound does not hold.
    assert!(took < limit + Duration::from_millis(700), "{took:?}");
}

#[tokio::test]
async fn an_endpoint_that_closes_every_connection_is_tried_once() {
    // Accepts each connection and closes it at once, counting them.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let closing = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let app = App::new(config_for(&url, "no-table"));
    let opened = app.store.open_connection(Duration::from_secs(5)).await;
    closing.abort();
    assert!(
        matches!(opened, Err(shared::store::StoreError::Unavailable { .. })),
        "{opened:?}"
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one attempt: no retry spends init's time"
    );
}
