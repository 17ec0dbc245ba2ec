//! The breach catalog's charts, drawn by the server as inline SVG: breaches
//! and accounts over time (by breach date, per year or per month) and the data
//! classes exposed. Readable without JavaScript; each chart is an image with a
//! title and a description saying what it shows, each bar has its own title
//! (the browser's tooltip), and a table below gives the same figures.
//!
//! Colours are presentation attributes and the sizes are the SVG's own, so
//! nothing needs a `style` attribute, which the page's CSP forbids.

use std::collections::BTreeMap;
use std::fmt::Write;

use leakwatch_store::Breach;

use super::html::{count, esc};

/// The periods of the time charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Year,
    Month,
}

impl Per {
    pub fn parse(s: Option<&str>) -> Per {
        if s == Some("month") {
            Per::Month
        } else {
            Per::Year
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Per::Year => "year",
            Per::Month => "month",
        }
    }
}

/// The most months a monthly chart spans; a longer catalog is drawn per year.
const MAX_MONTHS: u32 = 600;
/// Data classes drawn; the table below the chart lists them all.
const TOP_CLASSES: usize = 15;

const BAR: &str = "#0b5cad";
const BAR_ACCOUNTS: &str = "#8a4baf";
const AXIS: &str = "#57606a";
const GRID: &str = "#d0d7de";

/// A breach date's year and month, when it is a date of this era.
fn year_month(date: &str) -> Option<(u32, u32)> {
    let year: u32 = date.get(..4)?.parse().ok()?;
    let month: u32 = date.get(5..7)?.parse().ok()?;
    ((1900..=2100).contains(&year) && (1..=12).contains(&month)).then_some((year, month))
}

/// Breaches and accounts per period, every period from the first to the last
/// (a gap in time shows as one), and the breaches without a usable date.
struct Timeline {
    per: Per,
    /// (label, breaches, accounts)
    periods: Vec<(String, u64, u64)>,
    undated: u64,
}

fn timeline(breaches: &[&Breach], per: Per) -> Timeline {
    let mut by: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    let mut undated = 0;
    for b in breaches {
        match year_month(&b.breach_date) {
            Some((y, m)) => {
                let slot = by.entry(y * 12 + (m - 1)).or_default();
                slot.0 += 1;
                slot.1 += b.pwn_count;
            }
            None => undated += 1,
        }
    }
    let (Some(&first), Some(&last)) = (by.keys().next(), by.keys().next_back()) else {
        return Timeline { per, periods: Vec::new(), undated };
    };
    let per = if per == Per::Month && last - first >= MAX_MONTHS { Per::Year } else { per };
    let periods = match per {
        Per::Month => (first..=last)
            .map(|m| {
                let (n, accounts) = by.get(&m).copied().unwrap_or_default();
                (format!("{}-{:02}", m / 12, m % 12 + 1), n, accounts)
            })
            .collect(),
        Per::Year => (first / 12..=last / 12)
            .map(|y| {
                let (n, accounts) =
                    by.range(y * 12..y * 12 + 12).fold((0, 0), |(n, a), (_, &(bn, ba))| (n + bn, a + ba));
                (y.to_string(), n, accounts)
            })
            .collect(),
    };
    Timeline { per, periods, undated }
}

/// The smallest 1, 2 or 5 times a power of ten at or above `n` (at least 1):
/// the top of a chart's scale.
fn nice_ceiling(n: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            if let Some(top) = step.checked_mul(m) {
                if top >= n {
                    return top;
                }
            }
        }
        match step.checked_mul(10) {
            Some(next) => step = next,
            None => return u64::MAX,
        }
    }
}

