//! The `hookwarden` command; everything but the allocator is the library's `cli`.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: a request allocates many small, short-lived
/// buffers, and glibc's malloc/free cost about a sixth of the gateway's own instructions
/// per request (bench/run.sh, docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    hookwarden::cli::main()
}
