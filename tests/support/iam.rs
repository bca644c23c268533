//! Every AWS call a client sends, recorded as IAM sees it (action and resource ARN), for the
//! policy tests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use serde_json::Value;

/// Every AWS call a client sends, as IAM sees it: the action it needs and the resource ARN
/// it names (DynamoDB: the table, or the index of a Query; a transaction's items one by one,
/// as IAM authorizes them; S3, path-style: the object, or the bucket of a listing).
#[derive(Clone, Default, Debug)]
pub struct IamRecorder(
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<(String, String)>>>,
);

impl IamRecorder {
    /// What was sent since the last take.
    pub fn take(&self) -> std::collections::BTreeSet<(String, String)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    fn push(&self, action: &str, resource: String) {
        self.0.lock().unwrap().insert((action.to_owned(), resource));
    }
}

/// The local ARN of a DynamoDB table.
pub fn table_arn(table: &str) -> String {
    format!(
        "arn:aws:dynamodb:us-east-1:{}:table/{table}",
        local_api::ACCOUNT_ID
    )
}

/// An event bus's ARN, as IAM names the bus of a `PutEvents` entry (a name or an ARN).
pub fn bus_arn(bus: &str) -> String {
    if bus.starts_with("arn:") {
        return bus.to_owned();
    }
    format!(
        "arn:aws:events:us-east-1:{}:event-bus/{bus}",
        local_api::ACCOUNT_ID
    )
}

impl aws_sdk_dynamodb::config::Intercept for IamRecorder {
    fn name(&self) -> &'static str {
        "IamRecorder"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let req = context.request();
        let body: Value = req
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        if let Some(target) = req.headers().get("x-amz-target")
            && let Some(op) = target.strip_prefix("AWSEvents.")
        {
            for entry in body["Entries"].as_array().into_iter().flatten() {
                let bus = entry["EventBusName"].as_str().unwrap_or("default");
                self.push(&format!("events:{op}"), bus_arn(bus));
            }
            return Ok(());
        }
        if let Some(target) = req.headers().get("x-amz-target") {
            let op = target.rsplit('.').next().unwrap_or(target);
            let table = |v: &Value| table_arn(v["TableName"].as_str().unwrap_or("?"));
            match op {
                "TransactWriteItems" | "TransactGetItems" => {
                    for item in body["TransactItems"].as_array().into_iter().flatten() {
                        for (kind, action) in [
                            ("Put", "dynamodb:PutItem"),
                            ("Update", "dynamodb:UpdateItem"),
                            ("Delete", "dynamodb:DeleteItem"),
                            ("ConditionCheck", "dynamodb:ConditionCheckItem"),
                            ("Get", "dynamodb:GetItem"),
                        ] {
                            if item[kind].is_object() {
                                self.push(action, table(&item[kind]));
                            }
                        }
                    }
                }
                "BatchWriteItem" | "BatchGetItem" => {
                    for name in body["RequestItems"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, _)| k)
                    {
                        self.push(&format!("dynamodb:{op}"), table_arn(name));
                    }
                }
                _ => {
                    let mut arn = table(&body);
                    if let Some(index) = body["IndexName"].as_str() {
                        arn = format!("{arn}/index/{index}");
                    }
                    self.push(&format!("dynamodb:{op}"), arn);
                }
            }
            return Ok(());
        }
        let uri: lambda_http::http::Uri = req.uri().parse()?;
        // API Gateway's management API: apigateway:<METHOD> on the path's ARN.
        if uri.path().starts_with("/apikeys") || uri.path().starts_with("/usageplans") {
            self.push(
                &format!("apigateway:{}", req.method()),
                format!("arn:aws:apigateway:us-east-1::{}", uri.path()),
            );
            return Ok(());
        }
        // S3, path-style: /<bucket>/<key>[?query].
        let path = uri.path().trim_start_matches('/');
        let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
        let query = uri.query().unwrap_or_default();
        let object = format!("arn:aws:s3:::{bucket}/{key}");
        match req.method() {
            "GET" if key.is_empty() => self.push("s3:ListBucket", format!("arn:aws:s3:::{bucket}")),
            "GET" | "HEAD" => self.push("s3:GetObject", object),
            "PUT" => {
                if let Some(source) = req.headers().get("x-amz-copy-source") {
                    self.push(
                        "s3:GetObject",
                        format!("arn:aws:s3:::{}", source.trim_start_matches('/')),
                    );
                }
                self.push("s3:PutObject", object);
            }
            "DELETE" => self.push("s3:DeleteObject", object),
            "POST" if query.contains("delete") => {
                self.push("s3:DeleteObject", format!("{object}*"))
            }
            // A multipart upload's start and end (its parts are PUTs): s3:PutObject.
            "POST" if query.contains("uploads") || query.contains("uploadId") => {
                self.push("s3:PutObject", object)
            }
            other => self.push(&format!("s3:?{other}"), object),
        }
        Ok(())
    }
}
