//! HTML by hand, with one rule: every value that did not come from this
//! module's own literals goes through [`esc`] (text and attribute values
//! alike), so nothing a user, a key's name or a breach's curator wrote can
//! become markup.

use std::fmt::Write;

pub use leakwatch_org::{html_escape as esc, thousands as count};

/// Percent-encodes a path segment (a breach name in a link).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Who the page is shown to, for the header: the key's name and the session's
/// CSRF token (for the sign-out form).
pub struct Viewer<'a> {
    pub name: &'a str,
    pub csrf: &'a str,
}

/// A whole page around `body` (already HTML).
pub fn page(title: &str, viewer: Option<&Viewer>, body: &str) -> String {
    let account = match viewer {
        Some(v) => format!(
            r#"<form class="signout" method="post" action="/ui/signout"><input type="hidden" name="csrf" value="{}"><span class="who">{}</span> <button type="submit">Sign out</button></form>"#,
            esc(v.csrf),
            esc(v.name)
        ),
        None => r#"<a href="/ui/signin">Sign in</a>"#.to_owned(),
    };
    let signed_in = if viewer.is_some() { r#" <a href="/ui/ingests">Ingests</a>"# } else { "" };
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · leakwatch</title>
<link rel="stylesheet" href="/ui/assets/app.css">
<link rel="icon" href="/ui/assets/icon.svg" type="image/svg+xml">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><nav aria-label="Main"><a class="brand" href="/">leakwatch</a> <a href="/ui/search">Search</a> <a href="/ui/domain">Domain</a> <a href="/ui/breaches">Breaches</a> <a href="/ui/orgs">Organizations</a>{signed_in} {account}</nav></header>
<main id="main">
{body}
</main>
</body>
</html>
"##,
        title = esc(title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_stays_text() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(path_segment("Adobe 2013/x?"), "Adobe%202013%2Fx%3F");
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(100), "100");
        let html = page("<t>", Some(&Viewer { name: "<b>", csrf: "\"x" }), "");
        assert!(
            html.contains("&lt;t&gt; · leakwatch") && html.contains("&lt;b&gt;") && html.contains("&quot;x")
        );
        assert!(!html.contains("<b>") && !html.contains("<t>"));
    }
}
