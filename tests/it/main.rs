//! Integration tests: the real gateway over HTTP against a recording upstream.

mod cli;
mod delivery;
mod forwarding;
mod http;
mod providers;
mod support;
mod vectors;
