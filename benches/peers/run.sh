#!/usr/bin/env bash
# The load tool and its peers on the same data and machine: Bulkhead
# (in-process and through gRPC), then hnswlib from PyPI with the same M,
# ef_construction and ef sweep.
#
#   benches/peers/run.sh [N] [DIM] [QUERIES]
#
# Peers are installed from PyPI into ~/.cache/bulkhead/bench-venv on first
# use (set PEER_PYTHON to use another interpreter that has hnswlib and numpy).
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-20000}"
dim="${2:-128}"
queries="${3:-1000}"
out="target/bench-load/${n}x${dim}"

python="${PEER_PYTHON:-}"
if [ -z "$python" ]; then
  venv="$HOME/.cache/bulkhead/bench-venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -c "import hnswlib, numpy" 2>/dev/null \
    || "$venv/bin/pip" install --quiet hnswlib numpy
  python="$venv/bin/python"
fi

cargo bench --locked --bench load -- --n "$n" --dim "$dim" --queries "$queries" --out "$out"
echo
"$python" benches/peers/hnswlib_peer.py "$out"
