//! The ingest status page, `/ui/ingests`: running ingests with their
//! progress, and past ones with what each input gave (lines, accepted
//! records, rejections by reason with sample line numbers), as the ingest
//! log in the catalog holds them ([`crate::ingest_log`] writes it). For admin
//! and analyst keys: input names say where dumps came from.
//!
//! While an ingest runs the page refreshes its running section by itself
//! (`refresh.js`, from this origin); without the script, reloading does.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use leakwatch_catalog::{IngestRecord, IngestStatus};
use std::fmt::Write;

use super::html::{count, esc, path_segment};
use super::pages::{error_page, page};
use super::{see_other, Visitor};
use crate::auth::charge;
use crate::error::AppError;
use crate::query::Params;
use crate::state::AppState;

/// Ingests shown: the newest ones.
const SHOWN: usize = 50;
/// A running ingest that has not reported for this long has stopped (killed,
/// or its machine went down): it reports every second.
const STALE_MS: i64 = 30_000;

const SCRIPT: &str = include_str!("assets/refresh.js");

pub async fn script() -> Response {
    super::pages::asset("text/javascript; charset=utf-8", SCRIPT)
}

/// Milliseconds since the epoch of a catalog time (`2026-03-04T03:06:07.891Z`).
fn epoch_ms(t: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let ms = if t.as_bytes().get(19) == Some(&b'.') { num(20..23).unwrap_or(0) } else { 0 };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms)
}

/// `3 min 12 s`.
fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{}.{} s", s, (ms.max(0) % 1000) / 100),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// `1.5 GB`.
fn bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

/// A time as shown: `2026-03-04 03:06:07 UTC`.
fn when(t: &str) -> String {
    match (t.get(..10), t.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => t.to_owned(),
    }
}

/// What an ingest's state is, now: running ones that stopped reporting have
/// stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    Running,
    Stopped,
    Done,
    Failed,
}

fn state_of(r: &IngestRecord, now_ms: i64) -> Shown {
    match r.status {
        IngestStatus::Running => match epoch_ms(&r.updated_at) {
            Some(at) if now_ms - at > STALE_MS => Shown::Stopped,
            _ => Shown::Running,
        },
        IngestStatus::Done => Shown::Done,
        IngestStatus::Failed => Shown::Failed,
    }
}

/// `GET /ui/ingests`.
pub async fn ingests(State(state): State<AppState>, visitor: Visitor, RawQuery(query): RawQuery) -> Response {
    let Some((_, key)) = visitor.signed_in.clone() else { return see_other("/ui/signin") };
    if let Err(e) = charge(&state, visitor.client, || "ui ingests".into(), Some(&key)).await {
        return error_page(&visitor, e);
    }
    if !matches!(key.role, leakwatch_catalog::Role::Admin | leakwatch_catalog::Role::Analyst) {
        return error_page(&visitor, AppError::Forbidden("The ingest log is for admin and analyst keys."));
    }
    let params = Params::parse(query.as_deref());
    let breach = params.get("breach").map(str::to_owned).filter(|b| !b.is_empty());
    let reader = state.clone();
    let wanted = breach.clone();
    let records =
        tokio::task::spawn_blocking(move || reader.catalog().ingests(wanted.as_deref(), SHOWN)).await;
    let records = match records {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return error_page(&visitor, AppError::catalog(e)),
        Err(e) => return error_page(&visitor, AppError::internal(e)),
    };
    let now_ms = epoch_ms(&leakwatch_catalog::now()).unwrap_or(0);
    let (running, past): (Vec<&IngestRecord>, Vec<&IngestRecord>) =
        records.iter().partition(|r| state_of(r, now_ms) == Shown::Running);

    let mut body = String::from("<h1>Ingests</h1>\n");
    let scope = match &breach {
        Some(b) => format!(
            "The ingests into <a href=\"/ui/breach/{}\">{}</a>, newest first. <a href=\"/ui/ingests\">All ingests</a>",
            path_segment(b),
            esc(b)
        ),
        None => format!("The ingests into this data directory (<code>leakwatch ingest</code>, <code>leakwatch demo</code>), newest first: the last {SHOWN}."),
    };
    let _ = writeln!(body, "<p>{scope}</p>");
    // The running section is what the script refreshes; it keeps polling
    // while the page it fetched still has one.
    let refresh = if running.is_empty() { "" } else { " data-refresh=\"2\"" };
    let _ = writeln!(body, "<section id=\"running\" aria-labelledby=\"running-h\"{refresh}>");
    let _ = writeln!(body, "<h2 id=\"running-h\">Running</h2>");
    if running.is_empty() {
        body.push_str("<p>No ingest is running.</p>\n");
    }
    for r in &running {
        body.push_str(&running_card(r, now_ms));
    }
    body.push_str("</section>\n<h2>Past ingests</h2>\n");
    if past.is_empty() {
        body.push_str("<p>None yet.</p>\n");
    } else {
        body.push_str("<ul class=\"cards\">\n");
        for r in &past {
            body.push_str(&past_card(r, state_of(r, now_ms)));
        }
        body.push_str("</ul>\n");
    }
    body.push_str("<script src=\"/ui/assets/refresh.js\"></script>");
    page(&visitor, StatusCode::OK, "Ingests", &body)
}

