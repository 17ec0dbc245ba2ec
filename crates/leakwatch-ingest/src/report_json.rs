//! A [`Report`] as JSON and back, for a report made in one process and shown
//! by another (a distributed ingest's worker and the command that waits for
//! it), and the sum of the reports of consecutive parts of one input.
//!
//! A report's strings are the stable ones of the rules (reasons, notes, column
//! roles, data classes): reading one back maps each to its `'static` string,
//! and a string leakwatch does not know is an error, never a new reason.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::report::{Reason, CLASS_BITS as CLASSES, WEBSITE_NOT_DOMAIN};
use crate::{ChosenBy, ColumnReport, ColumnUse, Format, Rejections, Report};

const FORMATS: [Format; 5] = [Format::Combo, Format::Csv, Format::Ndjson, Format::Sql, Format::Stealer];

const ROLES: [&str; 6] = ["email", "username", "account", "password", "hash", "phone"];

impl Format {
    /// The format [`Format::name`] names.
    pub fn from_name(name: &str) -> Option<Format> {
        FORMATS.into_iter().find(|f| f.name() == name)
    }
}

/// Why a report could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("not a leakwatch ingest report: {0}")]
pub struct ReportJsonError(String);

fn bad(what: impl Into<String>) -> ReportJsonError {
    ReportJsonError(what.into())
}

impl ColumnReport {
    /// Which column became what: `{"table": null, "used": [{"column":
    /// "pass_hash", "role": "hash", "detail": "md5", "by": "name"}],
    /// "left_out": ["id"]}`.
    pub fn to_json(&self) -> Value {
        let used: Vec<Value> = self
            .used
            .iter()
            .map(|u| {
                let by = match u.by {
                    ChosenBy::Name => "name",
                    ChosenBy::Content => "content",
                    ChosenBy::Override => "override",
                };
                json!({"column": u.column, "role": u.role, "detail": u.detail, "by": by})
            })
            .collect();
        json!({"table": self.table, "used": used, "left_out": self.left_out})
    }
}

impl Report {
    /// The report as JSON, for [`Report::from_json`].
    pub fn to_json(&self) -> Value {
        let rejected: serde_json::Map<String, Value> = self
            .rejected
            .iter()
            .map(|(reason, r)| {
                ((*reason).to_owned(), json!({"count": r.count, "sample_lines": r.sample_lines}))
            })
            .collect();
        let columns: Vec<Value> = self.columns.iter().map(ColumnReport::to_json).collect();
        json!({
            "format": self.format.name(),
            "lines": self.lines,
            "accepted": self.accepted,
            "rejected": rejected,
            "notes": self.notes,
            "data_classes": self.data_classes.iter().map(|c| c.hibp_name()).collect::<Vec<_>>(),
            "columns": columns,
        })
    }

    /// Reads back what [`Report::to_json`] wrote.
    pub fn from_json(value: &Value) -> Result<Report, ReportJsonError> {
        let str_of = |v: &Value, what: &str| v.as_str().map(str::to_owned).ok_or_else(|| bad(what));
        let u64_of = |v: &Value, what: &str| v.as_u64().ok_or_else(|| bad(what));
        let format = value["format"].as_str().and_then(Format::from_name).ok_or_else(|| bad("format"))?;
        let mut rejected = BTreeMap::new();
        for (reason, r) in value["rejected"].as_object().ok_or_else(|| bad("rejected"))? {
            let known = Reason::ALL.iter().map(|r| r.as_str()).find(|s| s == reason);
            let reason = known.ok_or_else(|| bad(format!("rejection reason {reason:?}")))?;
            let sample_lines = r["sample_lines"]
                .as_array()
                .ok_or_else(|| bad("sample_lines"))?
                .iter()
                .map(|l| u64_of(l, "sample line"))
                .collect::<Result<_, _>>()?;
            rejected.insert(reason, Rejections { count: u64_of(&r["count"], "count")?, sample_lines });
        }
        let mut notes = BTreeMap::new();
        for (note, n) in value["notes"].as_object().ok_or_else(|| bad("notes"))? {
            if note != WEBSITE_NOT_DOMAIN {
                return Err(bad(format!("note {note:?}")));
            }
            notes.insert(WEBSITE_NOT_DOMAIN, u64_of(n, "note count")?);
        }
        let mut data_classes = BTreeSet::new();
        for class in value["data_classes"].as_array().ok_or_else(|| bad("data_classes"))? {
            let class = class.as_str().and_then(|c| CLASSES.into_iter().find(|k| k.hibp_name() == c));
            data_classes.insert(class.ok_or_else(|| bad("data class"))?);
        }
        let mut columns = Vec::new();
        for c in value["columns"].as_array().ok_or_else(|| bad("columns"))? {
            let mut used = Vec::new();
            for u in c["used"].as_array().ok_or_else(|| bad("used"))? {
                let role = u["role"].as_str().unwrap_or_default();
                let role = ROLES
                    .into_iter()
                    .chain(CLASSES.iter().map(|c| c.hibp_name()))
                    .find(|r| *r == role)
                    .ok_or_else(|| bad(format!("column role {role:?}")))?;
                let by = match u["by"].as_str() {
                    Some("name") => ChosenBy::Name,
                    Some("content") => ChosenBy::Content,
                    Some("override") => ChosenBy::Override,
                    _ => return Err(bad("by")),
                };
                let detail = u["detail"].as_str().map(str::to_owned);
                used.push(ColumnUse { column: str_of(&u["column"], "column")?, role, detail, by });
            }
            let left_out = c["left_out"]
                .as_array()
                .ok_or_else(|| bad("left_out"))?
                .iter()
                .map(|l| str_of(l, "left_out"))
                .collect::<Result<_, _>>()?;
            columns.push(ColumnReport { table: c["table"].as_str().map(str::to_owned), used, left_out });
        }
        Ok(Report {
            format,
            lines: u64_of(&value["lines"], "lines")?,
            accepted: u64_of(&value["accepted"], "accepted")?,
            rejected,
            notes,
            data_classes,
            columns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn report_of(text: &str, format: Option<Format>) -> Report {
        let input = crate::Input::from_reader("t", std::io::Cursor::new(text.as_bytes().to_vec())).unwrap();
        crate::read(input, format, &AtomicU64::new(0), |r| r.len(), |_| Ok(())).unwrap()
    }

    #[test]
    fn a_report_reads_back_as_it_was() {
        let csv =
            "email,password,signup_ip,id\na@example.com,pw1,10.0.0.1,1\nnot-an-address,pw2,10.0.0.2,2\n";
        let combo = "a@example.com:pw\nbroken\nb@example.com:pw\n\u{1}x:y\n";
        for report in [report_of(csv, None), report_of(combo, None)] {
            let back = Report::from_json(&report.to_json()).unwrap();
            assert_eq!(back, report);
        }
        assert!(Report::from_json(&json!({"format": "combo"})).is_err());
    }
}
