//! The template's S3 side: its buckets (`AWS::S3::Bucket`, named by `BucketName`), the
//! functions' `S3` events (which bucket, which events, which key filter), and its CloudFront
//! distributions' S3 origins, served locally by the embedded S3 itself.

use yaml_serde::Value;

use super::{Error, Template, reference, text};

/// A function's `S3` event: the objects whose creation invokes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Subscription {
    /// The event's name in the template (S3's `configurationId`).
    pub name: String,
    /// The function's logical id.
    pub function: String,
    /// The bucket's name.
    pub bucket: String,
    /// `Events`, e.g. `s3:ObjectCreated:*`.
    pub events: Vec<String>,
    /// `Filter.S3Key.Rules`: the key's prefix and suffix, if given.
    pub prefix: String,
    pub suffix: String,
}

impl S3Subscription {
    /// Whether an object event (`ObjectCreated:Post`, on `bucket`, of `key`) invokes it.
    pub fn matches(&self, bucket: &str, event_name: &str, key: &str) -> bool {
        let event = format!("s3:{event_name}");
        let wanted = self.events.iter().any(|e| match e.strip_suffix('*') {
            Some(family) => event.starts_with(family),
            None => *e == event,
        });
        wanted
            && self.bucket == bucket
            && key.starts_with(&self.prefix)
            && key.ends_with(&self.suffix)
    }
}

/// A CloudFront distribution's S3 origin: what the distribution serves, which the local
/// runner serves unsigned from the embedded S3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The distribution's logical id.
    pub distribution: String,
    pub bucket: String,
    /// `OriginPath` without its leading `/` (e.g. `photos`), or empty.
    pub path: String,
}

impl Template {
    /// Every `AWS::S3::Bucket`: logical id and name (`BucketName`, resolved).
    pub fn buckets(&self) -> Result<Vec<(String, String)>, Error> {
        let mut out = Vec::new();
        for (id, res) in self.resources() {
            if res["Type"].as_str() != Some("AWS::S3::Bucket") {
                continue;
            }
            out.push((id.to_owned(), self.bucket_name(id)?));
        }
        Ok(out)
    }

    /// A bucket's name: its `BucketName`, or what CloudFormation would make (lower case).
    pub(super) fn bucket_name(&self, id: &str) -> Result<String, Error> {
        let name = &self.doc["Resources"][id]["Properties"]["BucketName"];
        if name.is_null() {
            return Ok(format!("{}-{}", super::STACK_NAME, id.to_ascii_lowercase()));
        }
        self.resolve(name, "", &format!("{id} BucketName"))?
            .ok_or_else(|| format!("template.yaml: {id} BucketName: not resolvable locally").into())
    }

    /// Every function's `S3` events.
    pub fn s3_subscriptions(&self) -> Result<Vec<S3Subscription>, Error> {
        let mut out = Vec::new();
        for (id, res) in self.resources() {
            if res["Type"].as_str() != Some("AWS::Serverless::Function") {
                continue;
            }
            for (name, event) in res["Properties"]["Events"]
                .as_mapping()
                .into_iter()
                .flatten()
            {
                if event["Type"].as_str() != Some("S3") {
                    continue;
                }
                let name = text(name, "an event's name")?;
                let what = format!("{id} event {name}");
                let p = &event["Properties"];
                let bucket = match reference(&p["Bucket"]) {
                    Some(("Ref", b)) => self.bucket_name(&b)?,
                    _ => return Err(format!("template.yaml: {what}: Bucket must be a !Ref").into()),
                };
                let events = match &p["Events"] {
                    Value::String(e) => vec![e.clone()],
                    Value::Sequence(es) => es
                        .iter()
                        .map(|e| text(e, &what))
                        .collect::<Result<_, _>>()?,
                    _ => return Err(format!("template.yaml: {what}: no Events").into()),
                };
                let (mut prefix, mut suffix) = (String::new(), String::new());
                for rule in p["Filter"]["S3Key"]["Rules"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                {
                    let value = text(&rule["Value"], &what)?;
                    match rule["Name"]
                        .as_str()
                        .map(str::to_ascii_lowercase)
                        .as_deref()
                    {
                        Some("prefix") => prefix = value,
                        Some("suffix") => suffix = value,
                        _ => {
                            return Err(format!(
                                "template.yaml: {what}: a rule is prefix or suffix"
                            )
                            .into());
                        }
                    }
                }
                out.push(S3Subscription {
                    name,
                    function: id.to_owned(),
                    bucket,
                    events,
                    prefix,
                    suffix,
                });
            }
        }
        Ok(out)
    }

    /// Every CloudFront distribution's S3 origins: the origin's `DomainName` (a `!Sub` of
    /// `<bucket>.s3.<region>.amazonaws.com`, or `!GetAtt <bucket>.RegionalDomainName` /
    /// `.DomainName`) and its `OriginPath`.
    pub fn origins(&self) -> Result<Vec<Origin>, Error> {
        let mut out = Vec::new();
        for (id, res) in self.resources() {
            if res["Type"].as_str() != Some("AWS::CloudFront::Distribution") {
                continue;
            }
            for origin in res["Properties"]["DistributionConfig"]["Origins"]
                .as_sequence()
                .into_iter()
                .flatten()
            {
                if origin["S3OriginConfig"].is_null() {
                    continue;
                }
                let what = format!("{id} origin DomainName");
                let bucket = match reference(&origin["DomainName"]) {
                    Some(("GetAtt", target)) => {
                        let (bucket, _) = target.split_once('.').unwrap_or((&target, ""));
                        self.bucket_name(bucket)?
                    }
                    _ => {
                        let domain = self
                            .resolve(&origin["DomainName"], "", &what)?
                            .unwrap_or_default();
                        let region = format!(".s3.{}.amazonaws.com", self.region);
                        match domain
                            .strip_suffix(&region)
                            .or_else(|| domain.strip_suffix(".s3.amazonaws.com"))
                        {
                            Some(b) => b.to_owned(),
                            None => {
                                return Err(format!(
                                    "template.yaml: {what}: {domain:?} is not an S3 bucket's domain"
                                )
                                .into());
                            }
                        }
                    }
                };
                let path = origin["OriginPath"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_matches('/')
                    .to_owned();
                out.push(Origin {
                    distribution: id.to_owned(),
                    bucket,
                    path,
                });
            }
        }
        Ok(out)
    }

    /// What `https://${<distribution>.DomainName}` is locally: the embedded S3's URL of the
    /// origin's bucket and path, which it serves unsigned.
    pub(super) fn distribution_url(&self, distribution: &str) -> Result<String, Error> {
        let endpoint = self
            .s3_endpoint
            .as_deref()
            .ok_or_else(|| format!("template.yaml: {distribution}: no embedded S3 to serve it"))?;
        let origin = self
            .origins()?
            .into_iter()
            .find(|o| o.distribution == distribution)
            .ok_or_else(|| format!("template.yaml: {distribution} has no S3 origin"))?;
        let mut url = format!("{}/{}", endpoint.trim_end_matches('/'), origin.bucket);
        if !origin.path.is_empty() {
            url = format!("{url}/{}", origin.path);
        }
        Ok(url)
    }
}
