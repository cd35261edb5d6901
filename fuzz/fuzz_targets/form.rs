//! HrFlow's form canonicaliser against CPython's parse_qs + json.dumps.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookwarden::fuzzing::form(data));
