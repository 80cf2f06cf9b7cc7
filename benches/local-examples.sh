#!/usr/bin/env bash
# Scheduling efficiency of `dbuild local` on examples/: builds them from
# scratch with 1 and then 2 workers and prints, for each, the ratio of the
# build's wall time to the best any scheduler could do here, i.e. the sum of
# the rpmbuild times (from the workers' logs) divided by the workers.
# Target: within 1.25. Also printed: the same ratio against the whole
# per-package work of the workers (rpmbuild plus chroot, install, sources,
# publish, cleanup), which measures the scheduling alone.
# Needs root; makes (or reuses) a builder root.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --locked -q
root=${DBUILD_BENCH_ROOT:-/var/tmp/dbuild-bench-rootfs}
target/release/dbuild rootfs --dest "$root" >&2
for workers in 1 2; do
    state=$(mktemp -d /var/tmp/dbuild-bench-local-XXXXXX)
    out=$(target/release/dbuild local --specs examples/SPECS --workers "$workers" --define 'dist .ex' \
        --state-dir "$state" --base-root "$root" --plain 2>/dev/null)
    wall=$(printf '%s\n' "$out" | sed -n 's/.*(build \([0-9.]*\) s as the scheduler measured it).*/\1/p')
    phases=$(grep -ho 'phases: .*' "$state"/local/stage/LOGS/*/*.log)
    sum=$(printf '%s\n' "$phases" | grep -o 'rpmbuild [0-9.]*s' | awk '{gsub("s","",$2); s+=$2} END {printf "%.3f", s}')
    work=$(printf '%s\n' "$phases" | grep -o '[a-z]* [0-9.]*s' | awk '{gsub("s$","",$2); s+=$2} END {printf "%.3f", s}')
    awk -v w="$wall" -v s="$sum" -v t="$work" -v n="$workers" 'BEGIN {
        printf "workers=%d wall=%.2fs rpmbuild_sum=%.2fs ratio=%.3f (target 1.25) | worker_work_sum=%.2fs ratio=%.3f\n",
            n, w, s, w / (s / n), t, w / (t / n) }'
    rm -rf "$state"
done
