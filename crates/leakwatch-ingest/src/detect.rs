//! Format detection (`--format auto`): one look at the first line that is
//! neither blank nor too long.

use crate::columns::role_of;
use crate::csv::pick_delimiter;
use crate::Format;

/// The format of an input whose first non-blank line is `line` (without its
/// line ending). `None` (no such line) is a combo list, which has no header.
pub(crate) fn detect_format(line: Option<&[u8]>) -> Format {
    let Some(line) = line.map(<[u8]>::trim_ascii) else {
        return Format::Combo;
    };
    if line.starts_with(b"{") {
        return Format::Ndjson;
    }
    if crate::sql::looks_like_sql(line) {
        return Format::Sql;
    }
    if crate::stealer_block::looks_like_stealer_log(line) {
        return Format::Stealer;
    }
    // A plain split, not a CSV parse: column names are never quoted with the
    // delimiter inside them, and a header is what we are looking for.
    let delimiter = pick_delimiter(line);
    let fields = line.split(|&b| b == delimiter);
    let mut count = 0;
    let mut known = false;
    for field in fields {
        count += 1;
        let field = field.trim_ascii();
        let unquoted = field.strip_prefix(b"\"").and_then(|f| f.strip_suffix(b"\"")).unwrap_or(field);
        known |= role_of(unquoted).is_some();
    }
    if count >= 2 && known {
        Format::Csv
    } else {
        Format::Combo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_decides() {
        let cases: &[(&[u8], Format)] = &[
            (b"{\"email\": \"a@b.co\"}", Format::Ndjson),
            (b"  {broken", Format::Ndjson),
            (b"email,password", Format::Csv),
            (b"\"Email\";\"Pass\";\"Other\"", Format::Csv),
            (b"id\tlogin\tx", Format::Csv),
            (b"id|name", Format::Csv),
            (b"email", Format::Combo),
            (b"alice@example.com:hunter2", Format::Combo),
            (b"alice@example.com;hunter2", Format::Combo),
            (b"email:password", Format::Combo),
            (b"a,b,c", Format::Combo),
            (b"", Format::Combo),
            (b"-- MySQL dump 10.13  Distrib 8.0.36", Format::Sql),
            (b"/*M!999999\\- enable the sandbox mode */ ", Format::Sql),
            (b"--", Format::Sql),
            (b"\\restrict abc", Format::Sql),
            (b"insert into t values (1,'a@b.co')", Format::Sql),
            (b"COPY public.users (id) FROM stdin;", Format::Sql),
            (b"--user@example.com:pw", Format::Combo),
            (b"URL: https://site.com/login", Format::Stealer),
            (b"soft: Chrome", Format::Stealer),
            (b"Host: https://site.com", Format::Stealer),
            // A ULP line: read as a combo, its identity would be the scheme.
            (b"https://site.com:user:pw", Format::Stealer),
            (b"android://aGFzaA==@com.app/:user:pw", Format::Stealer),
            (b"site.com/login:user:pw", Format::Combo),
            (b"https://t.me/freshcombos", Format::Combo),
            (b"Username: bob", Format::Combo),
        ];
        for (line, want) in cases {
            assert_eq!(detect_format(Some(line)), *want, "{}", String::from_utf8_lossy(line));
        }
        assert_eq!(detect_format(None), Format::Combo);
    }
}
