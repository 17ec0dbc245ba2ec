//! Where an organization's alerts go: a webhook (a URL and the secret that
//! signs each delivery) or a mail recipient (with the relay that takes it).
//!
//! What is not secret (the URL, the recipient, the relay's URL without its
//! password) is kept as JSON settings; the webhook's secret and the relay's
//! password are sealed with [`AlertKeys`] and only opened to send.
//!
//! Transport security is checked when a destination is added: a webhook over
//! `http://`, or a relay without TLS, carries addresses in clear, so either
//! takes a loopback host or an explicit `insecure`. `smtps://` is TLS from the
//! first byte; `smtp://` must offer STARTTLS.

use leakwatch_catalog::{AlertRoute, Catalog, NewAlert, Scan};
use serde::{Deserialize, Serialize};
use url::Url;
use zeroize::Zeroizing;

use crate::error::{AlertError, Result};
use crate::keys::AlertKeys;

/// A destination, opened.
#[derive(Debug)]
pub enum Destination {
    Webhook(WebhookDestination),
    Mail(MailDestination),
}

#[derive(Debug)]
pub struct WebhookDestination {
    pub url: String,
    pub secret: Zeroizing<Vec<u8>>,
}

#[derive(Debug)]
pub struct MailDestination {
    pub to: String,
    pub from: String,
    pub relay: Relay,
    pub password: Option<Zeroizing<String>>,
}

/// A mail relay, from an `smtp://` or `smtps://` URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relay {
    pub host: String,
    pub port: u16,
    /// `smtps://`: TLS from the first byte.
    pub implicit_tls: bool,
    pub user: Option<String>,
    /// Without TLS if the relay offers none (loopback, or asked for).
    pub plaintext_allowed: bool,
    /// PEM of the CA that signs the relay's certificate (a private relay);
    /// none: the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
}

impl Relay {
    /// The relay's URL without its password.
    pub fn display(&self) -> String {
        let scheme = if self.implicit_tls { "smtps" } else { "smtp" };
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{}@", u.replace('%', "%25").replace('@', "%40").replace(':', "%3A")))
            .unwrap_or_default();
        format!("{scheme}://{user}{}:{}", self.host, self.port)
    }
}

#[derive(Serialize, Deserialize)]
struct MailSettings {
    from: String,
    relay: Relay,
}

impl Destination {
    /// A webhook to `url`, signed with `secret`.
    pub fn webhook(url: &str, secret: Zeroizing<Vec<u8>>, insecure: bool) -> Result<Destination> {
        let parsed = Url::parse(url).map_err(|e| AlertError::Invalid(format!("--webhook {url:?}: {e}")))?;
        match parsed.scheme() {
            "https" => {}
            "http" if insecure || is_loopback(&parsed) => {}
            "http" => {
                return Err(AlertError::Invalid(format!(
                    "--webhook {url:?} is plain http to another machine: the alerts carry addresses; use \
                     https (or --insecure if the network is trusted)"
                )))
            }
            other => {
                return Err(AlertError::Invalid(format!("--webhook {url:?}: {other}:// is not http(s)")))
            }
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(AlertError::Invalid(format!(
                "--webhook {:?}: no credentials in the URL; the signature authenticates deliveries",
                parsed.host_str().unwrap_or("")
            )));
        }
        if secret.len() < 16 {
            return Err(AlertError::Invalid(
                "the webhook secret must be at least 16 bytes (e.g. `openssl rand -hex 32`)".into(),
            ));
        }
        Ok(Destination::Webhook(WebhookDestination { url: parsed.to_string(), secret }))
    }

    /// Mail to `to` through the relay `smtp_url`; `password` replaces the
    /// URL's own when given (from a file, out of the shell's history).
    pub fn mail(
        to: &str,
        smtp_url: &str,
        from: Option<&str>,
        password: Option<Zeroizing<String>>,
        insecure: bool,
    ) -> Result<Destination> {
        let bad = |why: String| AlertError::Invalid(format!("--smtp: {why}"));
        let parsed = Url::parse(smtp_url).map_err(|e| bad(format!("not a URL ({e})")))?;
        let implicit_tls = match parsed.scheme() {
            "smtps" => true,
            "smtp" => false,
            other => return Err(bad(format!("{other}:// is neither smtp:// nor smtps://"))),
        };
        let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host".into()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = parsed.port().unwrap_or(if implicit_tls { 465 } else { 587 });
        let user = Some(percent_decode(parsed.username())).filter(|u| !u.is_empty());
        let password = password.or_else(|| parsed.password().map(|p| Zeroizing::new(percent_decode(p))));
        if password.is_some() && user.is_none() {
            return Err(bad("a password needs a user name (smtp://USER:PASSWORD@HOST:PORT)".into()));
        }
        let to = check_address(to)
            .ok_or_else(|| AlertError::Invalid(format!("--email {to:?} is not an address")))?;
        let from = match from {
            Some(f) => check_address(f)
                .ok_or_else(|| AlertError::Invalid(format!("--from {f:?} is not an address")))?,
            None => format!("leakwatch@{}", to.rsplit_once('@').map_or("localhost", |(_, d)| d)),
        };
        let relay = Relay {
            host,
            port,
            implicit_tls,
            user,
            plaintext_allowed: insecure || is_loopback(&parsed),
            ca_pem: None,
        };
        Ok(Destination::Mail(MailDestination { to, from, relay, password }))
    }

