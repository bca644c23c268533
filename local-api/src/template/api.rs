//! The template's APIs: each `AWS::Serverless::Api` with its authorizers, gateway responses
//! and usage plans; and the template's own API keys in those plans.

use std::collections::BTreeMap;
use std::time::Duration;

use yaml_serde::Value;

use super::{
    Api, ApiKeySource, Authorizer, Error, GatewayResponse, Payload, Template, TemplateApiKey,
    Throttle, UsagePlan, reference, text,
};

impl Template {
    /// Every `AWS::Serverless::Api`, with its authorizers, gateway responses and throttle.
    pub fn apis(&self) -> Result<Vec<Api>, Error> {
        let mut apis = Vec::new();
        for (id, res) in self.resources() {
            if res["Type"].as_str() != Some("AWS::Serverless::Api") {
                continue;
            }
            let props = &res["Properties"];
            let stage = match self.resolve(&props["StageName"], "", &format!("{id} StageName"))? {
                Some(s) if !s.is_empty() => s,
                _ => return Err(format!("template.yaml: {id}: no StageName").into()),
            };
            let api_key_source = match props["ApiKeySourceType"].as_str() {
                None | Some("HEADER") => ApiKeySource::Header,
                Some("AUTHORIZER") => ApiKeySource::Authorizer,
                Some(other) => {
                    return Err(
                        format!("template.yaml: {id}: unknown ApiKeySourceType {other}").into(),
                    );
                }
            };
            let mut authorizers = BTreeMap::new();
            for (name, a) in props["Auth"]["Authorizers"]
                .as_mapping()
                .into_iter()
                .flatten()
            {
                let name = text(name, &format!("{id} an authorizer's name"))?;
                if let Some(authorizer) = self.authorizer(id, &name, a)? {
                    authorizers.insert(name, authorizer);
                }
            }
            let mut gateway_responses = BTreeMap::new();
            for (kind, r) in props["GatewayResponses"].as_mapping().into_iter().flatten() {
                let kind = text(kind, &format!("{id} a gateway response type"))?;
                gateway_responses.insert(kind.clone(), self.gateway_response(id, &kind, r)?);
            }
            apis.push(Api {
                id: id.to_owned(),
                stage,
                api_key_source,
                authorizers,
                gateway_responses,
                plans: self.plans_of(id, props)?,
            });
        }
        Ok(apis)
    }

