//! Integration tests: the real gateway over HTTP against a recording upstream.

mod support;
mod vectors;
