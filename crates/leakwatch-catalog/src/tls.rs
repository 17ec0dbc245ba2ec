//! TLS to PostgreSQL, as libpq reads it from the URL: `sslmode`,
//! `sslrootcert`, and the client certificate `sslcert` with its key
//! `sslkey`, on rustls (the workspace's ring provider).
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | - |
//! | `allow`, `prefer` (the default) | if the server offers it | not checked |
//! | `require` | always | not checked, unless `sslrootcert` is given: then as `verify-ca` |
//! | `verify-ca` | always | signed by a root of `sslrootcert` |
//! | `verify-full` | always | signed by a root of `sslrootcert`, and for the host connected to |
//!
//! `sslrootcert` is a PEM file of CA certificates, or `system` for the
//! system's roots (the default for `verify-ca` and `verify-full` when it is
//! not given; libpq's `~/.postgresql/root.crt` is not read).
//!
//! `sslcert` (a PEM file: the client's certificate, then any intermediates)
//! and `sslkey` (a PEM file of its private key) go together: with them the
//! client proves who it is to a server that asks (`hostssl ... cert`, or
//! `clientcert=verify-full`, in pg_hba.conf). libpq's defaults in
//! `~/.postgresql/` are not read.
//!
//! The client library knows only `disable`, `prefer` and `require`:
//! [`TlsSettings::parse`] takes the other parameters out of the URL and
//! gives it the mode that asks for TLS as wanted, while the certificates are
//! this module's.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verify {
    /// No TLS at all (`sslmode=disable`).
    Off,
    /// TLS without checking who answers (`prefer`, `allow`, `require`).
    Nothing,
    /// The chain up to a root (`verify-ca`).
    Chain(Roots),
    /// The chain and the host name (`verify-full`).
    Full(Roots),
}

/// Where the trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    System,
    File(PathBuf),
}

/// What the URL asks of TLS, and the URL the client library accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    pub(crate) verify: Verify,
    /// The client's certificate chain and key files (`sslcert`, `sslkey`).
    pub(crate) client: Option<(PathBuf, PathBuf)>,
    /// The URL without `sslrootcert`, `sslcert` and `sslkey`, with an
    /// `sslmode` the client library knows.
    pub(crate) url: String,
}

impl TlsSettings {
    /// Reads `sslmode` and `sslrootcert` from `url`'s query.
    pub(crate) fn parse(url: &str) -> Result<TlsSettings, String> {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (url, ""),
        };
        let mut mode = None;
        let mut root = None;
        let (mut client_cert, mut client_key) = (None, None);
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => mode = Some(value.to_owned()),
                "sslrootcert" => root = Some(percent_decode(value)?),
                "sslcert" => client_cert = Some(PathBuf::from(percent_decode(value)?)),
                "sslkey" => client_key = Some(PathBuf::from(percent_decode(value)?)),
                _ => kept.push(pair.to_owned()),
            }
        }
        let roots = match root.as_deref() {
            None | Some("system") => Roots::System,
            Some(path) => Roots::File(PathBuf::from(path)),
        };
        let (verify, client_mode) = match mode.as_deref().unwrap_or("prefer") {
            "disable" => (Verify::Off, "disable"),
            "allow" | "prefer" => (Verify::Nothing, "prefer"),
            "require" if root.is_some() => (Verify::Chain(roots), "require"),
            "require" => (Verify::Nothing, "require"),
            "verify-ca" => (Verify::Chain(roots), "require"),
            "verify-full" => (Verify::Full(roots), "require"),
            other => {
                return Err(format!(
                    "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                ))
            }
        };
        let client = match (client_cert, client_key) {
            (Some(cert), Some(key)) if verify != Verify::Off => Some((cert, key)),
            (Some(_), Some(_)) => return Err("sslcert and sslkey need TLS: not sslmode=disable".into()),
            (None, None) => None,
            _ => return Err("sslcert and sslkey go together: the certificate and its key".into()),
        };
        kept.push(format!("sslmode={client_mode}"));
        Ok(TlsSettings { verify, client, url: format!("{base}?{}", kept.join("&")) })
    }

    /// The connector for these settings.
    pub(crate) fn connector(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
        // ring, as the rest of the workspace: rustls deprecates it only for
        // lacking post-quantum key exchange, which PostgreSQL servers built
        // on OpenSSL do not need to negotiate.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let wants_client = match &self.verify {
            Verify::Off | Verify::Nothing => {
                builder.dangerous().with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
            }
            Verify::Chain(roots) => {
                let full =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(load_roots(roots)?), provider)
                        .build()
                        .map_err(|e| format!("TLS: {e}"))?;
                builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly(full)))
            }
            Verify::Full(roots) => builder.with_root_certificates(load_roots(roots)?),
        };
        let config = match &self.client {
            Some((cert, key)) => wants_client
                .with_client_auth_cert(load_chain(cert)?, load_key(key)?)
                .map_err(|e| format!("sslcert {} with sslkey {}: {e}", cert.display(), key.display()))?,
            None => wants_client.with_no_client_auth(),
        };
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

