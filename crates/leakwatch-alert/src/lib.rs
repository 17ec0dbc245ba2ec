//! Alerts: the monitor that finds what is new for each organization after a
//! generation is published and writes it to the catalog's outbox, and the
//! delivery of that outbox to webhooks (signed) and mail relays, with retries.
//!
//! - [`monitor::scan`] compares the current generation with what each
//!   organization with an alert destination already recorded, and writes one
//!   batch per organization, generation and destination. The CLI runs it at
//!   the end of every command that publishes, and `serve` whenever it swaps in
//!   a generation and at its start: whichever runs first records it, and a
//!   crash in between loses nothing.
//! - [`service`] is `serve`'s background delivery: its own thread and runtime,
//!   so requests never wait for a slow receiver.
//! - [`probe`] sends a made-up batch to each destination now (`org alert
//!   --test`, the dashboard's test alert).
//! - [`destination`] parses and seals what `org alert` is given; [`sign`] is
//!   the webhook signature; [`retry`] the backoff.
//!
//! **Architecture Invariant:** nothing this crate writes holds an address, a
//! webhook secret or a relay password in clear: payloads and secrets are
//! sealed with [`AlertKeys`], what was recorded is keyed hashes.

pub mod destination;
mod error;
pub mod exposure;
mod keys;
pub mod monitor;
pub mod probe;
pub mod retry;
pub mod service;
pub mod sign;
mod smtp;
mod webhook;

pub use destination::{Destination, MailDestination, WebhookDestination};
pub use error::{AlertError, Result};
pub use exposure::{Exposure, Payload};
pub use keys::AlertKeys;
pub use monitor::{baseline, scan, ScanReport};
pub use probe::{send_tests, test_payload, TestDelivery};
pub use retry::RetryPolicy;
pub use service::{send_now, AlertService, ServiceOptions, DELIVERY_LEASE};
