//! Stealer-log lookups, the store side of HIBP's `stealerlogsbyemail`,
//! `stealerlogsbywebsitedomain` and `stealerlogsbyemaildomain` endpoints.
//!
//! HIBP keeps from a stealer log the pairs (email address, website domain the
//! credential was for). This store does not index such pairs yet: the stealer-log
//! ingest adds a segment kind for them. Until it does, every lookup here answers
//! "nothing known", which is the truth about the data this store holds, and the
//! HTTP API turns it into HIBP's not-found answer. The signatures are the contract
//! that ingest will fill in, so the surfaces need no change when data arrives.

use std::collections::BTreeMap;

use leakwatch_types::Account;

use crate::error::Result;
use crate::reader::Store;

impl Store {
    /// Website domains a stealer log captured credentials for, for one email
    /// address; sorted. Empty while the store holds no stealer-log data.
    pub fn stealer_websites_by_email(&self, _email: &Account) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Email addresses a stealer log captured for one website domain; sorted.
    /// Empty while the store holds no stealer-log data.
    pub fn stealer_emails_by_website(&self, _website_domain: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// For every alias of an email domain that a stealer log captured: the
    /// website domains, sorted (HIBP's `{"alias": ["site", ...]}` shape). Empty
    /// while the store holds no stealer-log data.
    pub fn stealer_websites_by_email_domain(
        &self,
        _email_domain: &str,
    ) -> Result<BTreeMap<String, Vec<String>>> {
        Ok(BTreeMap::new())
    }
}
