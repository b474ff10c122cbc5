//! Helpers shared by the integration tests in `tests/`. Every test file that
//! uses one declares `mod support;` and imports from here (`use
//! support::rotel::Rotel;`); no file includes a helper on its own.
//!
//! - [`rotel`]: a real OTLP collector (`rotel-agent`, installed by
//!   `scripts/install-test-deps.sh`) that counts what it receives.
//! - [`kills`]: SIGKILLs of rotel under load, and the bounds on its count
//!   that they leave.
//! - [`accounting`]: the accounting rule of a sink in front of an OTLP drain
//!   (gRPC or HTTP), and the pipeline the fault tests build.
//! - [`delivered`]: items through a sink and a drain, compared with rotel's count.
//! - [`drains`]: a scripted, recording `SinkDrain`.
//! - [`points`]: telemetry points with known counts.
//! - [`errors`]: an error and its sources as one line.
//! - [`tls`]: certificates made with rcgen, and a send-and-flush helper.
//! - [`grpcio_tls`]: a TLS OTLP/gRPC server that is not this crate's (grpcio).
//! - [`dead`]: a collector that is down (a port held, never listening).
//! - [`http_proxy`]: a real HTTP proxy (proxy.py, from the test venv).
//! - [`child`]: a `harness = false` test binary that runs itself as a child process.
//! - [`background_receiver`] (feature `receiver`): the in-process receiver on
//!   a runtime of its own.
//! - [`sdk`] (feature `sdk`): OpenTelemetry SDK pipelines on an `OtlpExporter`.
//!
//! The helpers' own tests are in `tests/support_selftest.rs`, so that they
//! run once, not in every binary that declares this module.

// Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

pub mod accounting;
#[cfg(feature = "receiver")]
pub mod background_receiver;
pub mod child;
pub mod dead;
pub mod delivered;
pub mod drains;
pub mod errors;
pub mod grpcio_tls;
pub mod http_proxy;
pub mod kills;
pub mod points;
pub mod rotel;
#[cfg(feature = "sdk")]
pub mod sdk;
pub mod tls;