    /// An entry of `Auth.Authorizers`; `None` for one that is not a Lambda authorizer (a
    /// Cognito user pool), which routes may then not use.
    fn authorizer(&self, api: &str, name: &str, a: &Value) -> Result<Option<Authorizer>, Error> {
        let what = format!("{api} authorizer {name}");
        // The function itself, or SAM's reference to its `AutoPublishAlias` (the runner runs
        // the function's binary either way: it has no versions).
        let malformed = || -> Error {
            format!(
                "template.yaml: {what}: FunctionArn must be !GetAtt <function>.Arn or \
                 !Ref <function>.Alias"
            )
            .into()
        };
        if a["FunctionArn"].is_null() {
            return Ok(None);
        }
        let Some((kind, target)) = reference(&a["FunctionArn"]) else {
            return Err(malformed());
        };
        let function = match (kind, target.split_once('.')) {
            ("GetAtt", Some((function, "Arn"))) | ("Ref", Some((function, "Alias"))) => {
                function.to_owned()
            }
            _ => return Err(malformed()),
        };
        if self.doc["Resources"][function.as_str()]["Type"].as_str()
            != Some("AWS::Serverless::Function")
        {
            return Err(format!(
                "template.yaml: {what}: {function} is not an AWS::Serverless::Function"
            )
            .into());
        }
        if kind == "Ref"
            && self.doc["Resources"][function.as_str()]["Properties"]["AutoPublishAlias"].is_null()
            && self.doc["Globals"]["Function"]["AutoPublishAlias"].is_null()
        {
            return Err(format!(
                "template.yaml: {what}: {function}.Alias names an alias, but {function} has no \
                 AutoPublishAlias"
            )
            .into());
        }
        let identity = &a["Identity"];
        let names = |key: &str| -> Result<Vec<String>, Error> {
            identity[key]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|v| text(v, &format!("{what} Identity.{key}")))
                .collect()
        };
        let payload = match a["FunctionPayloadType"].as_str() {
            Some("REQUEST") => Payload::Request {
                headers: names("Headers")?,
                query_strings: names("QueryStrings")?,
                stage_variables: names("StageVariables")?,
                context: names("Context")?,
            },
            None | Some("TOKEN") => Payload::Token {
                header: identity["Header"]
                    .as_str()
                    .unwrap_or("Authorization")
                    .to_owned(),
            },
            Some(other) => {
                return Err(
                    format!("template.yaml: {what}: unknown FunctionPayloadType {other}").into(),
                );
            }
        };
        let ttl = match &identity["ReauthorizeEvery"] {
            Value::Null => 300,
            v => v.as_u64().ok_or_else(|| {
                format!("template.yaml: {what}: ReauthorizeEvery is not a number")
            })?,
        };
        Ok(Some(Authorizer {
            name: name.to_owned(),
            function,
            payload,
            ttl: Duration::from_secs(ttl),
        }))
    }

    /// The usage plans `api`'s stage is in: each `AWS::ApiGateway::UsagePlan` whose
    /// `ApiStages` name the API, and the API's own `Auth.UsagePlan` (SAM makes that plan,
    /// `<api>UsagePlan`).
    fn plans_of(&self, api: &str, props: &Value) -> Result<Vec<UsagePlan>, Error> {
        let mut plans = Vec::new();
        for (id, res) in self.resources() {
            if res["Type"].as_str() != Some("AWS::ApiGateway::UsagePlan") {
                continue;
            }
            let names_api = res["Properties"]["ApiStages"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|s| reference(&s["ApiId"]) == Some(("Ref", api.to_owned())));
            if names_api {
                plans.push(UsagePlan {
                    id: id.to_owned(),
                    throttle: self.throttle(id, &res["Properties"]["Throttle"])?,
                });
            }
        }
        let own = &props["Auth"]["UsagePlan"];
        if let Some("PER_API" | "SHARED") = own["CreateUsagePlan"].as_str() {
            plans.push(UsagePlan {
                id: format!("{api}UsagePlan"),
                throttle: self.throttle(api, &own["Throttle"])?,
            });
        }
        Ok(plans)
    }

    /// The template's `AWS::ApiGateway::ApiKey`s, each with the plans its
    /// `AWS::ApiGateway::UsagePlanKey`s put it in.
    pub fn api_keys(&self) -> Result<Vec<TemplateApiKey>, Error> {
        let mut keys = Vec::new();
        for (id, res) in self.resources() {
            if res["Type"].as_str() != Some("AWS::ApiGateway::ApiKey") {
                continue;
            }
            let props = &res["Properties"];
            let what = format!("{id} Value");
            let Some(value) = self.resolve(&props["Value"], "", &what)? else {
                return Err(format!("template.yaml: {id}: an ApiKey without a Value (API Gateway would make one up; the authorizer could not name it)").into());
            };
            let name = match &props["Name"] {
                Value::Null => id.to_owned(),
                v => self
                    .resolve(v, "", &format!("{id} Name"))?
                    .unwrap_or_else(|| id.to_owned()),
            };
            let enabled = !matches!(props["Enabled"].as_bool(), Some(false))
                && props["Enabled"].as_str() != Some("false");
            let plans = self
                .resources()
                .filter(|(_, r)| r["Type"].as_str() == Some("AWS::ApiGateway::UsagePlanKey"))
                .filter(|(_, r)| {
                    reference(&r["Properties"]["KeyId"]) == Some(("Ref", id.to_owned()))
                })
                .filter_map(|(_, r)| match reference(&r["Properties"]["UsagePlanId"]) {
                    Some(("Ref", plan)) => Some(plan),
                    _ => None,
                })
                .collect();
            keys.push(TemplateApiKey {
                id: id.to_owned(),
                name,
                value,
                enabled,
                plans,
            });
        }
        Ok(keys)
    }

    /// The usage plan API keys join (`keys create`): the one the `UsagePlanId` output names,
    /// else the first API's first plan.
    pub fn key_plan(&self) -> Result<Option<String>, Error> {
        if let Some(("Ref", plan)) = reference(&self.doc["Outputs"]["UsagePlanId"]["Value"]) {
            return Ok(Some(plan));
        }
        Ok(self
            .apis()?
            .into_iter()
            .flat_map(|a| a.plans)
            .map(|p| p.id)
            .next())
    }

    /// A `Throttle` of a usage plan, its limits numbers or `!Ref`s to parameters; `None`
    /// when absent (no throttle).
    fn throttle(&self, owner: &str, v: &Value) -> Result<Option<Throttle>, Error> {
        if v.is_null() {
            return Ok(None);
        }
        let number = |key: &str| -> Result<f64, Error> {
            let what = format!("{owner}: Throttle.{key}");
            self.resolve(&v[key], "", &what)?
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| format!("template.yaml: {what} is not a number").into())
        };
        Ok(Some(Throttle {
            burst: number("BurstLimit")? as u32,
            rate: number("RateLimit")?,
        }))
    }
}

impl Template {
    /// One of `GatewayResponses`: its header mappings resolved as CloudFormation resolves
    /// them (`!If` on a condition, `!Sub`; a header that resolves to `AWS::NoValue` is not
    /// there).
    fn gateway_response(&self, api: &str, kind: &str, r: &Value) -> Result<GatewayResponse, Error> {
        let what = format!("{api} GatewayResponses.{kind}");
        let status = match &r["StatusCode"] {
            Value::Null => None,
            Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        if !r["StatusCode"].is_null() && status.is_none() {
            return Err(format!("template.yaml: {what}: StatusCode is not a status").into());
        }
        let pairs = |v: &Value, part: &str| -> Result<Vec<(String, String)>, Error> {
            let mut out = Vec::new();
            for (k, v) in v.as_mapping().into_iter().flatten() {
                let name = text(k, &format!("{what} {part}"))?;
                if let Some(value) = self.resolve(v, "", &format!("{what} {part} {name}"))? {
                    out.push((name, value));
                }
            }
            Ok(out)
        };
        Ok(GatewayResponse {
            status,
            headers: pairs(&r["ResponseParameters"]["Headers"], "Headers")?,
            templates: pairs(&r["ResponseTemplates"], "ResponseTemplates")?,
        })
    }
}