fn breach_link(r: &IngestRecord) -> String {
    format!("<a href=\"/ui/breach/{}\">{}</a>", path_segment(&r.breach), esc(&r.breach))
}

fn running_card(r: &IngestRecord, now_ms: i64) -> String {
    let started = epoch_ms(&r.started_at).unwrap_or(now_ms);
    let elapsed = now_ms - started;
    let progress = match r.bytes_total.filter(|&t| t > 0) {
        Some(total) => {
            let read = r.bytes_read.min(total);
            let percent = read as f64 * 100.0 / total as f64;
            format!(
                "<progress max=\"{total}\" value=\"{read}\" aria-label=\"Input read\">{percent:.0}%</progress> {percent:.0}% of {} read",
                bytes(total)
            )
        }
        None => format!("{} read", bytes(r.bytes_read)),
    };
    let rate = if elapsed > 0 { r.bytes_read as f64 / (elapsed as f64 / 1000.0) } else { 0.0 };
    format!(
        r#"<article class="card ingest" id="ingest-{id}"><h3>{breach} <span class="status running">running</span></h3>
<p class="meta">Started {started} by {by}, {elapsed} ago · {phase}</p>
<p>{progress} ({rate}/s) · {records} records so far</p></article>
"#,
        id = r.id,
        breach = breach_link(r),
        started = esc(&when(&r.started_at)),
        by = esc(&r.started_by),
        elapsed = duration(elapsed),
        phase = esc(&r.phase),
        rate = bytes(rate as u64),
        records = count(r.records),
    )
}

fn past_card(r: &IngestRecord, state: Shown) -> String {
    let (status, class) = match state {
        Shown::Done => ("done", "good"),
        Shown::Failed => ("failed", "bad"),
        Shown::Stopped => ("stopped", "bad"),
        Shown::Running => ("running", "running"),
    };
    let took = match (r.finished_at.as_deref().and_then(epoch_ms), epoch_ms(&r.started_at)) {
        (Some(end), Some(start)) => format!(", took {}", duration(end - start)),
        _ => String::new(),
    };
    let mut out = format!(
        r#"<li class="card ingest" id="ingest-{id}"><h3>{breach} <span class="status {class}">{status}</span></h3>
<p class="meta">Started {started} by {by}{took}</p>
"#,
        id = r.id,
        breach = breach_link(r),
        started = esc(&when(&r.started_at)),
        by = esc(&r.started_by),
    );
    match state {
        Shown::Failed => {
            let _ = writeln!(
                out,
                "<p class=\"notice bad\">Nothing was published: {}</p>",
                esc(r.message.as_deref().unwrap_or("no reason was logged"))
            );
        }
        Shown::Stopped => {
            let _ = writeln!(
                out,
                "<p class=\"notice bad\">It stopped reporting at {} ({}, {} records read) and never finished: the process ended (killed, or its machine went down). Nothing of it was published.</p>",
                esc(&when(&r.updated_at)),
                esc(&r.phase),
                count(r.records),
            );
        }
        Shown::Done | Shown::Running => {}
    }
    let rejected: Vec<(String, u64)> = r.rejected_by_reason();
    let rejected_total: u64 = rejected.iter().map(|x| x.1).sum();
    if state == Shown::Done {
        let lines: u64 = r.inputs.iter().filter_map(|i| i.lines).sum();
        let _ = write!(
            out,
            r#"<dl class="facts">
<dt>Inputs</dt><dd>{inputs}</dd>
<dt>Lines read</dt><dd>{lines}</dd>
<dt>Accepted</dt><dd>{accepted}</dd>
<dt>Rejected</dt><dd>{rejected_total}</dd>
<dt>New accounts</dt><dd>{new_accounts}{new_breach}</dd>
<dt>New credentials</dt><dd>{new_credentials}</dd>
</dl>
"#,
            inputs = count(r.inputs.len() as u64),
            lines = count(lines),
            accepted = count(r.accepted()),
            rejected_total = count(rejected_total),
            new_accounts = count(r.new_accounts.unwrap_or(0)),
            new_breach = if r.new_breach == Some(true) { " (a new breach)" } else { "" },
            new_credentials = count(r.new_credentials.unwrap_or(0)),
        );
        if let Some(warning) = &r.message {
            let _ = writeln!(out, "<p class=\"notice\">Published with a warning: {}</p>", esc(warning));
        }
    }
    if !rejected.is_empty() {
        let mut rows = String::new();
        for (reason, n) in &rejected {
            let _ = writeln!(rows, "<tr><td>{}</td><td class=\"num\">{}</td></tr>", esc(reason), count(*n));
        }
        let _ = write!(
            out,
            r#"<table class="reasons"><caption>Rejected lines by reason</caption>
<thead><tr><th scope="col">Reason</th><th scope="col" class="num">Lines</th></tr></thead>
<tbody>
{rows}</tbody></table>
"#
        );
    }
    out.push_str(&inputs_table(r));
    out.push_str("</li>\n");
    out
}

