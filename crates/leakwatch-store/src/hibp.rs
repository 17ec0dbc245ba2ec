//! The breach object exactly as HIBP's API v3 spells it, shared by the CLI's
//! `breaches --json` and the HTTP API so the two never drift apart.

use serde::Serialize;

use crate::manifest::Breach;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct HibpBreach {
    pub name: String,
    pub title: String,
    pub domain: String,
    pub breach_date: String,
    pub added_date: String,
    pub modified_date: String,
    pub pwn_count: u64,
    pub description: String,
    pub logo_path: String,
    pub attribution: Option<String>,
    pub data_classes: Vec<String>,
    pub is_verified: bool,
    pub is_fabricated: bool,
    pub is_sensitive: bool,
    pub is_retired: bool,
    pub is_spam_list: bool,
    pub is_malware: bool,
    pub is_subscription_free: bool,
    pub is_stealer_log: bool,
}

impl From<&Breach> for HibpBreach {
    fn from(b: &Breach) -> Self {
        HibpBreach {
            name: b.name.clone(),
            title: b.title.clone(),
            domain: b.domain.clone(),
            breach_date: b.breach_date.clone(),
            added_date: b.added_date.clone(),
            modified_date: b.modified_date.clone(),
            pwn_count: b.pwn_count,
            description: b.description.clone(),
            logo_path: String::new(),
            attribution: None,
            data_classes: b.data_classes.clone(),
            is_verified: b.is_verified,
            is_fabricated: b.is_fabricated,
            is_sensitive: b.is_sensitive,
            is_retired: b.is_retired,
            is_spam_list: b.is_spam_list,
            is_malware: b.is_malware,
            is_subscription_free: false,
            is_stealer_log: b.is_stealer_log,
        }
    }
}