    /// Trusts `pem` (the relay's CA) for a mail destination's TLS.
    pub fn with_relay_ca(mut self, pem: String) -> Result<Destination> {
        match &mut self {
            Destination::Mail(m) if pem.contains("-----BEGIN CERTIFICATE-----") => m.relay.ca_pem = Some(pem),
            Destination::Mail(_) => {
                return Err(AlertError::Invalid("--smtp-ca-file: no PEM certificate in it".into()));
            }
            Destination::Webhook(_) => {
                return Err(AlertError::Invalid("a CA file is for a mail relay".into()))
            }
        }
        Ok(self)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Destination::Webhook(_) => "webhook",
            Destination::Mail(_) => "mail",
        }
    }

    /// The URL, or the recipient: what `org show` lists.
    pub fn target(&self) -> &str {
        match self {
            Destination::Webhook(w) => &w.url,
            Destination::Mail(m) => &m.to,
        }
    }

    /// What the catalog keeps in clear.
    pub fn settings(&self) -> String {
        match self {
            Destination::Webhook(_) => "{}".to_owned(),
            Destination::Mail(m) => {
                serde_json::to_string(&MailSettings { from: m.from.clone(), relay: m.relay.clone() })
                    .expect("settings serialize")
            }
        }
    }

    /// The secret to seal: the webhook's, or the relay's password.
    pub fn secret(&self) -> Option<&[u8]> {
        match self {
            Destination::Webhook(w) => Some(&w.secret),
            Destination::Mail(m) => m.password.as_ref().map(|p| p.as_bytes()),
        }
    }

    /// Records this destination for organization `org`, its secret sealed
    /// with `keys` and only its settings in clear; `baseline` is what the
    /// organization's first destination starts from (see
    /// [`Catalog::add_alert`]). The destination's id.
    pub fn add_to(&self, catalog: &mut Catalog, org: &str, keys: &AlertKeys, baseline: &Scan) -> Result<i64> {
        let sealed = self.secret().map(|s| keys.seal(s));
        let settings = self.settings();
        let alert = NewAlert {
            kind: self.kind(),
            target: self.target(),
            settings: &settings,
            sealed_secret: sealed.as_deref(),
        };
        Ok(catalog.add_alert(org, &alert, baseline)?)
    }

    /// A destination as the catalog keeps it, its secret opened.
    pub fn from_route(route: &AlertRoute, keys: &AlertKeys) -> Result<Destination> {
        let what = || format!("the secret of alert {} of {}", route.id, route.org);
        let secret = match &route.sealed_secret {
            Some(sealed) => Some(keys.open(sealed).ok_or_else(|| AlertError::Sealed { what: what() })?),
            None => None,
        };
        match route.kind.as_str() {
            "webhook" => Ok(Destination::Webhook(WebhookDestination {
                url: route.target.clone(),
                secret: Zeroizing::new(secret.ok_or_else(|| AlertError::Sealed { what: what() })?.to_vec()),
            })),
            "mail" => {
                let settings: MailSettings = serde_json::from_str(&route.settings).map_err(|source| {
                    AlertError::Json { what: format!("the settings of alert {}", route.id), source }
                })?;
                let password = match secret {
                    Some(s) => Some(Zeroizing::new(
                        String::from_utf8(s.to_vec()).map_err(|_| AlertError::Sealed { what: what() })?,
                    )),
                    None => None,
                };
                Ok(Destination::Mail(MailDestination {
                    to: route.target.clone(),
                    from: settings.from,
                    relay: settings.relay,
                    password,
                }))
            }
            other => Err(AlertError::Invalid(format!(
                "alert {} has kind {other:?}, which this build does not send",
                route.id
            ))),
        }
    }

    /// How `org show` describes it beyond its target (never a secret).
    pub fn describe(&self) -> String {
        match self {
            Destination::Webhook(w) => format!("webhook {}", w.url),
            Destination::Mail(m) => format!("mail to {} from {} via {}", m.to, m.from, m.relay.display()),
        }
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        // A scheme url does not know (smtp) leaves even an IP as a name.
        Some(url::Host::Domain(d)) => {
            let d = d.trim_start_matches('[').trim_end_matches(']');
            d.eq_ignore_ascii_case("localhost")
                || d.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    }
}

