//! Delivering a batch by mail: one plain-text message listing the exposures,
//! the payload's JSON after it, through the destination's relay (TLS as
//! `destination` decided, authenticated when it has a user). The delivery id
//! is in an `X-Leakwatch-Delivery` header and in the Message-ID, so a mail
//! sent twice (a crash between sending and recording it) is recognizably the
//! same.

use std::fmt::Write as _;
use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::destination::MailDestination;
use crate::exposure::Payload;
use crate::sign::DELIVERY_HEADER;

const TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn send(to: &MailDestination, payload: &Payload, json: &[u8]) -> Result<(), String> {
    let message = message(to, payload, json)?;
    let relay = &to.relay;
    let mut params = TlsParameters::builder(relay.host.clone());
    if let Some(pem) = &relay.ca_pem {
        let ca =
            Certificate::from_pem(pem.as_bytes()).map_err(|e| format!("the relay's CA certificate: {e}"))?;
        params = params.add_root_certificate(ca);
    }
    let params = params.build_rustls();
    let tls = match params {
        Ok(p) if relay.implicit_tls => Tls::Wrapper(p),
        Ok(p) if relay.plaintext_allowed => Tls::Opportunistic(p),
        Ok(p) => Tls::Required(p),
        Err(_) if relay.plaintext_allowed && !relay.implicit_tls => Tls::None,
        Err(e) => return Err(format!("TLS setup for {}: {e}", relay.host)),
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(relay.host.clone())
        .port(relay.port)
        .tls(tls)
        .timeout(Some(TIMEOUT));
    if let (Some(user), Some(password)) = (&relay.user, &to.password) {
        transport = transport.credentials(Credentials::new(user.clone(), password.to_string()));
    }
    transport
        .build()
        .send(message)
        .await
        .map(drop)
        .map_err(|e| format!("mail to {} via {}: {e}", to.to, relay.display()))
}

fn message(to: &MailDestination, payload: &Payload, json: &[u8]) -> Result<Message, String> {
    let n = payload.exposures.len();
    let subject = format!(
        "leakwatch: {n} new exposure{} for {} (generation {})",
        if n == 1 { "" } else { "s" },
        payload.organization,
        payload.generation
    );
    let mut body = String::new();
    let _ = writeln!(
        body,
        "{n} new exposure{} of {} found in store generation {} ({}).\n",
        if n == 1 { "" } else { "s" },
        payload.organization,
        payload.generation,
        payload.created_at
    );
    for e in &payload.exposures {
        let _ = write!(body, "- {}: {} ({}, {})", e.account, e.breach, e.breach_title, e.breach_date);
        if e.stealer_log {
            let _ = write!(body, " STEALER LOG, device infected");
            if !e.websites.is_empty() {
                let _ = write!(body, "; websites: {}", e.websites.join(", "));
            }
        }
        if !e.data_classes.is_empty() {
            let _ = write!(body, "; data: {}", e.data_classes.join(", "));
        }
        body.push('\n');
    }
    let _ = writeln!(
        body,
        "\nReset the passwords of these accounts and check them with `leakwatch audit --org {}`.\n\nDelivery {}; the same batch as JSON:\n{}",
        payload.organization,
        payload.delivery_id,
        String::from_utf8_lossy(json)
    );
    let header = HeaderName::new_from_ascii(DELIVERY_HEADER.to_owned()).map_err(|e| e.to_string())?;
    Message::builder()
        .from(to.from.parse().map_err(|e| format!("--from {}: {e}", to.from))?)
        .to(to.to.parse().map_err(|e| format!("--email {}: {e}", to.to))?)
        .subject(subject)
        .message_id(Some(format!("<{}@leakwatch>", payload.delivery_id)))
        .raw_header(HeaderValue::new(header, payload.delivery_id.clone()))
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| format!("building the mail: {e}"))
}
