//! The one clock the store reads: dates in the catalog, the key ring and
//! repair notes.

/// Now, as RFC 3339 in seconds with `Z`: the form HIBP's dates take.
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    now.format(&fmt).expect("formats")
}
