//! Reading values and names out of the pieces the scanner found: the values
//! of an `INSERT` tuple or a `COPY` line, and the tokens of a statement
//! (`CREATE TABLE`, an `INSERT` head, `COPY ... FROM stdin`).
//!
//! Values come back as bytes, unescaped, exactly as the database held them:
//! a dump's text is often mis-declared (`SET NAMES latin1` over UTF-8 bytes),
//! so any decoding is left to the field's consumer.

use std::borrow::Cow;

/// One value of a row: `None` is SQL `NULL`.
pub(crate) type Value<'a> = Option<Cow<'a, [u8]>>;

/// The values of an `INSERT` tuple `( v, v, ... )`; `None` when it is not one.
/// `escapes`: whether `\` escapes in `'...'` and `"..."` strings.
pub(crate) fn tuple_values<'a>(tuple: &'a [u8], escapes: bool, out: &mut Vec<Value<'a>>) -> Option<()> {
    let inner = tuple.strip_prefix(b"(")?.strip_suffix(b")")?;
    let mut lex = Lexer { bytes: inner, pos: 0, escapes };
    loop {
        lex.skip_space();
        out.push(lex.value()?);
        lex.skip_space();
        match lex.next_byte() {
            None => return Some(()),
            Some(b',') => {}
            Some(_) => return None,
        }
    }
}

/// The fields of a `COPY` text line: TAB-separated, `\N` for `NULL`, with
/// PostgreSQL's backslash escapes.
pub(crate) fn copy_values<'a>(line: &'a [u8], out: &mut Vec<Value<'a>>) {
    for field in line.split(|&b| b == b'\t') {
        if field == b"\\N" {
            out.push(None);
        } else if !field.contains(&b'\\') {
            out.push(Some(Cow::Borrowed(field)));
        } else {
            out.push(Some(Cow::Owned(unescape_copy(field))));
        }
    }
}

fn unescape_copy(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        if b != b'\\' || i + 1 == field.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let e = field[i + 1];
        i += 2;
        match e {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                // Up to three octal digits.
                let mut v = u32::from(e - b'0');
                let mut k = 0;
                while k < 2 && i < field.len() && (b'0'..=b'7').contains(&field[i]) {
                    v = v * 8 + u32::from(field[i] - b'0');
                    i += 1;
                    k += 1;
                }
                out.push(v as u8);
            }
            b'x' if i < field.len() && field[i].is_ascii_hexdigit() => {
                let mut v = hex_digit(field[i]);
                i += 1;
                if i < field.len() && field[i].is_ascii_hexdigit() {
                    v = v * 16 + hex_digit(field[i]);
                    i += 1;
                }
                out.push(v);
            }
            other => out.push(other),
        }
    }
    out
}

fn hex_digit(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// Hex digits to bytes (an odd count gets a leading zero, as MySQL reads it);
/// `None` when a byte is not a hex digit.
fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    if !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = Vec::with_capacity(hex.len() / 2 + 1);
    let (first, rest) = if hex.len() % 2 == 1 { (Some(hex[0]), &hex[1..]) } else { (None, hex) };
    if let Some(d) = first {
        out.push(hex_digit(d));
    }
    for pair in rest.chunks_exact(2) {
        out.push(hex_digit(pair[0]) * 16 + hex_digit(pair[1]));
    }
    Some(out)
}

/// A statement token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// A bare word or number.
    Word(&'a [u8]),
    /// A quoted identifier (backticks, or double quotes).
    Quoted(Cow<'a, [u8]>),
    /// A `'...'` string or a hex literal.
    Str(Cow<'a, [u8]>),
    Punct(u8),
}

impl Token<'_> {
    /// The name this token spells, when it is a word or a quoted identifier.
    pub(crate) fn name(&self) -> Option<&[u8]> {
        match self {
            Token::Word(w) => Some(w),
            Token::Quoted(q) => Some(q),
            _ => None,
        }
    }

    pub(crate) fn is_word(&self, word: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(word.as_bytes()))
    }
}

/// The tokens of a statement (comments are gone already: the scanner drops them).
pub(crate) fn tokens(text: &[u8], escapes: bool) -> Vec<Token<'_>> {
    let mut lex = Lexer { bytes: text, pos: 0, escapes };
    let mut out = Vec::new();
    loop {
        lex.skip_space();
        let Some(b) = lex.peek() else { return out };
        match b {
            b'`' | b'"' => {
                lex.pos += 1;
                let Some(s) = lex.quoted(b, b == b'"' && escapes) else { return out };
                out.push(Token::Quoted(s));
            }
            b'\'' => {
                lex.pos += 1;
                let Some(s) = lex.quoted(b'\'', escapes) else { return out };
                out.push(Token::Str(s));
            }
            _ if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80 => {
                let start = lex.pos;
                while lex
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80)
                {
                    lex.pos += 1;
                }
                out.push(Token::Word(&text[start..lex.pos]));
            }
            _ => {
                lex.pos += 1;
                out.push(Token::Punct(b));
            }
        }
    }
}