/// `1234567` as `1.2M`: an axis label.
fn compact(n: u64) -> String {
    let (value, unit) = match n {
        0..1_000 => return n.to_string(),
        1_000..1_000_000 => (n as f64 / 1e3, "k"),
        1_000_000..1_000_000_000 => (n as f64 / 1e6, "M"),
        _ => (n as f64 / 1e9, "G"),
    };
    if value < 10.0 && value.fract() >= 0.05 {
        format!("{value:.1}{unit}")
    } else {
        format!("{value:.0}{unit}")
    }
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// A vertical bar chart of `values` over `periods`, with its title and
/// description; `what` names one and many of what is counted.
fn column_chart(
    id: &str,
    title: &str,
    t: &Timeline,
    values: &[u64],
    what: (&str, &str),
    fill: &str,
) -> String {
    let (left, right, top, bottom, plot_h) = (48u32, 8u32, 12u32, 24u32, 120u32);
    let slot = match t.per {
        Per::Year => 30u32,
        Per::Month => 7u32,
    };
    let n = values.len() as u32;
    let width = (left + right + slot * n).max(320);
    let height = top + plot_h + bottom;
    let max = values.iter().copied().max().unwrap_or(0);
    let scale = nice_ceiling(max);
    let total: u64 = values.iter().sum();
    let (peak_at, _) =
        values.iter().enumerate().max_by_key(|&(i, v)| (*v, std::cmp::Reverse(i))).unwrap_or((0, &0));
    let first = t.periods.first().map_or("", |p| p.0.as_str());
    let last = t.periods.last().map_or("", |p| p.0.as_str());
    let desc = format!(
        "{} {} from {first} to {last}, per {}; the most in {} ({} {}).",
        count(total),
        plural(total, what.0, what.1),
        t.per.name(),
        t.periods.get(peak_at).map_or("", |p| p.0.as_str()),
        count(max),
        plural(max, what.0, what.1),
    );
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-labelledby="{id}-t {id}-d" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" font-size="11"><title id="{id}-t">{title}</title><desc id="{id}-d">{desc}</desc>"#,
        title = esc(title),
        desc = esc(&desc),
    );
    // The scale: zero, half (when a whole number) and the top, with their figures.
    for (fraction, value) in [(0u32, 0u64), (1, scale / 2), (2, scale)] {
        if fraction == 1 && !scale.is_multiple_of(2) {
            continue;
        }
        let y = top + plot_h - plot_h * fraction / 2;
        let _ = write!(
            svg,
            r#"<line x1="{left}" y1="{y}" x2="{x2}" y2="{y}" stroke="{GRID}" stroke-width="1"/><text x="{tx}" y="{ty}" text-anchor="end" fill="{AXIS}">{label}</text>"#,
            x2 = width - right,
            tx = left - 4,
            ty = y + 4,
            label = compact(value),
        );
    }
    let labels = label_every(t);
    for (i, ((label, _, _), &v)) in t.periods.iter().zip(values).enumerate() {
        let x = left + slot * i as u32;
        let h = if scale == 0 { 0 } else { ((v as f64 / scale as f64) * plot_h as f64).round() as u32 };
        let h = if v > 0 { h.max(1) } else { 0 };
        if h > 0 {
            let _ = write!(
                svg,
                r#"<rect x="{bx}" y="{y}" width="{w}" height="{h}" fill="{fill}"><title>{label}: {n} {what}</title></rect>"#,
                bx = x + 1,
                y = top + plot_h - h,
                w = slot - 2,
                n = count(v),
                what = plural(v, what.0, what.1),
            );
        }
        if let Some(text) = labels(i, label) {
            let _ = write!(
                svg,
                r#"<text x="{tx}" y="{ty}" text-anchor="{anchor}" fill="{AXIS}">{text}</text>"#,
                tx = if t.per == Per::Year { x + slot / 2 } else { x },
                ty = top + plot_h + 16,
                anchor = if t.per == Per::Year { "middle" } else { "start" },
            );
        }
    }
    svg.push_str("</svg>");
    format!(
        r#"<figure class="chart"><div class="chart-scroll" tabindex="0" role="group" aria-label="{title}">{svg}</div><figcaption>{caption}</figcaption></figure>
"#,
        title = esc(title),
        caption = esc(&desc),
    )
}

/// Which periods get a label under the axis: every year when they are few,
/// else every fifth; each January of a monthly chart (every fifth year's when
/// it is long).
fn label_every(t: &Timeline) -> impl Fn(usize, &str) -> Option<String> {
    let n = t.periods.len();
    let per = t.per;
    move |i, label| {
        let year: u32 = label.get(..4)?.parse().ok()?;
        match per {
            Per::Year if n <= 24 || year.is_multiple_of(5) => Some(label.to_owned()),
            Per::Month if label.ends_with("-01") && (n <= 240 || year.is_multiple_of(5)) => {
                Some(year.to_string())
            }
            Per::Month if i == 0 && n <= 24 => Some(label.to_owned()),
            _ => None,
        }
    }
}

