//! The strict JSON walk against serde_json, and its lookups against the tree.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookwarden::fuzzing::json(data));
