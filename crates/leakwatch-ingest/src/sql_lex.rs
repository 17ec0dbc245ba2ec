//! The byte-level state machine that finds statements and rows in a SQL dump
//! (mysqldump, MariaDB, phpMyAdmin, Adminer, pg_dump plain), fed in pieces of
//! any size.
//!
//! A dump cannot be split on `;` or on newlines: both occur inside strings,
//! and one extended `INSERT` may be hundreds of megabytes on a single line. So
//! every byte goes through one machine that knows whether it is in code, in a
//! `'`-, `"`- or backtick-quoted string, after a backslash, or in a comment.
//! The machine keeps its state between calls to [`Scanner::feed`], so where the
//! input was cut into pieces never changes what it finds.
//!
//! What it finds goes to a [`Handler`]: each complete statement other than an
//! `INSERT ... VALUES` (bounded by [`MAX_STATEMENT`]), the head of each
//! `INSERT ... VALUES`, and each row: a `(...)` tuple of an `INSERT` or a line
//! of a `COPY ... FROM stdin` block. A row longer than [`MAX_RECORD`] is
//! reported as too long without being held. Strings are skipped with `memchr`,
//! which is where nearly all of a dump's bytes are.

use memchr::{memchr, memchr2};

/// Rows (tuples, COPY lines) longer than this are rejected as too long; the
/// scanner holds at most this much of one.
pub(crate) const MAX_RECORD: usize = 1 << 20;

/// Statements other than `INSERT ... VALUES` longer than this are ignored
/// (a `CREATE TABLE` is a few KiB; a bigger statement is not one we read).
pub(crate) const MAX_STATEMENT: usize = 1 << 20;

/// What the handler wants after a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Go on with the next statement.
    Statement,
    /// The statement was `COPY ... FROM stdin`: rows follow, one per line,
    /// up to a line `\.`.
    CopyData,
}

/// A row as the scanner found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Row<'a> {
    /// The bytes of an `INSERT` tuple, parentheses included.
    Tuple(&'a [u8]),
    /// One line of a `COPY` block, without its line ending.
    CopyLine(&'a [u8]),
    /// A row longer than [`MAX_RECORD`].
    TooLong,
    /// A tuple cut short by a `;` outside its strings.
    Malformed,
    /// A row the input ended inside of.
    Truncated,
}

/// Where an event happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct At {
    /// The line the statement or row starts on (1-based).
    pub(crate) line: u64,
    /// LFs read up to the end of the event.
    pub(crate) lines_now: u64,
    /// Whether `\` escapes in this statement's strings.
    pub(crate) escapes: bool,
}

/// Receives what the scanner finds. Each method returns `true` to make
/// [`Scanner::feed`] return right after the event (the caller's chunk is full).
pub(crate) trait Handler {
    /// A complete statement other than an `INSERT ... VALUES`, without its `;`.
    fn statement(&mut self, text: &[u8], at: At) -> (Next, bool);
    /// The head of an `INSERT ... VALUES` (up to and including `VALUES`),
    /// before its tuples.
    fn insert_head(&mut self, text: &[u8], at: At) -> bool;
    /// A row.
    fn row(&mut self, row: Row<'_>, at: At) -> bool;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    /// In a quoted string or identifier; `escapes`: a backslash escapes the next byte.
    Quoted {
        quote: u8,
        escapes: bool,
    },
    /// Right after a backslash inside a string.
    Escape {
        quote: u8,
    },
    /// Right after what may be the closing quote (a doubled quote is a quote).
    QuoteEnd {
        quote: u8,
        escapes: bool,
    },
    /// After one `-` in code.
    Dash,
    /// After `--` in code: a comment if whitespace follows.
    DashDash,
    /// After `/` in code.
    Slash,
    /// After `/*`: `!` makes it a versioned comment, whose content is code.
    CommentOpen,
    /// After `/*M`, MariaDB's versioned comments.
    CommentOpenM,
    /// The version number of a versioned comment.
    VersionDigits,
    /// After `*` inside a versioned comment's code: `/` closes it.
    VersionedStar,
    BlockComment {
        star: bool,
    },
    LineComment,
    /// The rest of a line is skipped (psql meta-commands such as `\restrict`).
    SkipLine,
    /// Inside a `COPY ... FROM stdin` block.
    CopyData,
}

/// The scanner's state between pieces of input.
pub(crate) struct Scanner {
    state: State,
    /// Whether `\` escapes in strings (MySQL's default; off in PostgreSQL's
    /// standard strings and under `NO_BACKSLASH_ESCAPES`).
    backslash: bool,
    /// The statement being read (outside tuples), unless too long.
    stmt: Vec<u8>,
    stmt_overflow: bool,
    stmt_line: u64,
    /// Between the tuples of an `INSERT ... VALUES`.
    values: bool,
    /// Parenthesis depth in code.
    depth: u32,
    /// Inside a tuple (or a COPY line): its bytes, unless too long.
    in_row: bool,
    row: Vec<u8>,
    row_overflow: bool,
    row_line: u64,
    /// Inside `/*! ... */`.
    versioned: bool,
    /// Between `DELIMITER x` (x other than `;`) and `DELIMITER ;`: stored
    /// programs, whose statements are not data.
    custom_delimiter: bool,
    /// A `COPY ... FROM stdin;` ended: its rows start on the next line.
    copy_pending: bool,
    /// LFs before the current position.
    lines: u64,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            state: State::Code,
            backslash: true,
            stmt: Vec::new(),
            stmt_overflow: false,
            stmt_line: 1,
            values: false,
            depth: 0,
            in_row: false,
            row: Vec::new(),
            row_overflow: false,
            row_line: 1,
            versioned: false,
            custom_delimiter: false,
            copy_pending: false,
            lines: 0,
        }
    }
}