/// The two time charts, a link to the other period, and the table.
fn time_section(breaches: &[&Breach], per: Per, link: &dyn Fn(&str) -> String) -> String {
    let t = timeline(breaches, per);
    let mut out = String::new();
    let other = match t.per {
        Per::Year => ("month", "Per month"),
        Per::Month => ("year", "Per year"),
    };
    let _ = write!(
        out,
        r#"<h3 id="chart-time">Over time, by breach date</h3>
<p><a href="{href}#chart-time">{text}</a></p>
"#,
        href = link(other.0),
        text = other.1,
    );
    if t.periods.is_empty() {
        out.push_str("<p>No breach shown has a breach date to draw.</p>\n");
        return out;
    }
    let per = t.per.name();
    let breaches_n: Vec<u64> = t.periods.iter().map(|p| p.1).collect();
    let accounts: Vec<u64> = t.periods.iter().map(|p| p.2).collect();
    out.push_str(&column_chart(
        "chart-breaches",
        &format!("Breaches per {per}"),
        &t,
        &breaches_n,
        ("breach", "breaches"),
        BAR,
    ));
    out.push_str(&column_chart(
        "chart-accounts",
        &format!("Accounts per {per}"),
        &t,
        &accounts,
        ("account", "accounts"),
        BAR_ACCOUNTS,
    ));
    if t.undated > 0 {
        let _ = writeln!(
            out,
            "<p>{} {} without a usable breach date {} not drawn.</p>",
            count(t.undated),
            plural(t.undated, "breach", "breaches"),
            plural(t.undated, "is", "are"),
        );
    }
    let mut rows = String::new();
    for (label, n, accounts) in t.periods.iter().filter(|p| p.1 > 0) {
        let _ = writeln!(
            rows,
            r#"<tr><th scope="row">{label}</th><td class="num">{n}</td><td class="num">{accounts}</td></tr>"#,
            n = count(*n),
            accounts = count(*accounts),
        );
    }
    let _ = write!(
        out,
        r#"<details><summary>Breaches and accounts per {per}, as a table</summary>
<div class="table-wrap"><table>
<thead><tr><th scope="col">{Per}</th><th scope="col" class="num">Breaches</th><th scope="col" class="num">Accounts</th></tr></thead>
<tbody>
{rows}</tbody>
</table></div></details>
"#,
        Per = if t.per == Per::Year { "Year" } else { "Month" },
    );
    out
}

/// Each data class with the breaches that expose it and their accounts, the
/// most exposed first.
fn classes<'a>(breaches: &[&'a Breach]) -> Vec<(&'a str, u64, u64)> {
    let mut by: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for b in breaches {
        for c in &b.data_classes {
            let slot = by.entry(c.as_str()).or_default();
            slot.0 += 1;
            slot.1 += b.pwn_count;
        }
    }
    let mut all: Vec<(&str, u64, u64)> = by.into_iter().map(|(c, (n, a))| (c, n, a)).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(b.0)));
    all
}

/// A class name cut to fit the chart's label column; the bar's title has it whole.
fn short(name: &str) -> String {
    const MAX: usize = 20;
    if name.chars().count() <= MAX {
        name.to_owned()
    } else {
        format!("{}…", name.chars().take(MAX - 1).collect::<String>())
    }
}

