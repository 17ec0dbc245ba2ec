//! The LDAP side of `org import --ldap` and `reset`: connecting (StartTLS or
//! LDAPS, a private CA), binding with a secret that never comes from the
//! command line, telling Active Directory from OpenLDAP, reading a directory
//! in pages, and forcing a password change on one entry.
//!
//! Decisions worth knowing:
//! - an `ldap://` URL is upgraded with StartTLS unless `--no-starttls`, to a
//!   loopback address too: the bind password is a directory credential;
//! - Active Directory is recognized by the capability it advertises in its
//!   rootDSE (`1.2.840.113556.1.4.800`); any other server is handled as
//!   OpenLDAP with the ppolicy overlay;
//! - disabled on AD: `userAccountControl` with ACCOUNTDISABLE (0x2); on
//!   OpenLDAP: an administrative ppolicy lock (`pwdAccountLockedTime` of
//!   `000001010000Z`: a lock after failed binds expires and is not a disabled
//!   account), a `shadowExpire` day that has come, or `nsAccountLock: TRUE`;
//! - `sambaNTPassword` (hex), when the server returns it, is the account's NT
//!   hash, as a directory file's `nt_hash` column: in memory only.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use leakwatch_catalog::{DirectoryRecord, ParsedDirectory, RecordReader};
use zeroize::Zeroizing;

use crate::cli::LdapArgs;

/// Where the password comes from when no --password-file is given.
pub(crate) const PASSWORD_ENV: &str = "LEAKWATCH_LDAP_PASSWORD";

/// The capability OID Active Directory (and AD LDS) advertises.
const AD_CAPABILITY: &str = "1.2.840.113556.1.4.800";

/// How long a server may take to answer one request (each entry, for a
/// search): a server that stops answering is an error, not a hang.
const OP_TIMEOUT: Duration = Duration::from_secs(120);

/// Entries per page: under AD's MaxPageSize of 1,000.
const PAGE_SIZE: i32 = 500;

/// userAccountControl's ACCOUNTDISABLE bit.
const UF_ACCOUNTDISABLE: i64 = 0x2;

/// The pwdAccountLockedTime ppolicy gives an account locked by an
/// administrator, until unlocked by one.
const PERMANENT_LOCK: &str = "000001010000Z";

/// The kind of directory server, recorded with the directory as its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerKind {
    OpenLdap,
    ActiveDirectory,
}

impl ServerKind {
    /// The directory's source as the catalog records it.
    pub(crate) fn source(self) -> &'static str {
        match self {
            ServerKind::OpenLdap => "ldap/openldap",
            ServerKind::ActiveDirectory => "ldap/active-directory",
        }
    }

    pub(crate) fn from_source(source: &str) -> Option<ServerKind> {
        [ServerKind::OpenLdap, ServerKind::ActiveDirectory].into_iter().find(|k| k.source() == source)
    }

    fn default_filter(self) -> &'static str {
        match self {
            ServerKind::ActiveDirectory => "(&(objectCategory=person)(objectClass=user))",
            ServerKind::OpenLdap => {
                "(|(objectClass=inetOrgPerson)(objectClass=posixAccount)(objectClass=sambaSamAccount))"
            }
        }
    }

    /// The modification that forces a password change at next logon.
    pub(crate) fn reset_change(self) -> (&'static str, &'static str) {
        match self {
            ServerKind::OpenLdap => ("pwdReset", "TRUE"),
            ServerKind::ActiveDirectory => ("pwdLastSet", "0"),
        }
    }
}

/// One bound connection and the runtime driving it: the commands around it
/// are synchronous.
pub(crate) struct Directory {
    runtime: tokio::runtime::Runtime,
    ldap: Ldap,
    url: String,
    pub(crate) kind: ServerKind,
}

impl Directory {
    /// Connects to `args.ldap`, binds, and reads the server's kind.
    pub(crate) fn connect(args: &LdapArgs) -> Result<Directory> {
        let url = args.ldap.clone().context("no --ldap URL")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the LDAP client's runtime")?;
        let password = bind_password(args)?;
        let (ldap, kind) = runtime.block_on(connect(args, &url, password.as_ref().map(|p| p.as_str())))?;
        Ok(Directory { runtime, ldap, url, kind })
    }

    /// Every account under `base` matching `filter` (default: people, by the
    /// server's kind), read in pages.
    pub(crate) fn read(
        &mut self,
        base: &str,
        filter: Option<&str>,
        default_domain: &str,
    ) -> Result<ParsedDirectory> {
        let filter = filter.unwrap_or(self.kind.default_filter()).to_owned();
        let (ldap, kind, url) = (&mut self.ldap, self.kind, &self.url);
        self.runtime
            .block_on(read(ldap, kind, base, &filter, default_domain))
            .with_context(|| format!("searching {url} under {base:?} for {filter}"))
    }

