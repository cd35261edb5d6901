//! Request-smuggling shapes that hyper normalises away, refused instead.
//!
//! hyper follows RFC 9112 §6.3: with both Transfer-Encoding and Content-Length it drops
//! the length and closes the connection afterwards, and it folds repeated identical
//! Content-Lengths into one. Both are safe at this hop, but a proxy in front of us may
//! have framed the same bytes the other way, so the gateway refuses them (docs/request-handling.md:
//! broken at the HTTP level). hyper keeps the original headers private, so an observer
//! on the connection's read side follows the HTTP/1 framing itself and records one
//! verdict per request head; the pipeline takes them in order.
//!
//! The observer never refuses anything on its own: if it cannot follow the stream
//! (HTTP/2, or input hyper rejects anyway) it stops judging and every later request
//! counts as clean.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::read_tap::Tap;
use crate::sync::lock;

/// Beyond this a head is refused by hyper (431) before any request is dispatched.
const MAX_HEAD: usize = 80 * 1024;
const MAX_HEADERS: usize = 128;

/// The verdicts of one connection, in request order.
#[derive(Clone, Default)]
pub(crate) struct Verdicts(Arc<Mutex<VecDeque<bool>>>);

impl Verdicts {
    /// Whether the next request's head was ambiguous. Called once per request.
    pub(crate) fn next_is_ambiguous(&self) -> bool {
        lock(&self.0).pop_front().unwrap_or(false)
    }

    fn push(&self, ambiguous: bool) {
        lock(&self.0).push_back(ambiguous);
    }
}

/// Where the observer is in the byte stream.
enum State {
    Head(Vec<u8>),
    Body(u64),
    ChunkSize(Vec<u8>),
    ChunkData(u64),
    /// The CRLF after a chunk's data; `true` once its CR was seen.
    ChunkDataEnd(bool),
    Trailers(Vec<u8>),
    /// Not following any more.
    Off,
}

/// The observer of one connection's reads (a [`Tap`]), recording into its [`Verdicts`].
pub(crate) struct FramingWatch {
    state: State,
    verdicts: Verdicts,
}

impl FramingWatch {
    pub(crate) fn new() -> (Self, Verdicts) {
        let verdicts = Verdicts::default();
        let observed = FramingWatch {
            state: State::Head(Vec::new()),
            verdicts: verdicts.clone(),
        };
        (observed, verdicts)
    }

    fn observe(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (next, used) = step(
                std::mem::replace(&mut self.state, State::Off),
                bytes,
                &self.verdicts,
            );
            self.state = next;
            if matches!(self.state, State::Off) {
                return;
            }
            bytes = &bytes[used..];
        }
    }
}

/// The verdicts of a stream delivered in `reads`, as the observer records them.
#[cfg(any(test, fuzzing))]
pub(crate) fn verdicts<'a>(reads: impl IntoIterator<Item = &'a [u8]>) -> Vec<bool> {
    let (mut observed, verdicts) = FramingWatch::new();
    for read in reads {
        observed.observe(read);
    }
    let all = lock(&verdicts.0).iter().copied().collect();
    all
}

