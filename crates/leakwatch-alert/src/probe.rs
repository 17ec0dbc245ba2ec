//! `org alert NAME --test` and the dashboard's "Send a test alert": a made-up
//! batch, clearly no breach, sent now to each destination of an organization,
//! outside the outbox (nothing recorded, nothing retried).

use leakwatch_catalog::{Catalog, Organization};
use leakwatch_store::Keys;

use crate::destination::Destination;
use crate::error::{AlertError, Result};
use crate::exposure::{Exposure, Payload};
use crate::keys::AlertKeys;
use crate::service::send_now;

/// What one destination did with the test alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDelivery {
    /// The destination's id (`org alert --remove ID`).
    pub id: i64,
    pub kind: String,
    pub target: String,
    /// How `org show` describes the destination (never a secret).
    pub describe: String,
    pub delivery_id: String,
    /// `Err` with why the destination did not take it.
    pub result: std::result::Result<(), String>,
}

/// The test batch for `org`: one exposure of `leakwatch-test@` its first domain
/// in a breach named `LeakwatchTest`.
pub fn test_payload(org: &Organization) -> Payload {
    let id: [u8; 8] = rand::random();
    Payload {
        delivery_id: format!("test-{}", id.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        organization: org.name.clone(),
        generation: 0,
        created_at: leakwatch_catalog::now(),
        exposures: vec![Exposure {
            account: format!("leakwatch-test@{}", org.domains.first().map_or("invalid", String::as_str)),
            breach: "LeakwatchTest".into(),
            breach_title: "leakwatch test alert (not a breach)".into(),
            breach_date: "2026-01-01".into(),
            data_classes: vec!["Email addresses".into()],
            stealer_log: false,
            websites: Vec::new(),
            in_directory: false,
        }],
    }
}

/// Sends a test batch to every destination of `org`, one after the other;
/// fails only when it has none, or one cannot be opened with `keys`.
pub fn send_tests(catalog: &Catalog, keys: &Keys, org: &Organization) -> Result<Vec<TestDelivery>> {
    let alert_keys = AlertKeys::new(keys);
    let routes: Vec<_> = catalog.alert_routes()?.into_iter().filter(|r| r.org == org.name).collect();
    if routes.is_empty() {
        return Err(AlertError::Invalid(format!("{} has no alert destination to test", org.name)));
    }
    let mut done = Vec::with_capacity(routes.len());
    for route in &routes {
        let destination = Destination::from_route(route, &alert_keys)?;
        let payload = test_payload(org);
        let result = send_now(&destination, &payload);
        done.push(TestDelivery {
            id: route.id,
            kind: route.kind.clone(),
            target: route.target.clone(),
            describe: destination.describe(),
            delivery_id: payload.delivery_id,
            result,
        });
    }
    Ok(done)
}
