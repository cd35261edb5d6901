//! The normalized envelope the app receives (docs/upstream.md).

use std::time::SystemTime;

use bytes::Bytes;

use crate::providers::Event;
use crate::route::Route;

/// `received_at` as RFC 3339 UTC with milliseconds, computed once per request.
pub(crate) fn timestamp(received: SystemTime) -> String {
    humantime::format_rfc3339_millis(received).to_string()
}

/// The JSON body of `forward = "normalized"`, its members in docs/upstream.md's order.
///
/// Written member by member: `occurred_at` and `data` are usually spans of the verified
/// body, copied as they are, not values to serialize again.
pub(crate) fn render(route: &Route, event: &Event, received_at: &str) -> Bytes {
    // Sized from the verified body, which the data is (a part of), so it never regrows.
    let mut out = Vec::with_capacity(event.raw_body().len() + 256);
    out.extend_from_slice(b"{\"id\":");
    string(&mut out, event.id.as_str());
    out.extend_from_slice(b",\"provider\":");
    string(&mut out, route.provider.name());
    out.extend_from_slice(b",\"route\":");
    string(&mut out, &route.name);
    out.extend_from_slice(b",\"type\":");
    string(&mut out, &event.kind);
    out.extend_from_slice(b",\"occurred_at\":");
    event.occurred_at.write(&mut out);
    out.extend_from_slice(b",\"received_at\":");
    string(&mut out, received_at);
    out.extend_from_slice(b",\"data\":");
    event.data.write(&mut out);
    out.push(b'}');
    Bytes::from(out)
}

fn string(out: &mut Vec<u8>, text: &str) {
    // Escaping a `str` into a Vec cannot fail.
    let _ = serde_json::to_writer(out, text);
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
