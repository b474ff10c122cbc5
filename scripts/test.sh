#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need,
# then runs format and lint checks, every test (with a hard timeout per test,
# see .config/nextest.toml) and the doctests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain components"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
cargo nextest --version >/dev/null 2>&1 || cargo install cargo-nextest --locked

step "test dependencies (rotel collector from PyPI)"
scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, -D warnings)"
# --workspace: the root crate and bench/vs_official (the A/B program).
cargo clippy --workspace --all-targets -- -D warnings
# Without the sdk feature: the root crate alone (vs-official turns on the
# features this run turns off); its tests still have the receiver, through the
# crate's dev-dependency on itself.
cargo clippy --all-targets --no-default-features -- -D warnings
# The library alone, as a user depending on it without features builds it:
# no receiver, no SDK adapters.
cargo clippy --lib --no-default-features -- -D warnings

step "cargo doc (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet

step "examples (tests/loadgen_cli.rs runs the compiled loadgen)"
cargo build --examples

step "tests (cargo nextest)"
cargo nextest run --profile "${NEXTEST_PROFILE:-default}"

step "doctests"
cargo test --doc

step "loom: the ring and the actor's wake-up protocol, model-checked (src/sink/loom_tests.rs)"
# A target dir of its own: the cfg changes every crate's flags, so sharing
# target/ would rebuild the main build. Bounded preemptions keep it to minutes.
LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}" RUSTFLAGS="--cfg otlp_sink_loom" \
  cargo test --release --lib --no-default-features --target-dir target/loom sink::loom_tests

step "the README's quickstart and the tracing example, end to end against the in-process receiver"
# Each exits non-zero if a force_flush fails. Unset the endpoint so they use
# the in-process receiver whatever the environment says.
env -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_PROTOCOL timeout 120 cargo run --quiet --example quickstart
# The same over OTLP/HTTP: the exporter from the environment, the receiver's HTTP listener.
env -u OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
  timeout 120 cargo run --quiet --example quickstart | tee target/quickstart-http.txt
# Every signal's requests, all of them, came in on the HTTP listener.
[ "$(grep -Ec 'in ([1-9][0-9]*) request\(s\), \1 of them over HTTP' target/quickstart-http.txt)" = 3 ]
env -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_PROTOCOL timeout 120 cargo run --quiet --example tracing > /dev/null