fn starts_with_ci(text: &[u8], word: &[u8]) -> bool {
    text.len() >= word.len() && text[..word.len()].eq_ignore_ascii_case(word)
}

fn contains_ci(text: &[u8], word: &[u8]) -> bool {
    text.windows(word.len()).any(|w| w.eq_ignore_ascii_case(word))
}

/// Whether a statement read so far is an `INSERT`/`REPLACE` head ending in
/// `VALUES` (or `VALUE`), so that the next `(` opens its first tuple.
fn is_values_head(stmt: &[u8]) -> bool {
    let head = stmt.trim_ascii();
    if !(starts_with_ci(head, b"INSERT") || starts_with_ci(head, b"REPLACE")) {
        return false;
    }
    let word_end = |w: &[u8]| {
        head.len() >= w.len()
            && head[head.len() - w.len()..].eq_ignore_ascii_case(w)
            && head.len() > w.len()
            && !head[head.len() - w.len() - 1].is_ascii_alphanumeric()
            && head[head.len() - w.len() - 1] != b'_'
    };
    word_end(b"VALUES") || word_end(b"VALUE")
}

impl Scanner {
    /// Physical lines read so far: LFs, plus one for a last line without LF.
    pub(crate) fn lines(&self) -> u64 {
        self.lines
    }

    /// Feeds the next piece of input; returns how many of its bytes were
    /// consumed (all of them unless the handler asked to pause).
    pub(crate) fn feed(&mut self, input: &[u8], h: &mut impl Handler) -> usize {
        let mut i = 0;
        while i < input.len() {
            let (next_i, pause) = self.step(input, i, h);
            i = next_i;
            if pause {
                break;
            }
        }
        i
    }

    /// Ends the input: a row left open is truncated. `last_without_lf` says
    /// whether the input was non-empty and did not end with an LF.
    pub(crate) fn finish(&mut self, last_without_lf: bool, h: &mut impl Handler) {
        if last_without_lf {
            self.lines += 1;
        }
        let at = self.at(self.row_line);
        let open = match self.state {
            State::CopyData => self.in_row && !self.row.is_empty(),
            _ => self.in_row,
        };
        if open {
            h.row(Row::Truncated, at);
        }
        self.in_row = false;
    }

    fn push_code(&mut self, b: u8) {
        if self.in_row {
            if !self.row_overflow {
                if self.row.len() < MAX_RECORD {
                    self.row.push(b);
                } else {
                    self.row_overflow = true;
                }
            }
        } else if !self.values {
            self.push_stmt(&[b]);
        }
    }