/// The certificates of the PEM file `path` (`sslcert`): the client's, then
/// any intermediates.
fn load_chain(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("sslcert {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("sslcert {}: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!("sslcert {} holds no certificate", path.display()));
    }
    Ok(chain)
}

/// The private key of the PEM file `path` (`sslkey`).
fn load_key(path: &std::path::Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("sslkey {}: {e}", path.display()))
}

/// `%2F` -> `/` (a path in a URL's query).
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(hex.ok_or_else(|| format!("bad percent escape in {text:?}"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} is not UTF-8"))
}

fn load_roots(roots: &Roots) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system root rustls cannot parse is one it cannot use.
                let _ = store.add(cert);
            }
        }
        Roots::File(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            for cert in certs {
                store.add(cert).map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            }
        }
    }
    if store.is_empty() {
        return Err(match roots {
            Roots::System => "no system root certificates to check the server's certificate with".to_owned(),
            Roots::File(path) => format!("sslrootcert {} holds no certificate", path.display()),
        });
    }
    Ok(store)
}

/// `verify-ca`: the chain must lead to a trusted root; the name in the
/// certificate is not compared with the host.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without roots, as libpq: the connection is
/// encrypted, whoever answers. The handshake's signatures are still checked
/// against the certificate presented.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_keeps_what_the_client_library_reads_and_the_mode_maps_as_libpq() {
        let s = TlsSettings::parse("postgres://u@h/db").unwrap();
        assert_eq!((s.verify, s.url.as_str()), (Verify::Nothing, "postgres://u@h/db?sslmode=prefer"));
        let s = TlsSettings::parse(
            "postgres://u@h/db?application_name=lw&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(s.verify, Verify::Full(Roots::File("/etc/ca.pem".into())));
        assert_eq!(s.url, "postgres://u@h/db?application_name=lw&sslmode=require");
        let s = TlsSettings::parse("postgres://u@h/db?sslmode=require&sslrootcert=/ca.pem").unwrap();
        assert_eq!(s.verify, Verify::Chain(Roots::File("/ca.pem".into())));
        let s = TlsSettings::parse("postgres://u@h/db?sslmode=verify-ca").unwrap();
        assert_eq!(s.verify, Verify::Chain(Roots::System));
        assert_eq!(TlsSettings::parse("postgres://u@h/db?sslmode=disable").unwrap().verify, Verify::Off);
        assert!(TlsSettings::parse("postgres://u@h/db?sslmode=always").unwrap_err().contains("always"));
        // The client certificate and its key: out of the URL, together or not at all.
        let s =
            TlsSettings::parse("postgres://u@h/db?sslcert=%2Fc.pem&sslmode=verify-ca&sslkey=/k.pem").unwrap();
        assert_eq!(s.client, Some(("/c.pem".into(), "/k.pem".into())));
        assert_eq!(s.url, "postgres://u@h/db?sslmode=require");
        assert!(TlsSettings::parse("postgres://u@h/db?sslcert=/c.pem").unwrap_err().contains("together"));
        assert!(TlsSettings::parse("postgres://u@h/db?sslkey=/k.pem").unwrap_err().contains("together"));
        let off = TlsSettings::parse("postgres://u@h/db?sslmode=disable&sslcert=/c.pem&sslkey=/k.pem");
        assert!(off.unwrap_err().contains("disable"));
    }
}
