//! An organization's directory, read against the leak corpus: what `leakwatch
//! org import` seals into the catalog, what `audit --org` reports of each
//! account, and which accounts `reset --org` takes. The CLI prints it and the
//! web dashboard (`leakwatch-server`) shows it: one computation, two faces.
//!
//! - [`account`]: the sealed directory account; [`import`], which checks each
//!   entry's NT hash against the store (the hash goes no further than that
//!   check), counts what changed and seals the directory into the catalog;
//!   opening it again.
//! - [`audit`]: each account's findings ([`Report`]), most urgent first, the
//!   summary, and the reasons a forced reset takes an account.
//!
//! **Architecture Invariant:** apart from [`import`] replacing a directory,
//! nothing here writes: the callers record their audit rows and print. A
//! directory's NT hashes go no further than the import's password check: what
//! is kept is a keyed hash of each.

pub mod account;
pub mod audit;
mod error;
pub mod text;

pub use account::{import, load_directory, open_accounts, Imported, SealedAccount};
pub use audit::{
    csv_cell, most_urgent_first, newer_breaches, reports, reset_reasons, summary, BreachRef, Report,
    Severity, Summary,
};
pub use error::{OrgError, Result};
pub use text::{html_escape, thousands};