/// Consumes a prefix of `bytes`; returns the next state and how much was used.
fn step(state: State, bytes: &[u8], verdicts: &Verdicts) -> (State, usize) {
    match state {
        State::Off => (State::Off, bytes.len()),
        State::Head(mut head) => {
            // Empty lines before a request line are skipped, as hyper does.
            if head.is_empty() {
                let skip = bytes
                    .iter()
                    .take_while(|&&b| b == b'\r' || b == b'\n')
                    .count();
                if skip > 0 {
                    return (State::Head(head), skip);
                }
            }
            // The usual case, a whole head in one read, is judged where it lies; only a
            // head split across reads is gathered first. Either way a head longer than
            // MAX_HEAD gets no verdict, so the verdicts never depend on how reads split.
            if head.is_empty() {
                if let Some((len, next)) = parse_head(bytes, verdicts) {
                    return (next, len);
                }
            }
            let before = head.len();
            head.extend_from_slice(bytes);
            match parse_head(&head, verdicts) {
                Some((len, next)) => (next, len - before),
                None if head.len() > MAX_HEAD => (State::Off, bytes.len()),
                None => (State::Head(head), bytes.len()),
            }
        }
        State::Body(left) => {
            let used = left.min(bytes.len() as u64);
            let next = if used == left {
                State::Head(Vec::new())
            } else {
                State::Body(left - used)
            };
            (next, used as usize)
        }
        State::ChunkSize(mut line) => match take_line(&mut line, bytes) {
            _ if line.len() > MAX_HEAD => (State::Off, bytes.len()),
            None => (State::ChunkSize(line), bytes.len()),
            Some(used) => {
                let text = String::from_utf8_lossy(&line);
                let size = text.split(';').next().unwrap_or("").trim();
                match u64::from_str_radix(size, 16) {
                    Ok(0) => (State::Trailers(Vec::new()), used),
                    Ok(n) => (State::ChunkData(n), used),
                    Err(_) => (State::Off, used),
                }
            }
        },
        State::ChunkData(left) => {
            let used = left.min(bytes.len() as u64);
            let next = if used == left {
                State::ChunkDataEnd(false)
            } else {
                State::ChunkData(left - used)
            };
            (next, used as usize)
        }
        // Exactly CRLF, a byte at a time, wherever the reads split it; anything else is not
        // chunked framing.
        State::ChunkDataEnd(false) if bytes[0] == b'\r' => (State::ChunkDataEnd(true), 1),
        State::ChunkDataEnd(true) if bytes[0] == b'\n' => (State::ChunkSize(Vec::new()), 1),
        State::ChunkDataEnd(_) => (State::Off, bytes.len()),
        State::Trailers(mut line) => match take_line(&mut line, bytes) {
            _ if line.len() > MAX_HEAD => (State::Off, bytes.len()),
            None => (State::Trailers(line), bytes.len()),
            Some(used) if line.is_empty() => (State::Head(Vec::new()), used),
            Some(used) => (State::Trailers(Vec::new()), used),
        },
    }
}

/// Appends to `line` up to the next LF; returns how many bytes were used when the line
/// is complete (`line` then holds it without CR/LF).
fn take_line(line: &mut Vec<u8>, bytes: &[u8]) -> Option<usize> {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(lf) => {
            line.extend_from_slice(&bytes[..lf]);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            Some(lf + 1)
        }
        None => {
            line.extend_from_slice(bytes);
            None
        }
    }
}

/// A complete head: its length, the verdict recorded, and how its body is framed.
fn parse_head(head: &[u8], verdicts: &Verdicts) -> Option<(usize, State)> {
    // Left uninitialised for httparse to fill: zeroing 128 headers cost more than the
    // parse of a usual head.
    let mut headers =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(head, &mut headers) {
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => return Some((len, State::Off)),
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return None,
        // HTTP/2's preface, or bytes hyper refuses on its own.
        Err(_) => return Some((head.len(), State::Off)),
    };
    // The first Content-Length and how many there were; the last Transfer-Encoding.
    let (mut length, mut lengths, mut coding) = (None, 0, None);
    for h in request.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            length = length.or(Some(h.value));
            lengths += 1;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            coding = Some(h.value);
        }
    }
    let ambiguous = lengths > 1 || (lengths == 1 && coding.is_some());
    verdicts.push(ambiguous);
    if ambiguous {
        // The answer closes the connection.
        return Some((len, State::Off));
    }
    let next = if let Some(last) = coding {
        let chunked = String::from_utf8_lossy(last)
            .rsplit(',')
            .next()
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
        if chunked {
            State::ChunkSize(Vec::new())
        } else {
            State::Off
        }
    } else if let Some(value) = length {
        match std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            Some(0) => State::Head(Vec::new()),
            Some(n) => State::Body(n),
            None => State::Off,
        }
    } else {
        State::Head(Vec::new())
    };
    Some((len, next))
}

