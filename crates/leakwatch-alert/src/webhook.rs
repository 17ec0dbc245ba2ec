//! Delivering a batch to a webhook: one POST of the payload's JSON, signed
//! (`sign`), carrying the batch's delivery id; any 2xx answer is a delivery.
//! Redirects are not followed: a signed body goes where it was configured to.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::destination::WebhookDestination;
use crate::sign::{signature, DELIVERY_HEADER, SIGNATURE_HEADER};

/// How long a receiver may take to answer one delivery.
const TIMEOUT: Duration = Duration::from_secs(15);

/// An HTTP client for webhooks: rustls over ring with the system's roots.
pub(crate) struct WebhookClient {
    client: reqwest::Client,
}

impl WebhookClient {
    pub(crate) fn new() -> Result<WebhookClient, String> {
        let mut roots = rustls::RootCertStore::empty();
        // Without system roots only https receivers fail, each with its error.
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        // ring, as the sync client: what TLS must give a webhook is the
        // receiver's identity and the body's secrecy, which ring does.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .user_agent(concat!("leakwatch/", env!("CARGO_PKG_VERSION")))
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(WebhookClient { client })
    }

    /// Posts `body`; an error says what the receiver did (never the secret).
    pub(crate) async fn send(
        &self,
        to: &WebhookDestination,
        delivery_id: &str,
        body: Vec<u8>,
    ) -> Result<(), String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let response = self
            .client
            .post(&to.url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature(&to.secret, now, &body))
            .header(DELIVERY_HEADER, delivery_id)
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {status}"))
        }
    }
}

/// The error and its causes, on one line.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        text.push_str(": ");
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}
