//! Template values as the deployed stack would resolve them (`!Ref`, `!Sub`, `!GetAtt …Arn`,
//! `!If`, `!Join`), with the runner's stand-ins for the pseudo parameters, the table, the
//! buckets and a CloudFront distribution's domain; and the template's `Conditions`
//! (`!Equals`, `!Not`, `!And`, `!Or`, `!Condition`) as CloudFormation evaluates them.

use std::collections::BTreeMap;

use yaml_serde::Value;

use super::{Error, STACK_NAME, Template, reference, text};

impl Template {
    /// A property's value as the deployed stack would see it: a scalar as written, `!Ref` to
    /// a parameter as its override (`--parameter-overrides`) or else its default, `!Ref` to the table as `table_name`. `None` for a secret
    /// resolved at deploy time (`{{resolve:secretsmanager:…}}`): locally the variable is
    /// left unset, and the function uses its local-engine default.
    pub(super) fn resolve(
        &self,
        v: &Value,
        table_name: &str,
        what: &str,
    ) -> Result<Option<String>, Error> {
        match v {
            Value::String(s) => Ok(Some(s.clone())),
            Value::Number(n) => Ok(Some(n.to_string())),
            Value::Bool(b) => Ok(Some(b.to_string())),
            Value::Tagged(t)
                if t.tag == "Sub" && t.value.as_str().is_some_and(|s| s.contains("{{resolve:")) =>
            {
                Ok(None)
            }
            Value::Tagged(t) if t.tag == "Sub" => {
                let raw = text(&t.value, what)?;
                self.sub(&raw, table_name, what).map(Some)
            }
            Value::Tagged(t) if t.tag == "If" => {
                let (holds, then, otherwise) = match t.value.as_sequence().map(Vec::as_slice) {
                    Some([Value::String(c), then, otherwise]) => (self.condition(c)?, then, otherwise),
                    _ => {
                        return Err(format!(
                            "template.yaml: {what}: !If takes [condition, then, else]"
                        )
                        .into());
                    }
                };
                self.resolve(if holds { then } else { otherwise }, table_name, what)
            }
            Value::Tagged(t) if t.tag == "Join" => {
                let (separator, items) = match t.value.as_sequence().map(Vec::as_slice) {
                    Some([Value::String(sep), items]) => (sep, items),
                    _ => {
                        return Err(
                            format!("template.yaml: {what}: !Join takes [separator, list]").into(),
                        );
                    }
                };
                Ok(Some(self.list(items, table_name, what)?.join(separator)))
            }
            Value::Tagged(t) if t.tag == "Ref" && t.value.as_str() == Some("AWS::NoValue") => {
                Ok(None)
            }
            Value::Tagged(t) if t.tag == "Ref" => {
                let name = text(&t.value, what)?;
                if let Some(value) = self.parameters.get(&name) {
                    return Ok(Some(value.clone()));
                }
                let param = &self.doc["Parameters"][name.as_str()];
                if !param.is_null() {
                    return self.resolve(&param["Default"], table_name, &name);
                }
                match self.doc["Resources"][name.as_str()]["Type"].as_str() {
                    Some("AWS::DynamoDB::Table") => Ok(Some(table_name.to_owned())),
                    Some("AWS::S3::Bucket") => self.bucket_name(&name).map(Some),
                    // The runner's plan ids are the plans' logical ids.
                    Some("AWS::ApiGateway::UsagePlan") => Ok(Some(name)),
                    Some("AWS::Events::EventBus") => self.bus_name(&name).map(Some),
                    _ => Err(
                        format!("template.yaml: {what}: cannot resolve !Ref {name} locally").into(),
                    ),
                }
            }
            Value::Tagged(t) if t.tag == "GetAtt" => match reference(v) {
                Some((_, target)) => match target.split_once('.') {
                    Some((id, "Arn")) => self.arn(id, table_name, what).map(Some),
                    Some((id, "StreamArn"))
                        if self.doc["Resources"][id]["Type"].as_str()
                            == Some("AWS::DynamoDB::Table") =>
                    {
                        Ok(Some(format!(
                            "{}/stream/{}",
                            self.arn(id, table_name, what)?,
                            crate::stream::STREAM_LABEL
                        )))
                    }
                    _ => Err(format!(
                        "template.yaml: {what}: cannot resolve !GetAtt {target} locally"
                    )
                    .into()),
                },
                None => Err(format!("template.yaml: {what}: a malformed !GetAtt").into()),
            },
            _ => Err(format!(
                "template.yaml: {what}: only scalars, !Ref, !Sub, !GetAtt …Arn, !If and !Join are resolved locally"
            )
            .into()),
        }
    }