    fn push_span(&mut self, span: &[u8]) {
        if self.in_row {
            if !self.row_overflow {
                if self.row.len() + span.len() <= MAX_RECORD {
                    self.row.extend_from_slice(span);
                } else {
                    self.row_overflow = true;
                }
            }
        } else if !self.values {
            self.push_stmt(span);
        }
    }

    fn push_stmt(&mut self, span: &[u8]) {
        if self.stmt_overflow {
            return;
        }
        if self.stmt.is_empty() {
            // Statements are kept trimmed at the start, so a statement's first
            // byte tells what it is.
            let start = span.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(span.len());
            if start == span.len() {
                return;
            }
            self.stmt_line = self.lines + 1;
            self.stmt.extend_from_slice(&span[start..]);
        } else if self.stmt.len() + span.len() <= MAX_STATEMENT {
            self.stmt.extend_from_slice(span);
        } else {
            self.stmt_overflow = true;
        }
    }

    fn start_row(&mut self) {
        self.in_row = true;
        self.row.clear();
        self.row_overflow = false;
        self.row_line = self.lines + 1;
    }

    fn at(&self, line: u64) -> At {
        At { line, lines_now: self.lines, escapes: self.backslash }
    }

    fn emit_row(&mut self, copy: bool, h: &mut impl Handler) -> bool {
        self.in_row = false;
        let at = self.at(self.row_line);
        if self.row_overflow {
            return h.row(Row::TooLong, at);
        }
        let row = std::mem::take(&mut self.row);
        let pause = h.row(if copy { Row::CopyLine(&row) } else { Row::Tuple(&row) }, at);
        self.row = row;
        pause
    }

    /// Ends the statement at a `;` (or at the newline after `DELIMITER x`).
    fn end_statement(&mut self, h: &mut impl Handler) -> bool {
        let mut pause = false;
        if self.in_row {
            // A `;` inside a tuple's parentheses: the tuple is broken.
            self.in_row = false;
            pause = h.row(Row::Malformed, self.at(self.row_line));
        }
        let stmt = std::mem::take(&mut self.stmt);
        let text = stmt.trim_ascii();
        if starts_with_ci(text, b"DELIMITER") {
            let delimiter = text[9..].trim_ascii();
            self.custom_delimiter = !delimiter.is_empty() && delimiter != b";";
        } else if !self.values && !self.stmt_overflow && !text.is_empty() && !self.custom_delimiter {
            if starts_with_ci(text, b"SET") {
                self.apply_set(text);
            }
            let (next, p) = h.statement(text, self.at(self.stmt_line));
            pause |= p;
            if next == Next::CopyData {
                self.state = State::SkipLine;
                self.stmt = stmt;
                self.stmt.clear();
                self.values = false;
                self.depth = 0;
                self.stmt_overflow = false;
                // The rows start on the line after the statement's `;`.
                self.copy_pending = true;
                return pause;
            }
        }
        self.stmt = stmt;
        self.stmt.clear();
        self.stmt_overflow = false;
        self.values = false;
        self.depth = 0;
        pause
    }

    /// Follows the settings that change how strings are read.
    fn apply_set(&mut self, text: &[u8]) {
        if contains_ci(text, b"standard_conforming_strings") {
            self.backslash = !text.trim_ascii_end().to_ascii_lowercase().ends_with(b"on");
        } else if contains_ci(text, b"sql_mode") {
            self.backslash = !contains_ci(text, b"NO_BACKSLASH_ESCAPES");
        }
    }