/// An address with one `@`, something on each side, and no space or control
/// character (it goes into a mail header).
fn check_address(address: &str) -> Option<String> {
    let a = address.trim();
    let (local, domain) = a.rsplit_once('@')?;
    let ok = !local.is_empty()
        && (domain.contains('.') || domain.eq_ignore_ascii_case("localhost"))
        && !a.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '"'));
    ok.then(|| a.to_owned())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Zeroizing<Vec<u8>> {
        Zeroizing::new(b"0123456789abcdef".to_vec())
    }

    #[test]
    fn webhooks_need_https_off_loopback_and_a_real_secret() {
        assert!(Destination::webhook("https://hooks.example/x", secret(), false).is_ok());
        assert!(Destination::webhook("http://127.0.0.1:9/x", secret(), false).is_ok());
        assert!(Destination::webhook("http://localhost:9/x", secret(), false).is_ok());
        assert!(Destination::webhook("http://hooks.example/x", secret(), false).is_err());
        assert!(Destination::webhook("http://hooks.example/x", secret(), true).is_ok());
        assert!(Destination::webhook("ftp://hooks.example/x", secret(), true).is_err());
        assert!(Destination::webhook("https://u:p@hooks.example/x", secret(), false).is_err());
        assert!(Destination::webhook("https://hooks.example/x", Zeroizing::new(b"short".to_vec()), false)
            .is_err());
    }

    #[test]
    fn relays_parse_with_their_credentials_and_tls_rules() {
        let Destination::Mail(m) = Destination::mail(
            "soc@corp.example",
            "smtp://alerts%40corp:p%3Ass@mail.corp.example",
            None,
            None,
            false,
        )
        .unwrap() else {
            panic!("mail")
        };
        assert_eq!(m.relay.user.as_deref(), Some("alerts@corp"));
        assert_eq!(m.password.as_deref().map(String::as_str), Some("p:ss"));
        assert_eq!((m.relay.port, m.relay.implicit_tls, m.relay.plaintext_allowed), (587, false, false));
        assert_eq!(m.from, "leakwatch@corp.example");
        assert_eq!(m.relay.display(), "smtp://alerts%40corp@mail.corp.example:587");

        let Destination::Mail(m) =
            Destination::mail("a@b.example", "smtps://relay.example", Some("x@y.example"), None, false)
                .unwrap()
        else {
            panic!("mail")
        };
        assert_eq!((m.relay.port, m.relay.implicit_tls, m.from.as_str()), (465, true, "x@y.example"));
        let Destination::Mail(m) =
            Destination::mail("a@b.example", "smtp://127.0.0.1:2525", None, None, false).unwrap()
        else {
            panic!("mail")
        };
        assert!(m.relay.plaintext_allowed);
        assert!(Destination::mail("a@b.example", "http://relay.example", None, None, false).is_err());
        assert!(Destination::mail("not an address", "smtp://relay.example", None, None, false).is_err());
        assert!(Destination::mail("a@b.example", "smtp://:pw@relay.example", None, None, false).is_err());
    }

    #[test]
    fn routes_open_back_into_destinations_without_secrets_in_clear() {
        let keys = AlertKeys::new(&leakwatch_store::Keys::legacy(&[1; 32]));
        let d = Destination::mail(
            "soc@corp.example",
            "smtp://u:hunter2hunter2@relay.example:25",
            None,
            None,
            false,
        )
        .unwrap();
        let settings = d.settings();
        assert!(!settings.contains("hunter2"), "{settings}");
        let route = AlertRoute {
            id: 1,
            org_id: 1,
            org: "acme".into(),
            kind: d.kind().into(),
            target: d.target().into(),
            settings,
            sealed_secret: d.secret().map(|s| keys.seal(s)),
        };
        let Destination::Mail(back) = Destination::from_route(&route, &keys).unwrap() else { panic!("mail") };
        assert_eq!(back.password.as_deref().map(String::as_str), Some("hunter2hunter2"));
        assert!(!Destination::from_route(&route, &keys).unwrap().describe().contains("hunter2"));
    }
}
