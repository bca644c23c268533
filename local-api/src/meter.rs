//! A capacity meter: an HTTP proxy in front of a DynamoDB-compatible engine that asks every
//! call for its consumed capacity (`ReturnConsumedCapacity: INDEXES`) and adds up, per table
//! and per index, the read and write units each call consumed, as the engine reports them
//! (dynoxide models DynamoDB's rules: a transaction doubles the table's units, not the
//! indexes'; an index entry that does not change costs nothing; a moved one costs a delete
//! and a put). The bench and the tests put it between the store and the engine to measure
//! what an operation costs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::template::Error;

/// What the table's arm is called in [`Capacity`]'s maps (an index is named by its name).
pub const TABLE: &str = "table";

/// Units consumed, by where: the table ([`TABLE`]) or an index by its name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Capacity {
    pub read: BTreeMap<String, f64>,
    pub write: BTreeMap<String, f64>,
    /// The calls made, by operation (`PutItem`, `Query`, ...), in order.
    pub calls: Vec<String>,
}

impl Capacity {
    /// Write units on the table alone.
    pub fn table_writes(&self) -> f64 {
        self.write.get(TABLE).copied().unwrap_or(0.0)
    }

    /// Write units in all: the table's and every index's.
    pub fn total_writes(&self) -> f64 {
        self.write.values().fold(0.0, |a, b| a + b)
    }

    /// Read units in all.
    pub fn total_reads(&self) -> f64 {
        self.read.values().fold(0.0, |a, b| a + b)
    }

    /// Adds what one answer's `ConsumedCapacity` (one object, or a list of them) reports.
    fn add(&mut self, operation: &str, consumed: &Value) {
        let into = if is_write(operation) {
            &mut self.write
        } else {
            &mut self.read
        };
        let each: Vec<&Value> = match consumed {
            Value::Array(list) => list.iter().collect(),
            one => vec![one],
        };
        for c in each {
            let units = |v: &Value| v["CapacityUnits"].as_f64().unwrap_or(0.0);
            // With INDEXES, the table's own arm; without a breakdown, the total is the table's.
            let table = if c["Table"].is_null() && c["GlobalSecondaryIndexes"].is_null() {
                units(c)
            } else {
                units(&c["Table"])
            };
            *into.entry(TABLE.to_owned()).or_default() += table;
            for (index, v) in c["GlobalSecondaryIndexes"]
                .as_object()
                .into_iter()
                .flatten()
            {
                *into.entry(index.clone()).or_default() += units(v);
            }
        }
    }
}

/// Whether a DynamoDB operation writes.
fn is_write(operation: &str) -> bool {
    matches!(
        operation,
        "PutItem" | "UpdateItem" | "DeleteItem" | "TransactWriteItems" | "BatchWriteItem"
    )
}

/// The meter: its endpoint (give it to the store as `DYNAMODB_ENDPOINT`) and what passed.
pub struct Meter {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    totals: Arc<Mutex<Capacity>>,
    task: tokio::task::JoinHandle<()>,
}

impl Meter {
    /// A meter on a free port of 127.0.0.1 in front of the engine at `engine`.
    pub async fn start(engine: &str) -> Result<Self, Error> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let totals = Arc::new(Mutex::new(Capacity::default()));
        let state = Arc::new(Proxy {
            engine: engine.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            totals: totals.clone(),
        });
        let router = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move { state.forward(method, uri, headers, body).await }
            },
        );
        let task = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, service).await {
                tracing::error!("capacity meter stopped: {e}");
            }
        });
        Ok(Self {
            endpoint,
            totals,
            task,
        })
    }

    /// What was consumed since the last call, and the meter starts again from zero.
    pub fn take(&self) -> Capacity {
        std::mem::take(&mut *self.totals.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Proxy {
    engine: String,
    client: reqwest::Client,
    totals: Arc<Mutex<Capacity>>,
}

impl Proxy {
    /// Sends the call on with `ReturnConsumedCapacity: INDEXES`, adds what the answer
    /// reports, and answers as the engine did (the consumed capacity left in: a client
    /// that did not ask for it ignores it).
    async fn forward(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let operation = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_owned();
        let body = match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(mut call)) if !operation.is_empty() => {
                call.insert("ReturnConsumedCapacity".into(), "INDEXES".into());
                Value::Object(call).to_string().into_bytes()
            }
            _ => body.to_vec(),
        };
        let mut request = self
            .client
            .request(method, format!("{}{}", self.engine, uri))
            .body(body);
        for (name, value) in &headers {
            // The body changed length; the client sets its own.
            if name != "content-length" && name != "host" {
                request = request.header(name, value);
            }
        }
        let answer = match request.send().await {
            Ok(a) => a,
            Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        };
        let status = answer.status();
        let answer_headers = answer.headers().clone();
        let bytes = answer.bytes().await.unwrap_or_default();
        if let Ok(json) = serde_json::from_slice::<Value>(&bytes) {
            let consumed = &json["ConsumedCapacity"];
            let mut totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
            totals.calls.push(operation.clone());
            if !consumed.is_null() {
                totals.add(&operation, consumed);
            }
        }
        let mut response = (status, bytes).into_response();
        for (name, value) in &answer_headers {
            if name != "content-length" && name != "transfer-encoding" {
                response.headers_mut().insert(name, value.clone());
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transactions_list_and_a_single_answer_add_up_by_table_and_index() {
        let mut c = Capacity::default();
        let tx = serde_json::json!([{
            "TableName": "t", "CapacityUnits": 7.0,
            "Table": {"CapacityUnits": 4.0},
            "GlobalSecondaryIndexes": {"GSI1": {"CapacityUnits": 2.0}, "ByName": {"CapacityUnits": 1.0}}
        }]);
        c.add("TransactWriteItems", &tx);
        c.add(
            "Query",
            &serde_json::json!({"TableName": "t", "CapacityUnits": 0.5,
            "GlobalSecondaryIndexes": {"GSI1": {"CapacityUnits": 0.5}}}),
        );
        c.add(
            "GetItem",
            &serde_json::json!({"TableName": "t", "CapacityUnits": 1.0}),
        );
        assert_eq!(c.table_writes(), 4.0);
        assert_eq!(c.total_writes(), 7.0);
        assert_eq!(c.write["GSI1"], 2.0);
        assert_eq!(c.read["GSI1"], 0.5);
        assert_eq!(c.read[TABLE], 1.0);
        assert_eq!(c.total_reads(), 1.5);
    }
}
