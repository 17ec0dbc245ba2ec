//! The dashboard's two charts, drawn by the server as inline SVG: readable
//! without JavaScript, styled by presentation attributes only (the CSP
//! allows no inline style), each bar carrying a `<title>` with its figure and
//! the figures also written as text beside the bars.
//!
//! Both are 400 units wide and scale with the page (`viewBox`), so that their
//! 13-unit text stays readable at phone width.

use std::fmt::Write;

use super::super::html::{count, esc};

const WIDTH: f64 = 400.0;
const INK: &str = "#1b1f24";
const MUTED: &str = "#57606a";
const STEALER: &str = "#a40e26";
const BREACH: &str = "#0b5cad";
/// Labels longer than this are cut (the table beside the chart has them whole).
const LABEL_CHARS: usize = 44;

/// One bar of [`by_breach`].
pub struct BreachBar {
    pub label: String,
    pub accounts: u64,
    pub stealer_log: bool,
}

/// Horizontal bars, one per breach in the order given: its label above, the
/// bar, the count after it. Stealer logs are drawn in red.
pub fn by_breach(bars: &[BreachBar]) -> String {
    const ROW: f64 = 36.0;
    let max = bars.iter().map(|b| b.accounts).max().unwrap_or(1).max(1) as f64;
    let height = bars.len() as f64 * ROW + 8.0;
    let mut s = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" \
         role=\"img\" aria-labelledby=\"chart-breach-title\"><title id=\"chart-breach-title\">Exposed accounts by \
         breach, stealer logs first (red)</title>"
    );
    for (i, b) in bars.iter().enumerate() {
        let top = 4.0 + i as f64 * ROW;
        let width = ((WIDTH - 64.0) * b.accounts as f64 / max).max(2.0);
        let label = esc(&cut(&b.label));
        let n = count(b.accounts);
        let fill = if b.stealer_log { STEALER } else { BREACH };
        let kind = if b.stealer_log { " (stealer log)" } else { "" };
        let _ = write!(
            s,
            "<g><title>{full}{kind}: {n} accounts</title>\
             <text x=\"0\" y=\"{ty}\" font-size=\"13\" fill=\"{INK}\">{label}</text>\
             <rect x=\"0\" y=\"{by}\" width=\"{width:.1}\" height=\"12\" fill=\"{fill}\"/>\
             <text x=\"{cx:.1}\" y=\"{cy}\" font-size=\"12\" fill=\"{INK}\">{n}</text></g>",
            full = esc(&b.label),
            ty = top + 12.0,
            by = top + 17.0,
            cx = width + 6.0,
            cy = top + 28.0,
        );
    }
    s.push_str("</svg>");
    s
}

/// One year of [`over_time`].
pub struct Year {
    pub year: i32,
    /// Accounts exposed by breaches dated that year...
    pub accounts: u64,
    /// ...of which by stealer logs.
    pub stealer: u64,
    /// Accounts exposed by breaches dated that year or before.
    pub cumulative: u64,
}

/// A column per year (stealer-log accounts in red at its foot), and the
/// running total of exposed accounts as a line over them.
pub fn over_time(years: &[Year]) -> String {
    let (left, right, top, bottom) = (40.0, WIDTH - 8.0, 16.0, 176.0);
    let max = years.iter().map(|y| y.cumulative.max(y.accounts)).max().unwrap_or(1).max(1) as f64;
    let step = (right - left) / years.len().max(1) as f64;
    let y_of = |v: u64| bottom - (bottom - top) * v as f64 / max;
    let mut s = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} 204\" width=\"100%\" \
         role=\"img\" aria-labelledby=\"chart-time-title\"><title id=\"chart-time-title\">Exposed accounts by \
         breach year (columns; stealer logs red) and in total to date (line)</title>\
         <line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"{MUTED}\"/>\
         <text x=\"{lx}\" y=\"{ty}\" font-size=\"12\" text-anchor=\"end\" fill=\"{MUTED}\">{max}</text>\
         <text x=\"{lx}\" y=\"{bottom}\" font-size=\"12\" text-anchor=\"end\" fill=\"{MUTED}\">0</text>",
        lx = left - 4.0,
        ty = top + 4.0,
        max = count(max as u64),
    );
    // About eight year labels, whatever the span.
    let every = years.len().div_ceil(8).max(1);
    let mut line = String::new();
    for (i, y) in years.iter().enumerate() {
        let x = left + i as f64 * step;
        let width = (step * 0.7).max(1.0);
        let _ = write!(
            s,
            "<g><title>{year}: {n} accounts exposed ({st} by stealer logs), {total} in total to date</title>",
            year = y.year,
            n = count(y.accounts),
            st = count(y.stealer),
            total = count(y.cumulative),
        );
        if y.accounts > 0 {
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{ry:.1}\" width=\"{width:.1}\" height=\"{h:.1}\" fill=\"{BREACH}\"/>",
                ry = y_of(y.accounts),
                h = bottom - y_of(y.accounts),
            );
        }
        if y.stealer > 0 {
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{ry:.1}\" width=\"{width:.1}\" height=\"{h:.1}\" fill=\"{STEALER}\"/>",
                ry = y_of(y.stealer),
                h = bottom - y_of(y.stealer),
            );
        }
        s.push_str("</g>");
        if i % every == 0 || i + 1 == years.len() {
            let _ = write!(
                s,
                "<text x=\"{tx:.1}\" y=\"194\" font-size=\"12\" text-anchor=\"middle\" fill=\"{INK}\">{}</text>",
                y.year,
                tx = x + width / 2.0,
            );
        }
        let _ = write!(line, "{:.1},{:.1} ", x + width / 2.0, y_of(y.cumulative));
    }
    let _ = write!(
        s,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{INK}\" stroke-width=\"2\"/></svg>",
        line.trim_end()
    );
    s
}

fn cut(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        label.to_owned()
    } else {
        let mut s: String = label.chars().take(LABEL_CHARS - 1).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_labels_stay_text() {
        let svg = by_breach(&[
            BreachBar { label: "Infostealer <2024>".into(), accounts: 2, stealer_log: true },
            BreachBar { label: "Adobe".into(), accounts: 4, stealer_log: false },
        ]);
        assert!(svg.contains("width=\"168.0\" height=\"12\" fill=\"#a40e26\""), "{svg}");
        assert!(svg.contains("width=\"336.0\" height=\"12\" fill=\"#0b5cad\""), "{svg}");
        assert!(svg.contains("Infostealer &lt;2024&gt;") && !svg.contains("<2024>"));
        assert!(!svg.contains("style="), "the CSP allows no inline style");
        assert_eq!(cut(&"x".repeat(50)).chars().count(), LABEL_CHARS);
    }

    #[test]
    fn years_are_columns_under_a_running_total() {
        let svg = over_time(&[
            Year { year: 2019, accounts: 2, stealer: 0, cumulative: 2 },
            Year { year: 2020, accounts: 0, stealer: 0, cumulative: 2 },
            Year { year: 2021, accounts: 3, stealer: 1, cumulative: 4 },
        ]);
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert!(svg.contains(">2019</text>") && svg.contains(">2021</text>"));
        assert!(svg.contains("2021: 3 accounts exposed (1 by stealer logs), 4 in total to date"));
        // The line ends at the top: the running total is the largest figure.
        assert!(svg.contains(",16.0\" fill=\"none\""), "{svg}");
    }
}