    /// Runs the machine from `input[i]`: returns where it stopped and whether
    /// the handler asked to pause.
    fn step(&mut self, input: &[u8], i: usize, h: &mut impl Handler) -> (usize, bool) {
        let b = input[i];
        match self.state {
            State::Quoted { quote, escapes } => {
                let rest = &input[i..];
                let found = if escapes { memchr2(quote, b'\\', rest) } else { memchr(quote, rest) };
                let Some(n) = found else {
                    self.count_lines(rest);
                    self.push_span(rest);
                    return (input.len(), false);
                };
                self.count_lines(&rest[..n]);
                self.push_span(&rest[..=n]);
                self.state = if rest[n] == quote {
                    State::QuoteEnd { quote, escapes }
                } else {
                    State::Escape { quote }
                };
                (i + n + 1, false)
            }
            State::Escape { quote } => {
                self.count_byte(b);
                self.push_code(b);
                self.state = State::Quoted { quote, escapes: true };
                (i + 1, false)
            }
            State::QuoteEnd { quote, escapes } => {
                if b == quote {
                    // A doubled quote stands for one quote: still in the string.
                    self.push_code(b);
                    self.state = State::Quoted { quote, escapes };
                    (i + 1, false)
                } else {
                    self.state = State::Code;
                    (i, false)
                }
            }
            State::LineComment | State::SkipLine => match memchr(b'\n', &input[i..]) {
                Some(n) => {
                    self.count_lines(&input[i..i + n]);
                    if self.copy_pending && self.state == State::SkipLine {
                        self.lines += 1;
                        self.copy_pending = false;
                        self.state = State::CopyData;
                        (i + n + 1, false)
                    } else {
                        // The newline itself is code: it may end a `DELIMITER` line.
                        self.state = State::Code;
                        (i + n, false)
                    }
                }
                None => {
                    self.count_lines(&input[i..]);
                    (input.len(), false)
                }
            },
            State::BlockComment { star } => {
                if star && b == b'/' {
                    self.state = State::Code;
                    // A comment separates tokens like a space does.
                    self.push_code(b' ');
                    return (i + 1, false);
                }
                if b == b'*' {
                    self.state = State::BlockComment { star: true };
                    return (i + 1, false);
                }
                let rest = &input[i..];
                let n = memchr(b'*', rest).unwrap_or(rest.len());
                self.count_lines(&rest[..n]);
                self.state = State::BlockComment { star: false };
                (i + n.max(1).min(rest.len()), false)
            }
            State::CopyData => self.copy_step(input, i, h),
            State::Dash => {
                if b == b'-' {
                    self.state = State::DashDash;
                    (i + 1, false)
                } else {
                    self.push_code(b'-');
                    self.state = State::Code;
                    (i, false)
                }
            }
            State::DashDash => {
                if b.is_ascii_whitespace() || b.is_ascii_control() {
                    self.state = State::LineComment;
                    (i, false)
                } else {
                    self.push_span(b"--");
                    self.state = State::Code;
                    (i, false)
                }
            }
            State::Slash => {
                if b == b'*' {
                    self.state = State::CommentOpen;
                    (i + 1, false)
                } else {
                    self.push_code(b'/');
                    self.state = State::Code;
                    (i, false)
                }
            }
            State::CommentOpen => match b {
                b'!' => {
                    self.state = State::VersionDigits;
                    (i + 1, false)
                }
                b'M' => {
                    self.state = State::CommentOpenM;
                    (i + 1, false)
                }
                _ => {
                    self.state = State::BlockComment { star: false };
                    (i, false)
                }
            },
            State::CommentOpenM => {
                if b == b'!' {
                    self.state = State::VersionDigits;
                    (i + 1, false)
                } else {
                    self.state = State::BlockComment { star: false };
                    (i, false)
                }
            }
            State::VersionDigits => {
                if b.is_ascii_digit() {
                    (i + 1, false)
                } else {
                    self.versioned = true;
                    self.push_code(b' ');
                    self.state = State::Code;
                    (i, false)
                }
            }
            State::VersionedStar => {
                self.state = State::Code;
                if b == b'/' {
                    self.versioned = false;
                    self.push_code(b' ');
                    (i + 1, false)
                } else {
                    self.push_code(b'*');
                    (i, false)
                }
            }
            State::Code => self.code_step(input, i, h),
        }
    }

