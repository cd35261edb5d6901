//! An event's id, byte-exact (docs/request-handling.md).
//!
//! Ids are text nearly always. A signed id header that is not UTF-8 (`webhook-id`, an
//! `hmac` route's `id_header`) keeps its exact bytes, so that two ids differing in any
//! byte stay two events; a lossy conversion once made `evt-\xff` and `evt-\xfe` one id,
//! and the second event was answered `duplicate` without reaching the app. Such an id is
//! shown (envelope, answers, logs) with every byte outside %x21–7E and every `%` as
//! `%XX`, which is also how every id is written into headers.

use std::fmt;
use std::fmt::Write;
use std::sync::Arc;

/// An event id: what identifies the event ([`EventId::as_bytes`]) and how it is shown
/// ([`EventId::as_str`]).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct EventId {
    shown: String,
    /// The header's bytes when they are not UTF-8; otherwise the id is `shown`.
    raw: Option<Arc<[u8]>>,
}

impl EventId {
    /// An id from a header, as sent.
    pub(crate) fn from_header(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => EventId::from(text.to_owned()),
            Err(_) => EventId {
                shown: header_safe(bytes),
                raw: Some(Arc::from(bytes)),
            },
        }
    }

    /// The id as the envelope and the answers write it.
    pub(crate) fn as_str(&self) -> &str {
        &self.shown
    }

    /// What identifies the event: ids equal in these bytes are the same event.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.raw.as_deref().unwrap_or(self.shown.as_bytes())
    }
}

impl From<String> for EventId {
    fn from(shown: String) -> Self {
        EventId { shown, raw: None }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.shown, f)
    }
}

/// `bytes` as they may stand in a header: `%` and every byte outside %x21–7E written
/// `%XX` (docs/providers.md, for ids and types).
pub fn header_safe(bytes: &[u8]) -> String {
    let escape = |b: u8| !(0x21..=0x7e).contains(&b) || b == b'%';
    // Ids and types are nearly always safe already: one copy instead of a push a byte.
    if !bytes.iter().any(|&b| escape(b)) {
        // Only %x21–7E: ASCII, so valid UTF-8, copied whole.
        if let Ok(text) = std::str::from_utf8(bytes) {
            return text.to_owned();
        }
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for &b in bytes {
        if escape(b) {
            let _ = write!(out, "%{b:02X}");
        } else {
            out.push(b as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_differ_in_any_byte_stay_apart() {
        let ff = EventId::from_header(b"evt-\xff");
        let fe = EventId::from_header(b"evt-\xfe");
        let text = EventId::from_header(b"evt-%FF");
        assert_ne!(ff, fe);
        assert_ne!(ff.as_bytes(), fe.as_bytes());
        // Shown alike, still two events.
        assert_eq!(ff.as_str(), "evt-%FF");
        assert_eq!(text.as_str(), "evt-%FF");
        assert_ne!(ff.as_bytes(), text.as_bytes());
        assert_eq!(text, EventId::from("evt-%FF".to_string()));
    }

    #[test]
    fn header_safe_escapes_percent_space_controls_and_non_ascii() {
        assert_eq!(header_safe(b"evt_1.A-b"), "evt_1.A-b");
        assert_eq!(header_safe(b"a b%c\r\nd"), "a%20b%25c%0D%0Ad");
        assert_eq!(header_safe("é".as_bytes()), "%C3%A9");
        assert_eq!(EventId::from_header(b"\xff%").as_str(), "%FF%25");
        assert_eq!(
            header_safe(EventId::from("é%".to_string()).as_bytes()),
            "%C3%A9%25"
        );
    }
}
