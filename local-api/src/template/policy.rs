//! The IAM policies as the template writes them: each function's inline `Policies`
//! statements, and each `AWS::IAM::ManagedPolicy`'s, their actions and resources resolved to
//! the local stack's ARNs, so a test can check every call a function (or the `keys` command)
//! makes against what its role allows.

use yaml_serde::Value;

use super::{Error, Template, text};

/// One `Effect: Allow` statement: its actions and resource ARN patterns (`*` and `?` as IAM
/// reads them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allow {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

impl Allow {
    /// Whether this statement allows `action` on `resource`.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        self.actions
            .iter()
            .any(|a| glob(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
            && self.resources.iter().any(|r| glob(r, resource))
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` any one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn strings(v: &Value) -> Vec<&Value> {
    match v {
        Value::Sequence(items) => items.iter().collect(),
        other => vec![other],
    }
}

impl Template {
    /// Every inline `Allow` statement of function `id`'s `Policies`, or of the managed policy
    /// `id`'s `PolicyDocument`, resolved (`table_name` is the table's local name). A policy
    /// given by name (a managed policy or a SAM policy template) is an error: its statements
    /// are not in the template to check.
    pub fn policies(&self, id: &str, table_name: &str) -> Result<Vec<Allow>, Error> {
        let mut out = Vec::new();
        let what = format!("{id} Policies");
        let props = &self.doc["Resources"][id]["Properties"];
        let documents = match self.doc["Resources"][id]["Type"].as_str() {
            Some("AWS::IAM::ManagedPolicy") => vec![&props["PolicyDocument"]],
            _ => strings(&props["Policies"]),
        };
        for policy in documents {
            if policy.is_null() {
                continue;
            }
            if policy["Statement"].is_null() {
                return Err(
                    format!("template.yaml: {what}: only inline statements are read").into(),
                );
            }
            for statement in strings(&policy["Statement"]) {
                if statement["Effect"].as_str() != Some("Allow") {
                    return Err(
                        format!("template.yaml: {what}: only Allow statements are read").into(),
                    );
                }
                let actions = strings(&statement["Action"])
                    .into_iter()
                    .map(|a| text(a, &what))
                    .collect::<Result<_, _>>()?;
                let mut resources = Vec::new();
                for r in strings(&statement["Resource"]) {
                    resources.push(self.resolve(r, table_name, &what)?.unwrap_or_default());
                }
                out.push(Allow { actions, resources });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_reads_stars_and_question_marks_as_iam_does() {
        assert!(glob(
            "arn:aws:s3:::b/uploads/*",
            "arn:aws:s3:::b/uploads/t/p/u"
        ));
        assert!(!glob(
            "arn:aws:s3:::b/uploads/*",
            "arn:aws:s3:::b/photos/t/p/u"
        ));
        assert!(glob("table/t/index/*", "table/t/index/GSI1"));
        assert!(!glob("table/t", "table/t/index/GSI1"));
        assert!(glob("dynamodb:*", "dynamodb:query"));
        assert!(glob("a?c", "abc") && !glob("a?c", "ac"));
        assert!(glob("*", "") && glob("", "") && !glob("", "x"));
    }
}
