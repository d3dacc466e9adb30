#!/usr/bin/env bash
# The fuzz campaign (issue 6): builds the cargo-fuzz targets of fuzz/ and
# runs each for SECONDS (default 600), two at a time, growing the committed
# corpus in fuzz/corpus/TARGET, then minimizes each corpus (cmin). Crashes
# land in fuzz/artifacts/TARGET; the summary (executions, corpus, crashes)
# is printed at the end and written to fuzz/last-run.txt.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# The entry points and what each asserts are in src/fuzzing.rs; `cargo test`
# replays the committed corpus through them without a fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(filter_json names_and_cursors convert requests)

command -v rustup >/dev/null
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || CARGO_TARGET_DIR="$(mktemp -d)" cargo install cargo-fuzz --locked

# RocksDB's C++ is not what is fuzzed: link the archive the main build
# already made instead of compiling it again (25 minutes on two cores).
# (Set ROCKSDB_LIB_DIR yourself to link another copy.)
main_target="${CARGO_TARGET_DIR:-$HOME/.cache/bulkhead/target}"
if [ -z "${ROCKSDB_LIB_DIR:-}" ]; then
  lib=$(ls -t "$main_target"/release/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -1 || true)
  [ -z "$lib" ] || export ROCKSDB_LIB_DIR="$(dirname "$lib")"
fi
[ -z "${ROCKSDB_LIB_DIR:-}" ] || export ROCKSDB_STATIC=1
fuzz_target="$HOME/.cache/bulkhead/fuzz-target"
unset CARGO_TARGET_DIR

cargo +nightly fuzz build --target-dir "$fuzz_target"
for t in "${targets[@]}"; do mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"; done

logs=$(mktemp -d)
run() {
  local t=$1
  # Leak checks off: RocksDB keeps process-wide state until exit.
  TMPDIR=${FUZZ_TMPDIR:-/dev/shm} cargo +nightly fuzz run --target-dir "$fuzz_target" "$t" \
    "fuzz/corpus/$t" -- -max_total_time="$seconds" -detect_leaks=0 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" > "$logs/$t.log" 2>&1 || true
}
jobs_at_once=${FUZZ_JOBS:-2}
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_at_once" ]; do sleep 2; done
  run "$t" &
done
wait
rm -rf "${FUZZ_TMPDIR:-/dev/shm}"/bulkhead-fuzz-* 2>/dev/null || true

summary=fuzz/last-run.txt
{
  echo "fuzz run $(date -u +%Y-%m-%dT%H:%MZ), ${seconds}s per target, $(nproc) cores, ${jobs_at_once} at once"
  for t in "${targets[@]}"; do
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' || echo "?")
    before=$(ls "fuzz/corpus/$t" | wc -l)
    TMPDIR=${FUZZ_TMPDIR:-/dev/shm} cargo +nightly fuzz cmin --target-dir "$fuzz_target" "$t" "fuzz/corpus/$t" -- -detect_leaks=0 \
      > "$logs/$t.cmin.log" 2>&1 || true
    after=$(ls "fuzz/corpus/$t" | wc -l)
    rm -rf "${FUZZ_TMPDIR:-/dev/shm}"/bulkhead-fuzz-* 2>/dev/null || true
    crashes=$(ls "fuzz/artifacts/$t" | wc -l)
    cov=$(grep -o 'cov: [0-9]*' "$logs/$t.log" | tail -1 || true)
    echo "$t: ${execs} executions, ${cov:-cov: ?}, corpus ${before} -> ${after} after cmin, ${crashes} crash files"
    grep -m3 -E '^(==[0-9]+==ERROR|thread .* panicked|SUMMARY)' "$logs/$t.log" | sed 's/^/    /' || true
  done
} | tee "$summary"
echo "logs: $logs"
