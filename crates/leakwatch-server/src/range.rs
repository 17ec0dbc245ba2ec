//! `GET /range/{prefix}`: Pwned Passwords' k-anonymity range, byte for byte as
//! HIBP answers it, and the server's hot path.
//!
//! Every valid prefix answers 200, never with an empty body: a range that holds
//! no hash is answered with `SUFFIX:0` padding lines (the range index's), as
//! clients in the wild split the body without checking it. `?mode=ntlm` reads
//! the NTLM corpus; `Add-Padding: true` mixes random `SUFFIX:0` lines in.
//! `serve --range-own-dumps` decides whose counts a range holds: the own
//! dumps' and the Pwned Passwords' summed (`anonymous`, the default), the
//! Pwned Passwords' alone (`off`), or the sum for callers with a valid key and
//! the Pwned Passwords' for the rest (`key`; those answers carry `Vary:
//! hibp-api-key`, and keyed ones `Cache-Control: private`).
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
use leakwatch_catalog::hash_secret;
use leakwatch_segment::MAX_KEY_LEN;
use leakwatch_store::{RangeBody, RangeKind};
use rand::Rng;

use crate::auth::KEY_HEADER;
use crate::error::AppError;
use crate::state::{AppState, RangeOwnDumps};

/// A range is immutable until the next ingest; HIBP lets caches keep it 31 days.
const CACHE_CONTROL: &str = "public, max-age=2678400";
/// A keyed caller's answer holds the own dumps: no shared cache may keep it.
const PRIVATE_CACHE_CONTROL: &str = "private, max-age=2678400";
const TEXT_PLAIN: &str = "text/plain";
const ANY_ORIGIN: &str = "*";

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
    let headers = request.headers();
    let padded = headers.get("add-padding").is_some_and(|v| is_true(v.as_bytes()));
    let tags = headers.get_all(header::IF_NONE_MATCH).iter().map(HeaderValue::as_bytes);
    let keyed = match state.shared().limits.range_own_dumps {
        RangeOwnDumps::Key => match valid_key(&state, headers) {
            Ok(keyed) => keyed,
            Err(e) => return e.into_response(),
        },
        // The key is not looked at: everyone gets the same answer.
        RangeOwnDumps::Anonymous | RangeOwnDumps::Off => false,
    };
    match answer(&state, request.uri().path(), request.uri().query(), padded, keyed, tags) {
        Ok(answer) => answer.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Whether the request carries a valid `hibp-api-key`: no key (or an empty
/// one) is no; a wrong one is refused, as everywhere a key is read.
fn valid_key(state: &AppState, headers: &HeaderMap) -> Result<bool, AppError> {
    let Some(value) = headers.get(KEY_HEADER) else { return Ok(false) };
    let secret = value.to_str().map_err(|_| AppError::InvalidKey)?.trim();
    if secret.is_empty() {
        return Ok(false);
    }
    state.keys().find(&hash_secret(secret)).map(|_| true).ok_or(AppError::InvalidKey)
}

/// A range request's answer, before it goes on the wire: through the router,
/// or written straight to the socket by the connection's fast path
/// (`fast_range`), which must give the same status, headers and bytes.
pub(crate) struct RangeAnswer {
    /// `304 Not Modified` when `If-None-Match` names the current tag.
    pub not_modified: bool,
    /// The answer depends on the caller's key (`--range-own-dumps key`): it
    /// says so (`Vary`), and a keyed one is for the caller's cache alone.
    pub by_key: Option<Keyed>,
    pub etag: String,
    pub last_modified: HeaderValue,
    pub body: RangeBytes,
}

/// Whether a key-dependent answer was for a keyed caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyed {
    Yes,
    No,
}

/// Where an answer's body comes from.
pub(crate) enum RangeBytes {
    /// A 304's.
    Empty,
    /// The range as cached: shared, and possibly in a file the kernel can send.
    Cached(RangeBody),
    /// A padded range, different on every request.
    Padded(Bytes),
}

impl RangeBytes {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            RangeBytes::Empty => &[],
            RangeBytes::Cached(body) => body.bytes(),
            RangeBytes::Padded(bytes) => bytes,
        }
    }
}