    /// Forces a password change at next logon for the entry `dn`.
    pub(crate) fn force_reset(&mut self, dn: &str) -> Result<()> {
        let (attr, value) = self.kind.reset_change();
        let ldap = &mut self.ldap;
        self.runtime.block_on(async {
            let change = Mod::Replace(attr, [value].into_iter().collect());
            ldap.with_timeout(OP_TIMEOUT).modify(dn, vec![change]).await?.success()?;
            anyhow::Ok(())
        })?;
        Ok(())
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Directory {
    fn drop(&mut self) {
        let ldap = &mut self.ldap;
        let _ = self
            .runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(2), ldap.unbind()).await });
    }
}

/// The bind password: the first line of --password-file, else the
/// environment; none for an anonymous bind. Wiped from memory when dropped.
fn bind_password(args: &LdapArgs) -> Result<Option<Zeroizing<String>>> {
    if args.bind_dn.is_none() {
        return Ok(None);
    }
    if let Some(path) = &args.password_file {
        let file =
            std::fs::File::open(path).with_context(|| format!("the password file {}", path.display()))?;
        let mut first = Zeroizing::new(String::new());
        std::io::BufReader::new(file)
            .read_line(&mut first)
            .with_context(|| format!("the password file {}", path.display()))?;
        let password = Zeroizing::new(first.trim_end_matches(['\n', '\r']).to_owned());
        if password.is_empty() {
            bail!("the password file {} is empty", path.display());
        }
        return Ok(Some(password));
    }
    match std::env::var(PASSWORD_ENV) {
        Ok(p) if !p.is_empty() => Ok(Some(Zeroizing::new(p))),
        _ => bail!(
            "--bind-dn needs a password: --password-file FILE or ${PASSWORD_ENV} (never on the command line)"
        ),
    }
}

/// TLS trusting the system's CAs and those of `ca_file`.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let mut roots = rustls::RootCertStore::empty();
    // A system store that does not load leaves only --ca-file to trust.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).with_context(|| format!("the CA file {}", path.display()))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.with_context(|| format!("the CA file {}", path.display()))?;
            roots.add(cert).with_context(|| format!("a certificate of {}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            bail!("the CA file {} holds no PEM certificate", path.display());
        }
    }
    // ring is deprecated by rustls only for lacking post-quantum key exchange;
    // directory servers (AD's Schannel, OpenLDAP's GnuTLS/OpenSSL builds) do
    // not offer it to negotiate, and ring is the one provider the workspace
    // builds (aws-lc-rs would add a C build of its own for nothing here).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS configuration")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn connect(args: &LdapArgs, url: &str, password: Option<&str>) -> Result<(Ldap, ServerKind)> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let starttls = match scheme.as_deref() {
        Some("ldaps") => false,
        Some("ldap") => !args.no_starttls,
        _ => bail!("{url:?} is not an LDAP URL: ldap://HOST[:PORT] or ldaps://HOST[:PORT]"),
    };
    let settings = LdapConnSettings::new()
        .set_conn_timeout(Duration::from_secs(15))
        .set_config(tls_config(args.ca_file.as_deref())?)
        .set_starttls(starttls);
    let how = if starttls { " with StartTLS" } else { "" };
    let (conn, mut ldap) = match LdapConnAsync::with_settings(settings, url).await {
        Ok(connected) => connected,
        Err(e) => {
            let untrusted = e.to_string().contains("certificate") && args.ca_file.is_none();
            let hint = if untrusted { " (a private CA is trusted with --ca-file PEM)" } else { "" };
            return Err(anyhow::Error::new(e).context(format!("connecting to {url}{how}{hint}")));
        }
    };
    if !starttls && scheme.as_deref() == Some("ldap") && password.is_some() {
        eprintln!("leakwatch: warning: --no-starttls: the bind password and the directory cross the network in clear");
    }
    ldap3::drive!(conn);
    if let (Some(dn), Some(password)) = (&args.bind_dn, password) {
        ldap.with_timeout(OP_TIMEOUT)
            .simple_bind(dn, password)
            .await
            .and_then(|r| r.success())
            .with_context(|| format!("binding to {url} as {dn}"))?;
    }
    let kind = server_kind(&mut ldap).await.with_context(|| format!("reading the rootDSE of {url}"))?;
    Ok((ldap, kind))
}

async fn server_kind(ldap: &mut Ldap) -> Result<ServerKind> {
    let (entries, _) = ldap
        .with_timeout(OP_TIMEOUT)
        .search("", Scope::Base, "(objectClass=*)", vec!["supportedCapabilities"])
        .await?
        .success()?;
    let ad = entries.into_iter().filter_map(construct).any(|e| {
        e.attrs.iter().any(|(name, values)| {
            name.eq_ignore_ascii_case("supportedCapabilities") && values.iter().any(|v| v == AD_CAPABILITY)
        })
    });
    Ok(if ad { ServerKind::ActiveDirectory } else { ServerKind::OpenLdap })
}

const ATTRIBUTES: &[&str] = &[
    "mail",
    "uid",
    "sAMAccountName",
    "userAccountControl",
    "pwdAccountLockedTime",
    "shadowExpire",
    "nsAccountLock",
    "sambaNTPassword",
];

