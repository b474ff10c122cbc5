#!/usr/bin/env bash
# Installs what the integration tests need that cargo does not: the rotel OTLP
# collector (from PyPI), grpcio with the OpenTelemetry Python protobuf classes
# used by scripts/otlp_send.py and scripts/otlp_tls_server.py, and the proxy.py
# HTTP proxy of tests/http_proxy.rs. Idempotent: a
# second run only checks.
#
#   scripts/install-test-deps.sh            # venv in <repo>/target/test-venv
#   TEST_VENV=/some/dir scripts/install-test-deps.sh
#   PYTHON=python3.11 scripts/install-test-deps.sh
#
# Writes the absolute path of rotel-agent to $TEST_VENV/rotel-agent.path, which
# tests/support/rotel.rs reads (the ROTEL_AGENT environment variable overrides it).
# `cargo clean` deletes target/ and so this venv: run the script again after it.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TEST_VENV:-$repo/target/test-venv}"
requirements="$repo/scripts/test-requirements.txt"
python="${PYTHON:-python3}"

say() { printf 'install-test-deps: %s\n' "$*"; }
die() { printf 'install-test-deps: ERROR: %s\n' "$*" >&2; exit 1; }

command -v "$python" >/dev/null 2>&1 || die "'$python' not found; install Python 3.11 (with venv and pip) or set PYTHON"
[ -f "$requirements" ] || die "missing $requirements"

# A venv whose interpreter no longer runs (Python moved or upgraded) is rebuilt.
if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "venv at $venv is broken; recreating it"
    rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
    say "creating venv $venv with $("$python" --version 2>&1)"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv" || die "'$python -m venv' failed (on Debian: apt-get install python3-venv)"
fi

say "installing pinned packages from scripts/test-requirements.txt"
# Already-satisfied pins need no network, so a second run works offline.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements" \
    || die "pip install failed (the rotel wheel is built for CPython 3.11 on x86_64 Linux, glibc >= 2.34)"

agent="$("$venv/bin/python" -c 'import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')" \
    || die "the rotel package does not import from $venv"
[ -x "$agent" ] || die "rotel-agent not found (or not executable) at $agent"

# The binary links libpython3.11.so.1.0 (Debian package libpython3.11): prove it runs.
version="$("$agent" --version 2>&1)" || die "$agent does not run: $version (missing libpython3.11? apt-get install libpython3.11)"

# scripts/otlp_send.py and scripts/otlp_tls_server.py (the TLS server of
# tests/grpc_tls_grpcio.rs) use grpcio with its TLS and all three services.
"$venv/bin/python" -c 'import grpc; grpc.ssl_server_credentials
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc' \
    || die "grpcio / opentelemetry-proto do not import from $venv"
"$venv/bin/python" "$repo/scripts/otlp_tls_server.py" --help >/dev/null \
    || die "scripts/otlp_tls_server.py does not run with $venv/bin/python"

# proxy.py, the HTTP proxy of tests/http_proxy.rs.
"$venv/bin/python" -m proxy --version >/dev/null \
    || die "proxy.py does not run with $venv/bin/python"

printf '%s\n' "$agent" > "$venv/rotel-agent.path"
say "$version at $agent"
say "path written to $venv/rotel-agent.path"
