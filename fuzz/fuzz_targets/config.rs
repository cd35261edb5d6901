//! Configuration loading never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookwarden::fuzzing::config(data));