struct Lexer<'a> {
    bytes: &'a [u8],
    pos: usize,
    escapes: bool,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next_byte(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// One value of a tuple, up to (not including) the `,` or the end.
    fn value(&mut self) -> Option<Value<'a>> {
        let b = self.peek()?;
        match b {
            b'\'' | b'"' => {
                self.pos += 1;
                let escapes = self.escapes;
                self.quoted(b, escapes).map(Some)
            }
            _ => {
                // A bare value: a number, NULL, a hex literal, or a string
                // with a prefix (`_binary'..'`, `X'..'`, `E'..'`, `N'..'`).
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'+' | b'-'))
                {
                    self.pos += 1;
                }
                let word = &self.bytes[start..self.pos];
                let space_start = self.pos;
                self.skip_space();
                if self.peek() == Some(b'\'') {
                    self.pos += 1;
                    if word.eq_ignore_ascii_case(b"x") {
                        let s = self.quoted(b'\'', false)?;
                        return decode_hex(&s).map(|v| Some(Cow::Owned(v)));
                    }
                    if word.eq_ignore_ascii_case(b"e") {
                        return self.quoted(b'\'', true).map(Some);
                    }
                    if word.starts_with(b"_")
                        || word.eq_ignore_ascii_case(b"n")
                        || word.eq_ignore_ascii_case(b"b")
                    {
                        let escapes = self.escapes;
                        return self.quoted(b'\'', escapes).map(Some);
                    }
                    return None;
                }
                self.pos = space_start;
                if word.is_empty() {
                    return None;
                }
                if word.eq_ignore_ascii_case(b"null") {
                    return Some(None);
                }
                if word.len() > 2 && (word.starts_with(b"0x") || word.starts_with(b"0X")) {
                    if let Some(v) = decode_hex(&word[2..]) {
                        return Some(Some(Cow::Owned(v)));
                    }
                }
                Some(Some(Cow::Borrowed(word)))
            }
        }
    }

    /// The rest of a string opened by `quote` (already consumed), unescaped.
    fn quoted(&mut self, quote: u8, escapes: bool) -> Option<Cow<'a, [u8]>> {
        let start = self.pos;
        // Fast path: no escape and no doubled quote.
        let mut i = start;
        while i < self.bytes.len() {
            let b = self.bytes[i];
            if b == quote {
                if self.bytes.get(i + 1) == Some(&quote) {
                    break;
                }
                self.pos = i + 1;
                return Some(Cow::Borrowed(&self.bytes[start..i]));
            }
            if b == b'\\' && escapes {
                break;
            }
            i += 1;
        }
        let mut out = self.bytes[start..i].to_vec();
        while i < self.bytes.len() {
            let b = self.bytes[i];
            if b == quote {
                if self.bytes.get(i + 1) == Some(&quote) {
                    out.push(quote);
                    i += 2;
                    continue;
                }
                self.pos = i + 1;
                return Some(Cow::Owned(out));
            }
            if b == b'\\' && escapes && i + 1 < self.bytes.len() {
                let e = self.bytes[i + 1];
                match e {
                    b'0' => out.push(0),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(0x08),
                    b'Z' => out.push(0x1a),
                    // MySQL keeps the backslash of `\%` and `\_` (they are
                    // LIKE escapes, meaningful only in patterns).
                    b'%' | b'_' => out.extend_from_slice(&[b'\\', e]),
                    other => out.push(other),
                }
                i += 2;
                continue;
            }
            out.push(b);
            i += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Owned = Option<Vec<Option<Vec<u8>>>>;

    fn values(tuple: &str, escapes: bool) -> Owned {
        let mut out = Vec::new();
        tuple_values(tuple.as_bytes(), escapes, &mut out)?;
        Some(out.into_iter().map(|v| v.map(Cow::into_owned)).collect())
    }

    fn s(v: &str) -> Option<Vec<u8>> {
        Some(v.as_bytes().to_vec())
    }

    #[test]
    fn mysql_values() {
        let cases: &[(&str, bool, Owned)] = &[
            ("(1,'a',NULL)", true, Some(vec![s("1"), s("a"), None])),
            ("( 1 , 'a' ,\tnull )", true, Some(vec![s("1"), s("a"), None])),
            (
                r"('it\'s','a\\b','\0\n\r\t\b\Z','\%\_\q')",
                true,
                Some(vec![s("it's"), s("a\\b"), Some(b"\0\n\r\t\x08\x1a".to_vec()), s("\\%\\_q")]),
            ),
            ("('it''s',\"dq\"\"x\")", true, Some(vec![s("it's"), s("dq\"x")])),
            (r"('a\b')", false, Some(vec![s(r"a\b")])),
            ("(X'616263',0x616263,x'')", true, Some(vec![s("abc"), s("abc"), s("")])),
            (
                "(_binary 'a:1',_utf8mb4'x',N'y',E'q\\'r')",
                false,
                Some(vec![s("a:1"), s("x"), s("y"), s("q'r")]),
            ),
            ("(-1.5e+3,'')", true, Some(vec![s("-1.5e+3"), s("")])),
            ("(1,'a'", true, None),
            ("(1,'a)", true, None),
            ("(1 2)", true, None),
            ("(,)", true, None),
            ("(X'6g')", true, None),
        ];
        for (tuple, escapes, want) in cases {
            assert_eq!(&values(tuple, *escapes), want, "{tuple}");
        }
    }

    #[test]
    fn copy_lines() {
        let mut out = Vec::new();
        copy_values(b"1\t\\N\ta\\tb\\\\c\\101\\x41\t", &mut out);
        let got: Vec<_> = out.into_iter().map(|v| v.map(Cow::into_owned)).collect();
        assert_eq!(got, vec![s("1"), None, s("a\tb\\cAA"), s("")]);
    }

    #[test]
    fn statement_tokens() {
        let t = tokens(b"CREATE TABLE `db`.\"t\" (id int, 'x')", true);
        assert_eq!(t[0], Token::Word(b"CREATE"));
        assert_eq!(t[2], Token::Quoted(Cow::Borrowed(b"db")));
        assert_eq!(t[3], Token::Punct(b'.'));
        assert_eq!(t[4].name(), Some(&b"t"[..]));
        assert_eq!(t.last(), Some(&Token::Punct(b')')));
        assert!(t.contains(&Token::Str(Cow::Borrowed(b"x"))));
    }
}
