//! The HTTP/1 framing observer: its verdicts never depend on where reads split.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookwarden::fuzzing::framing(data));