    fn code_step(&mut self, input: &[u8], i: usize, h: &mut impl Handler) -> (usize, bool) {
        let b = input[i];
        match b {
            b'\'' | b'"' | b'`' => {
                let escapes = match b {
                    b'`' => false,
                    _ if self.backslash => true,
                    // PostgreSQL's E'...' strings take escapes whatever the setting.
                    b'\'' => self.after_e_prefix(),
                    _ => false,
                };
                self.push_code(b);
                self.state = State::Quoted { quote: b, escapes };
                (i + 1, false)
            }
            b'-' => {
                self.state = State::Dash;
                (i + 1, false)
            }
            b'/' => {
                self.state = State::Slash;
                (i + 1, false)
            }
            b'#' => {
                self.state = State::LineComment;
                (i + 1, false)
            }
            b'*' if self.versioned => {
                self.state = State::VersionedStar;
                (i + 1, false)
            }
            b'\\' if !self.in_row && !self.values && self.stmt.is_empty() => {
                // A psql meta-command (`\restrict KEY`), or MariaDB's sandbox
                // marker once its comment opened: the rest of the line is not SQL.
                self.state = State::SkipLine;
                (i + 1, false)
            }
            b'(' => {
                if self.in_row {
                    self.depth += 1;
                    self.push_code(b);
                    return (i + 1, false);
                }
                let mut pause = false;
                if self.depth == 0
                    && !self.custom_delimiter
                    && !self.values
                    && !self.stmt_overflow
                    && is_values_head(&self.stmt)
                {
                    let stmt = std::mem::take(&mut self.stmt);
                    pause = h.insert_head(stmt.trim_ascii(), self.at(self.stmt_line));
                    self.stmt = stmt;
                    self.stmt.clear();
                    self.values = true;
                }
                if self.values && self.depth == 0 {
                    self.start_row();
                    self.depth = 1;
                    self.push_code(b);
                    return (i + 1, pause);
                }
                self.depth += 1;
                self.push_code(b);
                (i + 1, false)
            }
            b')' => {
                self.depth = self.depth.saturating_sub(1);
                self.push_code(b);
                if self.in_row && self.depth == 0 {
                    let pause = self.emit_row(false, h);
                    return (i + 1, pause);
                }
                (i + 1, false)
            }
            b';' => {
                if starts_with_ci(&self.stmt, b"DELIMITER") {
                    // `DELIMITER ;;` ends at its newline, not at its `;`.
                    self.push_code(b);
                    return (i + 1, false);
                }
                let pause = self.end_statement(h);
                (i + 1, pause)
            }
            b'\n' => {
                self.lines += 1;
                if !self.in_row && starts_with_ci(&self.stmt, b"DELIMITER") {
                    let pause = self.end_statement(h);
                    return (i + 1, pause);
                }
                self.push_code(b);
                (i + 1, false)
            }
            _ => {
                // Plain code: take the run up to the next byte that matters.
                let rest = &input[i..];
                let mut n = 1;
                while n < rest.len()
                    && !matches!(
                        rest[n],
                        b'\'' | b'"' | b'`' | b'-' | b'/' | b'#' | b'*' | b'\\' | b'(' | b')' | b';' | b'\n'
                    )
                {
                    n += 1;
                }
                self.push_span(&rest[..n]);
                (i + n, false)
            }
        }
    }

    /// Inside a `COPY` block: one line is one row; `\.` ends the block.
    fn copy_step(&mut self, input: &[u8], i: usize, h: &mut impl Handler) -> (usize, bool) {
        if !self.in_row {
            self.start_row();
        }
        let rest = &input[i..];
        match memchr(b'\n', rest) {
            None => {
                self.push_span(rest);
                (input.len(), false)
            }
            Some(n) => {
                self.push_span(&rest[..n]);
                self.lines += 1;
                if !self.row_overflow && self.row.last() == Some(&b'\r') {
                    self.row.pop();
                }
                if !self.row_overflow && self.row == b"\\." {
                    self.in_row = false;
                    self.state = State::Code;
                    return (i + n + 1, false);
                }
                let pause = self.emit_row(true, h);
                (i + n + 1, pause)
            }
        }
    }

    /// Whether the string opening now is prefixed by a lone `E` (`E'...'`).
    fn after_e_prefix(&self) -> bool {
        let buf = if self.in_row { &self.row } else { &self.stmt };
        match buf.as_slice() {
            [.., p, e] => e.eq_ignore_ascii_case(&b'e') && !(p.is_ascii_alphanumeric() || *p == b'_'),
            [e] => e.eq_ignore_ascii_case(&b'e'),
            _ => false,
        }
    }

    fn count_lines(&mut self, span: &[u8]) {
        self.lines += memchr::memchr_iter(b'\n', span).count() as u64;
    }

    fn count_byte(&mut self, b: u8) {
        self.lines += u64::from(b == b'\n');
    }
}
