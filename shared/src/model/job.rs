//! Bulk jobs: an import of a JSONL file of profiles or an export of a tenant's profiles, as
//! stored in its one item and shown by `GET /imports/{id}` and `GET /exports/{id}`. What a
//! worker does with one is `crate::bulk`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Timestamp;
use crate::ids::{JobId, PrincipalId};
use crate::validate::FieldError;

/// How many of an import's bad lines its item keeps inline (the rest are in its report).
pub const INLINE_ERRORS: usize = 10;

/// How long a job (its item, and its files under the jobs bucket's lifecycle rule) is kept.
pub const JOB_TTL_DAYS: i64 = 7;

/// An import's or an export's progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Made; an import waits for its file, an export for its worker.
    Queued,
    Processing,
    Completed,
    /// Stopped with [`Job::failure`] saying why: a bad file, or an export that could not
    /// finish. Lines an import wrote before it stopped stay written.
    Failed,
}

/// What an import does with a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every line is a new profile, as `POST /profiles` makes one; a line whose
    /// `external_id` or `slug` is held is a failed line.
    Create,
    /// A line whose `external_id` a profile holds updates that profile (the line's fields
    /// merged in, its contacts added where the value is new); any other line is created. A
    /// line without an `external_id` fails: it could not be matched on a second run.
    Upsert,
}

impl Mode {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "create" => Some(Self::Create),
            "upsert" => Some(Self::Upsert),
            _ => None,
        }
    }
}

/// Which kind of job, with what is particular to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobKind {
    Import {
        mode: Mode,
        /// Where the worker has read to: every line before this byte is counted.
        offset: u64,
        /// The last line number counted (lines are numbered from 1).
        line: u64,
        counts: ImportCounts,
        /// The first bad lines, at most [`INLINE_ERRORS`].
        errors: Vec<LineError>,
        /// The file's size, once the worker has looked.
        size: Option<u64>,
        /// The file's ETag when the worker looked: a file replaced meanwhile (its form used
        /// again) fails the job instead of mixing two files.
        #[serde(default)]
        etag: Option<String>,
    },
    Export {
        /// Profiles written to the file.
        count: u64,
    },
}

/// An import's counts: every line read is created, updated or failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCounts {
    /// Lines with content (blank lines are skipped, not counted).
    pub read: u64,
    pub created: u64,
    /// Lines that matched a stored profile on its `external_id` (upsert), whether or not
    /// they changed it.
    pub updated: u64,
    pub failed: u64,
}

/// One bad line: its number, the problem code and detail the API would answer the line
/// with as a `POST /profiles` body, and each field with what is wrong (the API's words).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    pub line: u64,
    pub code: String,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl LineError {
    /// The most field errors, and characters of a text, a line error keeps in the job item
    /// (the error report keeps it whole): ten of them must fit in one item.
    const KEPT_ERRORS: usize = 20;
    const KEPT_CHARS: usize = 500;

    /// This error cut to what the job item keeps inline.
    pub fn clipped(&self) -> Self {
        let cut = |s: &str| match s.char_indices().nth(Self::KEPT_CHARS) {
            Some((at, _)) => format!("{}…", &s[..at]),
            None => s.to_owned(),
        };
        Self {
            line: self.line,
            code: self.code.clone(),
            detail: cut(&self.detail),
            errors: self
                .errors
                .iter()
                .take(Self::KEPT_ERRORS)
                .map(|e| FieldError {
                    field: cut(&e.field),
                    message: cut(&e.message),
                })
                .collect(),
        }
    }
}

/// A bulk job as stored: one item per job, rewritten at each checkpoint on the condition
/// that its `version` is the one read (two workers on one job cannot both go on).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub owner_id: PrincipalId,
    pub status: Status,
    #[serde(flatten)]
    pub kind: JobKind,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// Why a failed job stopped.
    pub failure: Option<String>,
    /// The key in the jobs bucket of the job's result: an import's error report (when a
    /// line failed), an export's file.
    pub result_key: Option<String>,
    pub version: u64,
}

impl Job {
    /// A new import in `mode`, queued for its file.
    pub fn import(mode: Mode, owner: PrincipalId) -> Self {
        Self::new(
            JobKind::Import {
                mode,
                offset: 0,
                line: 0,
                counts: ImportCounts::default(),
                errors: Vec::new(),
                size: None,
                etag: None,
            },
            owner,
        )
    }

    /// A new export, queued for its worker.
    pub fn export(owner: PrincipalId) -> Self {
        Self::new(JobKind::Export { count: 0 }, owner)
    }

    fn new(kind: JobKind, owner: PrincipalId) -> Self {
        Self {
            id: JobId::generate(),
            owner_id: owner,
            status: Status::Queued,
            kind,
            created_at: Timestamp::now(),
            started_at: None,
            finished_at: None,
            failure: None,
            result_key: None,
            version: 1,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.status, Status::Completed | Status::Failed)
    }

    /// The job as the API shows it; `download` is the presigned URL of its result, when
    /// there is one to give (with when it expires).
    pub fn to_json(&self, download: Option<(&str, Timestamp)>) -> Value {
        let mut out = json!({
            "id": self.id,
            "status": self.status,
            "created_at": self.created_at.to_string(),
            "started_at": self.started_at.map(|t| t.to_string()),
            "finished_at": self.finished_at.map(|t| t.to_string()),
            "failure": self.failure,
        });
        let (url_field, expires_field) = match &self.kind {
            JobKind::Import {
                mode,
                counts,
                errors,
                line,
                offset,
                size,
                ..
            } => {
                out["type"] = json!("import");
                out["mode"] = json!(mode);
                out["lines"] = json!(line);
                // Progress: the file's size once the worker has looked, and how far it read.
                out["bytes_total"] = json!(size);
                out["bytes_read"] = json!(offset);
                out["counts"] = json!(counts);
                out["errors"] = json!(errors);
                ("error_report_url", "error_report_expires_at")
            }
            JobKind::Export { count } => {
                out["type"] = json!("export");
                out["count"] = json!(count);
                // What a reader may rely on when the tenant changes while it runs.
                out["consistency"] = json!("per_profile");
                ("download_url", "download_expires_at")
            }
        };
        out[url_field] = json!(download.map(|(url, _)| url));
        out[expires_field] = json!(download.map(|(_, at)| at.to_string()));
        out
    }
}
