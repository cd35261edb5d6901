//! Signature and timestamp headers of every scheme: nothing verifies without the secret.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookwarden::fuzzing::signatures(data));
