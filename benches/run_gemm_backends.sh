#!/usr/bin/env bash
# Runs the gemm_backends benchmark once completely and keeps a copy of its criterion results.
#
# matrixmultiply reads its thread count once per process, so its two-thread figures need a
# second invocation. The load average is logged every 15 s, because other processes on the
# machine change the two-thread figures most.
#
# Usage: benches/run_gemm_backends.sh OUTPUT_DIR [GROUPS]
#   GROUPS is a regular expression of the groups to run, such as `step` or `products|step`;
#   the default runs all three.
# Then:  python3 benches/gemm_report.py OUTPUT_DIR [OUTPUT_DIR ...]
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 OUTPUT_DIR [GROUPS]" >&2
    exit 2
fi
output=$1
groups=${2:-products|step|threshold}
if [[ -e $output ]]; then
    echo "$output already exists; choose a new folder for each run" >&2
    exit 2
fi
mkdir -p "$output"
criterion_dir=${CARGO_TARGET_DIR:-target}/criterion

# Build first, so that compiling does not overlap the measurement.
cargo bench --bench gemm_backends --no-run

(while true; do echo "$(date -u +%T) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 15; done) \
    >"$output/load.log" &
load_logger=$!
trap 'kill "$load_logger"' EXIT

{
    date -u
    rustc --version
    lscpu | grep -E 'Model name|^CPU\(s\)'
} >"$output/machine.txt"

MATMUL_NUM_THREADS=1 cargo bench --bench gemm_backends -- "^($groups)/" 2>&1 |
    tee "$output/run-1.log"
MATMUL_NUM_THREADS=2 cargo bench --bench gemm_backends -- "^($groups)/matrixmultiply" 2>&1 |
    tee "$output/run-2.log"

# Copy only the results of this run: criterion keeps older ones beside them.
grep -oE '^(products|step|threshold)/[^ ]+$' "$output"/run-*.log | cut -d: -f2 | sort -u |
    while read -r id; do
        mkdir -p "$output/$(dirname "$id")"
        cp -r "$criterion_dir/$id" "$output/$id"
    done
