//! Template values as the deployed stack would resolve them (`!Ref`, `!Sub`, `!GetAtt …Arn`),
//! with the runner's stand-ins for the pseudo parameters, the table, the buckets and a
//! CloudFront distribution's domain.

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
                    _ => Err(
                        format!("template.yaml: {what}: cannot resolve !Ref {name} locally").into(),
                    ),
                }
            }
            Value::Tagged(t) if t.tag == "GetAtt" => match reference(v) {
                Some((_, target)) => match target.split_once('.') {
                    Some((id, "Arn")) => self.arn(id, table_name, what).map(Some),
                    _ => Err(format!(
                        "template.yaml: {what}: cannot resolve !GetAtt {target} locally"
                    )
                    .into()),
                },
                None => Err(format!("template.yaml: {what}: a malformed !GetAtt").into()),
            },
            _ => Err(format!(
                "template.yaml: {what}: only scalars, !Ref, !Sub and !GetAtt …Arn are resolved locally"
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
            _ => Err(format!("template.yaml: {what}: no local ARN for {id}").into()),
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