    /// The ARN of the table or a bucket, as the local stack would have it.
    pub(super) fn arn(&self, id: &str, table_name: &str, what: &str) -> Result<String, Error> {
        match self.doc["Resources"][id]["Type"].as_str() {
            Some("AWS::DynamoDB::Table") => Ok(format!(
                "arn:aws:dynamodb:{}:{}:table/{table_name}",
                self.region,
                crate::ACCOUNT_ID
            )),
            Some("AWS::S3::Bucket") => Ok(format!("arn:aws:s3:::{}", self.bucket_name(id)?)),
            Some("AWS::Events::EventBus") => Ok(format!(
                "arn:aws:events:{}:{}:event-bus/{}",
                self.region,
                crate::ACCOUNT_ID,
                self.bus_name(id)?
            )),
            // The other resources' local names are their logical ids.
            Some(kind) => {
                let (service, resource) = match kind {
                    "AWS::SQS::Queue" => ("sqs", id.to_owned()),
                    "AWS::Events::Rule" => ("events", format!("rule/{id}")),
                    "AWS::Events::ApiDestination" => ("events", format!("api-destination/{id}")),
                    "AWS::Events::Connection" => ("events", format!("connection/{id}")),
                    "AWS::Serverless::Function" => ("lambda", format!("function:{id}")),
                    _ => return Err(format!("template.yaml: {what}: no local ARN for {id}").into()),
                };
                Ok(format!(
                    "arn:aws:{service}:{}:{}:{resource}",
                    self.region,
                    crate::ACCOUNT_ID
                ))
            }
            None => Err(format!("template.yaml: {what}: no local ARN for {id}").into()),
        }
    }

    /// A `!Sub` string as the deployed stack would see it: `${AWS::StackName}`,
    /// `${AWS::AccountId}`, `${AWS::Region}`, `${AWS::Partition}`, `${AWS::URLSuffix}`, a
    /// parameter, the table or a bucket by logical id, and `https://${<distribution>.DomainName}`
    /// as the embedded S3's stand-in URL for that distribution; `${!x}` is a literal `${x}`.
    pub(super) fn sub(&self, raw: &str, table_name: &str, what: &str) -> Result<String, Error> {
        let mut out = String::new();
        let mut rest = raw;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("template.yaml: {what}: an unclosed ${{ in !Sub"))?;
            let name = &after[..end];
            rest = &after[end + 1..];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str(&format!("${{{literal}}}"));
                continue;
            }
            let value = match name {
                "AWS::StackName" => STACK_NAME.to_owned(),
                "AWS::AccountId" => crate::ACCOUNT_ID.to_owned(),
                "AWS::Region" => self.region.clone(),
                "AWS::Partition" => "aws".to_owned(),
                "AWS::URLSuffix" => "amazonaws.com".to_owned(),
                _ => match name.split_once('.') {
                    Some((id, "DomainName"))
                        if self.doc["Resources"][id]["Type"].as_str()
                            == Some("AWS::CloudFront::Distribution") =>
                    {
                        // The scheme comes with it: the stand-in is plain HTTP.
                        let Some(head) = out.strip_suffix("https://") else {
                            return Err(format!(
                                "template.yaml: {what}: {id}.DomainName resolves locally only \
                                 as https://${{{id}.DomainName}}"
                            )
                            .into());
                        };
                        out = head.to_owned();
                        self.distribution_url(id)?
                    }
                    Some((id, "Arn")) => self.arn(id, table_name, what)?,
                    Some(_) => {
                        return Err(format!(
                            "template.yaml: {what}: cannot resolve ${{{name}}} locally"
                        )
                        .into());
                    }
                    None => {
                        let reference = Value::Tagged(Box::new(yaml_serde::value::TaggedValue {
                            tag: yaml_serde::value::Tag::new("Ref"),
                            value: Value::String(name.to_owned()),
                        }));
                        self.resolve(&reference, table_name, what)?
                            .unwrap_or_default()
                    }
                },
            };
            out.push_str(&value);
        }
        out.push_str(rest);
        Ok(out)
    }
}