/// The data-class chart (bars by breaches or by accounts), its switch, and the
/// table of every class.
fn class_section(breaches: &[&Breach], by_accounts: bool, link: &dyn Fn(&str) -> String) -> String {
    let all = classes(breaches);
    let mut out = String::new();
    let other = if by_accounts { ("breaches", "By breaches") } else { ("accounts", "By accounts") };
    let _ = write!(
        out,
        r#"<h3 id="chart-classes">Data classes exposed</h3>
<p><a href="{href}#chart-classes">{text}</a></p>
"#,
        href = link(other.0),
        text = other.1,
    );
    if all.is_empty() {
        out.push_str("<p>No breach shown lists its data classes.</p>\n");
        return out;
    }
    let mut drawn: Vec<(&str, u64, u64)> = all.clone();
    if by_accounts {
        drawn.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)).then(a.0.cmp(b.0)));
    }
    drawn.truncate(TOP_CLASSES);
    let value = |c: &(&str, u64, u64)| if by_accounts { c.2 } else { c.1 };
    let (label_w, bar_w, value_w, row_h, top) = (128u32, 136u32, 56u32, 22u32, 4u32);
    let width = label_w + bar_w + value_w;
    let height = top * 2 + row_h * drawn.len() as u32;
    let max = drawn.iter().map(value).max().unwrap_or(0).max(1);
    let what = if by_accounts { ("account", "accounts") } else { ("breach", "breaches") };
    let title = if by_accounts { "Data classes by accounts exposed" } else { "Data classes by breaches" };
    let desc = format!(
        "The {} data class{} of the breaches shown, by the {}: the most is {} ({} {}).",
        drawn.len(),
        plural(drawn.len() as u64, "", "es"),
        if by_accounts { "accounts of the breaches exposing each" } else { "breaches exposing each" },
        drawn[0].0,
        count(value(&drawn[0])),
        plural(value(&drawn[0]), what.0, what.1),
    );
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-labelledby="chart-classes-t chart-classes-d" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" font-size="12"><title id="chart-classes-t">{title}</title><desc id="chart-classes-d">{desc}</desc>"#,
        desc = esc(&desc),
    );
    let fill = if by_accounts { BAR_ACCOUNTS } else { BAR };
    for (i, c) in drawn.iter().enumerate() {
        let y = top + row_h * i as u32;
        let v = value(c);
        let w = (((v as f64) / (max as f64)) * bar_w as f64).round().max(1.0) as u32;
        let _ = write!(
            svg,
            r#"<text x="{lx}" y="{ty}" text-anchor="end" fill="{AXIS}">{label}</text><rect x="{label_w}" y="{ry}" width="{w}" height="{rh}" fill="{fill}"><title>{name}: {breaches} {b}, {accounts} {a}</title></rect><text x="{vx}" y="{ty}" fill="{AXIS}">{shown}</text>"#,
            lx = label_w - 6,
            ty = y + 15,
            label = esc(&short(c.0)),
            ry = y + 4,
            rh = row_h - 8,
            name = esc(c.0),
            breaches = count(c.1),
            b = plural(c.1, "breach", "breaches"),
            accounts = count(c.2),
            a = plural(c.2, "account", "accounts"),
            vx = label_w + w + 4,
            shown = compact(v),
        );
    }
    svg.push_str("</svg>");
    let _ = writeln!(
        out,
        r#"<figure class="chart"><div class="chart-scroll" tabindex="0" role="group" aria-label="{title}">{svg}</div><figcaption>{caption}</figcaption></figure>"#,
        caption = esc(&desc),
    );
    let mut rows = String::new();
    for (name, n, accounts) in &all {
        let _ = writeln!(
            rows,
            r#"<tr><th scope="row"><a href="/ui/breaches?q={q}">{name}</a></th><td class="num">{n}</td><td class="num">{accounts}</td></tr>"#,
            q = form_urlencoded::byte_serialize(name.to_lowercase().as_bytes()).collect::<String>(),
            name = esc(name),
            n = count(*n),
            accounts = count(*accounts),
        );
    }
    let _ = write!(
        out,
        r#"<details><summary>All {n} data classes, as a table</summary>
<div class="table-wrap"><table>
<thead><tr><th scope="col">Data class</th><th scope="col" class="num">Breaches</th><th scope="col" class="num">Accounts</th></tr></thead>
<tbody>
{rows}</tbody>
</table></div></details>
"#,
        n = all.len(),
    );
    out
}

