//! How a sync reaches its upstream: which URLs it accepts and the TLS it
//! speaks.
//!
//! A range API's answers become the organization's password corpus, so whoever
//! sits on the network path of a plain-http sync can add or remove hashes. A
//! sync therefore requires `https://`, except to a loopback address (a mirror on
//! the same machine) or when the operator says `--insecure`. Certificates are
//! checked against the system's CA roots, or only against the CAs of
//! `--ca-file` for a private mirror. rustls with the ring provider does the TLS:
//! the only TLS stack in the binary, and no system library needed.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

use crate::error::{Result, SyncError};

/// Where the upstream's certificate is checked against.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Trust only the CA certificates (PEM) in this file, not the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// Allow plain `http://` to a host that is not a loopback address.
    pub insecure: bool,
}

/// Checks `base`'s scheme against the policy above; returns the parsed URL.
pub(crate) fn check_url(base: &str, insecure: bool) -> Result<reqwest::Url> {
    let url = reqwest::Url::parse(base).map_err(|_| SyncError::BadUrl(base.to_owned()))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if insecure || is_loopback(&url) => Ok(url),
        "http" => Err(SyncError::Insecure(base.to_owned())),
        _ => Err(SyncError::BadUrl(base.to_owned())),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The TLS client configuration: the system's roots, or only `ca_file`'s.
pub(crate) fn client_config(options: &TlsOptions) -> Result<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    match &options.ca_file {
        Some(path) => {
            let io = |e: std::io::Error| SyncError::io(path, e);
            let pem = std::fs::read(path).map_err(io)?;
            let mut found = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert =
                    cert.map_err(|e| SyncError::CaFile { path: path.clone(), detail: e.to_string() })?;
                roots
                    .add(cert)
                    .map_err(|e| SyncError::CaFile { path: path.clone(), detail: e.to_string() })?;
                found += 1;
            }
            if found == 0 {
                return Err(SyncError::CaFile {
                    path: path.clone(),
                    detail: "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
                });
            }
        }
        None => {
            let system = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(system.certs);
            if roots.is_empty() {
                let why = system.errors.first().map_or_else(|| "none found".to_owned(), |e| e.to_string());
                return Err(SyncError::Client(format!(
                    "no CA certificates in the system store ({why}): install ca-certificates, or name \
                     the upstream's CA with --ca-file"
                )));
            }
        }
    }
    // ring is deprecated by rustls only for lacking post-quantum key exchange,
    // which protects secrecy; ranges are public, and what TLS must give a sync
    // is the upstream's identity and the bodies' integrity, which ring does.
    // aws-lc-rs would add a C build of its own for that secrecy alone.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SyncError::Client(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Whether a request failed in the TLS handshake (a certificate the roots do
/// not vouch for, a name that does not match, a protocol mismatch): no retry
/// makes such an upstream trustworthy, so the sync stops at once.
pub(crate) fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<rustls::Error>() {
            return true;
        }
        // An `io::Error`'s `source()` skips the error it wraps (it gives that
        // error's own source), and the TLS stack nests them: step into it.
        next = match e.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_required_except_on_loopback_or_when_insecure() {
        for ok in [
            "https://api.pwnedpasswords.com",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://localhost:9",
            "http://[::1]:8080",
        ] {
            assert!(check_url(ok, false).is_ok(), "{ok}");
        }
        for plain in ["http://mirror:8080", "http://10.0.0.5", "http://[2001:db8::1]/"] {
            assert!(matches!(check_url(plain, false), Err(SyncError::Insecure(_))), "{plain}");
            assert!(check_url(plain, true).is_ok(), "{plain}");
        }
        for bad in ["ftp://mirror", "mirror:8080", "", "https//x"] {
            assert!(matches!(check_url(bad, true), Err(SyncError::BadUrl(_))), "{bad}");
        }
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let options = TlsOptions { ca_file: Some(path), insecure: false };
        let err = client_config(&options).unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
        let missing = TlsOptions { ca_file: Some(tmp.path().join("none.pem")), insecure: false };
        assert!(client_config(&missing).unwrap_err().to_string().contains("none.pem"));
    }
}