impl Template {
    /// A list value: a sequence (each item resolved; `AWS::NoValue` items dropped),
    /// `!Split [separator, value]` or a `!Ref` to a `CommaDelimitedList` parameter.
    fn list(&self, v: &Value, table_name: &str, what: &str) -> Result<Vec<String>, Error> {
        match v {
            Value::Sequence(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.extend(self.resolve(item, table_name, what)?);
                }
                Ok(out)
            }
            Value::Tagged(t) if t.tag == "Split" => {
                match t.value.as_sequence().map(Vec::as_slice) {
                    Some([Value::String(separator), value]) => Ok(self
                        .resolve(value, table_name, what)?
                        .unwrap_or_default()
                        .split(separator.as_str())
                        .map(str::to_owned)
                        .collect()),
                    _ => Err(
                        format!("template.yaml: {what}: !Split takes [separator, value]").into(),
                    ),
                }
            }
            Value::Tagged(t) if t.tag == "Ref" && self.is_list_parameter(&t.value) => Ok(self
                .resolve(v, table_name, what)?
                .unwrap_or_default()
                .split(',')
                .map(|item| item.trim().to_owned())
                .collect()),
            _ => Err(format!(
                "template.yaml: {what}: a list must be a sequence, a !Split or a CommaDelimitedList parameter"
            )
            .into()),
        }
    }

    /// Whether `name` names a `CommaDelimitedList` parameter (a `!Ref` to it is a list).
    pub(super) fn is_list_parameter(&self, name: &Value) -> bool {
        name.as_str().is_some_and(|name| {
            self.doc["Parameters"][name]["Type"].as_str() == Some("CommaDelimitedList")
        })
    }

    /// Whether the template's condition `name` holds, from the values the conditions were
    /// evaluated with ([`Template::evaluate_conditions`]).
    pub(super) fn condition(&self, name: &str) -> Result<bool, Error> {
        self.conditions
            .get(name)
            .copied()
            .ok_or_else(|| format!("template.yaml: no condition {name:?} in Conditions").into())
    }

    /// Every entry of `Conditions`, evaluated with the parameters' values: CloudFormation
    /// decides them once, before any resource is made.
    pub(super) fn evaluate_conditions(&self) -> Result<BTreeMap<String, bool>, Error> {
        let mut out = BTreeMap::new();
        for (name, _) in self.doc["Conditions"].as_mapping().into_iter().flatten() {
            let name = text(name, "a condition's name")?;
            out.insert(name.clone(), self.holds_named(&name, 0)?);
        }
        Ok(out)
    }

    fn holds_named(&self, name: &str, depth: usize) -> Result<bool, Error> {
        let body = &self.doc["Conditions"][name];
        if body.is_null() {
            return Err(format!("template.yaml: no condition {name:?} in Conditions").into());
        }
        self.holds(body, name, depth)
    }

    /// A condition function's value (`!Equals`, `!Not`, `!And`, `!Or`, `!Condition`).
    fn holds(&self, v: &Value, what: &str, depth: usize) -> Result<bool, Error> {
        // Conditions that name each other in a circle: CloudFormation refuses the template.
        if depth > 32 {
            return Err(format!("template.yaml: condition {what} refers to itself").into());
        }
        let Value::Tagged(t) = v else {
            return Err(
                format!("template.yaml: condition {what}: not a condition function").into(),
            );
        };
        let args = t.value.as_sequence().map(Vec::as_slice).unwrap_or_default();
        match t.tag.to_string().trim_start_matches('!') {
            "Equals" => match args {
                [a, b] => Ok(self.resolve(a, "", what)? == self.resolve(b, "", what)?),
                _ => {
                    Err(format!("template.yaml: condition {what}: !Equals takes two values").into())
                }
            },
            "Not" => match args {
                [c] => Ok(!self.holds(c, what, depth + 1)?),
                _ => {
                    Err(format!("template.yaml: condition {what}: !Not takes one condition").into())
                }
            },
            "And" | "Or" => {
                let mut values = Vec::new();
                for c in args {
                    values.push(self.holds(c, what, depth + 1)?);
                }
                Ok(if t.tag == "And" {
                    values.iter().all(|b| *b)
                } else {
                    values.iter().any(|b| *b)
                })
            }
            "Condition" => {
                let name = text(&t.value, what)?;
                self.holds_named(&name, depth + 1)
            }
            other => Err(format!(
                "template.yaml: condition {what}: {other} is not evaluated locally \
                 (only Equals, Not, And, Or, Condition)"
            )
            .into()),
        }
    }
}
