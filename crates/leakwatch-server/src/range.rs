//! `GET /range/{prefix}`: Pwned Passwords' k-anonymity range, byte for byte as
//! HIBP answers it, and the server's hot path.
//!
//! Every valid prefix answers 200 (possibly with an empty body); `?mode=ntlm`
//! reads the NTLM corpus; `Add-Padding: true` mixes random `SUFFIX:0` lines in.
//! The body comes from the range index's cache of formatted bodies (padded ones,
//! different every time, are formatted into a per-thread buffer). The ETag is
//! the corpus and the digest of the unpadded body, so it changes only when the
//! range does: a mirror's incremental sync gets a 304 for every range an ingest
//! left alone, and a cached revalidation costs no formatting at all.

use std::cell::RefCell;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use leakwatch_segment::MAX_KEY_LEN;
use leakwatch_store::RangeKind;
use rand::Rng;

use crate::error::AppError;
use crate::state::AppState;

/// A range is immutable until the next ingest; HIBP lets caches keep it 31 days.
const CACHE_CONTROL: HeaderValue = HeaderValue::from_static("public, max-age=2678400");
const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain");
const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");

/// Padding fills a response to at least this many lines (HIBP's documented
/// floor), so that small ranges do not stand out by size...
const PAD_TO: usize = 800;
/// ...and then adds a random number of lines in this range on top, so that no
/// two answers for one prefix have the same size.
const PAD_EXTRA: std::ops::RangeInclusive<usize> = 10..=209;

thread_local! {
    /// The body being formatted; reused so that a range costs no allocation
    /// beyond the response's own copy.
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(64 * 1024));
}

/// `GET /range/{prefix}[?mode=ntlm|sha1]`.
pub async fn range(State(state): State<AppState>, request: Request) -> Response {
    match answer(&state, &request) {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

fn answer(state: &AppState, request: &Request) -> Result<Response, AppError> {
    let path = request.uri().path();
    let prefix = parse_prefix(path.rsplit('/').next().unwrap_or(""))
        .ok_or(AppError::BadRange("The hash prefix was not in a valid format"))?;
    let kind = parse_mode(request.uri().query())?;
    let padded =
        request.headers().get("add-padding").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));

    let snapshot = state.snapshot();
    let real = snapshot.ranges.body(kind, prefix)?;
    let tag = etag(kind, real.digest);
    let mut headers = HeaderMap::with_capacity(6);
    headers.insert(header::CACHE_CONTROL, CACHE_CONTROL);
    headers.insert(header::LAST_MODIFIED, snapshot.last_modified.clone());
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
    if matches_etag(request.headers(), &tag) {
        headers.insert(header::ETAG, HeaderValue::from_str(&tag).expect("an ETag is ASCII"));
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    // A padded body differs byte for byte on every request, so its tag is weak:
    // it still revalidates against the unpadded one, and means the same data.
    let tag = if padded { format!("W/{tag}") } else { tag };
    headers.insert(header::ETAG, HeaderValue::from_str(&tag).expect("an ETag is ASCII"));
    headers.insert(header::CONTENT_TYPE, TEXT_PLAIN);

    let body = if padded {
        BUFFER.with_borrow_mut(|buf| -> Result<Bytes, AppError> {
            let mut rng = rand::rng();
            let lines =
                real.bytes.iter().filter(|&&b| b == b'\n').count() + usize::from(!real.bytes.is_empty());
            let count = PAD_TO.saturating_sub(lines) + rng.random_range(PAD_EXTRA);
            let mut padding = vec![[0u8; MAX_KEY_LEN]; count];
            for key in &mut padding {
                rng.fill(&mut key[..kind.key_len()]);
            }
            buf.clear();
            snapshot.ranges.write_range(kind, prefix, &mut padding, buf)?;
            let body = Bytes::copy_from_slice(buf);
            if buf.capacity() > 4 << 20 {
                // One huge range should not pin megabytes per thread for good.
                *buf = Vec::with_capacity(64 * 1024);
            }
            Ok(body)
        })?
    } else {
        // Shared with the cache: no copy.
        Bytes::from_owner(real.bytes)
    };
    let mut response = Response::new(Body::from(body));
    *response.headers_mut() = headers;
    Ok(response)
}

/// `OPTIONS /range/{prefix}`: the CORS preflight a browser sends before a
/// request with `Add-Padding`, which is not a header browsers send freely.
pub async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN),
            (header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, OPTIONS")),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Add-Padding")),
            (header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400")),
        ],
    )
        .into_response()
}

/// Five hex digits, in either case, as a 20-bit number.
fn parse_prefix(text: &str) -> Option<u32> {
    if text.len() != 5 {
        return None;
    }
    text.bytes().try_fold(0u32, |acc, b| Some(acc << 4 | (b as char).to_digit(16)?))
}

/// `mode=sha1` (the default) or `mode=ntlm`, name and value in any case.
fn parse_mode(query: Option<&str>) -> Result<RangeKind, AppError> {
    let Some(query) = query else { return Ok(RangeKind::Sha1) };
    let mut kind = RangeKind::Sha1;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name.eq_ignore_ascii_case("mode") {
            kind = if value.eq_ignore_ascii_case("ntlm") {
                RangeKind::Ntlm
            } else if value.eq_ignore_ascii_case("sha1") || value.is_empty() {
                RangeKind::Sha1
            } else {
                return Err(AppError::BadRange("The mode was not valid: use sha1 or ntlm"));
            };
        }
    }
    Ok(kind)
}

/// The strong ETag of a range: its corpus and the digest of its body, so it
/// changes exactly when the range's bytes do, whatever else an ingest touched.
fn etag(kind: RangeKind, digest: u128) -> String {
    let corpus = match kind {
        RangeKind::Sha1 => 's',
        RangeKind::Ntlm => 'n',
    };
    format!("\"{corpus}{digest:032x}\"")
}

/// Whether `If-None-Match` names this tag (weak comparison, as RFC 9110 asks
/// for `If-None-Match`) or is `*`.
fn matches_etag(headers: &HeaderMap, tag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',')
            .map(str::trim)
            .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == tag)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_five_hex_digits_in_any_case() {
        assert_eq!(parse_prefix("5BAA6"), Some(0x5BAA6));
        assert_eq!(parse_prefix("5baa6"), Some(0x5BAA6));
        assert_eq!(parse_prefix("00000"), Some(0));
        assert_eq!(parse_prefix("FFFFF"), Some(0xFFFFF));
        for bad in ["", "5BAA", "5BAA61", "5BAG6", "+BAA6", " BAA6", "５BAA6"] {
            assert_eq!(parse_prefix(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn modes_and_etags() {
        assert_eq!(parse_mode(None).unwrap(), RangeKind::Sha1);
        assert_eq!(parse_mode(Some("")).unwrap(), RangeKind::Sha1);
        assert_eq!(parse_mode(Some("Mode=NTLM")).unwrap(), RangeKind::Ntlm);
        assert_eq!(parse_mode(Some("mode=sha1&x=1")).unwrap(), RangeKind::Sha1);
        assert!(parse_mode(Some("mode=md5")).is_err());

        let tag = etag(RangeKind::Ntlm, 0xABC);
        assert_eq!(tag, "\"n00000000000000000000000000000abc\"");
        let mut headers = HeaderMap::new();
        assert!(!matches_etag(&headers, &tag));
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static(
                "\"s00000000000000000000000000000abc\", W/\"n00000000000000000000000000000abc\"",
            ),
        );
        assert!(matches_etag(&headers, &tag));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches_etag(&headers, &tag));
    }
}
