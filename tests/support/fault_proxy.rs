//! A fault proxy: plain TCP between the API (the runner's functions, or a test's `App`) and
//! its engine, or between the publisher and its event bus, which passes, refuses, resets, hangs, slows or throttles each request as the
//! test switches it, so that every failure the API must survive is met for real, on the wire.
//!
//! It reads each HTTP/1.1 request (the SDK's: `Content-Length` framed), then, by its current
//! [`Fault`], answers it itself or forwards it to the engine on a fresh connection that asks
//! the engine to close after its answer (so an answer is simply everything read).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with each request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward it and its answer.
    Pass,
    /// Close the port (connections are refused) and drop open connections at their next
    /// request.
    Refuse,
    /// Forward it (the engine acts on it), send half the answer, then reset the connection.
    ResetMidResponse,
    /// Read it and never answer, holding the connection open.
    Hang,
    /// Wait this long, then forward it (the engine acts on it even if the caller gave up).
    Slow(Duration),
    /// Answer as DynamoDB does when throttling: `400`, `__type`
    /// `…#ProvisionedThroughputExceededException`; the engine never sees it.
    Throttle,
    /// Answer with DynamoDB's error `code` (`ThrottlingException`, `InternalServerError`, ...)
    /// and `status`; the engine never sees it.
    Error { status: u16, code: &'static str },
    /// Pass everything but writes, as when another transaction holds their items: a
    /// `TransactWriteItems` is cancelled (`TransactionConflict`), a single-item write refused
    /// (`TransactionConflictException`); the engine never sees them.
    ConflictingTransactions,
    /// Pass everything, but cut off the answer to each `TransactWriteItems` as
    /// [`Fault::ResetMidResponse`] does: the engine commits, the caller never hears so.
    ResetTransactions,
    /// Pass everything, but answer each `BatchGetItem` as DynamoDB does when it throttles
    /// part of a batch: `200`, no items, every key back as `UnprocessedKeys`; the engine
    /// never sees it.
    UnprocessedReads,
    /// Answer each EventBridge `PutEvents` as EventBridge does when it throttles every
    /// entry: `200`, `FailedEntryCount` = all, each entry `ThrottlingException`; the bus
    /// never sees it.
    FailedEntries,
}

