#!/usr/bin/env bash
# Scheduling efficiency of `dbuild local` on examples/: builds them from
# scratch with 1 and then 2 workers and prints, for each, the ratio of the
# build's wall time to the best any scheduler could do here, i.e. the sum of
# the rpmbuild times (from the workers' logs) divided by the workers.
# Target: within 1.25. Also printed: the same ratio against the whole
# per-package work of the workers (rpmbuild plus chroot, install, sources,
# publish, cleanup), which measures the scheduling alone.
# Each worker count is run ROUNDS times (default 3; times here are noisy)
# and the median ratio is printed after the rounds.
# Needs root; makes (or reuses) a builder root.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --locked -q
root=${DBUILD_BENCH_ROOT:-/var/tmp/dbuild-bench-rootfs}
target/release/dbuild rootfs --dest "$root" >&2
rounds=${ROUNDS:-3}
for workers in 1 2; do
  ratios=()
  for round in $(seq 1 "$rounds"); do
    state=$(mktemp -d /var/tmp/dbuild-bench-local-XXXXXX)
    out=$(target/release/dbuild local --specs examples/SPECS --workers "$workers" --define 'dist .ex' \
        --state-dir "$state" --base-root "$root" --plain 2>/dev/null)
    wall=$(printf '%s\n' "$out" | sed -n 's/.*(build \([0-9.]*\) s as the scheduler measured it).*/\1/p')
    phases=$(grep -ho 'phases: .*' "$state"/local/stage/LOGS/*/*.log)
    sum=$(printf '%s\n' "$phases" | grep -o 'rpmbuild [0-9.]*s' | awk '{gsub("s","",$2); s+=$2} END {printf "%.3f", s}')
    work=$(printf '%s\n' "$phases" | grep -o '[a-z]* [0-9.]*s' | awk '{gsub("s$","",$2); s+=$2} END {printf "%.3f", s}')
    awk -v w="$wall" -v s="$sum" -v t="$work" -v n="$workers" -v r="$round" 'BEGIN {
        printf "workers=%d round=%d wall=%.2fs rpmbuild_sum=%.2fs ratio=%.3f (target 1.25) | worker_work_sum=%.2fs ratio=%.3f\n",
            n, r, w, s, w / (s / n), t, w / (t / n) }'
    ratios+=("$(awk -v w="$wall" -v s="$sum" -v n="$workers" 'BEGIN { printf "%.3f", w / (s / n) }')")
    rm -rf "$state"
  done
  printf '%s\n' "${ratios[@]}" | sort -n | awk -v n="$workers" '{ a[NR] = $1 } END {
      printf "workers=%d median ratio %.3f over %d rounds (min %.3f, max %.3f; target 1.25)\n", n, a[int((NR + 1) / 2)], NR, a[1], a[NR] }'
done