impl Tap for FramingWatch {
    fn saw(&mut self, bytes: &[u8]) {
        if !matches!(self.state, State::Off) {
            self.observe(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `stream` in pieces cut at `cuts` and returns the verdicts.
    fn verdicts_of(stream: &[u8], cuts: &[usize]) -> Vec<bool> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut at = 0;
        for cut in cuts.into_iter().chain([stream.len()]) {
            pieces.push(&stream[at..cut]);
            at = cut;
        }
        verdicts(pieces)
    }

    fn request(extra: &str, body: &str) -> String {
        format!("POST /x HTTP/1.1\r\nhost: h\r\n{extra}\r\n{body}")
    }

    #[test]
    fn smuggling_shapes_are_ambiguous_and_plain_framing_is_not() {
        let both = request(
            "content-length: 4\r\ntransfer-encoding: chunked\r\n",
            "0\r\n\r\n",
        );
        assert_eq!(verdicts_of(both.as_bytes(), &[]), [true]);
        let te_first = request(
            "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
            "0\r\n\r\n",
        );
        assert_eq!(verdicts_of(te_first.as_bytes(), &[]), [true]);
        let twice = request("content-length: 2\r\ncontent-length: 2\r\n", "{}");
        assert_eq!(verdicts_of(twice.as_bytes(), &[]), [true]);
        let fine = request("content-length: 2\r\n", "{}")
            + &request(
                "transfer-encoding: chunked\r\n",
                "2;x=y\r\n{}\r\n0\r\nt: 1\r\n\r\n",
            );
        assert_eq!(verdicts_of(fine.as_bytes(), &[]), [false, false]);
    }

    #[test]
    fn verdicts_never_depend_on_where_reads_split() {
        // Chunk data followed by `\r\r\n`: read whole it stopped the observer, read
        // split after the first CR it did not, and the next request's verdict went
        // missing (found by the framing fuzz target).
        let stray_cr = request("transfer-encoding: chunked\r\n", "1\r\nx\r\r\n0\r\n\r\n")
            + &request("content-length: 0\r\ncontent-length: 0\r\n", "");
        // A head longer than MAX_HEAD in one read, then in two.
        let long_head = request(
            &format!("x: {}\r\ncontent-length: 0\r\n", "a".repeat(MAX_HEAD)),
            "",
        ) + &request("content-length: 1\r\ncontent-length: 1\r\n", "x");
        for stream in [stray_cr, long_head] {
            let whole = verdicts_of(stream.as_bytes(), &[]);
            // Every cut near a boundary, and a sample of the long runs between.
            let cuts = (0..=stream.len()).filter(|&c| {
                c < 200 || c % 997 == 0 || {
                    let near = |at: usize| c.abs_diff(at) < 40;
                    near(MAX_HEAD) || near(stream.len() - 160)
                }
            });
            for cut in cuts {
                assert_eq!(
                    verdicts_of(stream.as_bytes(), &[cut]),
                    whole,
                    "cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn http2_and_garbage_stop_the_observer_without_verdicts() {
        assert!(verdicts_of(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", &[]).is_empty());
        assert!(verdicts_of(b"\x16\x03\x01\x02\x00garbage\r\n\r\n", &[]).is_empty());
    }

    fn clean_request() -> impl Strategy<Value = String> {
        let body = "[a-z{}\":,0-9\r\n]{0,40}";
        prop_oneof![
            Just(request("", "")),
            body.prop_map(|b| request(&format!("content-length: {}\r\n", b.len()), &b)),
            prop::collection::vec(body, 0..4).prop_map(|chunks| {
                let mut encoded: String = chunks
                    .iter()
                    .filter(|c| !c.is_empty())
                    .map(|c| format!("{:x}\r\n{c}\r\n", c.len()))
                    .collect();
                encoded.push_str("0\r\n\r\n");
                request("transfer-encoding: chunked\r\n", &encoded)
            }),
        ]
    }

    proptest! {
        /// Keep-alive streams of well-framed requests, split anywhere, stay in step:
        /// one clean verdict per request, and an ambiguous one where it belongs.
        #[test]
        fn the_observer_follows_any_split_of_well_framed_requests(
            requests in prop::collection::vec(clean_request(), 1..6),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let mut stream: String = requests.concat();
            stream.push_str(&request("content-length: 0\r\ntransfer-encoding: chunked\r\n", "0\r\n\r\n"));
            let mut expected = vec![false; requests.len()];
            expected.push(true);
            prop_assert_eq!(verdicts_of(stream.as_bytes(), &cuts), expected);
        }
    }
}