/// A running proxy. Dropping it stops it.
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`: give it as the engine's endpoint.
    pub url: String,
    fault: watch::Sender<Fault>,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// A proxy in front of the engine at `upstream` (`http://host:port`), passing.
    pub async fn start(upstream: &str) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let (fault, watching) = watch::channel(Fault::Pass);
        let requests = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(listen(listener, addr, upstream, watching, requests.clone()));
        Self {
            url: format!("http://{addr}"),
            fault,
            requests,
            task,
        }
    }

    /// From now on, do `fault` with each request.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// Requests read so far, whatever was done with them.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A listening socket that can be bound again at once to the same port after it is closed.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn listen(
    first: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    mut fault: watch::Receiver<Fault>,
    requests: Arc<AtomicUsize>,
) {
    let mut listener = Some(first);
    loop {
        if *fault.borrow() == Fault::Refuse {
            listener = None;
        } else if listener.is_none() {
            // The port was closed to refuse; take it again (retrying while the kernel lets go).
            for _ in 0..50 {
                match bind(addr) {
                    Ok(l) => {
                        listener = Some(l);
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }
        match &listener {
            Some(l) => tokio::select! {
                accepted = l.accept() => {
                    if let Ok((client, _)) = accepted {
                        tokio::spawn(connection(client, upstream, fault.clone(), requests.clone()));
                    }
                }
                changed = fault.changed() => if changed.is_err() { return },
            },
            None => {
                if fault.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    fault: watch::Receiver<Fault>,
    requests: Arc<AtomicUsize>,
) {
    let mut pending = Vec::new();
    loop {
        let Some(request) = read_request(&mut client, &mut pending).await else {
            return;
        };
        requests.fetch_add(1, Ordering::SeqCst);
        let now = *fault.borrow();
        match now {
            Fault::Refuse => return,
            Fault::Hang => {
                // Never answer; notice only when the caller gives up and closes.
                let mut sink = [0u8; 4096];
                while let Ok(1..) = client.read(&mut sink).await {}
                return;
            }
            Fault::Throttle | Fault::Error { .. } => {
                let (status, code) = match now {
                    Fault::Error { status, code } => (status, code),
                    _ => (400, "ProvisionedThroughputExceededException"),
                };
                if client.write_all(&error(status, code, "")).await.is_err() {
                    return;
                }
                continue;
            }
            Fault::ConflictingTransactions if is_write(&request) => {
                let answer = if is_transaction(&request) {
                    let reasons = r#","CancellationReasons":[{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}]"#;
                    error(400, "TransactionCanceledException", reasons)
                } else {
                    error(400, "TransactionConflictException", "")
                };
                if client.write_all(&answer).await.is_err() {
                    return;
                }
                continue;
            }
            Fault::UnprocessedReads if targets(&request, "BatchGetItem") => {
                if client.write_all(&unprocessed(&request)).await.is_err() {
                    return;
                }
                continue;
            }
            Fault::FailedEntries if targets(&request, "PutEvents") => {
                if client.write_all(&failed_entries(&request)).await.is_err() {
                    return;
                }
                continue;
            }
            Fault::Slow(wait) => tokio::time::sleep(wait).await,
            Fault::Pass
            | Fault::ResetMidResponse
            | Fault::ConflictingTransactions
            | Fault::ResetTransactions
            | Fault::UnprocessedReads
            | Fault::FailedEntries => {}
        }
        let Ok(answer) = forward(upstream, &request).await else {
            return;
        };
        let reset = match now {
            Fault::ResetMidResponse => true,
            Fault::ResetTransactions => is_transaction(&request),
            _ => false,
        };
        if reset {
            let _ = client.write_all(&answer[..answer.len() / 2]).await;
            // Closing with a zero linger sends RST, not FIN.
            let _ = client.set_zero_linger();
            return;
        }
        if client.write_all(&answer).await.is_err() {
            return;
        }
    }
}

/// The next whole request on `stream` (head and `Content-Length` body), `pending` holding
/// what was read past it; `None` when the peer closes.
async fn read_request(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = find(pending, b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&pending[..head_end]).to_string();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while pending.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
        }
    }
    Some(pending.drain(..head_end + length).collect())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `request` sent to the engine on a new connection that the engine closes after answering;
/// its whole answer.
async fn forward(upstream: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let head_end = find(request, b"\r\n\r\n").map_or(request.len(), |at| at + 2);
    let head = String::from_utf8_lossy(&request[..head_end]);
    let mut rewritten = String::new();
    for line in head.split_inclusive("\r\n") {
        let is_connection = line
            .split_once(':')
            .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("connection"));
        if !is_connection {
            rewritten.push_str(line);
        }
    }
    rewritten.push_str("connection: close\r\n");
    let mut engine = TcpStream::connect(upstream).await?;
    engine.write_all(rewritten.as_bytes()).await?;
    engine.write_all(&request[head_end..]).await?;
    let mut answer = Vec::new();
    engine.read_to_end(&mut answer).await?;
    Ok(answer)
}

/// Whether `request` is a `TransactWriteItems` call (its `x-amz-target` header).
/// Whether `request` is a write: a transaction or a single item's Put, Update or Delete.
fn is_write(request: &[u8]) -> bool {
    ["TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem"]
        .iter()
        .any(|op| targets(request, op))
}

fn is_transaction(request: &[u8]) -> bool {
    targets(request, "TransactWriteItems")
}

/// Whether `request`'s `X-Amz-Target` names `operation`.
fn targets(request: &[u8], operation: &str) -> bool {
    let head_end = find(request, b"\r\n\r\n").unwrap_or(request.len());
    String::from_utf8_lossy(&request[..head_end])
        .lines()
        .filter_map(|l| l.split_once(':'))
        .any(|(name, value)| {
            name.trim().eq_ignore_ascii_case("x-amz-target")
                && value.trim().ends_with(&format!(".{operation}"))
        })
}

/// DynamoDB's answer for the error `code` with `status`; `extra` is appended to its JSON
/// object (`,"Member":...`).
fn error(status: u16, code: &str, extra: &str) -> Vec<u8> {
    let body = format!(
        r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"injected by the fault proxy"{extra}}}"#
    );
    let reason = if status == 400 {
        "Bad Request"
    } else {
        "Internal Server Error"
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-amz-json-1.0\r\n\
         x-amzn-requestid: fault-proxy\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A `BatchGetItem`'s answer that read nothing and hands every key of `request` back as
/// unprocessed.
fn unprocessed(request: &[u8]) -> Vec<u8> {
    let head_end = find(request, b"\r\n\r\n").map_or(request.len(), |at| at + 4);
    let asked: serde_json::Value =
        serde_json::from_slice(&request[head_end..]).unwrap_or(serde_json::Value::Null);
    let body = serde_json::json!({
        "Responses": {},
        "UnprocessedKeys": asked.get("RequestItems").cloned().unwrap_or_default(),
    })
    .to_string();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
         x-amzn-requestid: fault-proxy\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A `PutEvents` answer that took none of the request's entries, each throttled.
fn failed_entries(request: &[u8]) -> Vec<u8> {
    let head_end = find(request, b"\r\n\r\n").map_or(request.len(), |at| at + 4);
    let asked: serde_json::Value =
        serde_json::from_slice(&request[head_end..]).unwrap_or(serde_json::Value::Null);
    let n = asked["Entries"].as_array().map_or(0, Vec::len);
    let entry =
        serde_json::json!({"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"});
    let body = serde_json::json!({"FailedEntryCount": n, "Entries": vec![entry; n]}).to_string();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\n\
         x-amzn-requestid: fault-proxy\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
