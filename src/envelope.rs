//! The normalized envelope the app receives (SPEC §5).

use std::time::SystemTime;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::config::Route;
use crate::providers::Event;

#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    provider: &'a str,
    route: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    occurred_at: &'a Value,
    received_at: &'a str,
    data: &'a Value,
}

/// `received_at` as RFC 3339 UTC with milliseconds, computed once per request.
pub fn timestamp(received: SystemTime) -> String {
    humantime::format_rfc3339_millis(received).to_string()
}

/// The JSON body of `forward = "normalized"`.
pub fn render(route: &Route, event: &Event, received_at: &str) -> Bytes {
    let envelope = Envelope {
        id: &event.id,
        provider: route.provider.name(),
        route: &route.name,
        kind: &event.kind,
        occurred_at: &event.occurred_at,
        received_at,
        data: &event.data,
    };
    // Serializing borrowed strings and `Value`s into a Vec cannot fail.
    Bytes::from(serde_json::to_vec(&envelope).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn received_at_has_milliseconds_and_z() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_000_000_123);
        assert_eq!(timestamp(t), "2025-11-24T16:00:00.123Z");
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_secs(1_764_000_000)),
            "2025-11-24T16:00:00.000Z"
        );
    }
}
