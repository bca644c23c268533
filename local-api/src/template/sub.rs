//! `!Sub` as the deployed stack would resolve it, with the runner's stand-ins for the pseudo
//! parameters, the table, the buckets and a CloudFront distribution's domain.

use yaml_serde::Value;

use super::{Error, STACK_NAME, Template};

impl Template {
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
