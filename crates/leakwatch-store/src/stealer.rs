//! Stealer-log lookups, the store side of HIBP's `stealerlogsbyemail`,
//! `stealerlogsbywebsitedomain` and `stealerlogsbyemaildomain` endpoints.
//!
//! HIBP keeps from a stealer log the pairs (email address, website domain the
//! credential was for). Ingest stores each pair twice: in `stealer-emails`
//! segments under the keyed hash of the email, with an encrypted reference to
//! the website's keyed hash (whose name is a `stealer` entry of its own), and
//! in `stealer` segments under the keyed hash of the website (a website's
//! entries hold several addresses each, one to a line), so those endpoints
//! are a lookup or two each. The email domain's view is read from the domain index (the
//! aliases that stealer-log breaches hold under the domain) and each alias's
//! own entries: a third entry per pair cost a third more ingest for the rarest
//! of the three questions. Stores written before kept that third entry, under
//! the keyed hash of the domain; it is still read. As HIBP does, an address whose only
//! website is its own email domain is left out: that is the victim logging in to
//! their own mail, not an exposure of another site.

use std::collections::{BTreeMap, BTreeSet};

use leakwatch_segment::Kind;
use leakwatch_types::{Account, Key16};

use crate::crypt::Keys;
use crate::error::Result;
use crate::reader::Store;

impl Store {
    /// Website domains a stealer log captured credentials for, for one email
    /// address; sorted.
    pub fn stealer_websites_by_email(&self, email: &Account) -> Result<Vec<String>> {
        let Some(keys) = self.keys() else { return Ok(Vec::new()) };
        let sites = self.stealer_sites(keys, email)?;
        let own = email.email_parts().map(|(_, d)| d);
        Ok(if sites.len() == 1 && sites.iter().next().map(String::as_str) == own {
            Vec::new()
        } else {
            sites.into_iter().collect()
        })
    }

    /// Email addresses a stealer log captured for one website domain; sorted.
    pub fn stealer_emails_by_website(&self, website_domain: &str) -> Result<Vec<String>> {
        let Some(keys) = self.keys() else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        // An entry holds one address or several, one to a line, and (in
        // entries written with the pairs by email) the website's name.
        let mut emails = BTreeSet::new();
        for payload in self.stealer_payloads(&keys.website(website_domain))? {
            emails.extend(payload.split('\n').filter(|line| line.contains('@')).map(str::to_owned));
        }
        for email in emails {
            // Only an address on the site's own domain can be a self-login.
            let on_site = email.rsplit_once('@').is_some_and(|(_, d)| d == website_domain);
            if !on_site
                || !self.stealer_websites_by_email(&Account::email(&email).map_err(invalid)?)?.is_empty()
            {
                out.push(email);
            }
        }
        Ok(out)
    }

    /// For every alias of an email domain that a stealer log captured: the
    /// website domains, sorted (HIBP's `{"alias": ["site", ...]}` shape).
    pub fn stealer_websites_by_email_domain(
        &self,
        email_domain: &str,
    ) -> Result<BTreeMap<String, Vec<String>>> {
        let Some(keys) = self.keys() else { return Ok(BTreeMap::new()) };
        let mut by_alias: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        // Entries of stores written with a third entry per pair.
        for pair in self.stealer_payloads(&keys.domain(email_domain))? {
            if let Some((alias, site)) = pair.split_once('\n') {
                by_alias.entry(alias.to_owned()).or_default().insert(site.to_owned());
            }
        }
        for alias in self.stealer_aliases(email_domain)? {
            let Ok(email) = Account::email(&format!("{alias}@{email_domain}")) else { continue };
            let sites = self.stealer_sites(keys, &email)?;
            if !sites.is_empty() {
                by_alias.entry(alias).or_default().extend(sites);
            }
        }
        Ok(by_alias
            .into_iter()
            .filter(|(_, sites)| !(sites.len() == 1 && sites.contains(email_domain)))
            .map(|(alias, sites)| (alias, sites.into_iter().collect()))
            .collect())
    }

    /// The aliases the domain index holds under `email_domain` for breaches
    /// that have stealer-log entries (every breach, for segments written
    /// before segments named their breaches).
    fn stealer_aliases(&self, email_domain: &str) -> Result<BTreeSet<String>> {
        let stealer_refs = self.manifest().segments.iter().filter(|s| s.kind == Kind::Stealer.name());
        let mut breaches = BTreeSet::new();
        for s in stealer_refs {
            if s.breaches.is_empty() {
                return Ok(self.domain(email_domain)?.into_keys().collect());
            }
            breaches.extend(s.breaches.iter().copied());
        }
        if breaches.is_empty() {
            return Ok(BTreeSet::new());
        }
        self.domain_aliases(email_domain, |id| breaches.contains(&id))
    }

    /// Every website a stealer log paired with `email`: its pairs by email,
    /// each website named by its own entries, and the sealed names of stores
    /// written before the pairs by email had a kind of their own.
    fn stealer_sites(&self, keys: &Keys, email: &Account) -> Result<BTreeSet<String>> {
        let inner = keys.blinder().account_key(email);
        let account = keys.outer(inner);
        let mut sites = self.stealer_payloads(&account)?;
        let mut seen = BTreeSet::new();
        for seg in self.kind(Kind::StealerEmails)? {
            for i in self.read(seg, seg.find(&account))? {
                let site = keys.site_of_ref(&inner, &seg.value(i)[4..]);
                if seen.insert(site) {
                    sites.extend(self.stealer_site_name(&keys.outer(site))?);
                }
            }
        }
        Ok(sites)
    }

    /// The name of the website stored under `key`: the line without an `@`
    /// of its entries (those written with the pairs by email have it).
    fn stealer_site_name(&self, key: &Key16) -> Result<Option<String>> {
        let mut payload = Vec::with_capacity(256);
        for seg in self.kind(Kind::Stealer)? {
            for i in self.read(seg, seg.find(key))? {
                self.open_payload(seg, i, &mut payload)?;
                if let Some(name) = payload.split(|&b| b == b'\n').find(|line| !line.contains(&b'@')) {
                    return Ok(Some(String::from_utf8_lossy(name).into_owned()));
                }
            }
        }
        Ok(None)
    }

    /// Every distinct payload stored under `key` in the stealer segments.
    fn stealer_payloads(&self, key: &Key16) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        let mut payload = Vec::with_capacity(256);
        for seg in self.kind(Kind::Stealer)? {
            for i in self.read(seg, seg.find(key))? {
                self.open_payload(seg, i, &mut payload)?;
                out.insert(String::from_utf8_lossy(&payload).into_owned());
            }
        }
        Ok(out)
    }
}

fn invalid(e: leakwatch_types::EmailError) -> crate::StoreError {
    crate::StoreError::Invalid(format!("stored stealer-log address: {e}"))
}
