#!/usr/bin/env bash
# Scheduling efficiency of `dbuild local` on examples/: builds them from
# scratch with 1 and then 2 workers and prints, for each, the ratio of the
# build's wall time to the best any scheduler could do here, i.e. the sum of
# the rpmbuild times (from the workers' logs) divided by the workers.
# Target: within 1.25. Also printed: the same ratio against the whole
# per-package work of the workers (rpmbuild plus chroot, install, sources,
# publish, cleanup), which measures the scheduling alone.
#
# Each round runs the default (each slot prepares its next build during the
# current one) and, side by side, the workers with DBUILD_NO_PREFETCH=1; the
# medians over the rounds (ROUNDS, default 3; times here are noisy) are
# printed with the median wall-time ratio prefetch / no prefetch. Preparing
# ahead makes builds share the CPU with the next build's install, so their
# rpmbuild times grow: compare the wall times, not only the ratios.
# Needs root; makes (or reuses) a builder root.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --locked -q
root=${DBUILD_BENCH_ROOT:-/var/tmp/dbuild-bench-rootfs}
target/release/dbuild rootfs --dest "$root" >&2
rounds=${ROUNDS:-3}

# run WORKERS NO_PREFETCH ROUND: one build; prints "wall rpmbuild_sum work_sum".
run() {
  local state out wall phases sum work
  state=$(mktemp -d /var/tmp/dbuild-bench-local-XXXXXX)
  out=$(DBUILD_NO_PREFETCH=$2 target/release/dbuild local --specs examples/SPECS --workers "$1" --define 'dist .ex' \
      --state-dir "$state" --base-root "$root" --plain 2>/dev/null)
  wall=$(printf '%s\n' "$out" | sed -n 's/.*(build \([0-9.]*\) s as the scheduler measured it).*/\1/p')
  phases=$(grep -ho 'phases: .*' "$state"/local/stage/LOGS/*/*.log)
  sum=$(printf '%s\n' "$phases" | grep -o 'rpmbuild [0-9.]*s' | awk '{gsub("s","",$2); s+=$2} END {printf "%.3f", s}')
  work=$(printf '%s\n' "$phases" | grep -o '[a-z]* [0-9.]*s' | awk '{gsub("s$","",$2); s+=$2} END {printf "%.3f", s}')
  rm -rf "$state"
  echo "$wall $sum $work"
}

median() { sort -n | awk '{ a[NR] = $1 } END { printf "%.3f (min %.3f, max %.3f)", a[int((NR + 1) / 2)], a[1], a[NR] }'; }

for workers in 1 2; do
  ratios=() plain=() walls=()
  for round in $(seq 1 "$rounds"); do
    for no_prefetch in false true; do
      read -r wall sum work < <(run "$workers" "$no_prefetch")
      awk -v w="$wall" -v s="$sum" -v t="$work" -v n="$workers" -v r="$round" -v np="$no_prefetch" 'BEGIN {
          printf "workers=%d round=%d no_prefetch=%s wall=%.2fs rpmbuild_sum=%.2fs ratio=%.3f | worker_work_sum=%.2fs ratio=%.3f\n",
              n, r, np, w, s, w / (s / n), t, w / (t / n) }'
      ratio=$(awk -v w="$wall" -v s="$sum" -v n="$workers" 'BEGIN { printf "%.3f", w / (s / n) }')
      if [ "$no_prefetch" = false ]; then ratios+=("$ratio"); ahead_wall=$wall; else plain+=("$ratio"); walls+=("$(awk -v a="$ahead_wall" -v b="$wall" 'BEGIN { printf "%.3f", a / b }')"); fi
    done
  done
  echo "workers=$workers median ratio $(printf '%s\n' "${ratios[@]}" | median) over $rounds rounds; target 1.25"
  echo "workers=$workers without prefetch: median ratio $(printf '%s\n' "${plain[@]}" | median)"
  echo "workers=$workers wall time prefetch / no prefetch, same round: median $(printf '%s\n' "${walls[@]}" | median)"
done
