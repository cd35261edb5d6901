//! Integration tests: the real gateway over HTTP against a recording upstream.

mod binary;
mod bounds;
mod cli;
mod console;
mod dedup;
mod delivery;
mod deploy;
mod forwarding;
mod hostile;
mod http;
mod layering;
mod levers;
mod lifecycle;
mod limits;
mod metrics;
mod presets;
mod providers;
mod queue;
mod queue_process;
mod replicas;
mod store;
mod support;
mod tls;
mod tools;
mod upstream;
mod vectors;
