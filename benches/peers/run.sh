#!/usr/bin/env bash
# The load tool and its peers on the same data and machine, one after the
# other: Bulkhead (in-process and through gRPC, isolation tax, durable
# writes, many tenants), hnswlib from PyPI in-process and Chroma from PyPI
# as a server (`chroma run`, its HTTP client), all with the same M,
# ef_construction and ef sweep; then the goals as ratios of this run.
#
#   benches/peers/run.sh [N] [DIM] [QUERIES] [MANY] [-- extra load-tool flags]
#
# Then ROUNDS (default 3) alternating rounds of the in-process sweep only,
# Bulkhead then hnswlib back to back, so that the in-process ratio is a
# median of ratios taken minutes apart, not of two moments of a noisy machine.
#
# Peers are installed from PyPI into ~/.cache/bulkhead/bench-venv on first
# use (set PEER_PYTHON to use another interpreter that has hnswlib, numpy
# and chromadb). Reports land in target/bench-load/<N>x<DIM>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-20000}"
dim="${2:-128}"
queries="${3:-1000}"
many="${4:-1000,10000}"
shift $(( $# < 4 ? $# : 4 ))
[ "${1:-}" = "--" ] && shift
out="target/bench-load/${n}x${dim}"

python="${PEER_PYTHON:-}"
if [ -z "$python" ]; then
  venv="$HOME/.cache/bulkhead/bench-venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -c "import hnswlib, numpy, chromadb" 2>/dev/null \
    || "$venv/bin/pip" install --quiet hnswlib numpy chromadb==1.5.9
  python="$venv/bin/python"
fi

cargo bench --locked --workspace --bench load -- --n "$n" --dim "$dim" --queries "$queries" \
  --many "$many" --out "$out" "$@"
echo
"$python" benches/peers/hnswlib_peer.py "$out"
echo
"$python" benches/peers/chroma_peer.py "$out"
for round in $(seq 1 "${ROUNDS:-3}"); do
  mkdir -p "$out/round-$round"
  cargo bench --locked --workspace --bench load -- --data "$out" --out "$out/round-$round" \
    --skip grpc,isolation,writes,many "$@" > /dev/null
  "$python" benches/peers/hnswlib_peer.py "$out" 16 200 16,32,64,128,256 \
    "$out/round-$round/hnswlib.json" > /dev/null
done
echo
"$python" benches/peers/goals.py "$out"