/// Each input with its counts and, per reason, the first rejected lines to
/// go and look at.
fn inputs_table(r: &IngestRecord) -> String {
    if r.inputs.is_empty() {
        return String::new();
    }
    let mut rows = String::new();
    for input in &r.inputs {
        let reasons: Vec<String> = input
            .rejected
            .iter()
            .map(|x| {
                let lines: Vec<String> = x.sample_lines.iter().map(u64::to_string).collect();
                format!(
                    "{} {} (e.g. line{} {})",
                    count(x.count),
                    esc(&x.reason),
                    if lines.len() == 1 { "" } else { "s" },
                    lines.join(", ")
                )
            })
            .collect();
        let opt = |n: Option<u64>| n.map_or_else(|| "–".to_owned(), count);
        let _ = writeln!(
            rows,
            "<tr><td class=\"path\">{name}</td><td>{format}</td><td class=\"num\">{lines}</td><td class=\"num\">{accepted}</td><td>{reasons}</td></tr>",
            name = esc(&input.name),
            format = esc(input.format.as_deref().unwrap_or("–")),
            lines = opt(input.lines),
            accepted = opt(input.accepted),
            reasons = if reasons.is_empty() { "none".to_owned() } else { reasons.join("<br>") },
        );
    }
    format!(
        r#"<details><summary>{n} input{s}</summary>
<div class="table-wrap"><table>
<thead><tr><th scope="col">Input</th><th scope="col">Format</th><th scope="col" class="num">Lines</th><th scope="col" class="num">Accepted</th><th scope="col">Rejected</th></tr></thead>
<tbody>
{rows}</tbody></table></div></details>
"#,
        n = r.inputs.len(),
        s = if r.inputs.len() == 1 { "" } else { "s" },
    )
}

/// The ingests of one breach, for its page: a line each, linking to the log.
pub fn breach_history(records: &[IngestRecord]) -> String {
    if records.is_empty() {
        return "<p>No ingest into it is in the log (it came from a sync, a demo, or a store older than the log).</p>\n".to_owned();
    }
    let mut out = String::from("<ul>\n");
    for r in records {
        let status = match r.status {
            IngestStatus::Done => format!(
                "{} accepted, {} rejected",
                count(r.accepted()),
                count(r.rejected_by_reason().iter().map(|x| x.1).sum())
            ),
            IngestStatus::Failed => "failed".to_owned(),
            IngestStatus::Running => "running".to_owned(),
        };
        let _ = writeln!(
            out,
            "<li><a href=\"/ui/ingests?breach={q}#ingest-{id}\">{when}</a> by {by}: {status}</li>",
            q = form_urlencoded::byte_serialize(r.breach.as_bytes()).collect::<String>(),
            id = r.id,
            when = esc(&when(&r.started_at)),
            by = esc(&r.started_by),
        );
    }
    out.push_str("</ul>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_times_and_figures_read_back() {
        assert_eq!(epoch_ms("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(epoch_ms("2026-03-04T03:06:07.891Z"), Some(1_772_593_567_891));
        assert_eq!(epoch_ms("2000-02-29T12:00:00Z"), Some(951_825_600_000));
        assert_eq!(epoch_ms("garbage"), None);
        assert_eq!(duration(1_500), "1.5 s");
        assert_eq!(duration(192_000), "3 min 12 s");
        assert_eq!(duration(7_380_000), "2 h 3 min");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(when("2026-03-04T03:06:07.891Z"), "2026-03-04 03:06:07 UTC");
    }
}