async fn read(
    ldap: &mut Ldap,
    kind: ServerKind,
    base: &str,
    filter: &str,
    default_domain: &str,
) -> Result<ParsedDirectory> {
    let adapters: Vec<Box<dyn Adapter<_, _>>> =
        vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(PAGE_SIZE))];
    let mut search = ldap
        .with_timeout(OP_TIMEOUT)
        .streaming_search_with(adapters, base, Scope::Subtree, filter, ATTRIBUTES.to_vec())
        .await?;
    let mut reader = RecordReader::new(default_domain);
    let today = days_since_epoch();
    while let Some(raw) = search.next().await? {
        match construct(raw) {
            Some(entry) => reader.push(record(&entry, kind, today)),
            None => reader.leave_out("malformed entry"),
        }
    }
    // A truncated answer (a size limit, a referral not followed) is an error:
    // a directory missing accounts would pass for a complete one.
    search.finish().await.success()?;
    Ok(reader.finish())
}

/// The entry, or `None` when its structure is not an entry's: ldap3 panics
/// on those, and a server's bytes are input like any other.
fn construct(raw: ldap3::ResultEntry) -> Option<SearchEntry> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SearchEntry::construct(raw))).ok()
}

/// An entry's first value of `name`, matched as LDAP matches names.
fn first<'e>(entry: &'e SearchEntry, name: &str) -> Option<&'e str> {
    entry
        .attrs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
}

fn record(entry: &SearchEntry, kind: ServerKind, today: i64) -> DirectoryRecord<'_> {
    let disabled = match kind {
        ServerKind::ActiveDirectory => first(entry, "userAccountControl")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .is_some_and(|uac| uac & UF_ACCOUNTDISABLE != 0),
        ServerKind::OpenLdap => {
            first(entry, "pwdAccountLockedTime") == Some(PERMANENT_LOCK)
                || first(entry, "shadowExpire")
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .is_some_and(|day| day >= 0 && day <= today)
                || first(entry, "nsAccountLock").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        }
    };
    let username = match kind {
        ServerKind::ActiveDirectory => first(entry, "sAMAccountName").or_else(|| first(entry, "uid")),
        ServerKind::OpenLdap => first(entry, "uid").or_else(|| first(entry, "sAMAccountName")),
    };
    DirectoryRecord {
        email: first(entry, "mail"),
        username,
        nt_hash: first(entry, "sambaNTPassword"),
        disabled,
        dn: Some(entry.dn.clone()),
    }
}

fn days_since_epoch() -> i64 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    (secs / 86_400) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn entry(attrs: &[(&str, &str)]) -> SearchEntry {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in attrs {
            map.entry((*k).to_owned()).or_default().push((*v).to_owned());
        }
        SearchEntry { dn: "uid=x,dc=corp".into(), attrs: map, bin_attrs: HashMap::new() }
    }

    #[test]
    fn disabled_states_by_server_kind() {
        let today = 20_000;
        let disabled = |attrs: &[(&str, &str)], kind| record(&entry(attrs), kind, today).disabled;
        let ad = ServerKind::ActiveDirectory;
        let ol = ServerKind::OpenLdap;
        assert!(disabled(&[("userAccountControl", "514")], ad));
        assert!(!disabled(&[("userAccountControl", "512")], ad));
        assert!(!disabled(&[("useraccountcontrol", "junk")], ad));
        assert!(disabled(&[("pwdAccountLockedTime", PERMANENT_LOCK)], ol));
        assert!(!disabled(&[("pwdAccountLockedTime", "20260101120000Z")], ol));
        assert!(disabled(&[("shadowExpire", "19999")], ol));
        assert!(disabled(&[("shadowExpire", "20000")], ol));
        assert!(!disabled(&[("shadowExpire", "20001")], ol));
        assert!(!disabled(&[("shadowExpire", "-1")], ol));
        assert!(disabled(&[("nsAccountLock", "TRUE")], ol));
        assert!(!disabled(&[], ol));
    }

    #[test]
    fn a_malformed_entry_is_none_not_a_crash() {
        use ldap3::asn1::{StructureTag, TagClass, PL};
        let tag = |payload| StructureTag { class: TagClass::Application, id: 4, payload };
        let bad = [
            tag(PL::P(b"not constructed".to_vec())),
            tag(PL::C(vec![])),
            tag(PL::C(vec![StructureTag {
                class: TagClass::Universal,
                id: 4,
                payload: PL::P(vec![0xFF, 0xFE]),
            }])),
        ];
        for t in bad {
            assert!(construct(ldap3::ResultEntry::new(t)).is_none());
        }
    }

    #[test]
    fn user_names_and_sources() {
        let e = entry(&[("sAMAccountName", "jdoe"), ("uid", "john"), ("mail", "j@corp.example")]);
        assert_eq!(record(&e, ServerKind::ActiveDirectory, 0).username, Some("jdoe"));
        assert_eq!(record(&e, ServerKind::OpenLdap, 0).username, Some("john"));
        for k in [ServerKind::OpenLdap, ServerKind::ActiveDirectory] {
            assert_eq!(ServerKind::from_source(k.source()), Some(k));
        }
        assert_eq!(ServerKind::from_source("csv"), None);
    }
}
