#!/usr/bin/env bash
# CPU throughput of the encoder, side by side with sentence-transformers on
# the same machine and the same sentences (short.txt, medium.txt: from the
# Rust book), at batch sizes 1 to 128; then the cost of trust-class scoping
# at equal load (1, 2 and 8 classes). Prints markdown tables.
#
#   embedder/bench/cpu.sh [SECONDS] [THREADS]
#
# torch runs with THREADS intra-op threads (default: the number of cores,
# as candle uses). sentence-transformers and a CPU-only torch are installed
# from PyPI into ~/.cache/bulkhead/bench-venv on first use (set ST_PYTHON to
# use another interpreter that has them).
set -euo pipefail
cd "$(dirname "$0")/../.."
./scripts/fetch-model.sh
seconds="${1:-3}"
threads="${2:-$(nproc)}"
batches=1,2,4,8,16,32,64,128
model_dir="${BULKHEAD_MODELS_DIR:-$HOME/.cache/bulkhead/models}/all-MiniLM-L6-v2"

python="${ST_PYTHON:-}"
if [ -z "$python" ]; then
  venv="$HOME/.cache/bulkhead/bench-venv"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet torch --index-url https://download.pytorch.org/whl/cpu
    "$venv/bin/pip" install --quiet sentence-transformers
  fi
  python="$venv/bin/python"
fi

cargo build --release --locked -p bulkhead-embedder --examples
target="${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')}"

echo "## candle (bulkhead-embedder), $(nproc) cores"
"$target/release/examples/throughput" "$seconds" "$batches"
echo
echo "## sentence-transformers"
"$python" embedder/bench/st_throughput.py "$model_dir" "$seconds" "$batches" "$threads"
echo
echo "## trust-class scoping, 32 concurrent single-sentence requests"
"$target/release/examples/scoping" "$((seconds * 2))" 32 1,2,8
