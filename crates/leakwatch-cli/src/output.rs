//! Output helpers: a locked, buffered stdout, and thousands separators for people.

use std::io::{BufWriter, StdoutLock, Write};

pub use leakwatch_org::thousands;

pub fn stdout() -> BufWriter<StdoutLock<'static>> {
    BufWriter::with_capacity(1 << 16, std::io::stdout().lock())
}

/// `n` with its noun, singular for exactly one: `1 account`, `1,204 accounts`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// Writes `rows` under `headers` in columns as wide as their widest cell, two
/// spaces apart; columns whose index is in `right` are right-aligned (numbers).
/// The last column is not padded.
pub fn table(
    out: &mut impl Write,
    headers: &[&str],
    rows: &[Vec<String>],
    right: &[usize],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut text = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            let last = i + 1 == row.len();
            if i > 0 {
                text.push_str("  ");
            }
            if right.contains(&i) {
                text.extend(std::iter::repeat_n(' ', pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                if !last {
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        line(out, text.trim_end())?;
    }
    Ok(())
}

/// Writes a line to `out`, for commands that print many.
pub fn line(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(1234567), "1,234,567");
    }

    #[test]
    fn table_columns_are_as_wide_as_their_widest_cell() {
        let rows = vec![
            vec!["ntlm-credential-keys".to_owned(), "1".to_owned(), "x".to_owned()],
            vec!["sha1".to_owned(), "1,234".to_owned(), "y".to_owned()],
        ];
        let mut out = Vec::new();
        super::table(&mut out, &["INDEX", "N", "NOTE"], &rows, &[1]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "INDEX                     N  NOTE\n\
             ntlm-credential-keys      1  x\n\
             sha1                  1,234  y\n"
        );
    }

    #[test]
    fn plural_is_singular_for_one_only() {
        assert_eq!(super::plural(0, "time", "times"), "0 times");
        assert_eq!(super::plural(1, "time", "times"), "1 time");
        assert_eq!(super::plural(1200, "address", "addresses"), "1,200 addresses");
    }
}