impl RangeAnswer {
    /// The answer's headers in the order they are sent; `content-length` and
    /// `date` are the connection's to add, as hyper does.
    pub(crate) fn headers(&self) -> impl Iterator<Item = (header::HeaderName, &[u8])> + '_ {
        let cache_control = match self.by_key {
            Some(Keyed::Yes) => PRIVATE_CACHE_CONTROL,
            Some(Keyed::No) | None => CACHE_CONTROL,
        };
        [
            (header::CACHE_CONTROL, Some(cache_control.as_bytes())),
            (header::LAST_MODIFIED, Some(self.last_modified.as_bytes())),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, Some(ANY_ORIGIN.as_bytes())),
            (header::ETAG, Some(self.etag.as_bytes())),
            (header::VARY, self.by_key.is_some().then_some(KEY_HEADER.as_bytes())),
            (header::CONTENT_TYPE, (!self.not_modified).then_some(TEXT_PLAIN.as_bytes())),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
    }

    fn into_response(self) -> Response {
        let mut headers = HeaderMap::with_capacity(7);
        for (name, value) in self.headers() {
            headers.insert(name, HeaderValue::from_bytes(value).expect("valid header values"));
        }
        let status = if self.not_modified { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
        let body = match self.body {
            RangeBytes::Empty => Body::empty(),
            // Shared with the cache: no copy.
            RangeBytes::Cached(body) => Body::from(Bytes::from_owner(body)),
            RangeBytes::Padded(bytes) => Body::from(bytes),
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}

/// A range request's answer: `path` ends in the prefix, `query` may name the
/// mode, `padded` is `Add-Padding: true`, `keyed` whether the caller presented
/// a valid key (looked for only under `--range-own-dumps key`),
/// `if_none_match` the values of that header.
pub(crate) fn answer<'a>(
    state: &AppState,
    path: &str,
    query: Option<&str>,
    padded: bool,
    keyed: bool,
    if_none_match: impl Iterator<Item = &'a [u8]>,
) -> Result<RangeAnswer, AppError> {
    let prefix = parse_prefix(path.rsplit('/').next().unwrap_or(""))
        .ok_or(AppError::BadRange("The hash prefix was not in a valid format"))?;
    let kind = parse_mode(query)?;
    let own_dumps = state.shared().limits.range_own_dumps;
    let source = own_dumps.source(keyed);
    let by_key = (own_dumps == RangeOwnDumps::Key).then_some(if keyed { Keyed::Yes } else { Keyed::No });

    let snapshot = state.snapshot();
    let real = snapshot.ranges.body_from(kind, source, prefix)?;
    let tag = etag(kind, real.digest);
    let last_modified = snapshot.last_modified.clone();
    if matches_etag(if_none_match, &tag) {
        return Ok(RangeAnswer {
            not_modified: true,
            by_key,
            etag: tag,
            last_modified,
            body: RangeBytes::Empty,
        });
    }
    if !padded {
        return Ok(RangeAnswer {
            not_modified: false,
            by_key,
            etag: tag,
            last_modified,
            body: RangeBytes::Cached(real),
        });
    }
    // A padded body differs byte for byte on every request, so its tag is weak:
    // it still revalidates against the unpadded one, and means the same data.
    let body = BUFFER.with_borrow_mut(|buf| -> Result<Bytes, AppError> {
        let mut rng = rand::rng();
        let count = PAD_TO.saturating_sub(real.hashes) + rng.random_range(PAD_EXTRA);
        let mut padding = vec![[0u8; MAX_KEY_LEN]; count];
        for key in &mut padding {
            rng.fill(&mut key[..kind.key_len()]);
        }
        buf.clear();
        snapshot.ranges.write_range_from(kind, source, prefix, &mut padding, buf)?;
        let body = Bytes::copy_from_slice(buf);
        if buf.capacity() > 4 << 20 {
            // One huge range should not pin megabytes per thread for good.
            *buf = Vec::with_capacity(64 * 1024);
        }
        Ok(body)
    })?;
    Ok(RangeAnswer {
        not_modified: false,
        by_key,
        etag: format!("W/{tag}"),
        last_modified,
        body: RangeBytes::Padded(body),
    })
}

/// `Add-Padding`'s value: `true` in any case.
pub(crate) fn is_true(value: &[u8]) -> bool {
    value.eq_ignore_ascii_case(b"true")
}

/// `OPTIONS /range/{prefix}`: the CORS preflight a browser sends before a
/// request with `Add-Padding` or `hibp-api-key` (the key that shows the own
/// dumps' counts under `--range-own-dumps key`), headers browsers do not send
/// freely. A key is a header the page sets, never an ambient credential, so
/// any origin may send it.
pub async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static(ANY_ORIGIN)),
            (header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, OPTIONS")),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Add-Padding, hibp-api-key")),
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
fn matches_etag<'a>(values: impl Iterator<Item = &'a [u8]>, tag: &str) -> bool {
    values.filter_map(|v| std::str::from_utf8(v).ok()).any(|v| {
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
        assert!(!matches_etag(std::iter::empty(), &tag));
        let both = b"\"s00000000000000000000000000000abc\", W/\"n00000000000000000000000000000abc\"";
        assert!(matches_etag([&both[..]].into_iter(), &tag));
        assert!(matches_etag([&b"\"x\""[..], &b"*"[..]].into_iter(), &tag));
        assert!(!matches_etag([&b"\"s00000000000000000000000000000abc\""[..]].into_iter(), &tag));
    }
}
