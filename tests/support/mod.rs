//! Helpers shared by the integration tests in `tests/`. Include with `mod support;`.
//!
//! - [`rotel`]: a real OTLP collector (`rotel-agent`, installed by
//!   `scripts/install-test-deps.sh`) that counts what it receives.
//! - [`kills`]: SIGKILLs of rotel under load, and the bounds on its count
//!   that they leave.

pub mod kills;
pub mod rotel;