/// The catalog's charts over `breaches` (those the catalog page shows).
/// `query` is the page's own query without the chart parameters, so that
/// the links switching a chart keep the sort and the filter.
pub fn catalog_charts(breaches: &[&Breach], per: Per, by_accounts: bool, query: &str) -> String {
    let per_name = per.name();
    let classes_name = if by_accounts { "accounts" } else { "breaches" };
    let time_link = |p: &str| esc(&format!("/ui/breaches?{query}&per={p}&classes={classes_name}"));
    let class_link = |c: &str| esc(&format!("/ui/breaches?{query}&per={per_name}&classes={c}"));
    format!(
        "<section class=\"charts\" aria-labelledby=\"charts\">\n<h2 id=\"charts\">Charts</h2>\n{}{}</section>\n",
        time_section(breaches, per, &time_link),
        class_section(breaches, by_accounts, &class_link),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breach(name: &str, date: &str, accounts: u64, classes: &[&str]) -> Breach {
        Breach {
            id: 1,
            name: name.into(),
            title: name.into(),
            domain: String::new(),
            breach_date: date.into(),
            added_date: "2024-01-01T00:00:00Z".into(),
            modified_date: "2024-01-01T00:00:00Z".into(),
            pwn_count: accounts,
            description: String::new(),
            data_classes: classes.iter().map(|c| c.to_string()).collect(),
            is_verified: true,
            is_fabricated: false,
            is_sensitive: false,
            is_retired: false,
            is_spam_list: false,
            is_malware: false,
            is_stealer_log: false,
        }
    }

    #[test]
    fn periods_run_from_the_first_to_the_last_with_gaps_as_zero() {
        let all = [
            breach("A", "2019-03-02", 10, &[]),
            breach("B", "2021-03-09", 5, &[]),
            breach("C", "2021-12-31", 1, &[]),
            breach("D", "unknown", 7, &[]),
        ];
        let refs: Vec<&Breach> = all.iter().collect();
        let t = timeline(&refs, Per::Year);
        assert_eq!(
            t.periods,
            [("2019".to_owned(), 1, 10), ("2020".to_owned(), 0, 0), ("2021".to_owned(), 2, 6)]
        );
        assert_eq!(t.undated, 1);
        let t = timeline(&refs, Per::Month);
        assert_eq!(t.periods.len(), 34, "2019-03 to 2021-12");
        assert_eq!(t.periods[0], ("2019-03".to_owned(), 1, 10));
        assert_eq!(t.periods[24], ("2021-03".to_owned(), 1, 5));
        assert_eq!(t.periods[33], ("2021-12".to_owned(), 1, 1));
        // Centuries per month would be thousands of bars: drawn per year.
        let long = [breach("A", "1950-01-01", 1, &[]), breach("B", "2020-01-01", 1, &[])];
        let refs: Vec<&Breach> = long.iter().collect();
        assert_eq!(timeline(&refs, Per::Month).per, Per::Year);
    }

    #[test]
    fn scales_and_labels() {
        assert_eq!([0, 1, 3, 10, 11, 250, 999_999].map(nice_ceiling), [1, 1, 5, 10, 20, 500, 1_000_000]);
        assert_eq!(
            [7, 999, 1_000, 1_250, 15_400, 2_345_678, 3_000_000_000].map(compact),
            ["7", "999", "1k", "1.2k", "15k", "2.3M", "3G"]
        );
        assert_eq!(short("Email addresses"), "Email addresses");
        assert_eq!(short("Social media profiles and more"), "Social media profil…");
    }

    #[test]
    fn the_charts_say_what_they_show_and_escape_names() {
        let all = [
            breach("A", "2019-03-02", 10, &["Passwords", "Email addresses"]),
            breach("B", "2021-03-09", 5, &["Email addresses", "<b>"]),
        ];
        let refs: Vec<&Breach> = all.iter().collect();
        let html = catalog_charts(&refs, Per::Year, false, "sort=title&order=asc&q=");
        assert!(html.contains("<title id=\"chart-breaches-t\">Breaches per year</title>"), "{html}");
        assert!(
            html.contains("2 breaches from 2019 to 2021, per year; the most in 2019 (1 breach)."),
            "{html}"
        );
        assert!(html.contains("15 accounts from 2019 to 2021, per year; the most in 2019 (10 accounts)."));
        assert!(html.contains("<title>2021: 5 accounts</title>"), "{html}");
        assert!(html.contains("<title>Email addresses: 2 breaches, 15 accounts</title>"), "{html}");
        assert!(html.contains("&lt;b&gt;") && !html.contains("<b>"), "{html}");
        assert!(html.contains("href=\"/ui/breaches?sort=title&amp;order=asc&amp;q=&amp;per=month&amp;classes=breaches#chart-time\""));
        assert!(!html.contains("style="), "the CSP forbids style attributes");
        let html = catalog_charts(&refs, Per::Month, true, "");
        assert!(html.contains("Accounts per month") && html.contains("Data classes by accounts exposed"));
        assert!(html.contains("<th scope=\"row\">2021-03</th>"), "{html}");
        assert!(catalog_charts(&[], Per::Year, false, "").contains("No breach shown has a breach date"));
    }
}
