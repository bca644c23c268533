//! A Lambda function that misbehaves on request, for the local runner's tests: it answers by
//! the last segment of the path of the REST event it receives.
//!
//! - `ok`: 200 with its process id (so a test can tell instances apart)
//! - `echo`: 200 with the event it received, as JSON
//! - `binary`: a base64 body and multi-value headers
//! - `malformed`: a payload that is not a proxy response
//! - `error`: returns an error (the runtime posts `/error`)
//! - `crash`: exits the process mid-invocation
//! - `sleep`: answers after 3 s
//!
//! With `FAULT_INIT=exit` in its environment it exits during init; with `FAULT_INIT=report` it
//! first reports the failure to the Runtime API's `/init/error`, as a runtime may.
//!
//! Given a REQUEST authorizer event (`"type": "REQUEST"`), it is an authorizer that does what
//! the request's `x-fault-auth` header says:
//!
//! - absent or `allow`: allows the whole stage, for tenant `x-fault-tenant` (else `fault`)
//!   with every scope, on usage key `x-fault-usage-key` (else `USAGE_KEY`)
//! - `no-usage-key`: allows, without a usage key
//! - `deny`: a policy that denies the method ARN
//! - `elsewhere`: a policy that allows only another route
//! - `unauthorized`: refuses (the error message `Unauthorized`)
//! - `error`, `crash`, `sleep`, `malformed`: as above

use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// The usage key it names unless told another: the fault templates' `FaultApiKey`.
const USAGE_KEY: &str = "usage-fault-of-the-template";

/// The authorizer's answer to a REQUEST event.
async fn authorize(event: &Value) -> Result<Value, lambda_runtime::Error> {
    let header = |name: &str| event["headers"][name].as_str();
    let arn = event["methodArn"].as_str().unwrap_or_default();
    // `<arn>:<api id>/<stage>/*`: every route of the stage.
    let stage: Vec<&str> = arn.splitn(3, '/').take(2).collect();
    let stage = format!("{}/*", stage.join("/"));
    let policy = |effect: &str, resource: &str| {
        json!({"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}
        ]})
    };
    let tenant = header("x-fault-tenant").unwrap_or("fault");
    let mut allow = json!({
        "principalId": "fault-principal",
        "policyDocument": policy("Allow", &stage),
        "context": {
            "tenant_id": tenant,
            "principal_id": "fault-principal",
            "scopes": shared::auth::Scopes::all().to_string(),
            "number": 7,
            "flag": true,
        },
        "usageIdentifierKey": header("x-fault-usage-key").unwrap_or(USAGE_KEY),
    });
    match header("x-fault-auth").unwrap_or("allow") {
        "allow" => Ok(allow),
        "no-usage-key" => {
            allow["usageIdentifierKey"] = Value::Null;
            Ok(allow)
        }
        "deny" => {
            allow["policyDocument"] = json!({"Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": stage},
                {"Action": "execute-api:*", "Effect": "Deny", "Resource": arn},
            ]});
            Ok(allow)
        }
        "elsewhere" => {
            allow["policyDocument"] =
                policy("Allow", &format!("{}nowhere", &stage[..stage.len() - 1]));
            Ok(allow)
        }
        "unauthorized" => Err("Unauthorized".into()),
        "error" => Err("the authorizer failed".into()),
        "crash" => std::process::exit(3),
        "sleep" => {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            Ok(allow)
        }
        "malformed" => Ok(json!({"policyDocument": "not a policy"})),
        other => Err(format!("no x-fault-auth {other:?}").into()),
    }
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    if event.payload["type"] == "REQUEST" {
        return authorize(&event.payload).await;
    }
    let path = event.payload["path"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let ok = |body: String| json!({"statusCode": 200, "headers": {"content-type": "application/json"}, "body": body});
    match path.rsplit('/').next().unwrap_or_default() {
        "ok" => Ok(ok(json!({"pid": std::process::id()}).to_string())),
        "echo" => Ok(ok(event.payload.to_string())),
        "binary" => Ok(json!({
            "statusCode": 201,
            "headers": {"content-type": "application/octet-stream", "x-single": "one"},
            "multiValueHeaders": {"x-multi": ["a", "b"]},
            "body": "AAEC/w==",
            "isBase64Encoded": true,
        })),
        "malformed" => Ok(json!(["not", "a", "proxy", "response"])),
        "error" => Err("asked to fail".into()),
        "crash" => std::process::exit(3),
        "sleep" => {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            Ok(ok("{}".into()))
        }
        other => Ok(json!({"statusCode": 404, "body": format!("no fault {other:?}")})),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    match std::env::var("FAULT_INIT").as_deref() {
        Ok("exit") => return Err("init asked to fail".into()),
        Ok("report") => {
            report_init_error().await?;
            return Err("init asked to fail".into());
        }
        _ => {}
    }
    lambda_runtime::run(service_fn(handle)).await
}

/// POSTs `/2018-06-01/runtime/init/error` by hand (the runtime crate reports only SnapStart
/// hook failures there).
async fn report_init_error() -> Result<(), lambda_runtime::Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API")?;
    let body = r#"{"errorType":"Fault.Init","errorMessage":"init asked to fail"}"#;
    let request = format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\n\
         Content-Type: application/json\r\nLambda-Runtime-Function-Error-Type: Fault.Init\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(&api).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    if !answer.starts_with("HTTP/1.1 202") {
        return Err(format!("init/error answered {answer:?}").into());
    }
    Ok(())
}
