//! SQL dumps (mysqldump, MariaDB, phpMyAdmin, Adminer, pg_dump plain):
//! streaming the rows of the tables that hold accounts into records.
//!
//! One thread runs the [`Scanner`] over the stream and follows the dump's
//! statements: it learns each table's columns from `CREATE TABLE` (and `ALTER
//! TABLE ... ADD`), picks a [`TablePlan`] at each `INSERT` head or `COPY`, and
//! copies the rows of tables that hold accounts into chunks of one table each.
//! The pipeline then turns the rows of each chunk into records on all cores.
//! Rows of other tables (posts, sessions, logs: most of a forum dump) are
//! scanned past and never copied.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::sync::Arc;

use leakwatch_types::Records;

use crate::chunk::Source;
use crate::columns::{ColumnOverrides, ColumnRef, ColumnReport};
use crate::pipeline::Piece;
use crate::report::{Reason, Tallies};
use crate::schema::{Join, JoinMap, TablePlan, MAX_JOIN};
use crate::sql_lex::{At, Handler, Next, Row, Scanner};
use crate::sql_value::{copy_values, tokens, tuple_values, Token};

/// The size of one read from the decoder.
const READ_SIZE: usize = 256 * 1024;

/// Whether a first line (trimmed) opens a SQL dump.
pub(crate) fn looks_like_sql(line: &[u8]) -> bool {
    const STARTS: &[&str] = &[
        "CREATE TABLE ",
        "INSERT INTO ",
        "INSERT IGNORE ",
        "REPLACE INTO ",
        "DROP TABLE ",
        "LOCK TABLES ",
        "SET ",
        "USE ",
        "COPY ",
        "START TRANSACTION",
        "BEGIN;",
    ];
    line.starts_with(b"-- ")
        || line == b"--"
        || line.starts_with(b"/*")
        || line.starts_with(b"\\restrict ")
        || STARTS.iter().any(|s| line.len() >= s.len() && line[..s.len()].eq_ignore_ascii_case(s.as_bytes()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowKind {
    Data,
    TooLong,
    Malformed,
    Truncated,
}

#[derive(Debug, Clone, Copy)]
struct RowRef {
    start: usize,
    end: usize,
    /// Absolute line the row starts on.
    line: u64,
    kind: RowKind,
}

/// Rows of one table, copied out of the stream, for one parser task.
#[derive(Debug, Default)]
pub(crate) struct SqlChunk {
    data: Vec<u8>,
    rows: Vec<RowRef>,
    plan: Option<Arc<TablePlan>>,
    join: Option<Arc<JoinMap>>,
    /// Lines before this chunk (of the SQL part of the input).
    base: u64,
    /// Lines this chunk covers.
    lines: u64,
}

impl Piece for SqlChunk {
    fn byte_len(&self) -> usize {
        self.data.len().max(self.rows.len() * 64)
    }

    fn into_buffer(self) -> Vec<u8> {
        self.data
    }
}

/// Parses the rows of a chunk into records.
pub(crate) fn parse_chunk(chunk: &SqlChunk, out: &mut Records, t: &mut Tallies) {
    t.lines = chunk.lines;
    let Some(plan) = &chunk.plan else { return };
    let mut values = Vec::with_capacity(plan.cols.len());
    for row in &chunk.rows {
        // Line numbers in tallies count from this chunk's start.
        let line = row.line - chunk.base;
        let reason = match row.kind {
            RowKind::TooLong => Some(Reason::RecordTooLong),
            RowKind::Malformed => Some(Reason::MalformedRow),
            RowKind::Truncated => Some(Reason::TruncatedRow),
            RowKind::Data => None,
        };
        if let Some(reason) = reason {
            t.reject(reason, line);
            continue;
        }
        values.clear();
        let bytes = &chunk.data[row.start..row.end];
        if plan.copy {
            copy_values(bytes, &mut values);
        } else if tuple_values(bytes, plan.escapes, &mut values).is_none() {
            t.reject(Reason::MalformedRow, line);
            continue;
        }
        match plan.record(&values, chunk.join.as_deref(), &mut t.classes) {
            Ok(Some(record)) => {
                t.accept(&record);
                out.push(record);
            }
            Ok(None) => {}
            Err(reason) => t.reject(reason, line),
        }
    }
}

/// Follows the statements of a dump and collects rows into chunks.
struct Driver {
    chunk_size: usize,
    /// Column names (lower-case) of each table created so far, by table name.
    tables: HashMap<String, Vec<String>>,
    /// The plan for the rows now coming; `None`: they are not read.
    plan: Option<Arc<TablePlan>>,
    /// A plan whose roles the first row must settle.
    pending: Option<TablePlan>,
    join: Arc<JoinMap>,
    building: SqlChunk,
    ready: VecDeque<SqlChunk>,
    /// Spare buffers from chunks the pipeline is done with.
    spares: Vec<Vec<u8>>,
    overrides: Option<ColumnOverrides>,
    /// Which `--columns` entries matched a column of some table.
    overrides_found: Vec<bool>,
    /// Which column became what, per table holding accounts, in dump order.
    reports: Vec<ColumnReport>,
}

/// A table's name: the last part of `db`.`table` or `schema.table`, lower-case.
fn table_name(tokens: &[Token<'_>], at: usize) -> Option<(String, usize)> {
    let mut i = at;
    let mut name = tokens.get(i)?.name()?;
    while matches!(tokens.get(i + 1), Some(Token::Punct(b'.'))) {
        name = tokens.get(i + 2)?.name()?;
        i += 2;
    }
    Some((String::from_utf8_lossy(name).to_ascii_lowercase(), i + 1))
}

/// The names in a parenthesized list starting at `tokens[at]` (`(a, b)`).
fn name_list(tokens: &[Token<'_>], at: usize) -> Option<(Vec<String>, usize)> {
    if tokens.get(at) != Some(&Token::Punct(b'(')) {
        return None;
    }
    let mut names = Vec::new();
    let mut i = at + 1;
    loop {
        match tokens.get(i)? {
            Token::Punct(b')') => return Some((names, i + 1)),
            Token::Punct(b',') => {}
            t => names.push(String::from_utf8_lossy(t.name()?).to_ascii_lowercase()),
        }
        i += 1;
    }
}

/// The column names of a `CREATE TABLE name ( defs )`: the first word of each
/// definition that is not a key or constraint.
fn create_table_columns(tokens: &[Token<'_>]) -> Option<(String, Vec<String>)> {
    let mut i = tokens.iter().position(|t| t.is_word("TABLE"))? + 1;
    while tokens.get(i).is_some_and(|t| t.is_word("IF") || t.is_word("NOT") || t.is_word("EXISTS")) {
        i += 1;
    }
    let (table, mut i) = table_name(tokens, i)?;
    if tokens.get(i) != Some(&Token::Punct(b'(')) {
        return None;
    }
    i += 1;
    const NOT_COLUMNS: &[&str] = &[
        "PRIMARY",
        "KEY",
        "UNIQUE",
        "INDEX",
        "CONSTRAINT",
        "FOREIGN",
        "FULLTEXT",
        "SPATIAL",
        "CHECK",
        "EXCLUDE",
        "LIKE",
        "PERIOD",
    ];
    let mut columns = Vec::new();
    let mut depth = 0;
    let mut at_def_start = true;
    while let Some(t) = tokens.get(i) {
        match t {
            Token::Punct(b'(') => depth += 1,
            Token::Punct(b')') if depth == 0 => break,
            Token::Punct(b')') => depth -= 1,
            Token::Punct(b',') if depth == 0 => {
                at_def_start = true;
                i += 1;
                continue;
            }
            _ if at_def_start => {
                let keyword = matches!(t, Token::Word(_)) && NOT_COLUMNS.iter().any(|k| t.is_word(k));
                if let (false, Some(name)) = (keyword, t.name()) {
                    columns.push(String::from_utf8_lossy(name).to_ascii_lowercase());
                }
            }
            _ => {}
        }
        at_def_start = false;
        i += 1;
    }
    Some((table, columns))
}

impl Driver {
    fn new(chunk_size: usize, overrides: Option<ColumnOverrides>) -> Driver {
        Driver {
            overrides_found: vec![false; overrides.as_ref().map_or(0, |o| o.entries.len())],
            overrides,
            reports: Vec::new(),
            chunk_size: chunk_size.max(1),
            tables: HashMap::new(),
            plan: None,
            pending: None,
            join: Arc::new(JoinMap::new()),
            building: SqlChunk::default(),
            ready: VecDeque::new(),
            spares: Vec::new(),
        }
    }

    /// Hands over the chunk being built, covering lines up to `lines_now`.
    fn cut(&mut self, lines_now: u64) {
        let data = self.spares.pop().unwrap_or_default();
        let next = SqlChunk {
            data,
            rows: Vec::new(),
            plan: self.building.plan.clone(),
            join: self.building.join.clone(),
            base: lines_now,
            lines: 0,
        };
        let mut done = std::mem::replace(&mut self.building, next);
        done.lines = lines_now - done.base;
        self.ready.push_back(done);
    }

    /// Makes `plan` the plan of the rows that follow; returns whether a chunk
    /// was cut because the table changed.
    fn set_plan(&mut self, plan: Option<TablePlan>, at: At) -> bool {
        self.pending = None;
        let plan = match plan {
            Some(p) if p.holds_accounts() => Some(p),
            // No names at all: the first row's values may tell.
            Some(p) if p.cols.is_empty() => {
                self.pending = Some(p);
                None
            }
            _ => None,
        };
        if plan.as_ref() == self.plan.as_deref() {
            return false;
        }
        self.plan = plan.map(Arc::new);
        self.switch_chunk(at)
    }

    /// Starts a chunk for the current plan (cutting the one being built when
    /// it holds rows of another).
    fn switch_chunk(&mut self, at: At) -> bool {
        let cut = !self.building.rows.is_empty();
        if cut {
            self.cut(at.lines_now);
        }
        self.building.plan = self.plan.clone();
        self.building.join = match self.plan.as_deref().map(|p| p.join) {
            Some(Join::Lookup) => Some(self.join.clone()),
            _ => None,
        };
        cut
    }

    fn plan_for(&self, table: String, columns: Option<Vec<String>>, at: At, copy: bool) -> TablePlan {
        let columns = columns.or_else(|| self.tables.get(&table).cloned()).unwrap_or_default();
        TablePlan::new(&table, &columns, at.escapes, copy, self.overrides.as_ref())
    }

    /// [`Driver::note_columns`] for a plan from [`Driver::plan_for`].
    fn note(&mut self, plan: &TablePlan, columns: Option<Vec<String>>) {
        // Dumps with one INSERT per row come here once a row: the common case
        // is settled before any column name is copied.
        let reported = self.reports.iter().any(|r| r.table.as_deref() == Some(plan.table.as_str()));
        if self.overrides.is_none() && (reported || !plan.holds_accounts()) {
            return;
        }
        let columns = columns.or_else(|| self.tables.get(&plan.table).cloned()).unwrap_or_default();
        self.note_columns(plan, &columns);
    }

    /// Notes which `--columns` entries `columns` has, and the report of a
    /// table that holds accounts, the first time its rows come.
    fn note_columns(&mut self, plan: &TablePlan, columns: &[String]) {
        if let Some(overrides) = &self.overrides {
            for (found, (_, col)) in self.overrides_found.iter_mut().zip(&overrides.entries) {
                if let ColumnRef::Name(name) = col {
                    *found |= columns.iter().any(|c| c.eq_ignore_ascii_case(name));
                }
            }
        }
        if plan.holds_accounts() && !self.reports.iter().any(|r| r.table.as_deref() == Some(&plan.table)) {
            self.reports.push(plan.report(columns, self.overrides.as_ref()));
        }
    }
}

impl Handler for Driver {
    fn statement(&mut self, text: &[u8], at: At) -> (Next, bool) {
        let toks = tokens(text, at.escapes);
        let Some(first) = toks.first() else { return (Next::Statement, false) };
        if first.is_word("CREATE") && toks.iter().take(4).any(|t| t.is_word("TABLE")) {
            if let Some((table, columns)) = create_table_columns(&toks) {
                self.tables.insert(table, columns);
            }
        } else if first.is_word("ALTER") && toks.get(1).is_some_and(|t| t.is_word("TABLE")) {
            let at_name = if toks.get(2).is_some_and(|t| t.is_word("ONLY")) { 3 } else { 2 };
            if let Some((table, _)) = table_name(&toks, at_name) {
                let mut added = Vec::new();
                for (i, t) in toks.iter().enumerate() {
                    if !t.is_word("ADD") {
                        continue;
                    }
                    let mut j = i + 1;
                    if toks.get(j).is_some_and(|t| t.is_word("COLUMN")) {
                        j += 1;
                    }
                    let keyword = ["CONSTRAINT", "PRIMARY", "KEY", "INDEX", "UNIQUE", "FOREIGN", "FULLTEXT"];
                    if let Some(t) = toks.get(j).filter(|t| !keyword.iter().any(|k| t.is_word(k))) {
                        if let Some(name) = t.name() {
                            added.push(String::from_utf8_lossy(name).to_ascii_lowercase());
                        }
                    }
                }
                if let Some(cols) = self.tables.get_mut(&table) {
                    cols.extend(added);
                }
            }
        } else if first.is_word("COPY") && toks.iter().any(|t| t.is_word("stdin")) {
            let at_name = if toks.get(1).is_some_and(|t| t.is_word("ONLY")) { 2 } else { 1 };
            let (plan, cut) = match table_name(&toks, at_name) {
                Some((table, i)) => {
                    let columns = name_list(&toks, i).map(|(c, _)| c);
                    let plan = self.plan_for(table, columns, at, true);
                    let columns = name_list(&toks, i).map(|(c, _)| c);
                    self.note(&plan, columns);
                    (Some(plan), false)
                }
                None => (None, false),
            };
            let cut = cut | self.set_plan(plan, at);
            return (Next::CopyData, cut);
        }
        (Next::Statement, false)
    }

    fn insert_head(&mut self, text: &[u8], at: At) -> bool {
        let toks = tokens(text, at.escapes);
        // INSERT [LOW_PRIORITY | DELAYED | HIGH_PRIORITY] [IGNORE] [INTO] name [(cols)] VALUES
        let mut i = 1;
        while toks.get(i).is_some_and(|t| {
            ["LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE", "INTO"].iter().any(|k| t.is_word(k))
        }) {
            i += 1;
        }
        let plan = table_name(&toks, i).map(|(table, i)| {
            let columns = name_list(&toks, i).map(|(c, _)| c);
            let plan = self.plan_for(table, columns.clone(), at, false);
            (plan, columns)
        });
        let plan = plan.map(|(plan, columns)| {
            self.note(&plan, columns);
            plan
        });
        self.set_plan(plan, at)
    }

    fn row(&mut self, row: Row<'_>, at: At) -> bool {
        let mut cut = false;
        if let Some(mut pending) = self.pending.take() {
            // The first row of a table whose names told nothing settles it.
            if let Row::Tuple(bytes) | Row::CopyLine(bytes) = row {
                let mut values = Vec::new();
                let parsed = if pending.copy {
                    copy_values(bytes, &mut values);
                    true
                } else {
                    tuple_values(bytes, pending.escapes, &mut values).is_some()
                };
                if parsed {
                    pending.settle_by_values(&values);
                }
            }
            if pending.holds_accounts() {
                self.plan = Some(Arc::new(pending));
                cut = self.switch_chunk(at);
            } else if self.plan.take().is_some() {
                cut = self.switch_chunk(at);
            }
        }
        let Some(plan) = self.plan.clone() else { return cut };
        let kind = match row {
            Row::Tuple(_) | Row::CopyLine(_) => RowKind::Data,
            Row::TooLong => RowKind::TooLong,
            Row::Malformed => RowKind::Malformed,
            Row::Truncated => RowKind::Truncated,
        };
        if let (Join::Provide { emits }, Row::Tuple(bytes) | Row::CopyLine(bytes)) = (plan.join, row) {
            let mut values = Vec::new();
            let parsed = if plan.copy {
                copy_values(bytes, &mut values);
                Some(())
            } else {
                tuple_values(bytes, plan.escapes, &mut values)
            };
            if let Some((key, account)) = parsed.and_then(|()| plan.provided(&values)) {
                if self.join.len() < MAX_JOIN {
                    Arc::make_mut(&mut self.join).insert(key, account);
                }
            }
            if !emits {
                return cut;
            }
        }
        let start = self.building.data.len();
        if let Row::Tuple(bytes) | Row::CopyLine(bytes) = row {
            self.building.data.extend_from_slice(bytes);
        }
        let end = self.building.data.len();
        self.building.rows.push(RowRef { start, end, line: at.line, kind });
        if self.building.data.len() >= self.chunk_size || self.building.rows.len() >= self.chunk_size {
            self.cut(at.lines_now);
            cut = true;
        }
        cut
    }
}

/// Streams the chunks of a SQL dump out of `source`.
pub(crate) struct SqlReader {
    scanner: Scanner,
    driver: Driver,
    last_byte: Option<u8>,
    done: bool,
    /// A read error, returned once the rows read before it are handed over.
    error: Option<io::Error>,
}

impl SqlReader {
    pub(crate) fn new(chunk_size: usize, overrides: Option<ColumnOverrides>) -> SqlReader {
        SqlReader {
            scanner: Scanner::default(),
            driver: Driver::new(chunk_size, overrides),
            last_byte: None,
            done: false,
            error: None,
        }
    }

    /// A `--columns` entry no table of the dump has, as an error message.
    pub(crate) fn missing_override(&self) -> Option<String> {
        let overrides = self.driver.overrides.as_ref()?;
        let mut found = self.driver.overrides_found.iter();
        overrides.missing(|_| found.next().copied().unwrap_or(false)).map(|m| format!("{m} in any table"))
    }

    /// Which column became what, per table that holds accounts.
    pub(crate) fn column_reports(&mut self) -> Vec<ColumnReport> {
        std::mem::take(&mut self.driver.reports)
    }

    pub(crate) fn next_chunk<R: Read>(
        &mut self,
        source: &mut Source<R>,
        spare: Vec<u8>,
    ) -> io::Result<Option<SqlChunk>> {
        if spare.capacity() > 0 && self.driver.spares.len() < 8 {
            let mut spare = spare;
            spare.clear();
            self.driver.spares.push(spare);
        }
        loop {
            if let Some(chunk) = self.driver.ready.pop_front() {
                return Ok(Some(chunk));
            }
            if self.done {
                return self.error.take().map_or(Ok(None), Err);
            }
            if source.buffered().is_empty() {
                if !source.exhausted() {
                    source.fill(READ_SIZE)?;
                    continue;
                }
                self.done = true;
                if let Err(e) = source.take_error() {
                    // Rows read whole before the error still count; nothing
                    // after them does, not even the row the error cut.
                    self.error = Some(e);
                } else {
                    let open_line = self.last_byte.is_some_and(|b| b != b'\n');
                    self.scanner.finish(open_line, &mut self.driver);
                }
                self.driver.cut(self.scanner.lines());
                continue;
            }
            // Feeding at most a chunk's worth at a time lets tests with tiny
            // chunk sizes cut the stream everywhere.
            let bytes = source.buffered();
            let bytes = &bytes[..bytes.len().min(self.driver.chunk_size)];
            let n = self.scanner.feed(bytes, &mut self.driver);
            if n > 0 {
                self.last_byte = Some(bytes[n - 1]);
            }
            source.consume(n);
        }
    }
}
