#!/usr/bin/env bash
# Request sizes for this crate's metric flush, A B C D A B C D ...: workload 1
# of vs_official (gRPC, against rotel) with each `--metrics-batch` value in
# turn, for CYCLES cycles (default 3), printing per variant the median over
# cycles of each run's median ratios: W1 points/s, rotel's CPU per point and
# this crate's CPU per point beyond the SDK (W5), unpinned and pinned.
# Progress on stderr.
#
#     scripts/bench-request-sizes.sh [CYCLES] [VARIANT ...]
#
# A variant is BYTES (batches cut by bytes) or points:N (by count); the
# defaults are points:8192 (the old default), points:4096, 524288, 1048576
# (the default) and 3145728.
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-3}
shift || true
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(points:8192 points:4096 524288 1048576 3145728)
cargo build --release -q -p vs-official
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for cycle in $(seq 1 "$cycles"); do
    for v in "${variants[@]}"; do
        echo "[request-sizes] cycle $cycle/$cycles: --metrics-batch $v" >&2
        target/release/vs_official --only 1 --rounds 5 --metrics-batch "$v" --out request-sizes-scratch \
            2>/dev/null >"$out/run"
        # The six gRPC ratios: points/s, rotel's CPU and this crate's CPU (W5),
        # unpinned then pinned.
        grep -E '^\| (W1 (points/s|rotel CPU)|W5 CPU per point beyond the SDK: otlp-sink / official)' "$out/run" | awk -F'|' '{gsub(/ /, "", $3); print $3}' | paste -sd' ' \
            >>"$out/$(echo "$v" | tr ':' '_')"
    done
done
rm -f bench-results/request-sizes-scratch.*
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "| --metrics-batch | W1 points/s | rotel CPU | W5 CPU | pinned: W1 points/s | rotel CPU | W5 CPU |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for v in "${variants[@]}"; do
    f="$out/$(echo "$v" | tr ':' '_')"
    row="| $v"
    for col in 1 2 3 4 5 6; do row="$row | $(cut -d' ' -f"$col" "$f" | median)"; done
    echo "$row |"
done
echo "(ratios: otlp-sink / official, each the median of one run's 5 rounds; the table: their median over $cycles cycles)"
