//! Compiles the OTLP schema in `proto/` into Rust with `protox` (a pure-Rust
//! protobuf compiler, so no system `protoc` is needed) and
//! `tonic-prost-build`. The client is always generated; the server only with
//! the `receiver` feature. `src/pb.rs` includes the result.

use std::error::Error;

/// The files to compile, relative to `proto/`. Their imports are resolved
/// from there too.
const PROTOS: &[&str] = &[
    "opentelemetry/proto/collector/metrics/v1/metrics_service.proto",
    "opentelemetry/proto/collector/trace/v1/trace_service.proto",
    "opentelemetry/proto/collector/logs/v1/logs_service.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");

    // protox::compile includes imported files, so the three services pull in
    // the common, resource and signal schemas.
    let fds = protox::compile(PROTOS, ["proto"])?;

    let receiver = std::env::var_os("CARGO_FEATURE_RECEIVER").is_some();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(receiver)
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;
    Ok(())
}
