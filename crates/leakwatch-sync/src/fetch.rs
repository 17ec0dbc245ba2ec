//! One range over HTTP: a conditional GET with the stored ETag, retried with
//! exponential backoff and jitter on network errors, 5xx, 429 (honouring
//! `retry-after`) and bodies that fail verification, up to a bounded number of
//! attempts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, ETAG, IF_NONE_MATCH, RETRY_AFTER};
use reqwest::StatusCode;

use crate::error::{Result, SyncError};
use crate::staging::storable_etag;
use crate::transport::is_tls_failure;
use crate::verify::verify_body;

/// Waits between attempts never exceed this, whatever `retry-after` asks.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// The largest range body read: HIBP's ranges are about 40 KB (80 KB padded),
/// so a body past this is a broken or hostile upstream, not a range, and is
/// not read any further.
pub(crate) const MAX_BODY: usize = 4 << 20;

/// How a range is fetched.
pub struct Fetcher {
    pub client: reqwest::Client,
    /// The base URL without a trailing slash.
    pub base: String,
    pub ntlm: bool,
    pub attempts: u32,
    pub backoff: Duration,
    /// Attempts that failed and were retried, over the whole run.
    pub retries: AtomicU64,
}

/// A range's answer.
pub enum Fetched {
    /// 304: the staged body is current.
    NotModified,
    /// 200 with a verified body.
    Body { body: Vec<u8>, etag: Option<String> },
}

/// One failed attempt, and whether another may succeed.
struct Failure {
    detail: String,
    retry: bool,
    wait: Option<Duration>,
}

impl Fetcher {
    pub fn url(&self, prefix: u32) -> String {
        let mode = if self.ntlm { "?mode=ntlm" } else { "" };
        format!("{}/range/{prefix:05X}{mode}", self.base)
    }

    /// Fetches `prefix`, sending `etag` as `If-None-Match` when there is one.
    pub async fn fetch(&self, prefix: u32, etag: Option<&str>) -> Result<Fetched> {
        let url = self.url(prefix);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.once(&url, etag).await {
                Ok(fetched) => return Ok(fetched),
                Err(failure) => failure,
            };
            if !failure.retry {
                return Err(SyncError::Refused {
                    prefix: format!("{prefix:05X}"),
                    url,
                    detail: failure.detail,
                });
            }
            if attempt >= self.attempts {
                return Err(SyncError::Range {
                    prefix: format!("{prefix:05X}"),
                    url,
                    attempts: attempt,
                    detail: failure.detail,
                });
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(failure.wait.unwrap_or_else(|| self.backoff(attempt)).min(MAX_WAIT)).await;
        }
    }

    /// `backoff * 2^(attempt-1)`, plus up to half again of random jitter so that
    /// parallel requests failing together do not retry together.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.backoff.saturating_mul(1 << (attempt - 1).min(16));
        base + base.mul_f64(rand::rng().random_range(0.0..0.5))
    }

    async fn once(&self, url: &str, etag: Option<&str>) -> Result<Fetched, Failure> {
        let mut request = self.client.get(url);
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let mut response = request.send().await.map_err(|e| Failure {
            detail: format!("request failed: {}", error_chain(&e)),
            retry: !is_tls_failure(&e),
            wait: None,
        })?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && etag.is_some() {
            return Ok(Fetched::NotModified);
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(Failure {
                detail: format!("HTTP {status}"),
                retry: true,
                wait: retry_after(response.headers()),
            });
        }
        if status != StatusCode::OK {
            return Err(Failure {
                detail: format!("HTTP {status}: not a Pwned Passwords range API?"),
                retry: false,
                wait: None,
            });
        }
        let headers = response.headers().clone();
        let too_big = || Failure {
            detail: format!("the body is over {MAX_BODY} bytes: not a range"),
            retry: false,
            wait: None,
        };
        if response.content_length().is_some_and(|len| len > MAX_BODY as u64) {
            return Err(too_big());
        }
        let mut body = Vec::with_capacity(64 * 1024);
        loop {
            let chunk = response.chunk().await.map_err(|e| Failure {
                detail: format!("reading the body: {}", error_chain(&e)),
                retry: true,
                wait: None,
            })?;
            let Some(chunk) = chunk else { break };
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        let suffix_len = if self.ntlm { 27 } else { 35 };
        let md5 = headers.get("content-md5").map(|v| v.as_bytes());
        verify_body(&body, suffix_len, md5).map_err(|invalid| Failure {
            detail: format!("invalid body ({} bytes): {}", body.len(), invalid.0),
            retry: true,
            wait: None,
        })?;
        let etag = headers.get(ETAG).and_then(|v| v.to_str().ok()).filter(|t| storable_etag(t));
        Ok(Fetched::Body { body, etag: etag.map(str::to_owned) })
    }
}

/// `retry-after` in seconds (the HTTP-date form is rare for rate limits and
/// falls back to the backoff).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// An error with its causes, which reqwest keeps apart ("error sending
/// request" alone says nothing).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
